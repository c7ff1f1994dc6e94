//! The generated PagerDuty account: data model, seeded generation and the
//! queries the routes share (on-calls, statuses, standards, metrics).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Vendor id of PagerDuty's Backstage integration.
pub const BACKSTAGE_VENDOR_ID: &str = "PRO19CT";

/// A team.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    /// `P` + 6 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
}

/// A user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `P` + 6 characters.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Job title.
    pub job_title: String,
    /// Role (`user`, `admin`, ...).
    pub role: String,
    /// Teams the user belongs to.
    pub team_ids: Vec<String>,
}

/// An on-call schedule with one rotation layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// `P` + 6 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Rotation order; empty = nobody is ever on call.
    pub user_ids: Vec<String>,
    /// Start of the rotation's shift 0.
    pub rotation_start: DateTime<Utc>,
    /// Shift length in seconds.
    pub turn_length_secs: i64,
    /// Teams.
    pub team_ids: Vec<String>,
}

impl Schedule {
    /// Shifts `(start, end, user_id)` overlapping `[since, until]` (a point in
    /// time when `since == until`), oldest first, at most 200.
    pub fn shifts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
        let mut out = Vec::new();
        if self.user_ids.is_empty() || self.turn_length_secs <= 0 {
            return out;
        }
        let len = self.turn_length_secs;
        let first = (since - self.rotation_start).num_seconds().div_euclid(len);
        let mut k = first;
        while out.len() < 200 {
            let start = self.rotation_start + Duration::seconds(k * len);
            let end = start + Duration::seconds(len);
            if start > until || (start == until && since != until) {
                break;
            }
            if end > since {
                let idx = k.rem_euclid(self.user_ids.len() as i64) as usize;
                out.push((start, end, self.user_ids[idx].clone()));
            }
            k += 1;
        }
        out
    }
}

/// Target of an escalation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A user, always on call at this level.
    User(String),
    /// A schedule: whoever is on call there.
    Schedule(String),
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationRule {
    /// `P` + 6 characters.
    pub id: String,
    /// Minutes before escalating to the next level.
    pub escalation_delay_in_minutes: u32,
    /// 1–3 targets.
    pub targets: Vec<Target>,
}

/// An escalation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    /// `P` + 6 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Repeat count.
    pub num_loops: u32,
    /// Levels, level 1 first.
    pub rules: Vec<EscalationRule>,
    /// Teams.
    pub team_ids: Vec<String>,
}

/// An integration on a service.
#[derive(Clone, PartialEq)]
pub struct Integration {
    /// `P` + 6 characters.
    pub id: String,
    /// PagerDuty type, e.g. `events_api_v2_inbound_integration`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// 32-character routing key (none for email integrations). A secret in real life.
    pub integration_key: Option<String>,
    /// Vendor `(id, name)`, e.g. `("PRO19CT", "Backstage")`.
    pub vendor: Option<(String, String)>,
    /// Inbound email address (email integrations).
    pub integration_email: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field(
                "integration_key",
                &self.integration_key.as_ref().map(|_| "[redacted]"),
            )
            .field("vendor", &self.vendor)
            .field("integration_email", &self.integration_email)
            .finish()
    }
}

/// A service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `P` + 6 characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description (some have none).
    pub description: Option<String>,
    /// Configured status: `active`, `disabled` or `maintenance`. The served
    /// status of an active service is derived from its open incidents
    /// (see [`AccountView::service_status`]).
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Escalation policy.
    pub escalation_policy_id: String,
    /// Teams (0–2).
    pub team_ids: Vec<String>,
    /// Integrations.
    pub integrations: Vec<Integration>,
    /// Seconds, or none.
    pub auto_resolve_timeout: Option<u32>,
    /// Seconds, or none.
    pub acknowledgement_timeout: Option<u32>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// `P` + 6 characters.
    pub id: String,
    /// Account-wide number.
    pub incident_number: u64,
    /// Title.
    pub title: String,
    /// Service.
    pub service_id: String,
    /// Escalation policy.
    pub escalation_policy_id: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    /// `high` or `low`.
    pub urgency: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First acknowledgement.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Resolution.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The dedup key (Events API `dedup_key`).
    pub incident_key: String,
    /// Assigned users (empty when resolved).
    pub assignee_ids: Vec<String>,
    /// Users who acknowledged.
    pub acknowledger_ids: Vec<String>,
    /// Alerts grouped into the incident.
    pub alert_count: u32,
}

