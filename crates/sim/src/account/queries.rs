//! Read-only queries over the account: lookups by id, on-call entries,
//! served statuses and standards.

use chrono::{DateTime, Utc};

use super::{
    AccountView, EscalationPolicy, Incident, Oncall, Schedule, Service, StandardDef, Target, Team,
    User,
};

impl AccountView {
    /// Incidents of one service, by incident number.
    pub fn incidents_of(&self, service_id: &str) -> Vec<&Incident> {
        self.index
            .incidents_by_service
            .get(service_id)
            .map(|ps| ps.iter().map(|&p| &self.incidents[p]).collect())
            .unwrap_or_default()
    }

    /// The user on call at the lowest covered level of `ep_id` at `at`.
    pub(super) fn first_responder(&self, ep_id: &str, at: DateTime<Utc>) -> Option<String> {
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
}
