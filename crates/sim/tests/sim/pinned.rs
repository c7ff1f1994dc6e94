//! The generated account of seed 42 is pinned: a fingerprint over every
//! generated field, and a few readable facts, recorded before
//! `AccountView::generate` was split into named steps. A change to
//! generation (an extra random draw, a reordered step) fails here, so a
//! refactor that passes this test changed nothing.

use std::fmt::Write as _;

use sim::AccountView;
use sim::account::Target;

use crate::common::fixed_now;

/// FNV-1a, 64 bits: stable across platforms and Rust versions (std's
/// `DefaultHasher` is not).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One line per generated object, naming every field generation sets
/// (integration keys included, which `Debug` redacts). Fields added later
/// are deliberately not listed: the pin covers what generation drew when
/// it was recorded.
fn fingerprint(a: &AccountView) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "generated_at {}", a.generated_at);
    for t in &a.teams {
        let _ = writeln!(w, "team {} {} {}", t.id, t.name, t.description);
    }
    for u in &a.users {
        let _ = writeln!(
            w,
            "user {} {} {} {} {} {} {} {:?}",
            u.id, u.name, u.email, u.time_zone, u.avatar_url, u.job_title, u.role, u.team_ids
        );
    }
    for s in &a.schedules {
        let _ = writeln!(
            w,
            "schedule {} {} {} {:?} {} {} {:?}",
            s.id, s.name, s.time_zone, s.user_ids, s.rotation_start, s.turn_length_secs, s.team_ids
        );
    }
    for e in &a.escalation_policies {
        let _ = writeln!(
            w,
            "policy {} {} {} {} {:?}",
            e.id, e.name, e.description, e.num_loops, e.team_ids
        );
        for r in &e.rules {
            let targets: Vec<String> = r
                .targets
                .iter()
                .map(|t| match t {
                    Target::User(u) => format!("user:{u}"),
                    Target::Schedule(s) => format!("schedule:{s}"),
                })
                .collect();
            let _ = writeln!(
                w,
                "  rule {} {} {:?}",
                r.id, r.escalation_delay_in_minutes, targets
            );
        }
    }
    for s in &a.services {
        let _ = writeln!(
            w,
            "service {} {} {:?} {} {} {} {:?} {:?} {:?}",
            s.id,
            s.name,
            s.description,
            s.status,
            s.created_at,
            s.escalation_policy_id,
            s.team_ids,
            s.auto_resolve_timeout,
            s.acknowledgement_timeout
        );
        for i in &s.integrations {
            let _ = writeln!(
                w,
                "  integration {} {} {} {:?} {:?} {:?} {}",
                i.id,
                i.kind,
                i.name,
                i.integration_key,
                i.vendor,
                i.integration_email,
                i.created_at
            );
        }
    }
    for i in &a.incidents {
        let _ = writeln!(
            w,
            "incident {} {} {} {} {} {} {} {} {} {:?} {:?} {} {:?} {:?} {}",
            i.id,
            i.incident_number,
            i.title,
            i.service_id,
            i.escalation_policy_id,
            i.status,
            i.urgency,
            i.created_at,
            i.updated_at,
            i.acknowledged_at,
            i.resolved_at,
            i.incident_key,
            i.assignee_ids,
            i.acknowledger_ids,
            i.alert_count
        );
    }
    for c in &a.change_events {
        let _ = writeln!(
            w,
            "change {} {} {} {:?} {} {:?} {:?} {}",
            c.id,
            c.summary,
            c.timestamp,
            c.source,
            c.service_id,
            c.integration_id,
            c.links,
            c.custom_details
        );
    }
    for s in &a.standards {
        let _ = writeln!(
            w,
            "standard {} {} {} {}",
            s.id, s.name, s.description, s.kind
        );
    }
    let _ = writeln!(w, "abilities {:?}", a.abilities);
    out
}

#[test]
fn seed_42_generates_the_pinned_account() {
    let a = AccountView::generate(42, 50, fixed_now());
    // Readable facts first: they say what moved when the hash does not match.
    let counts = (
        a.teams.len(),
        a.users.len(),
        a.schedules.len(),
        a.escalation_policies.len(),
        a.services.len(),
        a.incidents.len(),
        a.change_events.len(),
        a.standards.len(),
    );
    assert_eq!(counts, PINNED_COUNTS);
    assert_eq!(
        (a.services[0].id.as_str(), a.services[0].name.as_str()),
        PINNED_FIRST_SERVICE
    );
    let last = a.incidents.last().unwrap();
    assert_eq!(
        (last.id.as_str(), last.incident_number, last.status.as_str()),
        PINNED_LAST_INCIDENT
    );
    assert_eq!(a.change_events[0].id, PINNED_FIRST_CHANGE_EVENT);
    assert_eq!(
        fnv1a(&fingerprint(&a)),
        PINNED_FINGERPRINT,
        "the generated account of seed 42 changed"
    );
}

#[test]
fn the_fingerprint_sees_a_changed_field() {
    // The pin can fail: one changed integration key changes the hash.
    let mut a = AccountView::generate(42, 50, fixed_now());
    let before = fnv1a(&fingerprint(&a));
    a.services[7].integrations[0].integration_key = Some("0".repeat(32));
    assert_ne!(fnv1a(&fingerprint(&a)), before);
}

// Recorded at 1969ea9 (before the split of `AccountView::generate`).
const PINNED_COUNTS: (usize, usize, usize, usize, usize, usize, usize, usize) =
    (10, 37, 25, 40, 50, 190, 118, 6);
const PINNED_FIRST_SERVICE: (&str, &str) = ("PQYGZA5", "analytics-db");
const PINNED_LAST_INCIDENT: (&str, u64, &str) = ("PV9WK0A", 1190, "triggered");
const PINNED_FIRST_CHANGE_EVENT: &str = "01NAA8LOFDA8WMACLJARVTXDMW";
const PINNED_FINGERPRINT: u64 = 6_795_977_747_349_015_695;

#[test]
fn seed_42_responder_requests_are_pinned() {
    // Drawn after everything above, from a stream of their own.
    let a = AccountView::generate(42, 50, fixed_now());
    let added: Vec<String> = a
        .incidents
        .iter()
        .flat_map(|i| {
            i.additional_responders
                .iter()
                .map(move |(u, at)| format!("{} {u} {at}", i.id))
        })
        .collect();
    assert_eq!(added.len(), 16);
    assert_eq!(fnv1a(&added.join("\n")), 9_909_758_415_142_729_781);
}
