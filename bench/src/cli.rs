//! The `dutycard-bench` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::harness::ServerBin;
use crate::report::render_table;
use crate::scenarios::{Bench, Options, Scenario};

/// Load harness for dutycard against the PagerDuty simulator.
#[derive(Debug, Parser)]
#[command(name = "dutycard-bench", version, about)]
pub struct Cli {
    /// Scenarios to run, in order (`all` = every one).
    #[arg(value_enum, required = true)]
    pub scenarios: Vec<Scenario>,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file (the table still goes to stdout).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Evaluate the budgets (issues 8 and 18); exit 1 when one is missed.
    #[arg(long)]
    pub check: bool,
    /// Short phases (2-8 s) for a quick look; numbers are noisier.
    #[arg(long)]
    pub quick: bool,
    /// Seconds per measured phase (overrides the defaults and --quick).
    #[arg(long)]
    pub duration_secs: Option<f64>,
    /// Concurrency of warm-card and ceiling (default: 1 and 64).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// The `dutycard` binary to measure, e.g. `target/release/dutycard`
    /// (default: this binary's built-in copy of the same server code).
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
    /// `server.workers` of the server under test.
    #[arg(long, default_value_t = 2)]
    pub server_workers: usize,
    /// `RUST_LOG` of the server under test.
    #[arg(long, default_value = "info")]
    pub server_log: String,
    /// Keep the server's log files (paths printed on stderr).
    #[arg(long)]
    pub keep_server_logs: bool,
    /// Simulated PagerDuty latency per call (mean, ms).
    #[arg(long, default_value_t = 80)]
    pub latency_ms: u64,
    /// Spread of that latency (uniform in mean ± jitter/2, ms).
    #[arg(long, default_value_t = 20)]
    pub jitter_ms: u64,
    /// Services in the simulated account (portal, cold-start, degraded).
    #[arg(long, default_value_t = 500)]
    pub services: usize,
    /// Portal page views per second at the lower rate (the second run doubles it).
    #[arg(long, default_value_t = 16.0)]
    pub portal_rate: f64,
    /// Portal users.
    #[arg(long, default_value_t = 64)]
    pub users: usize,
    /// Cards in the cold-start burst.
    #[arg(long, default_value_t = 200)]
    pub cold_cards: usize,
    /// Cap on requests per phase.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// Seed of the simulated account and of the load's random picks.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Cli {
    /// The scenario options these flags describe.
    pub fn options(&self) -> Options {
        let mut o = if self.quick {
            Options::quick()
        } else {
            Options::default()
        };
        if let Some(secs) = self.duration_secs {
            o.set_duration(secs);
            o.burst_every_secs = o.burst_every_secs.min((secs / 3.0).max(1.0));
        }
        if let Some(c) = self.concurrency {
            o.warm_concurrency = vec![c];
        }
        o.server_workers = self.server_workers;
        o.server_log_level = self.server_log.clone();
        o.latency_ms = self.latency_ms;
        o.jitter_ms = self.jitter_ms;
        o.services = self.services;
        o.portal_rate = self.portal_rate;
        o.users = self.users;
        o.cold_cards = self.cold_cards;
        o.max_requests = self.max_requests;
        o.seed = self.seed;
        o.keep_server_logs = self.keep_server_logs;
        o
    }
}

/// Runs the command line; exit 1 when `--check` finds a missed budget or a
/// scenario failed, 2 on bad flags.
pub async fn run(cli: Cli) -> ExitCode {
    if let Some(bad) = [
        (
            "--duration-secs",
            cli.duration_secs
                .is_some_and(|d| !(d > 0.0 && d.is_finite())),
        ),
        ("--concurrency", cli.concurrency == Some(0)),
        (
            "--portal-rate",
            !(cli.portal_rate > 0.0 && cli.portal_rate.is_finite()),
        ),
        ("--users", cli.users == 0),
        ("--services", cli.services == 0),
        ("--cold-cards", cli.cold_cards == 0),
        ("--server-workers", cli.server_workers == 0),
    ]
    .iter()
    .find(|(_, bad)| *bad)
    {
        eprintln!("dutycard-bench: {} must be a positive number", bad.0);
        return ExitCode::from(2);
    }
    let server_bin = match ServerBin::locate(cli.server_bin.clone()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dutycard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("dutycard-bench: server binary: {}", server_bin.describe());
    let bench = match Bench::new(cli.options(), server_bin) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dutycard-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let report = bench.run(&cli.scenarios).await;
    let json = match serde_json::to_string_pretty(&report) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dutycard-bench: serializing the report: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.json_out
        && let Err(e) = std::fs::write(path, &json)
    {
        eprintln!("dutycard-bench: --json-out {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if cli.json {
        println!("{json}");
    } else {
        print!("{}", render_table(&report));
    }
    let failed = report
        .unavailable
        .iter()
        .any(|(_, why)| why.starts_with("failed"));
    let missed = cli.check && report.budgets.iter().any(|b| !b.met);
    if failed || missed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
