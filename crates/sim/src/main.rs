//! `dutycard-sim`: run the PagerDuty simulator.

use clap::Parser;

/// A faithful fake PagerDuty (REST subset, OAuth, Events v2) for tests, benchmarks and the demo.
#[derive(Debug, Parser)]
#[command(name = "dutycard-sim", version, about)]
struct Cli {
    #[command(flatten)]
    args: sim::cli::SimArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    sim::cli::run(Cli::parse().args).await
}
