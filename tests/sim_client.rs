//! The client crate's models decode every simulator route, and the client's
//! error mapping matches the simulator's PagerDuty-shaped errors.

use std::time::Duration;

use pagerduty::{
    ChangeEventPayload, ChangeEventRequest, Client, Credentials, Event, EventAction, EventPayload,
    IncidentMetricsQuery, IncidentStatus, ListChangeEvents, ListEscalationPolicies, ListIncidents,
    ListOncalls, ListServices, ListTeams, OAuthCredentials, RetryPolicy, SecretString,
    ServiceInclude, Severity,
};
use sim::{FaultSpec, Faults, Sim, SimConfig, SimHandle, SimToken};

async fn start(config: SimConfig) -> SimHandle {
    tokio::time::timeout(Duration::from_secs(20), Sim::start(config))
        .await
        .expect("sim starts in time")
        .expect("sim starts")
}

fn client_with(sim: &SimHandle, credentials: Credentials, retry: RetryPolicy) -> Client {
    Client::builder(credentials)
        .api_base_url(sim.base_url())
        .events_base_url(sim.events_base_url())
        .oauth_token_url(sim.oauth_token_url())
        .request_timeout(Duration::from_secs(5))
        .retry_policy(retry)
        .build()
        .expect("client")
}

fn client(sim: &SimHandle) -> Client {
    client_with(
        sim,
        Credentials::ApiToken(SecretString::from(sim.api_token())),
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            deadline: Duration::from_secs(5),
        },
    )
}

