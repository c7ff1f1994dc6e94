//! Configuration loading and validation through `Settings::load`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use dutycard_server::config::{AuthMode, ConfigError, ConfigSources, LogFormat, Settings};
use secrecy::ExposeSecret;

use crate::helpers::{load, settings};

fn keys(err: &ConfigError) -> BTreeSet<String> {
    err.keys().into_iter().map(str::to_owned).collect()
}

#[test]
fn defaults_alone_name_the_missing_auth_mode_and_credentials() {
    let err = Settings::load(&ConfigSources::isolated("", HashMap::new())).unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from(["server.auth.mode".into(), "pagerduty.api_token".into()]),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("must be set explicitly"), "{text}");
}

#[test]
fn the_catalog_is_configured_under_backstage_and_the_old_table_is_refused() {
    let ok = settings(
        "[backstage]\ncatalog_url = \"https://backstage.example.com/api/catalog\"\ncatalog_token = \"catalog-secret\"\n",
        &[("DUTYCARD_BACKSTAGE__CATALOG_TIMEOUT_MS", "1500")],
    );
    let catalog = &ok.backstage.catalog;
    assert_eq!(
        catalog.url.as_deref(),
        Some("https://backstage.example.com/api/catalog")
    );
    assert_eq!(catalog.timeout_ms, 1500);
    assert_eq!(
        catalog.token.as_ref().map(|t| t.expose_secret().to_owned()),
        Some("catalog-secret".to_owned())
    );
    let rendered = ok.to_redacted_toml();
    assert!(!rendered.contains("catalog-secret"), "{rendered}");
    assert!(rendered.contains("catalog_url"), "{rendered}");
    // Default: no catalog, 3 s.
    assert_eq!(settings("", &[]).backstage.catalog.timeout_ms, 3000);

    for (toml, env) in [
        (
            "[catalog]\nurl = \"https://backstage.example.com/api/catalog\"\n",
            vec![],
        ),
        (
            "",
            vec![(
                "DUTYCARD_CATALOG__URL",
                "https://backstage.example.com/api/catalog",
            )],
        ),
    ] {
        let err = load(toml, &env).unwrap_err();
        assert_eq!(keys(&err), BTreeSet::from(["catalog".to_owned()]), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("backstage.catalog_url") && text.contains("backstage.catalog_token"),
            "{text}"
        );
    }
    let err = load(
        "[backstage]\ncatalog_url = \"ftp://x\"\ncatalog_timeout_ms = 0\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from([
            "backstage.catalog_url".to_owned(),
            "backstage.catalog_timeout_ms".to_owned()
        ]),
        "{err}"
    );
}

#[test]
fn every_invalid_value_is_reported_with_its_key() {
    let err = load(
        r#"
        [server]
        workers = 0
        cors_allowed_origins = ["https://portal.example/path"]
        [pagerduty]
        api_base_url = "ftp://example.com"
        events_base_url = "not a url"
        max_attempts = 0
        [pagerduty.oauth]
        client_id = "id"
        [cache]
        incidents_ttl_secs = 0
        batch_max_size = 500
        [trigger]
        client_name = ""
        "#,
        &[],
    )
    .unwrap_err();
    let expected: BTreeSet<String> = [
        "server.workers",
        "server.cors_allowed_origins[0]",
        "pagerduty.api_base_url",
        "pagerduty.events_base_url",
        "pagerduty.max_attempts",
        "pagerduty.oauth",
        "cache.incidents_ttl_secs",
        "cache.batch_max_size",
        "trigger.client_name",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys(&err), expected, "{err}");
    let text = err.to_string();
    assert!(text.contains("TTL of zero"), "{text}");
    assert!(text.contains("both an API token and OAuth"), "{text}");
}

#[test]
fn type_errors_and_unknown_values_name_the_key() {
    let err = load("[pagerduty]\nregion = \"mars\"", &[]).unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from(["pagerduty.region".into()]),
        "{err}"
    );
    assert!(err.to_string().contains("expected `us` or `eu`"), "{err}");

    let err = load("", &[("DUTYCARD_SERVER__PORT", "eighty")]).unwrap_err();
    assert!(err.to_string().contains("server.port"), "{err}");
}

#[test]
fn unknown_keys_are_rejected_not_ignored() {
    let err = load("[server]\nprot = 9000", &[]).unwrap_err();
    assert!(err.to_string().contains("prot"), "{err}");
}

