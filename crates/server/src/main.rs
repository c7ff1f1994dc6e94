use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    dutycard_server::cli::run(dutycard_server::cli::Cli::parse()).await
}
