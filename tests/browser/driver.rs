//! Headless Chromium for the browser tests: chromedriver on a free port,
//! driven over WebDriver with fantoccini, stopped (with its browser) when
//! dropped. A missing chromedriver or chromium fails the test and names
//! `scripts/test`, which installs them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// How long chromedriver and the browser session may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `name` from `$env_var`, else the first of `candidates` that exists, else
/// on `PATH`.
fn find_binary(env_var: &str, candidates: &[&str], name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    candidates
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the browser tests need `{name}` (Debian packages chromium and chromium-driver) \
                 and found none ({env_var} unset, not in {candidates:?} or on PATH): run \
                 `scripts/test`, which installs them, or set {env_var}"
            )
        })
}

/// A free port on 127.0.0.1 (bound, read, released: chromedriver has no
/// port 0 that it reports back in a form we could read more simply).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A running chromedriver and one browser session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    session: String,
    _profile: TempDir,
}

/// A directory removed on drop (the browser profile).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    /// Start chromedriver and a headless Chromium session (1280×1400: a whole card fits).
    pub async fn start() -> Browser {
        let chromedriver = find_binary(
            "CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
            "chromedriver",
        );
        let chromium = find_binary(
            "CHROME_BIN",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
            "chromium",
        );
        let port = free_port();
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Its own process group: dropping the Browser stops chromedriver
        // and the Chromium it started, even after a failed assertion.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut driver = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        wait_for_line(&mut driver, "started successfully", START_TIMEOUT);

        let profile =
            std::env::temp_dir().join(format!("dutycard-chromium-{}-{port}", std::process::id()));
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1280,1400",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let driver_url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(START_TIMEOUT, async {
            ClientBuilder::rustls()
                .expect("TLS roots for the WebDriver client")
                .capabilities(caps)
                .connect(&driver_url)
                .await
        })
        .await
        .unwrap_or_else(|_| panic!("no browser session within {START_TIMEOUT:?}"))
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} through chromedriver: {e}",
                chromium.display()
            )
        });
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        Browser {
            client,
            driver,
            driver_url,
            session,
            _profile: TempDir(profile),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Run `script` (a function body; `arguments` holds `args`).
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Re-evaluate `script` until it returns a truthy value, at most
    /// `timeout`; panics naming `what` (and the script's last value).
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.js(script, vec![]).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?} (last value {value})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Press keys on whatever has the focus (the keyboard, not an element).
    pub async fn keys(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".into());
        for &key in keys {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("key actions");
    }

    pub async fn tab(&self) {
        self.keys(&[Key::Tab.into()]).await;
    }

    pub async fn enter(&self) {
        self.keys(&[Key::Enter.into()]).await;
    }

    /// Type `text` on the keyboard.
    pub async fn type_text(&self, text: &str) {
        self.keys(&text.chars().collect::<Vec<_>>()).await;
    }

    /// The browser's log since the last call (console messages, script
    /// errors, failed loads): `(level, source, message)`.
    pub async fn log(&self) -> Vec<(String, String, String)> {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session);
        let body: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("chromedriver log request")
            .json()
            .await
            .expect("chromedriver log JSON");
        body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log in {body}"))
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (s("level"), s("source"), s("message"))
            })
            .collect()
    }

    /// Emulate the system's colour scheme (`prefers-color-scheme`) through
    /// chromedriver's DevTools passthrough.
    pub async fn prefer_color_scheme(&self, scheme: &str) {
        let url = format!(
            "{}/session/{}/goog/cdp/execute",
            self.driver_url, self.session
        );
        let res = reqwest::Client::new()
            .post(url)
            .json(&json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
            }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("chromedriver CDP request");
        assert!(res.status().is_success(), "CDP: {}", res.status());
    }

    /// A PNG of the viewport, saved as `name` under [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        save(name, &png)
    }

    /// A PNG of one element (found by CSS selector).
    pub async fn screenshot_of(&self, css: &str, name: &str) -> PathBuf {
        let element = self
            .client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        let png = element.screenshot().await.expect("element screenshot");
        save(name, &png)
    }

    /// End the session (Chromium exits), then chromedriver.
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group chromedriver leads (it and its Chromium), by id.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `$CARGO_TARGET_TMPDIR/ui-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots")
}

fn save(name: &str, png: &[u8]) -> PathBuf {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    println!("screenshot: {}", path.display());
    path
}

/// Read the child's stdout until a line contains `needle`, at most `timeout`.
fn wait_for_line(child: &mut Child, needle: &str, timeout: Duration) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Drains the pipe for chromedriver's whole life (a closed pipe
        // would end it with SIGPIPE).
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "chromedriver did not start within {timeout:?}; it said:\n{}",
                seen.join("\n")
            ),
        }
    }
}
