//! Seeded generation of the account, one named step per kind of object.
//!
//! Every step draws from the one random stream in [`Gen`], in a fixed order
//! (teams, users, schedules, escalation policies, services, incidents,
//! change events, standards): the same seed and clock give the same account,
//! and the order of the draws inside a step is part of that promise (the
//! `pinned` test fingerprints seed 42). Add new random data in a new step
//! at the end, or the accounts of every seed change.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::names::{
    CHANGE_SOURCES, FIRST, INCIDENT_TITLES, JOBS, LAST, SVC_A, SVC_B, TEAM_NAMES, TIME_ZONES,
};
use super::{
    AccountView, BACKSTAGE_VENDOR_ID, ChangeEvent, EscalationPolicy, EscalationRule, Incident,
    Index, Integration, Schedule, Service, StandardDef, Target, Team, User,
};

const ID_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const KEY_CHARS: &[u8] = b"0123456789abcdef";

/// The random stream and the identifiers already handed out (ids and keys
/// are unique across the whole account, like PagerDuty's).
struct Gen {
    rng: ChaCha8Rng,
    used: BTreeSet<String>,
}

impl Gen {
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    /// `P` + 6 uppercase alphanumerics, unique in the account.
    fn id(&mut self) -> String {
        loop {
            let id = format!("P{}", self.chars(ID_CHARS, 6));
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }

    /// `01` + 24 uppercase alphanumerics (change events, standards).
    fn long_id(&mut self) -> String {
        loop {
            let id = format!("01{}", self.chars(ID_CHARS, 24));
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }

    /// 32 lowercase hex digits (integration keys, dedup keys).
    fn key(&mut self) -> String {
        loop {
            let key = self.chars(KEY_CHARS, 32);
            if self.used.insert(key.clone()) {
                return key;
            }
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn secs(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::seconds(self.rng.random_range(lo..hi))
    }
}

impl AccountView {
    /// Generates the account for `seed` with `services` services around `now`
    /// (truncated to whole seconds; nothing generated lies after it).
    pub fn generate(seed: u64, services: usize, now: DateTime<Utc>) -> Self {
        let now = Utc
            .timestamp_opt(now.timestamp(), 0)
            .single()
            .unwrap_or(now);
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            used: BTreeSet::new(),
        };
        let teams = teams(&mut g, services);
        let users = users(&mut g, services, &teams);
        let schedules = schedules(&mut g, services, &users, &teams, now);
        let escalation_policies = escalation_policies(&mut g, services, &users, &teams, &schedules);
        let services =
            services_with_integrations(&mut g, services, &teams, &escalation_policies, now);
        let mut account = AccountView {
            generated_at: now,
            teams,
            users,
            schedules,
            escalation_policies,
            services,
            incidents: Vec::new(),
            change_events: Vec::new(),
            standards: Vec::new(),
            abilities: ABILITIES.iter().map(|s| (*s).to_owned()).collect(),
            dependencies: Vec::new(),
            index: Index::default(),
        };
        // Incidents are assigned to whoever is on call: that needs the index.
        account.reindex();
        account.incidents = incidents(&mut g, &account, now);
        account.change_events = change_events(&mut g, &account.services, now);
        account.standards = standards(&mut g);
        account
            .services
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        account.reindex();
        // A stream of its own, so that this later step left every draw
        // above (and the `pinned` fingerprint) unchanged.
        let mut responders_rng = ChaCha8Rng::seed_from_u64(seed ^ RESPONDERS_STREAM);
        additional_responders(&mut responders_rng, &mut account, now);
        account
    }
}

/// Mixed into the seed of [`additional_responders`]' stream.
const RESPONDERS_STREAM: u64 = 0x2E5F_0DE2_5EED;

/// What `GET /abilities` lists: everything dutycard may ask about.
const ABILITIES: &[&str] = &[
    "teams",
    "read_only_users",
    "service_support_hours",
    "urgencies",
    "change_events",
    "service_standards",
    "analytics",
];

/// One team per five services (2–24), named from [`TEAM_NAMES`], numbered
/// once the names run out.
fn teams(g: &mut Gen, services: usize) -> Vec<Team> {
    let n_teams = (services / 5).clamp(2, 24);
    (0..n_teams)
        .map(|i| {
            let base = TEAM_NAMES[i % TEAM_NAMES.len()];
            let name = if i < TEAM_NAMES.len() {
                base.to_owned()
            } else {
                format!("{base} {}", i / TEAM_NAMES.len() + 1)
            };
            Team {
                id: g.id(),
                description: format!("The {name} team"),
                name,
            }
        })
        .collect()
}

/// Three users per four services (at least 8), each in one team, with
/// unique emails (a number is appended to repeated names).
fn users(g: &mut Gen, services: usize, teams: &[Team]) -> Vec<User> {
    let n_users = (services * 3 / 4).max(8);
    let mut emails = BTreeSet::new();
    (0..n_users)
        .map(|_| {
            let first = *FIRST.choose(&mut g.rng).unwrap_or(&"Ada");
            let last = *LAST.choose(&mut g.rng).unwrap_or(&"Lovelace");
            let name = format!("{first} {last}");
            let local = format!(
                "{}.{}",
                first.to_lowercase(),
                last.to_lowercase().replace([' ', '-'], "")
            );
            let mut email = format!("{local}@example.com");
            let mut n = 2;
            while !emails.insert(email.clone()) {
                email = format!("{local}{n}@example.com");
                n += 1;
            }
            let team = teams[g.rng.random_range(0..teams.len())].id.clone();
            User {
                id: g.id(),
                name,
                email,
                time_zone: (*TIME_ZONES.choose(&mut g.rng).unwrap_or(&"Etc/UTC")).to_owned(),
                avatar_url: format!(
                    "https://secure.gravatar.com/avatar/{}.png?d=mm&r=PG",
                    g.chars(KEY_CHARS, 32)
                ),
                job_title: (*JOBS.choose(&mut g.rng).unwrap_or(&"Engineer")).to_owned(),
                role: if g.chance(0.1) { "admin" } else { "user" }.to_owned(),
                team_ids: vec![team],
            }
        })
        .collect()
}

/// One schedule per two services (at least 3), daily or weekly, 1–4
/// members. Schedule 0 (and about 8 % of the others) is empty: a level
/// nobody covers, which the cards must show as such.
fn schedules(
    g: &mut Gen,
    services: usize,
    users: &[User],
    teams: &[Team],
    now: DateTime<Utc>,
) -> Vec<Schedule> {
    let n_sched = (services / 2).max(3);
    (0..n_sched)
        .map(|i| {
            let empty = i == 0 || g.chance(0.08);
            let mut members: Vec<String> = Vec::new();
            if !empty {
                let k = g.rng.random_range(1..=4usize);
                let mut idx: Vec<usize> = (0..users.len()).collect();
                idx.shuffle(&mut g.rng);
                members = idx[..k].iter().map(|&u| users[u].id.clone()).collect();
            }
            let turn_length_secs = if g.chance(0.5) { 86_400 } else { 7 * 86_400 };
            let rotation_start = now - g.secs(0, turn_length_secs) - Duration::days(70);
            let team = teams[i % teams.len()].clone();
            Schedule {
                id: g.id(),
                name: format!(
                    "{} {} rotation",
                    team.name,
                    if turn_length_secs == 86_400 {
                        "daily"
                    } else {
                        "weekly"
                    }
                ),
                time_zone: (*TIME_ZONES.choose(&mut g.rng).unwrap_or(&"Etc/UTC")).to_owned(),
                user_ids: members,
                rotation_start,
                turn_length_secs,
                team_ids: vec![team.id],
            }
        })
        .collect()
}

/// Four policies per five services, 1–3 levels of 1–2 targets (schedules
/// or users). The awkward cases on-call code must handle are made on
/// purpose: every 7th policy starts with a level nobody covers, every 5th
/// has the same user on two levels.
fn escalation_policies(
    g: &mut Gen,
    services: usize,
    users: &[User],
    teams: &[Team],
    schedules: &[Schedule],
) -> Vec<EscalationPolicy> {
    let empty_schedules: Vec<usize> = schedules
        .iter()
        .enumerate()
        .filter(|(_, s)| s.user_ids.is_empty())
        .map(|(i, _)| i)
        .collect();
    let staffed: Vec<usize> = schedules
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.user_ids.is_empty())
        .map(|(i, _)| i)
        .collect();
    let n_eps = (services * 4 / 5).max(1);
    let mut escalation_policies = Vec::with_capacity(n_eps);
    for i in 0..n_eps {
        let levels = g.rng.random_range(1..=3usize);
        let mut rules = Vec::with_capacity(levels);
        let empty_first = i % 7 == 3 && !empty_schedules.is_empty();
        let repeated_user = if i % 5 == 1 {
            Some(users[g.rng.random_range(0..users.len())].id.clone())
        } else {
            None
        };
        for level in 0..levels {
            let mut targets = Vec::new();
            if level == 0 && empty_first {
                let s = empty_schedules[g.rng.random_range(0..empty_schedules.len())];
                targets.push(Target::Schedule(schedules[s].id.clone()));
            } else {
                let n_targets = if g.chance(0.3) { 2 } else { 1 };
                for _ in 0..n_targets {
                    let t = if g.chance(0.65) && !staffed.is_empty() {
                        let s = staffed[g.rng.random_range(0..staffed.len())];
                        Target::Schedule(schedules[s].id.clone())
                    } else {
                        Target::User(users[g.rng.random_range(0..users.len())].id.clone())
                    };
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                }
                if let Some(u) = &repeated_user
                    && level < 2
                {
                    let t = Target::User(u.clone());
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                }
            }
            rules.push(EscalationRule {
                id: g.id(),
                escalation_delay_in_minutes: *[10u32, 15, 30, 60].choose(&mut g.rng).unwrap_or(&30),
                targets,
            });
        }
        let team = teams[g.rng.random_range(0..teams.len())].clone();
        escalation_policies.push(EscalationPolicy {
            id: g.id(),
            name: format!("{} escalation {}", team.name, i + 1),
            description: format!("Pages the {} team", team.name),
            num_loops: g.rng.random_range(0..=2),
            rules,
            team_ids: vec![team.id],
        });
    }
    escalation_policies
}

/// The services (unsorted: `generate` sorts them by name at the end), each
/// with an Events API v2 integration, a third or so with a Backstage one,
/// a fifth with an email one (no key). Service 0 is always active; a few
/// others are disabled or in maintenance.
fn services_with_integrations(
    g: &mut Gen,
    services: usize,
    teams: &[Team],
    escalation_policies: &[EscalationPolicy],
    now: DateTime<Utc>,
) -> Vec<Service> {
    let mut names = BTreeSet::new();
    let mut svcs = Vec::with_capacity(services);
    for i in 0..services {
        let a = *SVC_A.choose(&mut g.rng).unwrap_or(&"svc");
        let b = *SVC_B.choose(&mut g.rng).unwrap_or(&"api");
        let base = format!("{a}-{b}");
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        let ep = &escalation_policies[i % escalation_policies.len()];
        let mut team_ids = Vec::new();
        let r: f64 = g.rng.random();
        if r >= 0.1 {
            team_ids.push(ep.team_ids[0].clone());
        }
        if r >= 0.9 {
            let other = teams[g.rng.random_range(0..teams.len())].id.clone();
            if !team_ids.contains(&other) {
                team_ids.push(other);
            }
        }
        let created_at = now - Duration::days(g.rng.random_range(100..900));
        let integrations = integrations(g, i, &name, created_at);
        let status = if i > 0 && g.chance(0.04) {
            "disabled"
        } else if i > 0 && g.chance(0.04) {
            "maintenance"
        } else {
            "active"
        };
        svcs.push(Service {
            id: g.id(),
            description: if g.chance(0.8) {
                Some(format!("The {a} {b} behind our storefront"))
            } else {
                None
            },
            name,
            status: status.to_owned(),
            created_at,
            escalation_policy_id: ep.id.clone(),
            team_ids,
            integrations,
            auto_resolve_timeout: if g.chance(0.6) { Some(14_400) } else { None },
            acknowledgement_timeout: if g.chance(0.6) { Some(1_800) } else { None },
        });
    }
    svcs
}

/// The integrations of the `i`-th generated service, created after it.
fn integrations(
    g: &mut Gen,
    i: usize,
    service_name: &str,
    created_at: DateTime<Utc>,
) -> Vec<Integration> {
    let mut integrations = vec![Integration {
        id: g.id(),
        kind: "events_api_v2_inbound_integration".to_owned(),
        name: "Events API V2".to_owned(),
        integration_key: Some(g.key()),
        vendor: None,
        integration_email: None,
        created_at: created_at + Duration::hours(1),
    }];
    if i.is_multiple_of(3) || g.chance(0.15) {
        integrations.push(Integration {
            id: g.id(),
            kind: "events_api_v2_inbound_integration".to_owned(),
            name: "Backstage".to_owned(),
            integration_key: Some(g.key()),
            vendor: Some((BACKSTAGE_VENDOR_ID.to_owned(), "Backstage".to_owned())),
            integration_email: None,
            created_at: created_at + Duration::days(3),
        });
    }
    if g.chance(0.2) {
        integrations.push(Integration {
            id: g.id(),
            kind: "generic_email_inbound_integration".to_owned(),
            name: "Email".to_owned(),
            integration_key: None,
            vendor: None,
            integration_email: Some(format!("{service_name}@sim.pagerduty.com")),
            created_at: created_at + Duration::days(5),
        });
    }
    integrations
}

/// Open and resolved incidents of every service that is not disabled,
/// numbered from 1001 in creation order. The first service always has two
/// open incidents, one triggered more than 30 days ago (outside
/// `GET /incidents`' default window) and one acknowledged; about 20 % of
/// the other open incidents are that old too.
fn incidents(g: &mut Gen, account: &AccountView, now: DateTime<Utc>) -> Vec<Incident> {
    let mut incidents = Vec::new();
    for (i, svc) in account.services.iter().enumerate() {
        if svc.status == "disabled" {
            continue;
        }
        let r: f64 = g.rng.random();
        let mut open = if r < 0.5 {
            0
        } else if r < 0.75 {
            1
        } else if r < 0.9 {
            2
        } else {
            g.rng.random_range(3..=4)
        };
        if i == 0 {
            open = open.max(2);
        }
        let resolved = g.rng.random_range(0..=6);
        for k in 0..open + resolved {
            incidents.push(incident(g, account, svc, i, k, k < open, now));
        }
    }
    incidents.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    for (n, inc) in incidents.iter_mut().enumerate() {
        inc.incident_number = 1000 + n as u64 + 1;
    }
    incidents
}

/// The `k`-th incident of the `i`-th service (numbered later).
fn incident(
    g: &mut Gen,
    account: &AccountView,
    svc: &Service,
    i: usize,
    k: usize,
    is_open: bool,
    now: DateTime<Utc>,
) -> Incident {
    let old = (i == 0 && k == 0) || (is_open && g.chance(0.2));
    let created_at = if old {
        now - Duration::days(31) - g.secs(0, 60 * 86_400)
    } else if is_open {
        now - g.secs(300, 72 * 3600)
    } else {
        now - g.secs(3600, 90 * 86_400)
    };
    let status = if !is_open {
        "resolved"
    } else if i == 0 && k == 1 {
        "acknowledged"
    } else if (i == 0 && k == 0) || g.chance(0.6) {
        "triggered"
    } else {
        "acknowledged"
    };
    let template = *INCIDENT_TITLES
        .choose(&mut g.rng)
        .unwrap_or(&"{svc} is down");
    let responder = account
        .first_responder(&svc.escalation_policy_id, created_at)
        .unwrap_or_else(|| {
            account.users[g.rng.random_range(0..account.users.len())]
                .id
                .clone()
        });
    // Nothing happens after `now`: a young incident's draw is clamped
    // (created_at is at least 300 s before `now`, so
    // created_at < acknowledged_at < resolved_at still holds).
    let acknowledged_at = match status {
        "acknowledged" => Some(created_at + g.secs(30, 1800)),
        "resolved" if g.chance(0.7) => Some(created_at + g.secs(30, 1800)),
        _ => None,
    }
    .map(|t| t.min(now - Duration::seconds(2)));
    let resolved_at = (status == "resolved").then(|| {
        (acknowledged_at.unwrap_or(created_at) + g.secs(300, 8 * 3600))
            .min(now - Duration::seconds(1))
    });
    let updated_at = resolved_at.or(acknowledged_at).unwrap_or(created_at);
    Incident {
        id: g.id(),
        incident_number: 0,
        title: template.replace("{svc}", &svc.name),
        service_id: svc.id.clone(),
        escalation_policy_id: svc.escalation_policy_id.clone(),
        status: status.to_owned(),
        urgency: if g.chance(0.75) { "high" } else { "low" }.to_owned(),
        created_at,
        updated_at,
        acknowledged_at,
        resolved_at,
        incident_key: g.key(),
        assignee_ids: if is_open {
            vec![responder.clone()]
        } else {
            Vec::new()
        },
        acknowledger_ids: if acknowledged_at.is_some() {
            vec![responder]
        } else {
            Vec::new()
        },
        alert_count: g.rng.random_range(1..=5),
        additional_responders: Vec::new(),
    }
}

/// 0–5 change events per service over the last 14 days (deploys, config
/// changes, rollbacks), each with a pull-request link, oldest first.
fn change_events(g: &mut Gen, services: &[Service], now: DateTime<Utc>) -> Vec<ChangeEvent> {
    let mut changes = Vec::new();
    for svc in services {
        let n = g.rng.random_range(0..=5);
        for _ in 0..n {
            let build = g.rng.random_range(100..999);
            let kind = g.rng.random_range(0..3);
            let summary = match kind {
                0 => format!("Deployed {} v1.{}.{}", svc.name, build / 10, build % 10),
                1 => format!("Config change on {}: feature flag enabled", svc.name),
                _ => format!("Rolled back {} to v1.{}.0", svc.name, build / 10),
            };
            let pr = g.rng.random_range(1..5000);
            changes.push(ChangeEvent {
                id: g.long_id(),
                summary,
                timestamp: now - g.secs(60, 14 * 86_400),
                source: Some((*CHANGE_SOURCES.choose(&mut g.rng).unwrap_or(&"ci")).to_owned()),
                service_id: svc.id.clone(),
                integration_id: Some(svc.integrations[0].id.clone()),
                links: vec![(
                    format!("https://github.example.com/acme/{}/pull/{pr}", svc.name),
                    Some(format!("Pull request #{pr}")),
                )],
                custom_details: json!({"build_number": build, "environment": "production"}),
            });
        }
    }
    changes.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.id.cmp(&b.id)));
    changes
}