/// Type errors in several sections, an unknown key and a bad value are
/// reported together, each with its environment variable and its source.
#[test]
fn every_problem_is_reported_at_once_with_its_variable_and_source() {
    let err = load(
        "[server]\nprot = 9000\n",
        &[
            ("DUTYCARD_SERVER__PORT", "eighty"),
            ("DUTYCARD_CACHE__ONCALL_TTL_SECS", "soon"),
            ("DUTYCARD_TRIGGER__DEFAULT_SEVERITY", "fatal"),
        ],
    )
    .unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from([
            "server.port".into(),
            "cache.oncall_ttl_secs".into(),
            "trigger.default_severity".into(),
        ]),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("DUTYCARD_SERVER__PORT"), "{text}");
    assert!(text.contains("set in the environment"), "{text}");
    assert!(
        text.contains("`critical`, `error`, `warning`"),
        "valid values: {text}"
    );
    assert!(!text.contains("eighty"), "values are not quoted: {text}");

    // Types right: the unknown key and the invalid value together.
    let err = load("[server]\nprot = 9000\nworkers = 0\n", &[]).unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from(["server.prot".into(), "server.workers".into()]),
        "{err}"
    );
}

#[test]
fn environment_overrides_files_and_defaults() {
    let s = settings(
        "",
        &[
            ("DUTYCARD_SERVER__PORT", "9123"),
            ("DUTYCARD_SERVER__LOG_FORMAT", "json"),
            ("DUTYCARD_SERVER__AUTH__MODE", "none"),
            (
                "DUTYCARD_SERVER__CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443",
            ),
            ("DUTYCARD_PAGERDUTY__API_BASE_URL", "http://127.0.0.1:7100"),
            ("DUTYCARD_PAGERDUTY__API_TOKEN", "from-env"),
            ("DUTYCARD_CACHE__ONCALL_TTL_SECS", "15"),
        ],
    );
    assert_eq!(s.server.port, 9123);
    assert_eq!(s.server.log_format, LogFormat::Json);
    assert_eq!(s.server.auth.mode, Some(AuthMode::None));
    assert_eq!(
        s.server.cors_allowed_origins,
        vec!["https://a.example", "https://b.example:8443"]
    );
    assert_eq!(
        s.pagerduty.connection.api_base_url.as_deref(),
        Some("http://127.0.0.1:7100")
    );
    assert_eq!(
        s.pagerduty
            .connection
            .api_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "from-env"
    );
    assert_eq!(s.cache.oncall_ttl, Duration::from_secs(15));
    // Untouched keys keep the documented defaults.
    assert_eq!(s.cache.incidents_ttl, Duration::from_secs(20));
    assert_eq!(s.server.request_deadline_ms, 10_000);
}

#[test]
fn default_toml_documents_every_key_it_sets() {
    // Every `key = value` line of default.toml is preceded by a comment.
    let text = dutycard_server::config::DEFAULT_TOML;
    let mut previous = "";
    for line in text.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with('#') && !line.starts_with('[') {
            assert!(
                previous.starts_with('#'),
                "undocumented key in config/default.toml: {line}"
            );
        }
        previous = line;
    }
}