#[tokio::test]
async fn client_decodes_every_rest_route() {
    let sim = start(SimConfig {
        services: 40,
        ..SimConfig::default()
    })
    .await;
    let pd = client(&sim);
    let account = sim.account();
    let now = sim.now();

    let all_includes = vec![
        ServiceInclude::EscalationPolicies,
        ServiceInclude::Integrations,
        ServiceInclude::Teams,
    ];
    let page = pd
        .list_services(&ListServices {
            include: all_includes.clone(),
            limit: Some(10),
            total: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 10);
    assert!(page.more);
    assert_eq!(page.total, Some(40));
    let all = pd
        .list_all_services(&ListServices {
            limit: Some(15),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 40);

    let svc = account
        .services
        .iter()
        .find(|s| s.integrations.len() > 1)
        .unwrap();
    let got = pd.get_service(&svc.id, &all_includes).await.unwrap();
    assert_eq!(got.name, svc.name);
    let ep = got.escalation_policy.clone().unwrap();
    assert_eq!(ep.id, svc.escalation_policy_id);
    assert!(!ep.escalation_rules.is_empty());
    let key = svc.integrations[0].integration_key.clone().unwrap();
    assert_eq!(
        got.integrations[0].integration_key.as_deref(),
        Some(key.as_str())
    );

    let found = pd.find_service_by_integration_key(&key).await.unwrap();
    assert_eq!(found.map(|s| s.id), Some(svc.id.clone()));
    let none = pd
        .find_service_by_integration_key("0123456789abcdef0123456789abcdef")
        .await
        .unwrap();
    assert!(none.is_none());

    let with_open = account
        .services
        .iter()
        .find(|s| !account.open_incidents(&s.id).is_empty())
        .unwrap();
    let open = pd
        .list_all_incidents(&ListIncidents {
            service_ids: vec![with_open.id.clone()],
            statuses: vec![IncidentStatus::Triggered, IncidentStatus::Acknowledged],
            date_range_all: true,
            sort_by: Some("created_at:desc".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), account.open_incidents(&with_open.id).len());

    let ep_id = &svc.escalation_policy_id;
    let oncalls = pd
        .list_all_oncalls(&ListOncalls {
            escalation_policy_ids: vec![ep_id.clone()],
            include_users: true,
            time_zone: Some("UTC".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        oncalls.len(),
        account.current_oncalls(ep_id, sim.now()).len()
    );
    for o in &oncalls {
        assert_eq!(&o.escalation_policy.id, ep_id);
        assert!(o.user.email.is_some());
    }

    let policy = pd.get_escalation_policy(ep_id).await.unwrap();
    assert_eq!(
        policy.name.as_deref(),
        Some(account.escalation_policy(ep_id).unwrap().name.as_str())
    );
    let policies = pd
        .list_all_escalation_policies(&ListEscalationPolicies {
            service_ids: vec![svc.id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(policies.len(), 1);

    pd.list_service_change_events(&svc.id, &ListChangeEvents::default())
        .await
        .unwrap();
    let changes = pd
        .list_change_events(&ListChangeEvents {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!changes.items.is_empty());
    assert!(changes.items.iter().all(|c| !c.links.is_empty()));

    let teams = pd.list_all_teams(&ListTeams::default()).await.unwrap();
    assert_eq!(teams.len(), account.teams.len());
    let user = pd.get_user(&account.users[0].id).await.unwrap();
    assert_eq!(user.email.as_deref(), Some(account.users[0].email.as_str()));
    assert!(
        pd.list_abilities()
            .await
            .unwrap()
            .contains(&"teams".to_owned())
    );

    let one = pd.service_standards(&svc.id).await.unwrap();
    assert_eq!(one.resource_id, svc.id);
    assert_eq!(one.score.unwrap().total as usize, one.standards.len());
    let ids: Vec<String> = account.services[..3].iter().map(|s| s.id.clone()).collect();
    let many = pd.services_standards(&ids).await.unwrap();
    assert_eq!(
        many.iter()
            .map(|s| s.resource_id.clone())
            .collect::<Vec<_>>(),
        ids
    );

    let metrics = pd
        .incident_metrics_by_service(&IncidentMetricsQuery {
            service_ids: account.services.iter().map(|s| s.id.clone()).collect(),
            created_at_start: now - Duration::from_secs(90 * 86_400),
            created_at_end: now,
            aggregate_unit: None,
            time_zone: Some("Etc/UTC".into()),
        })
        .await
        .unwrap();
    assert!(!metrics.is_empty());
    for m in &metrics {
        let want = account
            .incidents
            .iter()
            .filter(|i| {
                i.service_id == m.service_id
                    && i.created_at >= now - Duration::from_secs(90 * 86_400)
            })
            .count() as u64;
        assert_eq!(m.total_incident_count, Some(Some(want)));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn client_events_drive_simulated_incidents() {
    let sim = start(SimConfig {
        services: 10,
        ..SimConfig::default()
    })
    .await;
    let pd = client(&sim);
    let account = sim.account();
    let svc = account
        .services
        .iter()
        .find(|s| s.status == "active")
        .unwrap();
    let key = svc.integrations[0].integration_key.clone().unwrap();

    let mut trigger = Event::trigger(
        key.clone(),
        EventPayload {
            summary: "Checkout is down".into(),
            source: "checkout-1".into(),
            severity: Severity::Critical,
            timestamp: None,
            component: None,
            group: None,
            class: None,
            custom_details: None,
        },
    );
    trigger.dedup_key = Some("checkout-down".into());
    let resp = pd.events().enqueue(&trigger).await.unwrap();
    assert_eq!(resp.status, "success");
    assert_eq!(resp.dedup_key.as_deref(), Some("checkout-down"));

    let open = |pd: Client, id: String| async move {
        pd.list_all_incidents(&ListIncidents {
            service_ids: vec![id],
            statuses: vec![IncidentStatus::Triggered, IncidentStatus::Acknowledged],
            date_range_all: true,
            ..Default::default()
        })
        .await
        .unwrap()
    };
    let incidents = open(pd.clone(), svc.id.clone()).await;
    let inc = incidents
        .iter()
        .find(|i| i.title.as_deref() == Some("Checkout is down"))
        .unwrap();
    assert_eq!(inc.status, IncidentStatus::Triggered);

    pd.events()
        .enqueue(&Event::follow_up(
            key.clone(),
            EventAction::Acknowledge,
            "checkout-down",
        ))
        .await
        .unwrap();
    let incidents = open(pd.clone(), svc.id.clone()).await;
    let acked = incidents.iter().find(|i| i.id == inc.id).unwrap();
    assert_eq!(acked.status, IncidentStatus::Acknowledged);

    pd.events()
        .enqueue(&Event::follow_up(
            key.clone(),
            EventAction::Resolve,
            "checkout-down",
        ))
        .await
        .unwrap();
    let incidents = open(pd.clone(), svc.id.clone()).await;
    assert!(incidents.iter().all(|i| i.id != inc.id));

    let change = ChangeEventRequest {
        routing_key: key.clone().into(),
        payload: ChangeEventPayload {
            summary: "Deployed checkout v9".into(),
            source: Some("ci".into()),
            timestamp: None,
            custom_details: None,
        },
        links: vec![],
    };
    pd.events().enqueue_change(&change).await.unwrap();
    let changes = pd
        .list_service_change_events(
            &svc.id,
            &ListChangeEvents {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        changes.items[0].summary.as_deref(),
        Some("Deployed checkout v9")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn client_maps_simulated_errors_and_faults() {
    let sim = start(SimConfig {
        services: 10,
        api_tokens: vec![
            SimToken::full("full"),
            SimToken::scoped("services-only", &["services.read"]),
        ],
        ..SimConfig::default()
    })
    .await;
    let fast = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        deadline: Duration::from_secs(5),
    };
    let pd = client_with(
        &sim,
        Credentials::ApiToken(SecretString::from("full")),
        fast,
    );
    let err = pd.get_service("PNOPE00", &[]).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    let bad = client_with(
        &sim,
        Credentials::ApiToken(SecretString::from("nope")),
        fast,
    );
    assert!(bad.list_abilities().await.unwrap_err().is_unauthorized());

    let scoped = client_with(
        &sim,
        Credentials::ApiToken(SecretString::from("services-only")),
        fast,
    );
    let err = scoped
        .list_incidents(&ListIncidents::default())
        .await
        .unwrap_err();
    assert!(err.is_missing_scopes(), "{err:?}");

    // One 503 is retried away.
    sim.set_faults(Faults {
        global: FaultSpec::default(),
        per_route: vec![(
            "/abilities".into(),
            FaultSpec {
                fail_next: 1,
                fail_status: 503,
                ..FaultSpec::default()
            },
        )],
        rate_limit_per_minute: None,
    });
    sim.reset_stats();
    pd.list_abilities().await.unwrap();
    let stats = sim.stats();
    assert_eq!(stats.by_status("GET", "/abilities", 503), 1);
    assert_eq!(stats.by_status("GET", "/abilities", 200), 1);

    // Malformed JSON is a decode error, not a panic.
    sim.set_faults(Faults {
        global: FaultSpec {
            malformed_next: 1,
            ..FaultSpec::default()
        },
        per_route: vec![],
        rate_limit_per_minute: None,
    });
    let err = pd.list_teams(&ListTeams::default()).await.unwrap_err();
    assert!(matches!(err, pagerduty::Error::Decode { .. }), "{err:?}");

    // A 429 with ratelimit-reset, retries exhausted.
    let once = client_with(
        &sim,
        Credentials::ApiToken(SecretString::from("full")),
        RetryPolicy {
            max_attempts: 1,
            ..fast
        },
    );
    sim.set_faults(Faults {
        global: FaultSpec {
            fail_next: 1,
            fail_status: 429,
            rate_limit_reset_secs: 7,
            ..FaultSpec::default()
        },
        per_route: vec![],
        rate_limit_per_minute: None,
    });
    let err = once.list_abilities().await.unwrap_err();
    assert!(err.is_rate_limited(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    sim.shutdown().await;
}

#[tokio::test]
async fn client_oauth_against_the_simulator() {
    let sim = start(SimConfig {
        services: 5,
        ..SimConfig::default()
    })
    .await;
    let (client_id, secret) = sim.oauth_client();
    let pd = client_with(
        &sim,
        Credentials::OAuth(OAuthCredentials {
            client_id,
            client_secret: SecretString::from(secret),
            subdomain: "acme".into(),
            scopes: vec!["services.read".into(), "abilities.read".into()],
        }),
        RetryPolicy::default(),
    );
    assert!(!pd.list_abilities().await.unwrap().is_empty());
    let err = pd.list_oncalls(&ListOncalls::default()).await.unwrap_err();
    assert!(err.is_missing_scopes(), "{err:?}");
    assert_eq!(
        sim.stats().by_status("POST", "/oauth/token", 200),
        1,
        "token cached"
    );
    sim.shutdown().await;
}