impl Incident {
    /// Triggered or acknowledged.
    pub fn is_open(&self) -> bool {
        self.status != "resolved"
    }
}

/// A change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// 26 characters, like PagerDuty's.
    pub id: String,
    /// Summary.
    pub summary: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Source, e.g. `github-actions`.
    pub source: Option<String>,
    /// Service.
    pub service_id: String,
    /// Integration that received it.
    pub integration_id: Option<String>,
    /// Links `(href, text)`.
    pub links: Vec<(String, Option<String>)>,
    /// Free-form details.
    pub custom_details: Value,
}

/// A service standard.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardDef {
    /// 26 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Type, e.g. `has_technical_service_description`.
    pub kind: String,
}

/// One on-call entry, as `GET /oncalls` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Oncall {
    /// Escalation policy.
    pub escalation_policy_id: String,
    /// 1-based level.
    pub escalation_level: u32,
    /// User.
    pub user_id: String,
    /// Schedule, none for a direct user target.
    pub schedule_id: Option<String>,
    /// Shift start; none = permanent.
    pub start: Option<DateTime<Utc>>,
    /// Shift end; none = permanent.
    pub end: Option<DateTime<Utc>>,
}

/// Incident metrics of one service over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMetrics {
    /// Service.
    pub service_id: String,
    /// Incidents created in the period.
    pub total_incident_count: u64,
    /// Of which acknowledged.
    pub total_incidents_acknowledged: u64,
    /// Mean seconds from creation to resolution (resolved incidents only).
    pub mean_seconds_to_resolve: Option<f64>,
    /// Mean seconds from creation to first acknowledgement.
    pub mean_seconds_to_first_ack: Option<f64>,
    /// High-urgency incidents.
    pub total_high_urgency: u64,
}

/// The whole generated account (and its changes since start, e.g. incidents
/// opened by Events API triggers).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    /// The clock base the data was generated around.
    pub generated_at: DateTime<Utc>,
    /// Teams.
    pub teams: Vec<Team>,
    /// Users.
    pub users: Vec<User>,
    /// Schedules.
    pub schedules: Vec<Schedule>,
    /// Escalation policies.
    pub escalation_policies: Vec<EscalationPolicy>,
    /// Services, sorted by name.
    pub services: Vec<Service>,
    /// Incidents, by incident number.
    pub incidents: Vec<Incident>,
    /// Change events, oldest first.
    pub change_events: Vec<ChangeEvent>,
    /// Standards applied to every service.
    pub standards: Vec<StandardDef>,
    /// Account abilities (`GET /abilities`).
    pub abilities: Vec<String>,
    /// Lookup tables, rebuilt by [`AccountView::reindex`].
    index: Index,
}

/// Id → position tables so lookups stay fast for large accounts.
#[derive(Clone, Default, PartialEq)]
struct Index {
    services: BTreeMap<String, usize>,
    users: BTreeMap<String, usize>,
    teams: BTreeMap<String, usize>,
    schedules: BTreeMap<String, usize>,
    escalation_policies: BTreeMap<String, usize>,
    incidents: BTreeMap<String, usize>,
    service_by_key: BTreeMap<String, usize>,
    incidents_by_service: BTreeMap<String, Vec<usize>>,
    services_by_policy: BTreeMap<String, Vec<usize>>,
}

impl std::fmt::Debug for Index {
    // The tables hold integration keys: keep them out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Index { .. }")
    }
}

fn positions<T>(items: &[T], id: impl Fn(&T) -> &str) -> BTreeMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| (id(x).to_owned(), i))
        .collect()
}

