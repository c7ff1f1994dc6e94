//! Small helpers every settings section uses: problems, secret files, URL
//! checks, redaction when printing, and list values from the environment.

use std::path::Path;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serializer};

use super::Problem;

pub(crate) fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
        origin: None,
    }
}

/// Reads a secret from a file (trimmed); an empty or unreadable file is a problem.
pub(crate) fn read_secret_file(
    key: &str,
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Option<SecretString> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => {
            problems.push(problem(key, format!("{} is empty", path.display())));
            None
        }
        Ok(text) => Some(SecretString::from(text.trim().to_owned())),
        Err(e) => {
            problems.push(problem(key, format!("cannot read {}: {e}", path.display())));
            None
        }
    }
}

/// A secret given both inline and as a file is ambiguous; a file alone is
/// read into the inline field, so the rest of the program sees one value.
pub(crate) fn secret_from_file(
    key: &str,
    secret: &mut Option<SecretString>,
    file: Option<&Path>,
    problems: &mut Vec<Problem>,
) {
    let Some(path) = file else { return };
    if secret.is_some() {
        problems.push(problem(
            format!("{key}_file"),
            format!("set either {key} or {key}_file, not both"),
        ));
    } else if let Some(value) = read_secret_file(&format!("{key}_file"), path, problems) {
        *secret = Some(value);
    }
}

pub(crate) fn check_http_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    if url.host_str().is_none() {
        return Err("has no host".into());
    }
    Ok(())
}

/// Pushes a problem for each set URL that is not http(s) with a host.
pub(crate) fn check_urls<'a>(
    urls: impl IntoIterator<Item = (String, &'a Option<String>)>,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in urls {
        if let Some(value) = value
            && let Err(why) = check_http_url(value)
        {
            problems.push(problem(key, format!("`{value}` {why}")));
        }
    }
}

/// What a secret is printed as. Long enough to pass the checks on the
/// secret it stands for (a static token needs 16 characters), so printed
/// settings validate when fed back.
pub const REDACTED: &str = "[redacted: not shown]";

pub(crate) fn redact<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

/// Serializes a secret as `[redacted]` (check-config prints the settings).
pub(crate) fn redact_opt<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

/// Accept a TOML list or, from an environment variable, a comma-separated
/// string.
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

/// A load error without the values it quotes: serde names a bad value
/// (`invalid type: string "..."`) and TOML parse errors quote the offending
/// line, and either may be a secret (a token given where a list was expected,
/// a half-quoted API token). Keys, types and positions stay, so the message
/// still says what to fix.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // A TOML excerpt: `12 | token = "abc` (the line number stays).
        if let Some((number, _)) = line.split_once(" | ")
            && !number.trim().is_empty()
            && number.trim().chars().all(|c| c.is_ascii_digit())
        {
            out.push_str(number);
            out.push_str(" | <redacted>");
            continue;
        }
        redact_quoted(line, &mut out);
    }
    out
}

/// Copy `line`, replacing the inside of every double-quoted string (with
/// backslash escapes, as serde's Debug-formatted values are) by `<redacted>`.
/// An unterminated quote redacts the rest of the line. Kept: a quoted file
/// path (`configuration file "..." not found`) and a lone quote character
/// in backticks (`` expected `"` ``).
fn redact_quoted(line: &str, out: &mut String) {
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let after_backtick = out.ends_with('`');
        let after_file = out.ends_with("file ");
        out.push(c);
        if c != '"' || (after_backtick && chars.peek() == Some(&'`')) {
            continue;
        }
        if after_file {
            for c in chars.by_ref() {
                out.push(c);
                if c == '"' {
                    break;
                }
            }
            continue;
        }
        out.push_str("<redacted>");
        let mut escaped = false;
        for c in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                out.push('"');
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_values_hides_quoted_values_and_toml_excerpts() {
        let text = redact_values(
            "invalid type: string \"my-\\\"secret\", expected a sequence for key `server.auth.tokens`",
        );
        assert_eq!(
            text,
            "invalid type: string \"<redacted>\", expected a sequence for key `server.auth.tokens`"
        );
        let text = redact_values(
            "TOML parse error at line 3, column 13\n  |\n3 | api_token = \"abc\n  |             ^\ninvalid basic string",
        );
        assert!(!text.contains("abc"), "{text}");
        assert!(
            text.contains("line 3, column 13") && text.contains("3 | <redacted>"),
            "{text}"
        );
        let text = redact_values("unterminated \"secret-tail");
        assert_eq!(text, "unterminated \"<redacted>");
        let kept = "configuration file \"/etc/dutycard.toml\" not found; expected `\"`";
        assert_eq!(redact_values(kept), kept);
    }

    #[test]
    fn a_secret_file_fills_the_secret_unless_both_are_set() {
        let dir = std::env::temp_dir().join(format!("dutycard-checks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  from-file\n").unwrap();
        let mut problems = Vec::new();
        let mut secret = None;
        secret_from_file("a.api_token", &mut secret, Some(&path), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(secret.as_ref().unwrap()),
            "from-file"
        );
        secret_from_file("a.api_token", &mut secret, Some(&path), &mut problems);
        assert_eq!(problems[0].key, "a.api_token_file");
        assert!(problems[0].message.contains("not both"), "{problems:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
