//! The `dutycard` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ConfigSources, LogFormat, Settings};
use crate::startup::Application;
use crate::telemetry;

/// PagerDuty service cards for developer portals.
#[derive(Debug, Parser)]
#[command(name = "dutycard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve {
        /// TOML file overriding config/default.toml (env DUTYCARD_* overrides both).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log line format (overrides server.log_format).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig {
        /// TOML file overriding config/default.toml (env DUTYCARD_* overrides both).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
}

/// Run a parsed command line; the exit code says how it went.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config, log_format } => serve(config, log_format).await,
        Command::CheckConfig { config } => check_config(config),
        Command::Openapi => {
            print!("{}", crate::openapi::spec_json());
            ExitCode::SUCCESS
        }
    }
}

fn load(config: Option<PathBuf>) -> Result<Settings, ExitCode> {
    Settings::load(&ConfigSources::from_file(config)).map_err(|e| {
        eprintln!("dutycard: {e}");
        ExitCode::from(2)
    })
}

fn check_config(config: Option<PathBuf>) -> ExitCode {
    match load(config) {
        Ok(settings) => {
            println!("# configuration is valid; effective values (secrets redacted):");
            print!("{}", settings.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

async fn serve(config: Option<PathBuf>, log_format: Option<LogFormat>) -> ExitCode {
    let settings = match load(config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // A second init (never in the binary) only means logs already flow.
    let _ = telemetry::init(log_format.unwrap_or(settings.server.log_format));
    serve_settings(settings).await
}

async fn serve_settings(settings: Settings) -> ExitCode {
    let host = settings.server.host.clone();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "startup failed");
            eprintln!("dutycard: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %format!("http://{host}:{}", app.port()), "listening");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