const ID_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const KEY_CHARS: &[u8] = b"0123456789abcdef";

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

    fn long_id(&mut self) -> String {
        loop {
            let id = format!("01{}", self.chars(ID_CHARS, 24));
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }

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

const TEAM_NAMES: &[&str] = &[
    "Platform",
    "Payments",
    "Search",
    "Identity",
    "Storefront",
    "Data",
    "Mobile",
    "SRE",
    "Growth",
    "Infrastructure",
    "Messaging",
    "Logistics",
];
const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Alan",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Guido",
    "Sophie",
    "Bjarne",
    "Anita",
    "Donald",
    "Jean",
    "Leslie",
    "Shafi",
    "Niklaus",
    "Edsger",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Turing",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "van Rossum",
    "Wilson",
    "Stroustrup",
    "Borg",
    "Knuth",
    "Sammet",
    "Lamport",
    "Goldwasser",
    "Wirth",
    "Dijkstra",
];
const SVC_A: &[&str] = &[
    "checkout",
    "payments",
    "search",
    "catalog",
    "auth",
    "billing",
    "inventory",
    "shipping",
    "notifications",
    "recommendations",
    "profile",
    "gateway",
    "orders",
    "pricing",
    "reviews",
    "analytics",
    "media",
    "ledger",
    "identity",
    "messaging",
];
const SVC_B: &[&str] = &[
    "api",
    "service",
    "worker",
    "db",
    "frontend",
    "queue",
    "cache",
    "scheduler",
    "ingest",
    "web",
];
const TIME_ZONES: &[&str] = &[
    "Etc/UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Europe/London",
];
const JOBS: &[&str] = &[
    "Software Engineer",
    "Site Reliability Engineer",
    "Engineering Manager",
    "Staff Engineer",
    "Platform Engineer",
];
const INCIDENT_TITLES: &[&str] = &[
    "High error rate on {svc}",
    "Latency above SLO on {svc}",
    "{svc} health check failing",
    "5xx spike in {svc}",
    "Queue backlog growing in {svc}",
    "Disk usage above 90% on {svc} hosts",
    "Certificate for {svc} expires in 7 days",
    "Memory pressure on {svc} pods",
];
const CHANGE_SOURCES: &[&str] = &["github-actions", "argo-cd", "jenkins", "terraform-cloud"];

fn title(template: &str, svc: &str) -> String {
    template.replace("{svc}", svc)
}

impl AccountView {
    /// Generates the account for `seed` with `services` services around `now`.
    pub fn generate(seed: u64, services: usize, now: DateTime<Utc>) -> Self {
        let now = Utc
            .timestamp_opt(now.timestamp(), 0)
            .single()
            .unwrap_or(now);
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            used: BTreeSet::new(),
        };

        // Teams.
        let n_teams = (services / 5).clamp(2, 24);
        let teams: Vec<Team> = (0..n_teams)
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
            .collect();

        // Users.
        let n_users = (services * 3 / 4).max(8);
        let mut emails = BTreeSet::new();
        let users: Vec<User> = (0..n_users)
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
            .collect();

        // Schedules; schedule 0 is always empty (a level nobody covers).
        let n_sched = (services / 2).max(3);
        let schedules: Vec<Schedule> = (0..n_sched)
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
            .collect();
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

