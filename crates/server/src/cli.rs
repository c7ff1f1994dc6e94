//! The `dutycard` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ConfigSources, LogFormat, Settings};
use crate::startup::Application;
use crate::telemetry;

mod webhooks;

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
        /// A Backstage app-config.yaml whose `pagerDuty:` block supplies the
        /// PagerDuty credentials and hosts (sets backstage.app_config_file).
        #[arg(long, value_name = "FILE")]
        backstage_config: Option<PathBuf>,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig {
        /// TOML file overriding config/default.toml (env DUTYCARD_* overrides both).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A Backstage app-config.yaml whose `pagerDuty:` block supplies the
        /// PagerDuty credentials and hosts (sets backstage.app_config_file).
        #[arg(long, value_name = "FILE")]
        backstage_config: Option<PathBuf>,
    },
    /// Run the server against an embedded PagerDuty simulator (auth off).
    ///
    /// Settings: config/demo.toml over the defaults, then `--config FILE`,
    /// then `DUTYCARD_*` variables, then these flags; the PagerDuty
    /// connection is always the simulator's.
    Demo {
        /// Port of the dutycard server (default server.port: 7007).
        #[arg(long)]
        port: Option<u16>,
        /// TOML file over config/demo.toml (env DUTYCARD_* overrides it).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seed of the simulated account (same seed, same account).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Number of simulated services.
        #[arg(long, default_value_t = 50)]
        services: usize,
    },
    /// Manage the PagerDuty v3 webhook subscription that makes cards live.
    Webhooks {
        /// TOML file overriding config/default.toml (env DUTYCARD_* overrides both).
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        /// PagerDuty account id (`[pagerduty.accounts.<id>]`); the default account when absent.
        #[arg(long, value_name = "ID", global = true)]
        account: Option<String>,
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Run only the PagerDuty simulator (same flags as `dutycard-sim`).
    Sim(sim::cli::SimArgs),
    /// Print the OpenAPI document.
    Openapi,
}

/// Run a parsed command line; the exit code says how it went.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve {
            config,
            log_format,
            backstage_config,
        } => serve(config, backstage_config, log_format).await,
        Command::CheckConfig {
            config,
            backstage_config,
        } => check_config(config, backstage_config),
        Command::Demo {
            port,
            config,
            seed,
            services,
        } => demo(port, config, seed, services).await,
        Command::Webhooks {
            config,
            account,
            command,
        } => match load(config, None) {
            Ok(settings) => webhooks::run(settings, account.as_deref(), command).await,
            Err(code) => code,
        },
        Command::Sim(args) => match sim::cli::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dutycard sim: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Openapi => {
            print!("{}", crate::openapi::spec_json());
            ExitCode::SUCCESS
        }
    }
}

fn load(config: Option<PathBuf>, backstage_config: Option<PathBuf>) -> Result<Settings, ExitCode> {
    let mut sources = ConfigSources::from_file(config);
    if let Some(path) = backstage_config {
        sources
            .toml
            .push(crate::config::app_config::settings_layer(&path));
    }
    Settings::load(&sources).map_err(|e| {
        eprintln!("dutycard: {e}");
        ExitCode::from(2)
    })
}

