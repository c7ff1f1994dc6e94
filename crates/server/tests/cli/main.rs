//! The `dutycard` binary's command line: exit codes and output.
//!
//! Each run gets a cleared environment (set on the child process only), so
//! the machine's `DUTYCARD_*` variables cannot leak into the result.

use std::path::PathBuf;
use std::process::{Command, Output};

mod webhooks;

pub(crate) fn dutycard(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dutycard"))
        .args(args)
        .current_dir(scratch_dir())
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run dutycard")
}

/// A working directory of the run's own under Cargo's per-target temporary
/// directory: `serve` keeps its SQLite file under `./data`, which must not
/// land in the source tree.
fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
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
    assert!(
        stdout.contains("api_token = \"[redacted: not shown]\""),
        "{stdout}"
    );
    // The hosts the region implies, as comments.
    assert!(
        stdout.contains("account default: region us, API https://api.pagerduty.com, Events https://events.pagerduty.com/v2"),
        "{stdout}"
    );
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

fn temp_toml(name: &str, content: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "dutycard-cli-{}-{}-{name}.toml",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn check_config_reads_the_file_and_the_environment_beats_it() {
    let file = temp_toml(
        "layers",
        "[server]\nport = 9001\n[server.auth]\nmode = \"none\"\n[pagerduty]\napi_token = \"file-token-123\"\n[cache]\noncall_ttl_secs = 42\nincidents_ttl_secs = 11\n",
    );
    let path = file.to_str().unwrap();

    // The file beats the defaults.
    let out = dutycard(&["check-config", "--config", path], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("port = 9001"), "{stdout}");
    assert!(stdout.contains("oncall_ttl_secs = 42"), "{stdout}");
    assert!(stdout.contains("incidents_ttl_secs = 11"), "{stdout}");
    assert!(
        stdout.contains("service_ttl_secs = 300"),
        "default kept: {stdout}"
    );
    assert!(!stdout.contains("file-token-123"), "{stdout}");

    // The environment beats the file.
    let out = dutycard(
        &["check-config", "--config", path],
        &[
            ("DUTYCARD_SERVER__PORT", "9002"),
            ("DUTYCARD_CACHE__ONCALL_TTL_SECS", "43"),
        ],
    );
    std::fs::remove_file(&file).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("port = 9002"), "{stdout}");
    assert!(stdout.contains("oncall_ttl_secs = 43"), "{stdout}");
    assert!(stdout.contains("incidents_ttl_secs = 11"), "{stdout}");
}

