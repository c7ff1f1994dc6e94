//! The `dutycard` binary's command line: exit codes and output.
//!
//! Each run gets a cleared environment (set on the child process only), so
//! the machine's `DUTYCARD_*` variables cannot leak into the result.

use std::process::{Command, Output};

fn dutycard(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dutycard"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run dutycard")
}

#[test]
fn check_config_exits_non_zero_and_names_every_bad_key() {
    let out = dutycard(
        &["check-config"],
        &[
            ("DUTYCARD_PAGERDUTY__API_BASE_URL", "ftp://nope"),
            ("DUTYCARD_CACHE__ONCALL_TTL_SECS", "0"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.auth.mode",
        "pagerduty.api_token",
        "pagerduty.api_base_url",
        "cache.oncall_ttl_secs",
    ] {
        assert!(stderr.contains(key), "{key} not named in:\n{stderr}");
    }
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let out = dutycard(
        &["check-config"],
        &[
            ("DUTYCARD_SERVER__AUTH__MODE", "none"),
            ("DUTYCARD_SERVER__PORT", "9001"),
            ("DUTYCARD_PAGERDUTY__API_TOKEN", "u+super-secret-token"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("port = 9001"), "{stdout}");
    assert!(stdout.contains("api_token = \"[redacted]\""), "{stdout}");
    assert!(!stdout.contains("super-secret"), "{stdout}");
}

#[test]
fn serve_refuses_to_start_with_an_invalid_config() {
    let out = dutycard(&["serve", "--config", "/nonexistent/dutycard.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dutycard.toml"));
}

#[test]
fn openapi_prints_the_committed_spec() {
    let out = dutycard(&["openapi"], &[]);
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../openapi/openapi.json"
    ))
    .expect("openapi/openapi.json");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn check_config_never_prints_a_mistyped_secret() {
    let out = dutycard(
        &["check-config"],
        &[
            ("DUTYCARD_SERVER__AUTH__MODE", "static"),
            ("DUTYCARD_SERVER__AUTH__TOKENS", "my-secret-token-value"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("server.auth.tokens"), "{stderr}");
    assert!(!stderr.contains("my-secret"), "{stderr}");
    assert!(!stdout.contains("my-secret"), "{stdout}");
}