/// The standards every service is scored against; `standards_for` knows
/// how each `kind` passes.
fn standards(g: &mut Gen) -> Vec<StandardDef> {
    [
        (
            "Service has a description",
            "A description gives responders context about what the service does.",
            "has_technical_service_description",
        ),
        (
            "Escalation policy has more than one level",
            "A second level catches pages the first responder misses.",
            "minimum_escalation_levels",
        ),
        (
            "Service belongs to a team",
            "A team owns the service and its on-call.",
            "has_team",
        ),
        (
            "Service auto-resolves stale incidents",
            "Auto-resolution closes incidents nobody resolved.",
            "has_auto_resolve_timeout",
        ),
        (
            "Service re-escalates unresolved acknowledgements",
            "The acknowledgement timeout re-triggers forgotten incidents.",
            "has_acknowledgement_timeout",
        ),
        (
            "Service has an Events API v2 integration",
            "Monitoring tools send events through Events API v2.",
            "has_events_api_v2_integration",
        ),
    ]
    .iter()
    .map(|(name, description, kind)| StandardDef {
        id: g.long_id(),
        name: (*name).to_owned(),
        description: (*description).to_owned(),
        kind: (*kind).to_owned(),
    })
    .collect()
}

/// Responder requests: about a quarter of the acknowledged incidents whose
/// policy has a second level pulled in the user on call there (when that
/// is someone else), who accepted 1–15 minutes after the first
/// acknowledgement, before the resolution and `now`. They make the
/// multi-responder metrics (`mean_seconds_to_engage`, `..._to_mobilize`)
/// defined for some incidents, as in a real account.
fn additional_responders(rng: &mut ChaCha8Rng, account: &mut AccountView, now: DateTime<Utc>) {
    let mut added: Vec<(usize, String, DateTime<Utc>)> = Vec::new();
    for (pos, inc) in account.incidents.iter().enumerate() {
        let Some(acked) = inc.acknowledged_at else {
            continue;
        };
        if !rng.random_bool(0.25) {
            continue;
        }
        let delay = Duration::seconds(rng.random_range(60..900));
        let latest = inc.resolved_at.unwrap_or(now) - Duration::seconds(1);
        let at = (acked + delay).min(latest);
        let second = account
            .oncalls_for(&inc.escalation_policy_id, acked, acked)
            .into_iter()
            .find(|o| o.escalation_level == 2 && !inc.acknowledger_ids.contains(&o.user_id));
        if let Some(o) = second
            && at > acked
        {
            added.push((pos, o.user_id, at));
        }
    }
    for (pos, user, at) in added {
        account.incidents[pos]
            .additional_responders
            .push((user, at));
    }
}
