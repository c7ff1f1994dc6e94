//! The processes under test: the simulator (in this process, on actix's own
//! worker threads) and the dutycard server (a child process, so that its
//! memory and CPU can be read from `/proc/<pid>`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sim::{FaultSpec, Faults, Sim, SimConfig, SimHandle};

/// How to start the server: `program [prefix_args...] serve --config FILE`.
#[derive(Debug, Clone)]
pub struct ServerBin {
    /// Executable.
    pub program: PathBuf,
    /// Arguments placed before `serve` (`["__server"]` when the bench binary
    /// runs the server code itself).
    pub prefix_args: Vec<String>,
}

impl ServerBin {
    /// The `dutycard` binary at `path`.
    pub fn dutycard(path: PathBuf) -> Self {
        Self {
            program: path,
            prefix_args: Vec::new(),
        }
    }

    /// A bench binary that serves through its hidden `__server` subcommand
    /// (the same `dutycard_server::cli::run`, linked into the bench).
    pub fn self_hosted(bench_exe: PathBuf) -> Self {
        Self {
            program: bench_exe,
            prefix_args: vec!["__server".to_owned()],
        }
    }

    /// `explicit` if given (it must exist); else this executable's built-in
    /// copy of the server (`__server`), which is always built from the same
    /// sources and with the same profile as the harness (a `dutycard` lying
    /// next to it may be stale).
    pub fn locate(explicit: Option<PathBuf>) -> Result<Self, String> {
        if let Some(path) = explicit {
            if path.is_file() {
                return Ok(Self::dutycard(path));
            }
            return Err(format!(
                "--server-bin: {} is not a file (build it with `cargo build --release -p dutycard-server`)",
                path.display()
            ));
        }
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        Ok(Self::self_hosted(exe))
    }

    /// For reports: which binary ran the server.
    pub fn describe(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.prefix_args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// What the server's config file says besides the simulator's URLs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `server.workers`.
    pub workers: usize,
    /// `RUST_LOG` of the server process (its log goes to a file).
    pub log_level: String,
    /// Raise the trigger route's own per-caller and per-routing-key limits
    /// (the `trigger` scenario measures latency, not our limiter).
    pub trigger_limits_off: bool,
    /// `pagerduty.rate_limit_per_minute` (client-side token bucket); `None`
    /// keeps the default (900).
    pub client_rate_limit_per_minute: Option<u32>,
    /// Keep the server's log file (its path is printed) instead of deleting it.
    pub keep_log: bool,
    /// `[cache]` keys to override, e.g. `("incidents_ttl_secs", 2)`.
    pub cache: Vec<(String, u64)>,
    /// The port, when the scenario must know it before the start (a webhook
    /// subscription's URL); else a free one.
    pub port: Option<u16>,
    /// More TOML appended to the config (e.g. `[webhooks]` secrets).
    pub extra_toml: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            log_level: "info".to_owned(),
            trigger_limits_off: false,
            client_rate_limit_per_minute: None,
            keep_log: false,
            cache: Vec::new(),
            port: None,
            extra_toml: String::new(),
        }
    }
}

/// The server's TOML config (everything else keeps `config/default.toml`'s values).
pub fn server_config_toml(port: u16, sim: &SimHandle, opts: &ServerOptions) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "[server]");
    let _ = writeln!(s, "host = \"127.0.0.1\"");
    let _ = writeln!(s, "port = {port}");
    let _ = writeln!(s, "workers = {}", opts.workers.max(1));
    let _ = writeln!(s, "log_format = \"json\"");
    let _ = writeln!(s, "\n[server.auth]\nmode = \"none\"");
    let _ = writeln!(s, "\n[pagerduty]");
    let _ = writeln!(s, "api_base_url = {:?}", sim.base_url());
    let _ = writeln!(s, "events_base_url = {:?}", sim.events_base_url());
    let _ = writeln!(s, "api_token = {:?}", sim.api_token());
    if let Some(n) = opts.client_rate_limit_per_minute {
        let _ = writeln!(s, "rate_limit_per_minute = {n}");
    }
    if !opts.cache.is_empty() {
        let _ = writeln!(s, "\n[cache]");
        for (key, value) in &opts.cache {
            let _ = writeln!(s, "{key} = {value}");
        }
    }
    if opts.trigger_limits_off {
        let _ = writeln!(s, "\n[trigger]");
        let _ = writeln!(s, "allow = \"any\"");
        let _ = writeln!(s, "per_caller_per_minute = 1000000");
        let _ = writeln!(s, "per_routing_key_per_minute = 1000000");
    }
    // The store in memory: no file left behind, no disk in the numbers.
    let _ = writeln!(s, "\n[store]\nurl = \"sqlite::memory:\"");
    s.push_str(&opts.extra_toml);
    s
}

/// A port that was free a moment ago (bind `127.0.0.1:0`, read, release).
/// The server cannot report a port-0 choice back to us except through its
/// log, so we pick one; the small window in which another process could
/// take it is covered by the health wait failing loudly.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A running server child process. Killed (and its files removed) on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    config_path: PathBuf,
    log_path: PathBuf,
    keep_log: bool,
}

