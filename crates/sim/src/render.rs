//! JSON shapes of PagerDuty's REST objects, built from the account.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::account::{
    AccountView, ChangeEvent, EscalationPolicy, Incident, Integration, Oncall, Schedule, Service,
    Target, Team, User,
};

/// Where `html_url`s point.
pub(crate) const HTML_BASE: &str = "https://sim.pagerduty.com";

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// Renders account objects with `self` URLs under `base`, as of `now`
/// (a schedule's final schedule starts then).
pub(crate) struct Render<'a> {
    pub account: &'a AccountView,
    pub base: &'a str,
    pub now: DateTime<Utc>,
}

impl Render<'_> {
    fn reference(&self, kind: &str, id: &str, summary: &str, api: &str, html: &str) -> Value {
        json!({
            "id": id,
            "type": format!("{kind}_reference"),
            "summary": summary,
            "self": format!("{}/{api}/{id}", self.base),
            "html_url": format!("{HTML_BASE}/{html}/{id}"),
        })
    }

    pub fn team_ref(&self, id: &str) -> Value {
        let name = self.account.team(id).map_or("", |t| t.name.as_str());
        self.reference("team", id, name, "teams", "teams")
    }

    pub fn team(&self, t: &Team) -> Value {
        json!({
            "id": t.id, "type": "team", "summary": t.name,
            "self": format!("{}/teams/{}", self.base, t.id),
            "html_url": format!("{HTML_BASE}/teams/{}", t.id),
            "name": t.name, "description": t.description,
            "default_role": "manager",
        })
    }

    pub fn user_ref(&self, id: &str) -> Value {
        let name = self.account.user(id).map_or("", |u| u.name.as_str());
        self.reference("user", id, name, "users", "users")
    }

    pub fn user(&self, u: &User) -> Value {
        json!({
            "id": u.id, "type": "user", "summary": u.name,
            "self": format!("{}/users/{}", self.base, u.id),
            "html_url": format!("{HTML_BASE}/users/{}", u.id),
            "name": u.name, "email": u.email, "time_zone": u.time_zone,
            "color": "purple", "role": u.role, "avatar_url": u.avatar_url,
            "description": "", "invitation_sent": false, "job_title": u.job_title,
            "teams": u.team_ids.iter().map(|t| self.team_ref(t)).collect::<Vec<_>>(),
            "contact_methods": [], "notification_rules": [],
        })
    }

    pub fn schedule_ref(&self, id: &str) -> Value {
        let name = self.account.schedule(id).map_or("", |s| s.name.as_str());
        self.reference("schedule", id, name, "schedules", "schedules")
    }

    pub fn schedule(&self, s: &Schedule) -> Value {
        let now = self.now;
        let eps: Vec<Value> = self
            .account
            .escalation_policies
            .iter()
            .filter(|e| {
                e.rules
                    .iter()
                    .any(|r| r.targets.contains(&Target::Schedule(s.id.clone())))
            })
            .map(|e| self.ep_ref(&e.id))
            .collect();
        let entries: Vec<Value> = s
            .shifts(now, now + chrono::Duration::days(7))
            .into_iter()
            .map(|(start, end, user)| {
                json!({"start": ts(start), "end": ts(end), "user": self.user_ref(&user)})
            })
            .collect();
        json!({
            "id": s.id, "type": "schedule", "summary": s.name,
            "self": format!("{}/schedules/{}", self.base, s.id),
            "html_url": format!("{HTML_BASE}/schedules/{}", s.id),
            "name": s.name, "time_zone": s.time_zone, "description": format!("{} on-call", s.name),
            "users": s.user_ids.iter().map(|u| self.user_ref(u)).collect::<Vec<_>>(),
            "escalation_policies": eps,
            "teams": s.team_ids.iter().map(|t| self.team_ref(t)).collect::<Vec<_>>(),
            "final_schedule": {"name": "Final Schedule", "rendered_schedule_entries": entries},
        })
    }

    pub fn ep_ref(&self, id: &str) -> Value {
        let name = self
            .account
            .escalation_policy(id)
            .map_or("", |e| e.name.as_str());
        self.reference(
            "escalation_policy",
            id,
            name,
            "escalation_policies",
            "escalation_policies",
        )
    }

    /// An escalation target: a reference, or with `include[]=targets` the
    /// same fields typed `user`/`schedule` (what PagerDuty's
    /// `EscalationTargetReference` allows).
    fn target(&self, t: &Target, included: bool) -> Value {
        let mut v = match t {
            Target::User(id) => self.user_ref(id),
            Target::Schedule(id) => self.schedule_ref(id),
        };
        if included {
            let kind = match t {
                Target::User(_) => "user",
                Target::Schedule(_) => "schedule",
            };
            v["type"] = json!(kind);
        }
        v
    }

    /// `include` may hold `services`, `teams`, `targets`.
    pub fn escalation_policy(&self, e: &EscalationPolicy, include: &[String]) -> Value {
        let inc = |s: &str| include.iter().any(|i| i == s);
        let services: Vec<Value> = self
            .account
            .services_of_policy(&e.id)
            .into_iter()
            .map(|s| {
                if inc("services") {
                    self.service(s, &[])
                } else {
                    self.service_ref(&s.id)
                }
            })
            .collect();
        let teams: Vec<Value> = e
            .team_ids
            .iter()
            .map(|t| match (inc("teams"), self.account.team(t)) {
                (true, Some(team)) => self.team(team),
                _ => self.team_ref(t),
            })
            .collect();
        json!({
            "id": e.id, "type": "escalation_policy", "summary": e.name,
            "self": format!("{}/escalation_policies/{}", self.base, e.id),
            "html_url": format!("{HTML_BASE}/escalation_policies/{}", e.id),
            "name": e.name, "description": e.description, "num_loops": e.num_loops,
            "on_call_handoff_notifications": "if_has_services",
            "escalation_rules": e.rules.iter().map(|r| json!({
                "id": r.id,
                "escalation_delay_in_minutes": r.escalation_delay_in_minutes,
                "targets": r.targets.iter().map(|t| self.target(t, inc("targets"))).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "services": services,
            "teams": teams,
        })
    }

    pub fn service_ref(&self, id: &str) -> Value {
        let name = self.account.service(id).map_or("", |s| s.name.as_str());
        self.reference("service", id, name, "services", "service-directory")
    }

    fn integration(&self, svc: &Service, i: &Integration, full: bool) -> Value {
        let self_url = format!("{}/services/{}/integrations/{}", self.base, svc.id, i.id);
        let html_url = format!("{HTML_BASE}/services/{}/integrations/{}", svc.id, i.id);
        if !full {
            return json!({
                "id": i.id, "type": format!("{}_reference", i.kind), "summary": i.name,
                "self": self_url, "html_url": html_url,
            });
        }
        let mut v = json!({
            "id": i.id, "type": i.kind, "summary": i.name, "self": self_url, "html_url": html_url,
            "name": i.name, "service": self.service_ref(&svc.id), "created_at": ts(i.created_at),
        });
        if let Some((id, name)) = &i.vendor {
            v["vendor"] = json!({
                "id": id, "type": "vendor_reference", "summary": name,
                "self": format!("{}/vendors/{id}", self.base),
                "html_url": null,
            });
        }
        if let Some(key) = &i.integration_key {
            v["integration_key"] = json!(key);
        }
        if let Some(email) = &i.integration_email {
            v["integration_email"] = json!(email);
        }
        v
    }

    /// A full integration, as `GET /services/{id}/integrations/{id}` and
    /// the create route answer it; `include` may hold `services` (the full
    /// service) and `vendors` (the full vendor).
    pub fn integration_object(&self, svc: &Service, i: &Integration, include: &[String]) -> Value {
        let inc = |x: &str| include.iter().any(|v| v == x);
        let mut v = self.integration(svc, i, true);
        if inc("services") {
            v["service"] = self.service(svc, &[]);
        }
        if inc("vendors")
            && let Some(vendor) = i
                .vendor
                .as_ref()
                .and_then(|(id, _)| crate::account::vendor(id))
        {
            v["vendor"] = json!({
                "id": vendor.id, "type": "vendor", "summary": vendor.name,
                "self": format!("{}/vendors/{}", self.base, vendor.id),
                "html_url": null,
                "name": vendor.name, "description": vendor.description,
                "website_url": vendor.website_url,
            });
        }
        v
    }

    /// `include` may hold `escalation_policies`, `teams`, `integrations`.
    pub fn service(&self, s: &Service, include: &[String]) -> Value {
        let inc = |x: &str| include.iter().any(|i| i == x);
        let ep = match (
            inc("escalation_policies"),
            self.account.escalation_policy(&s.escalation_policy_id),
        ) {
            (true, Some(e)) => self.escalation_policy(e, &[]),
            _ => self.ep_ref(&s.escalation_policy_id),
        };
        let teams: Vec<Value> = s
            .team_ids
            .iter()
            .map(|t| match (inc("teams"), self.account.team(t)) {
                (true, Some(team)) => self.team(team),
                _ => self.team_ref(t),
            })
            .collect();
        let integrations: Vec<Value> = s
            .integrations
            .iter()
            .map(|i| self.integration(s, i, inc("integrations")))
            .collect();
        let mut v = json!({
            "id": s.id, "type": "service", "summary": s.name,
            "self": format!("{}/services/{}", self.base, s.id),
            "html_url": format!("{HTML_BASE}/service-directory/{}", s.id),
            "name": s.name,
            "auto_resolve_timeout": s.auto_resolve_timeout,
            "acknowledgement_timeout": s.acknowledgement_timeout,
            "created_at": ts(s.created_at),
            "status": self.account.service_status(&s.id),
            "escalation_policy": ep,
            "response_play": null,
            "teams": teams,
            "integrations": integrations,
            "incident_urgency_rule": {"type": "constant", "urgency": "high"},
            "scheduled_actions": [],
            "addons": [],
            "alert_creation": "create_alerts_and_incidents",
            "alert_grouping_parameters": {"type": null},
        });
        // PagerDuty's schema has no null for these: absent, not null, when unset
        // (no support hours are configured in the simulator).
        if let Some(d) = &s.description {
            v["description"] = json!(d);
        }
        if let Some(t) = self.account.last_incident_timestamp(&s.id) {
            v["last_incident_timestamp"] = json!(ts(t));
        }
        v
    }

    /// `include` may hold `services`, `escalation_policies`, `assignees`,
    /// `users`, `acknowledgers`, `teams`.
    pub fn incident(&self, i: &Incident, include: &[String]) -> Value {
        let inc = |x: &str| include.iter().any(|v| v == x);
        let user = |id: &str, full: bool| match (full, self.account.user(id)) {
            (true, Some(u)) => self.user(u),
            _ => self.user_ref(id),
        };
        let svc = self.account.service(&i.service_id);
        let service = match (inc("services"), svc) {
            (true, Some(s)) => self.service(s, &[]),
            _ => self.service_ref(&i.service_id),
        };
        let ep = match (
            inc("escalation_policies"),
            self.account.escalation_policy(&i.escalation_policy_id),
        ) {
            (true, Some(e)) => self.escalation_policy(e, &[]),
            _ => self.ep_ref(&i.escalation_policy_id),
        };
        let teams: Vec<Value> = svc
            .map(|s| s.team_ids.clone())
            .unwrap_or_default()
            .iter()
            .map(|t| match (inc("teams"), self.account.team(t)) {
                (true, Some(team)) => self.team(team),
                _ => self.team_ref(t),
            })
            .collect();
        let full_assignee = inc("assignees") || inc("users");
        let full_ack = inc("acknowledgers") || inc("users");
        let last_change = i.resolved_at.or(i.acknowledged_at).unwrap_or(i.created_at);
        let (triggered, resolved) = if i.is_open() {
            (i.alert_count, 0)
        } else {
            (0, i.alert_count)
        };
        let mut assignees: Vec<&str> = i.assignee_ids.iter().map(String::as_str).collect();
        let mut acknowledgements: Vec<Value> = i
            .acknowledger_ids
            .iter()
            .map(|a| json!({"at": opt_ts(i.acknowledged_at), "acknowledger": user(a, full_ack)}))
            .collect();
        for (responder, at) in &i.additional_responders {
            acknowledgements
                .push(json!({"at": ts(*at), "acknowledger": user(responder, full_ack)}));
            if i.is_open() && !assignees.contains(&responder.as_str()) {
                assignees.push(responder);
            }
        }
        // No priorities or conference bridges in the simulator: PagerDuty's
        // schema has no null for them, so they are left out.
        json!({
            "id": i.id, "type": "incident",
            "summary": format!("[#{}] {}", i.incident_number, i.title),
            "self": format!("{}/incidents/{}", self.base, i.id),
            "html_url": format!("{HTML_BASE}/incidents/{}", i.id),
            "incident_number": i.incident_number,
            "title": i.title,
            "created_at": ts(i.created_at), "updated_at": ts(i.updated_at),
            "status": i.status, "incident_key": i.incident_key,
            "service": service,
            "assignments": assignees.iter().map(|a| json!({
                "at": ts(i.created_at), "assignee": user(a, full_assignee),
            })).collect::<Vec<_>>(),
            "assigned_via": "escalation_policy",
            "last_status_change_at": ts(last_change),
            "resolved_at": opt_ts(i.resolved_at),
            "alert_counts": {"all": i.alert_count, "triggered": triggered, "resolved": resolved},
            "is_mergeable": true,
            "escalation_policy": ep,
            "teams": teams,
            "pending_actions": [],
            "acknowledgements": acknowledgements,
            "alert_grouping": null,
            "last_status_change_by": self.service_ref(&i.service_id),
            "urgency": i.urgency,
        })
    }

    /// An incident as v3 webhooks carry it in `event.data` (PagerDuty's
    /// "incident" event data type: references only, `number` for
    /// `incident_number`, `assignees` for assignments).
    pub fn webhook_incident(&self, i: &Incident) -> Value {
        let teams: Vec<Value> = self
            .account
            .service(&i.service_id)
            .map(|s| s.team_ids.iter().map(|t| self.team_ref(t)).collect())
            .unwrap_or_default();
        let mut assignees: Vec<&str> = i.assignee_ids.iter().map(String::as_str).collect();
        if i.is_open() {
            for (u, _) in &i.additional_responders {
                if !assignees.contains(&u.as_str()) {
                    assignees.push(u);
                }
            }
        }
        json!({
            "id": i.id, "type": "incident",
            "self": format!("{}/incidents/{}", self.base, i.id),
            "html_url": format!("{HTML_BASE}/incidents/{}", i.id),
            "number": i.incident_number,
            "status": i.status,
            "incident_key": i.incident_key,
            "created_at": ts(i.created_at),
            "title": i.title,
            "service": self.service_ref(&i.service_id),
            "assignees": assignees.iter().map(|u| self.user_ref(u)).collect::<Vec<_>>(),
            "escalation_policy": self.ep_ref(&i.escalation_policy_id),
            "teams": teams,
            "priority": null,
            "urgency": i.urgency,
            "conference_bridge": null,
            "resolve_reason": null,
        })
    }

    /// `include` may hold `users`, `escalation_policies`, `schedules`.
    pub fn oncall(&self, o: &Oncall, include: &[String]) -> Value {
        let inc = |x: &str| include.iter().any(|v| v == x);
        let user = match (inc("users"), self.account.user(&o.user_id)) {
            (true, Some(u)) => self.user(u),
            _ => self.user_ref(&o.user_id),
        };
        let ep = match (
            inc("escalation_policies"),
            self.account.escalation_policy(&o.escalation_policy_id),
        ) {
            (true, Some(e)) => self.escalation_policy(e, &[]),
            _ => self.ep_ref(&o.escalation_policy_id),
        };
        let schedule = match &o.schedule_id {
            None => Value::Null,
            Some(id) => match (inc("schedules"), self.account.schedule(id)) {
                (true, Some(s)) => self.schedule(s),
                _ => self.schedule_ref(id),
            },
        };
        let mut v = json!({
            "escalation_policy": ep,
            "escalation_level": o.escalation_level,
            "user": user,
            "start": opt_ts(o.start),
            "end": opt_ts(o.end),
        });
        // A direct user target has no schedule; PagerDuty's schema has no null.
        if !schedule.is_null() {
            v["schedule"] = schedule;
        }
        v
    }

    pub fn change_event(&self, c: &ChangeEvent) -> Value {
        json!({
            "id": c.id, "type": "change_event", "summary": c.summary,
            "timestamp": ts(c.timestamp), "source": c.source,
            "integration": c.integration_id.as_ref().map_or(Value::Null, |i| json!({
                "id": i, "type": "inbound_integration_reference",
            })),
            "services": [{
                "id": c.service_id, "type": "service_reference",
                "summary": self.account.service(&c.service_id).map(|s| s.name.clone()),
                "self": format!("{}/services/{}", self.base, c.service_id),
                "html_url": format!("{HTML_BASE}/service-directory/{}", c.service_id),
            }],
            "custom_details": c.custom_details,
            "links": c.links.iter().map(|(href, text)| json!({"href": href, "text": text})).collect::<Vec<_>>(),
            "html_url": format!("{HTML_BASE}/change_events/{}", c.id),
        })
    }

    pub fn standards(&self, service_id: &str) -> Value {
        let results = self.account.standards_for(service_id);
        let passing = results.iter().filter(|(_, p)| *p).count();
        json!({
            "resource_id": service_id,
            "resource_type": "technical_service",
            "score": {"passing": passing, "total": results.len()},
            "standards": results.iter().map(|(s, pass)| json!({
                "active": true, "description": s.description, "id": s.id,
                "name": s.name, "pass": pass, "type": s.kind,
            })).collect::<Vec<_>>(),
        })
    }
}