fn temp_file(name: &str, content: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "dutycard-test-{}-{}-{name}",
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
fn secrets_come_from_files_and_are_never_printed() {
    let token_file = temp_file("token", "file-secret-token-123\n");
    let tokens_file = temp_file(
        "tokens.toml",
        "[[tokens]]\nname = \"portal\"\ntoken = \"portal-secret-token-0123456789\"\n",
    );
    let extra = format!(
        "[server.auth]\nmode = \"static\"\ntokens_file = {:?}\n[pagerduty]\napi_token_file = {:?}\n",
        tokens_file.display().to_string(),
        token_file.display().to_string()
    );
    // BASE_TOML sets api_token; a file as well is a conflict, so start clean.
    let s = Settings::load(&ConfigSources::isolated(
        format!("[server]\nport = 0\n{extra}"),
        HashMap::new(),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.pagerduty
            .connection
            .api_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "file-secret-token-123"
    );
    assert_eq!(s.server.auth.file_tokens[0].name, "portal");

    let printed = format!("{}\n{s:?}", s.to_redacted_toml());
    for secret in ["file-secret-token-123", "portal-secret-token-0123456789"] {
        assert!(!printed.contains(secret), "secret leaked:\n{printed}");
    }
    // Secrets read from files are shown as their files only.
    assert!(printed.contains("api_token_file = "), "{printed}");
    assert!(printed.contains("tokens_file = "), "{printed}");

    let _ = std::fs::remove_file(token_file);
    let _ = std::fs::remove_file(tokens_file);
}

#[test]
fn token_and_token_file_together_are_a_conflict() {
    let file = temp_file("token2", "x");
    let err = load(
        &format!(
            "[pagerduty]\napi_token_file = {:?}",
            file.display().to_string()
        ),
        &[],
    )
    .unwrap_err();
    assert!(keys(&err).contains("pagerduty.api_token_file"), "{err}");
    let _ = std::fs::remove_file(file);
}

#[test]
fn unreadable_secret_files_are_named() {
    let err = Settings::load(&ConfigSources::isolated(
        "[server.auth]\nmode = \"none\"\n[pagerduty]\napi_token_file = \"/nonexistent/dutycard/token\"",
        HashMap::new(),
    ))
    .unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from(["pagerduty.api_token_file".into()]),
        "{err}"
    );
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn static_auth_needs_long_uniquely_named_tokens() {
    let err = load(
        r#"
        [server.auth]
        mode = "static"
        [[server.auth.tokens]]
        name = "a"
        token = "short"
        [[server.auth.tokens]]
        name = "a"
        token = "long-enough-token-0123456789"
        "#,
        &[],
    )
    .unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from([
            "server.auth.tokens[0].token".into(),
            "server.auth.tokens[1].name".into()
        ]),
        "{err}"
    );
    let err = load("[server.auth]\nmode = \"static\"", &[]).unwrap_err();
    assert_eq!(keys(&err), BTreeSet::from(["server.auth.tokens".into()]));
}

#[test]
fn oauth_needs_id_secret_and_subdomain_and_defaults_the_scopes() {
    let err = Settings::load(&ConfigSources::isolated(
        "[server.auth]\nmode = \"none\"\n[pagerduty.oauth]\nsubdomain = \"bad domain\"",
        HashMap::new(),
    ))
    .unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from([
            "pagerduty.oauth.client_id".into(),
            "pagerduty.oauth.client_secret".into(),
            "pagerduty.oauth.subdomain".into(),
        ]),
        "{err}"
    );
    let ok = Settings::load(&ConfigSources::isolated(
        "[server.auth]\nmode = \"none\"\n[pagerduty.oauth]\nclient_id = \"id\"\nclient_secret = \"s\"\nsubdomain = \"acme\"\nscopes = \"services.read,incidents.read\"",
        HashMap::new(),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ok.pagerduty.connection.oauth.unwrap().scopes,
        vec!["services.read", "incidents.read"]
    );
    // No scopes: the read scopes the cards, the Backstage routes and
    // /readyz need, as the Node plugin requests them.
    let ok = Settings::load(&ConfigSources::isolated(
        "[server.auth]\nmode = \"none\"\n[pagerduty.oauth]\nclient_id = \"id\"\nclient_secret = \"s\"\nsubdomain = \"acme\"",
        HashMap::new(),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let scopes = ok.pagerduty.connection.oauth.unwrap().scopes;
    assert_eq!(scopes, dutycard_server::config::DEFAULT_OAUTH_SCOPES);
    for needed in ["services.read", "abilities.read", "analytics.read"] {
        assert!(scopes.iter().any(|s| s == needed), "{needed}");
    }
}

#[test]
fn metrics_auth_needs_an_auth_mode() {
    let err = load("[server.auth]\nmetrics_require_auth = true", &[]).unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from(["server.auth.metrics_require_auth".into()])
    );
}

#[test]
fn huge_deadlines_are_validation_errors_not_overflows() {
    let max = u64::MAX.to_string();
    let err = load(
        "",
        &[
            ("DUTYCARD_SERVER__REQUEST_DEADLINE_MS", max.as_str()),
            ("DUTYCARD_TRIGGER__DEADLINE_MS", max.as_str()),
        ],
    )
    .unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from([
            "server.request_deadline_ms".into(),
            "trigger.deadline_ms".into()
        ]),
        "{err}"
    );
    assert!(err.to_string().contains("between 1 and 600000"), "{err}");
}

#[test]
fn the_trigger_deadline_must_fit_in_the_request_deadline() {
    let err = load("[server]\nrequest_deadline_ms = 2000\n", &[]).unwrap_err();
    assert_eq!(
        keys(&err),
        BTreeSet::from(["trigger.deadline_ms".into()]),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("server.request_deadline_ms") && text.contains("8000"),
        "{text}"
    );
    let s = settings(
        "[server]\nrequest_deadline_ms = 2000\n[trigger]\ndeadline_ms = 2000\n",
        &[],
    );
    assert_eq!(s.cache.section_timeout, Duration::from_millis(1600));
}

#[test]
fn load_errors_never_quote_the_values() {
    for (var, value) in [
        ("DUTYCARD_SERVER__AUTH__TOKENS", "my-secret-static-token"),
        ("DUTYCARD_PAGERDUTY__OAUTH", "my-secret-oauth-value"),
        ("DUTYCARD_SERVER__PORT", "my-secret-port"),
    ] {
        let err = load("", &[(var, value)]).unwrap_err();
        let text = err.to_string();
        assert!(!err.keys().is_empty(), "names the key: {text}");
        assert!(!text.contains("my-secret"), "{var}: {text}");
    }
    // A TOML file with a broken line quotes nothing of it.
    let path = temp_file(
        "broken.toml",
        "[pagerduty]\napi_token = \"u+my-secret-half-quoted\n",
    );
    let err = Settings::load(&ConfigSources {
        file: Some(path.clone()),
        toml: Vec::new(),
        env: Some(HashMap::new()),
    })
    .unwrap_err();
    std::fs::remove_file(&path).ok();
    let text = err.to_string();
    assert!(!text.contains("my-secret"), "{text}");
    assert!(text.contains("line 2"), "{text}");
    // A tokens_file whose `token` has the wrong type names the key, not the value.
    let path = temp_file(
        "tokens.toml",
        "[[tokens]]\nname = \"x\"\ntoken = [\"my-secret-in-a-list\"]\n",
    );
    let err = load(
        &format!(
            "[server.auth]\nmode = \"static\"\ntokens_file = {:?}\n",
            path.display().to_string()
        ),
        &[],
    )
    .unwrap_err();
    std::fs::remove_file(&path).ok();
    assert!(!err.to_string().contains("my-secret"), "{err}");
}

/// Every key of `Settings`, filled: a struct literal, so a new field fails
/// to compile here until it is added (and then must be documented).
fn every_key_filled() -> Settings {
    use dutycard_server::config::*;
    use secrecy::SecretString;

    let oauth = || OAuthSettings {
        client_id: Some("id".into()),
        client_secret: Some(SecretString::from("secret")),
        client_secret_file: Some("/s".into()),
        subdomain: Some("acme".into()),
        scopes: vec!["services.read".into()],
    };
    let connection = || ConnectionSettings {
        api_base_url: Some("https://a".into()),
        events_base_url: Some("https://e".into()),
        oauth_token_url: Some("https://o".into()),
        api_token: Some(SecretString::from("t")),
        api_token_file: Some("/t".into()),
        oauth: Some(oauth()),
    };
    Settings {
        server: ServerSettings {
            host: "h".into(),
            port: 1,
            workers: 1,
            request_deadline_ms: 1,
            shutdown_timeout_secs: 1,
            body_limit_bytes: 1,
            cors_allowed_origins: vec!["https://a".into()],
            log_format: LogFormat::Json,
            auth: AuthSettings {
                mode: Some(AuthMode::Jwt),
                tokens: vec![StaticToken {
                    name: "n".into(),
                    token: SecretString::from("t"),
                }],
                tokens_file: Some("/t".into()),
                file_tokens: Vec::new(),
                metrics_require_auth: true,
                jwt: Some(JwtSettings {
                    jwks_url: "https://j".into(),
                    issuer: "i".into(),
                    audience: vec!["a".into()],
                    leeway_secs: 1,
                    jwks_cache_secs: 1,
                    jwks_min_refresh_secs: 1,
                }),
            },
        },
        pagerduty: PagerDutySettings {
            region: ::pagerduty::Region::Us,
            connection: connection(),
            connect_timeout_ms: 1,
            request_timeout_ms: 1,
            max_attempts: 1,
            retry_deadline_ms: 1,
            rate_limit_per_minute: 1,
            accounts: [(
                "<id>".to_owned(),
                AccountSettings {
                    region: Some(::pagerduty::Region::Eu),
                    connection: connection(),
                    is_default: true,
                },
            )]
            .into(),
        },
        cache: cards::CardsConfig {
            service_ttl: Duration::from_secs(1),
            escalation_policy_ttl: Duration::from_secs(1),
            oncall_ttl: Duration::from_secs(1),
            incidents_ttl: Duration::from_secs(1),
            change_events_ttl: Duration::from_secs(1),
            standards_ttl: Duration::from_secs(1),
            metrics_ttl: Duration::from_secs(1),
            integration_key_ttl: Duration::from_secs(1),
            integration_key_miss_ttl: Duration::from_secs(1),
            max_stale: Duration::from_secs(1),
            max_entries: 1,
            batch_window: Duration::from_millis(1),
            batch_max_size: 1,
            refresh_batch_window: Duration::from_millis(1),
            min_batch_interval: Duration::from_millis(1),
            service_list_threshold: 1,
            service_list_max_pages: 1,
            change_events_fallback_ttl: Duration::from_secs(1),
            load_timeout: Duration::from_millis(1),
            section_timeout: Duration::from_millis(1),
            list_ttl: Duration::from_secs(1),
        },
        trigger: TriggerSettings {
            client_name: "c".into(),
            client_url: Some("https://c".into()),
            default_severity: ::pagerduty::Severity::Error,
            allow: TriggerAllow::Known,
            deadline_ms: 1,
            idempotency_window_secs: 1,
            per_caller_per_minute: 1,
            per_routing_key_per_minute: 1,
        },
        backstage: BackstageSettings {
            enabled: true,
            prefix: "/p".into(),
            list_ttl_secs: 1,
            legacy_enabled: true,
            legacy_prefix: "/l".into(),
            integration_keys: IntegrationKeys::Alias,
            integration_key_alias_secret: Some(SecretString::from("s")),
            integration_key_alias_secret_file: Some("/s".into()),
            app_config_file: Some("/a".into()),
            catalog: CatalogSettings {
                url: Some("https://c".into()),
                token: Some(SecretString::from("t")),
                token_file: Some("/t".into()),
                timeout_ms: 1,
            },
        },
        webhooks: WebhookSettings {
            enabled: true,
            secrets: vec![SecretString::from("s")],
            secrets_file: Some("/w".into()),
            accounts: [(
                "<id>".to_owned(),
                WebhookSecrets {
                    secrets: vec![SecretString::from("s")],
                    secrets_file: Some("/w".into()),
                },
            )]
            .into(),
            dedupe_window_secs: 1,
            max_body_bytes: 1,
            queue_size: 1,
        },
        streams: StreamSettings {
            heartbeat_ms: 1,
            buffer: 1,
            max_per_caller: 1,
            max_total: 1,
            max_services: 1,
        },
        store: StoreSettings {
            url: Some(SecretString::from("postgres://u:p@h/d")),
            data_dir: "/d".into(),
            pool_size: 1,
            statement_timeout_ms: 1,
            acquire_timeout_ms: 1,
        },
        catalog: None,
        shared: SharedSettings {
            redis_url: Some(SecretString::from("redis://:p@h:6379/0")),
            replicas: 1,
            call_timeout_ms: 1,
            local_ttl_ms: 1,
            lease_ms: 1,
            wait_ms: 1,
        },
    }
}

/// Dotted paths of every key in `value` (tables and lists of tables too).
fn dotted_keys(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                dotted_keys(&path, value, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items.iter().filter(|i| i.is_object()) {
                dotted_keys(prefix, item, out);
            }
        }
        _ => {}
    }
}