impl ServerProcess {
    /// Writes the config, starts the child and waits (≤ 30 s) for `/healthz`.
    pub async fn start(
        bin: &ServerBin,
        sim: &SimHandle,
        opts: &ServerOptions,
        http: &reqwest::Client,
    ) -> Result<Self, String> {
        let port = match opts.port {
            Some(port) => port,
            None => free_port().map_err(|e| format!("picking a port: {e}"))?,
        };
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let stem = format!(
            "dutycard-bench-{}-{port}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir();
        let config_path = dir.join(format!("{stem}.toml"));
        let log_path = dir.join(format!("{stem}.log"));
        std::fs::write(&config_path, server_config_toml(port, sim, opts))
            .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("log file handle: {e}"))?;
        let mut command = Command::new(&bin.program);
        // The server reads DUTYCARD_* variables over its config file: none
        // of ours may leak into the measured configuration.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DUTYCARD_") {
                command.env_remove(key);
            }
        }
        let child = command
            .args(&bin.prefix_args)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", &opts.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.describe()))?;
        let mut server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            config_path,
            log_path,
            keep_log: opts.keep_log,
        };
        server.wait_healthy(http, Duration::from_secs(30)).await?;
        Ok(server)
    }

    async fn wait_healthy(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let url = format!("{}/healthz", self.base_url);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the server exited at start-up ({status}); its log:\n{}",
                    self.log_tail()
                ));
            }
            let probe = http.get(&url).timeout(Duration::from_secs(1)).send().await;
            if matches!(&probe, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the server did not answer {url} within {within:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size in MiB (`VmHWM` of `/proc/<pid>/status`).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        proc_status_kib(self.pid(), "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    /// User + system CPU seconds the server has used so far.
    pub fn cpu_secs(&self) -> Option<f64> {
        proc_cpu_secs(format!("/proc/{}/stat", self.pid()))
    }

    /// Kills the child and removes its config and log files.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
        if self.keep_log {
            eprintln!(
                "dutycard-bench: server log kept: {}",
                self.log_path.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// A `kB` line of `/proc/<pid>/status`.
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// utime + stime of a `/proc/.../stat` file, in seconds (USER_HZ = 100 on Linux).
pub fn proc_cpu_secs(stat_path: impl AsRef<Path>) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds used by this process (load generator + in-process simulator).
pub fn self_cpu_secs() -> Option<f64> {
    proc_cpu_secs("/proc/self/stat")
}

/// The 1-, 5- and 15-minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// How the simulator is started for a scenario.
#[derive(Debug, Clone)]
pub struct SimSetup {
    /// Generated services.
    pub services: usize,
    /// Account seed.
    pub seed: u64,
    /// Mean added latency per call (ms).
    pub latency_ms: u64,
    /// Spread around the mean: uniform in `latency ± jitter/2`.
    pub jitter_ms: u64,
    /// PagerDuty's per-token limit, e.g. `Some(960)`.
    pub rate_limit_per_minute: Option<u32>,
    /// actix workers of the simulator.
    pub workers: usize,
}

impl SimSetup {
    /// The latency part of the simulator's faults: PagerDuty's round trip as
    /// `latency ± jitter/2` (the simulator adds `0..=jitter` on top of a base).
    pub fn latency_spec(&self) -> FaultSpec {
        FaultSpec {
            latency_ms: self.latency_ms.saturating_sub(self.jitter_ms / 2),
            jitter_ms: self.jitter_ms,
            ..FaultSpec::default()
        }
    }

    /// Starts the simulator in this process on port 0.
    ///
    /// In process rather than as a child: its handlers run on actix's own
    /// worker threads (not the load generator's tokio workers), the harness
    /// reads its counters and sets its faults directly (the same data as
    /// `GET /__sim/stats` and `POST /__sim/faults`, without a parsing layer),
    /// and no extra binary has to be built. Its CPU is counted with the
    /// load generator's (`bench_cpu_s`).
    pub async fn start(&self) -> Result<SimHandle, String> {
        Sim::start(SimConfig {
            seed: self.seed,
            services: self.services,
            workers: self.workers.max(1),
            faults: Faults {
                global: self.latency_spec(),
                per_route: Vec::new(),
                rate_limit_per_minute: None,
            },
            rate_limit_per_minute: self.rate_limit_per_minute,
            ..SimConfig::default()
        })
        .await
        .map_err(|e| format!("starting the simulator: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers_parse_this_process() {
        assert!(proc_status_kib(std::process::id(), "VmHWM:").unwrap() > 0);
        assert!(self_cpu_secs().is_some());
        assert!(load_average().is_some());
    }

    #[test]
    fn latency_is_centred_on_the_mean() {
        let setup = SimSetup {
            services: 1,
            seed: 1,
            latency_ms: 80,
            jitter_ms: 20,
            rate_limit_per_minute: None,
            workers: 1,
        };
        let spec = setup.latency_spec();
        assert_eq!((spec.latency_ms, spec.jitter_ms), (70, 20));
    }
}