fn check_config(config: Option<PathBuf>, backstage_config: Option<PathBuf>) -> ExitCode {
    match load(config, backstage_config) {
        Ok(settings) => {
            println!("# configuration is valid; effective values (secrets redacted):");
            print!("{}", settings.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

async fn serve(
    config: Option<PathBuf>,
    backstage_config: Option<PathBuf>,
    log_format: Option<LogFormat>,
) -> ExitCode {
    let settings = match load(config, backstage_config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // A second init (never in the binary) only means logs already flow.
    // The guard flushes the queued lines once the server has stopped.
    let _log = telemetry::init(log_format.unwrap_or(settings.server.log_format)).ok();
    serve_settings(settings).await
}

async fn demo(port: Option<u16>, config: Option<PathBuf>, seed: u64, services: usize) -> ExitCode {
    let _log = telemetry::init(LogFormat::Pretty).ok();
    let sim = match sim::Sim::start(sim::SimConfig {
        seed,
        services,
        port: 0,
        ..sim::SimConfig::default()
    })
    .await
    {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("dutycard demo: cannot start the simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = Settings::load_demo(&ConfigSources::from_file(config), |s| {
        if let Some(port) = port {
            s.server.port = port;
        }
        // One simulated account, whatever the sources said about PagerDuty.
        s.pagerduty.accounts.clear();
        s.pagerduty.connection = crate::config::ConnectionSettings {
            api_base_url: Some(sim.base_url()),
            events_base_url: Some(sim.events_base_url()),
            oauth_token_url: Some(sim.oauth_token_url()),
            api_token: Some(sim.api_token().into()),
            ..Default::default()
        };
    });
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("dutycard demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = settings.server.host.clone();
    let webhooks_enabled = settings.webhooks.enabled;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("dutycard demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = format!("http://{host}:{}", app.port());
    // Live cards: the simulator delivers signed webhooks to us.
    let client = app.default_client();
    // With the intake off (webhooks.enabled = false) a subscription would
    // only collect refused deliveries: none is made.
    let subscribed = if webhooks_enabled {
        webhooks::subscribe(&client, &format!("{base}/v1/webhooks/pagerduty"))
            .await
            .map(Some)
    } else {
        Ok(None)
    };
    let live = match subscribed {
        Ok(None) => None,
        Ok(Some(sub)) => match sub.delivery_method.secret {
            Some(secret) => {
                app.webhooks().add_secret(&app.default_account_id(), secret);
                Some(sub.id)
            }
            None => None,
        },
        Err(e) => {
            eprintln!(
                "dutycard demo: cards stay TTL-refreshed, the webhook subscription failed: {e}"
            );
            None
        }
    };
    print!("{}", demo_banner(&base, &sim, seed, live.as_deref()));
    let result = app.run_until_stopped().await;
    sim.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dutycard demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What to open: the card page, the API explorer and a few cards of real simulated services.
fn demo_banner(base: &str, sim: &sim::SimHandle, seed: u64, live: Option<&str>) -> String {
    use std::fmt::Write as _;
    let account = sim.account();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ndutycard demo: {} simulated PagerDuty services (seed {seed}), auth off\n",
        account.services.len()
    );
    // The cards to look at first; the rest is for API users.
    let _ = writeln!(out, "  cards (web)    {base}/ui/");
    let _ = writeln!(out, "  API explorer   {base}/docs/");
    let _ = writeln!(out, "  OpenAPI        {base}/openapi.json");
    let _ = writeln!(out, "  readiness      {base}/readyz");
    let _ = writeln!(out, "  metrics        {base}/metrics");
    let _ = writeln!(out, "\n  cards:");
    for service in account.services.iter().take(3) {
        let _ = writeln!(
            out,
            "    {base}/v1/cards/{}   ({})",
            service.id, service.name
        );
    }
    if let Some(service) = account.services.get(3) {
        let _ = writeln!(
            out,
            "    {base}/v1/cards/{}?include=standards,metrics&incidents=10",
            service.id
        );
    }
    if let Some((service, key)) = account.services.iter().find_map(|s| {
        s.integrations
            .iter()
            .find_map(|i| i.integration_key.as_deref())
            .map(|k| (s, k))
    }) {
        // A simulated key: printing it is harmless (real keys are secrets).
        let _ = writeln!(
            out,
            "    {base}/v1/cards?integration_key={key}   ({})",
            service.name
        );
    }
    let _ = writeln!(
        out,
        "\n  batch:  curl -s -X POST {base}/v1/cards/batch -H 'content-type: application/json' -d '{{\"service_ids\":[\"{}\"]}}'",
        account
            .services
            .first()
            .map(|s| s.id.as_str())
            .unwrap_or("PABC123")
    );
    if let Some(service) = account.services.first() {
        // The drop-in routes of PagerDuty's Backstage backend (default prefix).
        let _ = writeln!(
            out,
            // `[]` percent-encoded: a shell or curl would glob a bare `[]`.
            "\n  backstage:  {base}/api/pagerduty/services/{id}   {base}/api/pagerduty/services/{id}/incidents\n              {base}/api/pagerduty/oncall-users?escalation_policy_ids%5B%5D={policy}",
            id = service.id,
            policy = service.escalation_policy_id
        );
    }
    if let (Some(subscription), Some(service)) = (live, account.services.first()) {
        let _ = writeln!(
            out,
            "\n  live:  curl -N {base}/v1/cards/{}/stream   (webhook subscription {subscription}: a trigger shows at once)",
            service.id
        );
    }
    let _ = writeln!(
        out,
        "\n  simulated PagerDuty at {} (admin: {}/__sim/stats)\n  Ctrl-C stops both.\n",
        sim.base_url(),
        sim.base_url()
    );
    out
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