/// A running `dutycard` process whose stdout and stderr lines arrive on a
/// channel; killed when dropped (so a failing test leaves no process).
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = Command::new(env!("CARGO_BIN_EXE_dutycard"))
            .args(args)
            .current_dir(scratch_dir())
            .env_clear()
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dutycard");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        Running { child, lines }
    }

    /// The first line containing `needle`, waiting at most `timeout`.
    fn line_with(&self, needle: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; got:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    /// The exit code, waiting at most `timeout`.
    fn exit_code(&mut self, timeout: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after {timeout:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url` (http://host:port/path) over a plain TCP connection: the status
/// code and the raw head.
fn http_get(url: &str) -> (u16, String) {
    http_get_with(url, &[])
}

/// [`http_get`] with extra request headers.
fn http_get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// What check-config prints is a valid configuration: fed back as the
/// file, it passes (secrets read from files are shown as the files).
#[test]
fn check_config_output_validates_when_fed_back() {
    let token = temp_toml("pd-token", "a-pagerduty-token-from-a-file");
    let tokens = temp_toml(
        "tokens",
        "[[tokens]]\nname = \"portal\"\ntoken = \"portal-secret-token-0123456789\"\n",
    );
    let env = [
        ("DUTYCARD_SERVER__AUTH__MODE", "static"),
        (
            "DUTYCARD_SERVER__AUTH__TOKENS_FILE",
            tokens.to_str().unwrap(),
        ),
        (
            "DUTYCARD_PAGERDUTY__API_TOKEN_FILE",
            token.to_str().unwrap(),
        ),
        ("DUTYCARD_PAGERDUTY__REGION", "eu"),
    ];
    let out = dutycard(&["check-config"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("a-pagerduty-token"), "{stdout}");
    assert!(!stdout.contains("portal-secret"), "{stdout}");
    assert!(
        stdout.contains("API https://api.eu.pagerduty.com"),
        "{stdout}"
    );
    let printed = temp_toml("printed", &stdout);
    let out = dutycard(
        &["check-config", "--config", printed.to_str().unwrap()],
        &[],
    );
    for f in [token, tokens, printed] {
        std::fs::remove_file(f).ok();
    }
    assert!(
        out.status.success(),
        "fed back:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo takes `--config` and `DUTYCARD_*` like serve (here: CORS
/// origins and the port from the environment), and prints URLs a shell
/// can paste (no bare `[]`).
#[test]
fn demo_honours_the_environment_and_prints_pasteable_urls() {
    let demo = Running::start(
        &["demo", "--services", "5"],
        &[
            ("DUTYCARD_SERVER__PORT", "0"),
            (
                "DUTYCARD_SERVER__CORS_ALLOWED_ORIGINS",
                "https://portal.example",
            ),
        ],
    );
    let line = demo.line_with("/v1/cards/", std::time::Duration::from_secs(60));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    assert!(!url.contains(":7007/"), "the environment's port: {url}");
    let (status, head) = http_get_with(url, &[("Origin", "https://portal.example")]);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://portal.example"),
        "{head}"
    );
    let backstage = demo.line_with("oncall-users", std::time::Duration::from_secs(5));
    assert!(!backstage.contains("[]"), "{backstage}");
    assert!(backstage.contains("%5B%5D"), "{backstage}");
}

/// A port in use names the way out.
#[test]
fn demo_on_a_taken_port_says_how_to_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut demo = Running::start(&["demo", "--port", &port, "--services", "3"], &[]);
    let line = demo.line_with("cannot listen", std::time::Duration::from_secs(60));
    assert!(line.contains("--port"), "{line}");
    assert!(line.contains("DUTYCARD_SERVER__PORT"), "{line}");
    assert_ne!(demo.exit_code(std::time::Duration::from_secs(15)), Some(0));
}

#[test]
fn demo_serves_the_cards_it_prints() {
    let demo = Running::start(&["demo", "--port", "0", "--services", "5"], &[]);
    demo.line_with(
        "simulated PagerDuty services",
        std::time::Duration::from_secs(60),
    );
    // The first URL printed is the card page (issue 19).
    let first = demo.line_with("http://", std::time::Duration::from_secs(5));
    assert!(first.contains("/ui/"), "{first}");
    let page = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"));
    let (status, head) = http_get(page);
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
    let line = demo.line_with("/v1/cards/", std::time::Duration::from_secs(60));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    assert!(!url.contains(":0/"), "the real port is printed: {url}");
    let (status, head) = http_get(url);
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("\netag: "), "{head}");
}

#[cfg(unix)]
#[test]
fn serve_exits_zero_on_sigterm() {
    let mut serve = Running::start(
        &["serve", "--log-format", "json"],
        &[
            ("DUTYCARD_SERVER__PORT", "0"),
            ("DUTYCARD_SERVER__SHUTDOWN_TIMEOUT_SECS", "1"),
            ("DUTYCARD_SERVER__AUTH__MODE", "none"),
            ("DUTYCARD_PAGERDUTY__API_TOKEN", "placeholder-token"),
            ("DUTYCARD_PAGERDUTY__API_BASE_URL", "http://127.0.0.1:9"),
            ("RUST_LOG", "info"),
        ],
    );
    let line = serve.line_with("listening", std::time::Duration::from_secs(30));
    // Once it answers, the server loop (and its signal handlers) runs.
    let start = line.find("http://").unwrap_or_else(|| panic!("{line}"));
    let base: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
        .collect();
    let (status, head) = http_get(&format!("{base}/healthz"));
    assert_eq!(status, 200, "{head}");
    let pid = serve.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    assert_eq!(serve.exit_code(std::time::Duration::from_secs(15)), Some(0));
}