        // Escalation policies.
        let n_eps = (services * 4 / 5).max(1);
        let mut escalation_policies = Vec::with_capacity(n_eps);
        for i in 0..n_eps {
            let levels = g.rng.random_range(1..=3usize);
            let mut rules = Vec::with_capacity(levels);
            // Every 7th policy starts with a level nobody covers.
            let empty_first = i % 7 == 3 && !empty_schedules.is_empty();
            // Every 5th policy has the same user on two levels.
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
                    escalation_delay_in_minutes: *[10u32, 15, 30, 60]
                        .choose(&mut g.rng)
                        .unwrap_or(&30),
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

        // Services.
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
            let mut integrations = vec![Integration {
                id: g.id(),
                kind: "events_api_v2_inbound_integration".to_owned(),
                name: "Events API V2".to_owned(),
                integration_key: Some(g.key()),
                vendor: None,
                integration_email: None,
                created_at: created_at + Duration::hours(1),
            }];
            if i % 3 == 0 || g.chance(0.15) {
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
                    integration_email: Some(format!("{name}@sim.pagerduty.com")),
                    created_at: created_at + Duration::days(5),
                });
            }
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

        let mut account = AccountView {
            generated_at: now,
            teams,
            users,
            schedules,
            escalation_policies,
            services: Vec::new(),
            incidents: Vec::new(),
            change_events: Vec::new(),
            standards: Vec::new(),
            abilities: [
                "teams",
                "read_only_users",
                "service_support_hours",
                "urgencies",
                "change_events",
                "service_standards",
                "analytics",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            index: Index::default(),
        };
        account.services = svcs;
        account.reindex();

        // Incidents.
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
                let is_open = k < open;
                // The first service always has an open incident older than 30 days.
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
                // Nothing happens after `now`: a young incident's draw is
                // clamped (created_at is at least 300 s before `now`, so
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
                incidents.push(Incident {
                    id: g.id(),
                    incident_number: 0,
                    title: title(template, &svc.name),
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
                });
            }
        }
        incidents.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        for (n, inc) in incidents.iter_mut().enumerate() {
            inc.incident_number = 1000 + n as u64 + 1;
        }
        account.incidents = incidents;

        // Change events.
        let mut changes = Vec::new();
        for svc in &account.services {
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
        account.change_events = changes;

        account.standards = [
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
        .collect();

        account
            .services
            .sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        account.reindex();
        account
    }

    /// Rebuilds the lookup tables; call after changing the public vectors.
    pub fn reindex(&mut self) {
        let mut index = Index {
            services: positions(&self.services, |s| &s.id),
            users: positions(&self.users, |u| &u.id),
            teams: positions(&self.teams, |t| &t.id),
            schedules: positions(&self.schedules, |s| &s.id),
            escalation_policies: positions(&self.escalation_policies, |e| &e.id),
            incidents: positions(&self.incidents, |i| &i.id),
            ..Index::default()
        };
        for (pos, svc) in self.services.iter().enumerate() {
            for key in svc
                .integrations
                .iter()
                .filter_map(|i| i.integration_key.as_ref())
            {
                index.service_by_key.insert(key.clone(), pos);
            }
            index
                .services_by_policy
                .entry(svc.escalation_policy_id.clone())
                .or_default()
                .push(pos);
        }
        for (pos, inc) in self.incidents.iter().enumerate() {
            index
                .incidents_by_service
                .entry(inc.service_id.clone())
                .or_default()
                .push(pos);
        }
        self.index = index;
    }

    /// Appends an incident and indexes it.
    pub fn push_incident(&mut self, incident: Incident) {
        let pos = self.incidents.len();
        self.index.incidents.insert(incident.id.clone(), pos);
        self.index
            .incidents_by_service
            .entry(incident.service_id.clone())
            .or_default()
            .push(pos);
        self.incidents.push(incident);
    }

    /// Incidents of one service, by incident number.
    pub fn incidents_of(&self, service_id: &str) -> Vec<&Incident> {
        self.index
            .incidents_by_service
            .get(service_id)
            .map(|ps| ps.iter().map(|&p| &self.incidents[p]).collect())
            .unwrap_or_default()
    }

    /// The user on call at the lowest covered level of `ep_id` at `at`.
    fn first_responder(&self, ep_id: &str, at: DateTime<Utc>) -> Option<String> {
        let mut entries = self.oncalls_for(ep_id, at, at);
        entries.sort_by_key(|o| o.escalation_level);
        entries.into_iter().next().map(|o| o.user_id)
    }

    /// Service by id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.index.services.get(id).map(|&p| &self.services[p])
    }

    /// Service by exact name.
    pub fn service_by_name(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Service owning the integration key.
    pub fn service_by_integration_key(&self, key: &str) -> Option<&Service> {
        self.index
            .service_by_key
            .get(key)
            .map(|&p| &self.services[p])
    }

    /// Escalation policy by id.
    pub fn escalation_policy(&self, id: &str) -> Option<&EscalationPolicy> {
        self.index
            .escalation_policies
            .get(id)
            .map(|&p| &self.escalation_policies[p])
    }

    /// User by id.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.index.users.get(id).map(|&p| &self.users[p])
    }

    /// Team by id.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.index.teams.get(id).map(|&p| &self.teams[p])
    }

    /// Schedule by id.
    pub fn schedule(&self, id: &str) -> Option<&Schedule> {
        self.index.schedules.get(id).map(|&p| &self.schedules[p])
    }

    /// Incident by id.
    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.index.incidents.get(id).map(|&p| &self.incidents[p])
    }

    /// Services using the escalation policy.
    pub fn services_of_policy(&self, ep_id: &str) -> Vec<&Service> {
        self.index
            .services_by_policy
            .get(ep_id)
            .map(|ps| ps.iter().map(|&p| &self.services[p]).collect())
            .unwrap_or_default()
    }

    /// Open (triggered or acknowledged) incidents of a service, oldest first.
    pub fn open_incidents(&self, service_id: &str) -> Vec<&Incident> {
        self.incidents_of(service_id)
            .into_iter()
            .filter(|i| i.is_open())
            .collect()
    }

    /// The served status: `disabled`/`maintenance` as configured, else
    /// `critical` with a triggered incident, `warning` with an acknowledged
    /// one, `active` otherwise.
    pub fn service_status(&self, service_id: &str) -> String {
        let Some(svc) = self.service(service_id) else {
            return "active".to_owned();
        };
        if svc.status != "active" {
            return svc.status.clone();
        }
        let open = self.open_incidents(service_id);
        if open.iter().any(|i| i.status == "triggered") {
            "critical".to_owned()
        } else if !open.is_empty() {
            "warning".to_owned()
        } else {
            "active".to_owned()
        }
    }

    /// Newest incident creation time of a service.
    pub fn last_incident_timestamp(&self, service_id: &str) -> Option<DateTime<Utc>> {
        self.incidents_of(service_id)
            .iter()
            .map(|i| i.created_at)
            .max()
    }

    /// On-call entries of one escalation policy over `[since, until]`: one
    /// entry per level and direct user target (permanent) and one per
    /// schedule shift. Ordered by level, then target order, then start.
    pub fn oncalls_for(
        &self,
        ep_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<Oncall> {
        let mut out = Vec::new();
        let Some(ep) = self.escalation_policy(ep_id) else {
            return out;
        };
        for (level, rule) in ep.rules.iter().enumerate() {
            for target in &rule.targets {
                match target {
                    Target::User(u) => out.push(Oncall {
                        escalation_policy_id: ep.id.clone(),
                        escalation_level: level as u32 + 1,
                        user_id: u.clone(),
                        schedule_id: None,
                        start: None,
                        end: None,
                    }),
                    Target::Schedule(s) => {
                        if let Some(schedule) = self.schedule(s) {
                            for (start, end, user) in schedule.shifts(since, until) {
                                out.push(Oncall {
                                    escalation_policy_id: ep.id.clone(),
                                    escalation_level: level as u32 + 1,
                                    user_id: user,
                                    schedule_id: Some(schedule.id.clone()),
                                    start: Some(start),
                                    end: Some(end),
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Current on-call entries of one escalation policy at `at`.
    pub fn current_oncalls(&self, ep_id: &str, at: DateTime<Utc>) -> Vec<Oncall> {
        self.oncalls_for(ep_id, at, at)
    }

    /// Pass/fail of every standard for one service.
    pub fn standards_for(&self, service_id: &str) -> Vec<(&StandardDef, bool)> {
        let Some(svc) = self.service(service_id) else {
            return Vec::new();
        };
        let levels = self
            .escalation_policy(&svc.escalation_policy_id)
            .map_or(0, |e| e.rules.len());
        self.standards
            .iter()
            .map(|s| {
                let pass = match s.kind.as_str() {
                    "has_technical_service_description" => svc.description.is_some(),
                    "minimum_escalation_levels" => levels > 1,
                    "has_team" => !svc.team_ids.is_empty(),
                    "has_auto_resolve_timeout" => svc.auto_resolve_timeout.is_some(),
                    "has_acknowledgement_timeout" => svc.acknowledgement_timeout.is_some(),
                    "has_events_api_v2_integration" => svc
                        .integrations
                        .iter()
                        .any(|i| i.kind == "events_api_v2_inbound_integration"),
                    _ => false,
                };
                (s, pass)
            })
            .collect()
    }

    /// Incident metrics per service for incidents created in `[start, end)`,
    /// optionally only of one urgency; services without incidents are left out.
    pub fn incident_metrics(
        &self,
        service_ids: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        urgency: Option<&str>,
    ) -> Vec<ServiceMetrics> {
        let mut by_service: BTreeMap<&str, Vec<&Incident>> = BTreeMap::new();
        for inc in &self.incidents {
            if inc.created_at < start || inc.created_at >= end {
                continue;
            }
            if !service_ids.is_empty() && !service_ids.contains(&inc.service_id) {
                continue;
            }
            if urgency.is_some_and(|u| u != inc.urgency) {
                continue;
            }
            by_service.entry(&inc.service_id).or_default().push(inc);
        }
        let mean = |xs: Vec<f64>| {
            if xs.is_empty() {
                None
            } else {
                Some(xs.iter().sum::<f64>() / xs.len() as f64)
            }
        };
        by_service
            .into_iter()
            .map(|(service_id, incs)| ServiceMetrics {
                service_id: service_id.to_owned(),
                total_incident_count: incs.len() as u64,
                total_incidents_acknowledged: incs
                    .iter()
                    .filter(|i| i.acknowledged_at.is_some())
                    .count() as u64,
                mean_seconds_to_resolve: mean(
                    incs.iter()
                        .filter_map(|i| {
                            i.resolved_at
                                .map(|r| (r - i.created_at).num_seconds() as f64)
                        })
                        .collect(),
                ),
                mean_seconds_to_first_ack: mean(
                    incs.iter()
                        .filter_map(|i| {
                            i.acknowledged_at
                                .map(|a| (a - i.created_at).num_seconds() as f64)
                        })
                        .collect(),
                ),
                total_high_urgency: incs.iter().filter(|i| i.urgency == "high").count() as u64,
            })
            .collect()
    }
}