/// The keys config/default.toml sets or shows commented out, and its
/// (commented or not) table headers, as dotted paths. A commented key belongs
/// to the last header (commented or not); a key that is set belongs to the
/// last header that is set.
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut real_section = String::new();
    let mut any_section = String::new();
    for line in text.lines().map(str::trim) {
        let commented = line.starts_with('#');
        let bare = line.trim_start_matches('#').trim();
        if let Some(header) = bare.strip_prefix('[') {
            let name = header.trim_matches(|c| c == '[' || c == ']').to_owned();
            if name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._<>".contains(c))
            {
                // `[a.b.c]` documents the tables `a` and `a.b` too.
                for (i, _) in name.match_indices('.') {
                    found.insert(name[..i].to_owned());
                }
                found.insert(name.clone());
                any_section = name.clone();
                if !commented {
                    real_section = name;
                }
            }
            continue;
        }
        let Some((key, _)) = bare.split_once(" = ") else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        if !commented {
            any_section = real_section.clone();
        }
        let section = if commented {
            &any_section
        } else {
            &real_section
        };
        found.insert(format!("{section}.{key}"));
    }
    found
}

#[test]
fn default_toml_names_every_settings_key() {
    let value = serde_json::to_value(every_key_filled()).unwrap();
    let mut keys = BTreeSet::new();
    dotted_keys("", &value, &mut keys);
    assert!(keys.contains("pagerduty.accounts.<id>.oauth.client_secret_file"));
    let documented = documented_keys(dutycard_server::config::DEFAULT_TOML);
    let missing: Vec<&String> = keys.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "keys missing from config/default.toml (set, or shown commented out): {missing:?}"
    );
    // And nothing documented that is not a key (a typo in the docs).
    let unknown: Vec<&String> = documented.difference(&keys).collect();
    assert!(unknown.is_empty(), "not keys of Settings: {unknown:?}");
}
