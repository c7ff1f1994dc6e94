//! The generated account: deterministic and realistic.

use std::collections::BTreeSet;

use chrono::Duration;
use sim::AccountView;
use sim::account::Target;

use crate::common::*;

#[test]
fn same_seed_same_account() {
    let a = AccountView::generate(42, 60, fixed_now());
    let b = AccountView::generate(42, 60, fixed_now());
    assert_eq!(a, b);
    let c = AccountView::generate(43, 60, fixed_now());
    assert_ne!(a.services, c.services);
}

#[tokio::test]
async fn served_account_is_the_generated_one() {
    let sim = start(config()).await;
    assert_eq!(sim.account(), AccountView::generate(42, 30, fixed_now()));
    sim.shutdown().await;
}

fn is_pd_id(id: &str) -> bool {
    id.len() == 7
        && id.starts_with('P')
        && id[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

#[test]
fn account_is_realistic() {
    let now = fixed_now();
    let a = AccountView::generate(42, 50, now);
    assert_eq!(a.services.len(), 50);
    let names: BTreeSet<_> = a.services.iter().map(|s| &s.name).collect();
    assert_eq!(names.len(), 50, "unique names");
    for s in &a.services {
        assert!(is_pd_id(&s.id), "{}", s.id);
        assert!(a.escalation_policy(&s.escalation_policy_id).is_some());
        for i in &s.integrations {
            assert!(is_pd_id(&i.id));
            if let Some(k) = &i.integration_key {
                assert_eq!(k.len(), 32);
            }
        }
        assert!(s.integrations.iter().any(|i| i.integration_key.is_some()));
    }
    for e in &a.escalation_policies {
        assert!((1..=3).contains(&e.rules.len()));
        for r in &e.rules {
            assert!(!r.targets.is_empty());
        }
    }
    for u in &a.users {
        assert!(is_pd_id(&u.id));
        assert!(u.email.contains('@') && u.avatar_url.starts_with("https://"));
    }
    assert!(a.services.iter().any(|s| {
        s.integrations
            .iter()
            .any(|i| i.vendor.as_ref().is_some_and(|v| v.0 == "PRO19CT"))
    }));
    assert!(
        a.services
            .iter()
            .any(|s| s.integrations.iter().any(|i| i.integration_key.is_none()))
    );
    for status in ["triggered", "acknowledged", "resolved"] {
        assert!(a.incidents.iter().any(|i| i.status == status), "{status}");
    }
    assert!(
        a.incidents
            .iter()
            .any(|i| i.is_open() && i.created_at < now - Duration::days(30))
    );
    assert!(a.escalation_policies.iter().any(|e| {
        !a.current_oncalls(&e.id, now)
            .iter()
            .any(|o| o.escalation_level == 1)
    }));
    assert!(a.escalation_policies.iter().any(|e| {
        e.rules
            .iter()
            .any(|r| r.targets.iter().any(|t| matches!(t, Target::Schedule(_))))
    }));
    assert!(!a.change_events.is_empty());
    assert!(a.change_events.iter().all(|c| !c.links.is_empty()));
    let ids: BTreeSet<_> = a.incidents.iter().map(|i| i.incident_number).collect();
    assert_eq!(ids.len(), a.incidents.len(), "unique incident numbers");
    assert_times_are_past_and_ordered(&a, now);
}

/// Nothing is in the future, and the order of events holds.
fn assert_times_are_past_and_ordered(a: &AccountView, now: chrono::DateTime<chrono::Utc>) {
    for i in &a.incidents {
        let times = [
            Some(i.created_at),
            i.acknowledged_at,
            i.resolved_at,
            Some(i.updated_at),
        ];
        assert!(times.iter().flatten().all(|t| *t <= now), "{i:?}");
        if let Some(ack) = i.acknowledged_at {
            assert!(i.created_at <= ack, "{i:?}");
        }
        if let Some(resolved) = i.resolved_at {
            assert!(
                i.acknowledged_at.unwrap_or(i.created_at) <= resolved,
                "{i:?}"
            );
        }
        assert!(i.updated_at >= i.created_at, "{i:?}");
    }
    for s in &a.services {
        assert!(s.created_at <= now, "{}", s.id);
        assert!(
            s.integrations.iter().all(|i| i.created_at <= now),
            "{}",
            s.id
        );
    }
    assert!(a.change_events.iter().all(|c| c.timestamp <= now));
}

#[test]
fn generated_times_are_never_in_the_future() {
    // Young incidents (created minutes before `now`) are rare; many seeds
    // make sure some are generated.
    let now = fixed_now();
    for seed in 0..20 {
        let a = AccountView::generate(seed, 100, now);
        assert_times_are_past_and_ordered(&a, now);
    }
}

#[test]
fn debug_output_keeps_integration_keys_out() {
    let a = AccountView::generate(42, 20, fixed_now());
    let debug = format!("{a:?}");
    for s in &a.services {
        for key in s
            .integrations
            .iter()
            .filter_map(|i| i.integration_key.as_ref())
        {
            assert!(!debug.contains(key.as_str()));
        }
    }
    let config = format!(
        "{:?}",
        sim::SimConfig {
            api_tokens: vec![sim::SimToken::full("tok-secret-1")],
            oauth_clients: vec![sim::SimOAuthClient {
                client_id: "app".into(),
                client_secret: "cs-secret-2".into(),
                allowed_scopes: None,
            }],
            ..sim::SimConfig::default()
        }
    );
    assert!(!config.contains("tok-secret-1") && !config.contains("cs-secret-2"));
}
