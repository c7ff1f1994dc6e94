//! The `dutycard-sim` command line (also used by `dutycard sim`).

use crate::{FaultSpec, Faults, Sim, SimConfig, SimToken};

/// Flags of `dutycard-sim` / `dutycard sim`. `Debug` redacts `api_token`.
#[derive(Clone, clap::Args)]
pub struct SimArgs {
    /// TCP port (0 = any free port).
    #[arg(long, default_value_t = 7100)]
    pub port: u16,
    /// Host to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Seed of the generated account.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of services to generate.
    #[arg(long, default_value_t = 50)]
    pub services: usize,
    /// Added latency on every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency (0..=N ms) on every response.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// REST requests per minute per token (e.g. 960); off when absent.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// The only accepted REST API token (all scopes); when absent any
    /// non-empty token is accepted.
    #[arg(long)]
    pub api_token: Option<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

impl std::fmt::Debug for SimArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimArgs")
            .field("port", &self.port)
            .field("host", &self.host)
            .field("seed", &self.seed)
            .field("services", &self.services)
            .field("latency_ms", &self.latency_ms)
            .field("jitter_ms", &self.jitter_ms)
            .field("rate_limit", &self.rate_limit)
            .field("api_token", &self.api_token.as_ref().map(|_| "[redacted]"))
            .field("workers", &self.workers)
            .finish()
    }
}

impl SimArgs {
    /// The simulator configuration these flags describe.
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            services: self.services,
            port: self.port,
            host: self.host.clone(),
            workers: self.workers,
            api_tokens: self.api_token.iter().map(SimToken::full).collect(),
            faults: Faults {
                global: FaultSpec {
                    latency_ms: self.latency_ms,
                    jitter_ms: self.jitter_ms,
                    ..FaultSpec::default()
                },
                per_route: Vec::new(),
                rate_limit_per_minute: None,
            },
            rate_limit_per_minute: self.rate_limit,
            ..SimConfig::default()
        }
    }
}

/// Starts the simulator, prints its URLs and credentials, and serves until Ctrl-C.
pub async fn run(args: SimArgs) -> std::io::Result<()> {
    let sim = Sim::start(args.to_config()).await?;
    let base = sim.base_url();
    let (client_id, client_secret) = sim.oauth_client();
    let any = if args.api_token.is_none() {
        " (any non-empty token works)"
    } else {
        ""
    };
    println!(
        "dutycard-sim: fake PagerDuty with {} services (seed {})",
        args.services, args.seed
    );
    println!("  REST API     {base}");
    println!("  Events API   {}", sim.events_base_url());
    println!(
        "  OAuth token  {}  (client {client_id} / {client_secret})",
        sim.oauth_token_url()
    );
    println!("  API token    {}{any}", sim.api_token());
    println!(
        "  Admin        {base}/__sim/stats  {base}/__sim/faults  {base}/__sim/account  {base}/__sim/webhooks"
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }

    #[test]
    fn defaults_and_flags_map_to_the_config() {
        let defaults = Cli::parse_from(["dutycard-sim"]).args.to_config();
        assert_eq!(
            (defaults.port, defaults.seed, defaults.services),
            (7100, 42, 50)
        );
        assert!(defaults.api_tokens.is_empty());
        assert_eq!(defaults.rate_limit_per_minute, None);

        let cli = Cli::parse_from([
            "dutycard-sim",
            "--port",
            "0",
            "--seed",
            "7",
            "--services",
            "200",
            "--latency-ms",
            "20",
            "--jitter-ms",
            "5",
            "--rate-limit",
            "960",
            "--api-token",
            "abc",
        ]);
        let c = cli.args.to_config();
        assert_eq!((c.port, c.seed, c.services), (0, 7, 200));
        assert_eq!(c.faults.global.latency_ms, 20);
        assert_eq!(c.faults.global.jitter_ms, 5);
        assert_eq!(c.rate_limit_per_minute, Some(960));
        assert_eq!(c.api_tokens.len(), 1);
        assert_eq!(c.api_tokens[0].token, "abc");
        assert!(c.api_tokens[0].scopes.is_none());
    }

    #[test]
    fn debug_redacts_the_api_token() {
        let cli = Cli::parse_from(["dutycard-sim", "--api-token", "s3cr3t-token", "--seed", "9"]);
        let debug = format!("{:?}", cli.args);
        assert!(!debug.contains("s3cr3t-token"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(debug.contains("seed: 9"), "{debug}");
        let none = format!("{:?}", Cli::parse_from(["dutycard-sim"]).args);
        assert!(none.contains("api_token: None"), "{none}");
    }

    #[test]
    fn bad_numbers_are_rejected_naming_the_flag() {
        let err = Cli::try_parse_from(["dutycard-sim", "--services", "many"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--services"), "{err}");
    }
}
