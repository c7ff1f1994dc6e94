//! What a v3 webhook event means for the cards: which sections of which
//! service to drop. The payload is never patched into a card (it is not a
//! whole card); the sections are read again, coalesced and batched.

use cards::Section;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The incident events (PagerDuty's v3 list). Every one changes what the
/// incidents section shows (status, assignees, priority, counts).
pub const INCIDENT_EVENTS: &[&str] = &[
    "incident.acknowledged",
    "incident.annotated",
    "incident.delegated",
    "incident.escalated",
    "incident.priority_updated",
    "incident.reassigned",
    "incident.reopened",
    "incident.resolved",
    "incident.responder.added",
    "incident.responder.replied",
    "incident.status_update_published",
    "incident.triggered",
    "incident.unacknowledged",
];

/// The service events.
pub const SERVICE_EVENTS: &[&str] = &["service.created", "service.deleted", "service.updated"];

/// What `dutycard webhooks subscribe` asks for: everything above.
pub fn subscribed_events() -> Vec<&'static str> {
    INCIDENT_EVENTS
        .iter()
        .chain(SERVICE_EVENTS)
        .copied()
        .collect()
}

/// Incident events after which who is paged may differ from what on-call
/// showed (an escalation moves to the next level, a reassignment or
/// delegation to other people): on-call is read again too.
const ASSIGNMENT_EVENTS: &[&str] = &[
    "incident.delegated",
    "incident.escalated",
    "incident.reassigned",
];

/// `{"event": {...}}`, the fields we use.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub event: Event,
}

/// A v3 event.
#[derive(Debug, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub id: Option<String>,
    pub event_type: String,
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `pagey.ping`: answer 2xx, nothing else.
    Ping,
    /// Drop these sections of this service; `lists` also drops the services
    /// lists and integration key mappings (a service event).
    Invalidate {
        service_id: String,
        sections: Vec<Section>,
        lists: bool,
    },
    /// Correctly signed but unusable: answered 2xx (a 4xx would make
    /// PagerDuty drop it and, after three, disable the subscription) and
    /// logged with this reason.
    Ignore(&'static str),
}

impl Event {
    /// The event type as a metric label: one of the known types, else `other`
    /// (label values stay a closed set whatever a sender invents).
    pub fn type_label(&self) -> &'static str {
        label(&self.event_type)
    }

    /// What the event asks of the cards.
    pub fn action(&self) -> Action {
        let t = self.event_type.as_str();
        if t == "pagey.ping" {
            return Action::Ping;
        }
        let service_id = |v: &serde_json::Value| {
            v.as_str()
                .filter(|id| pagerduty::ids::is_pagerduty_id(id))
                .map(str::to_owned)
        };
        if INCIDENT_EVENTS.contains(&t) {
            let Some(id) = service_id(&self.data["service"]["id"]) else {
                return Action::Ignore("no_service");
            };
            let mut sections = vec![Section::Incidents];
            if ASSIGNMENT_EVENTS.contains(&t) {
                sections.push(Section::Oncall);
            }
            return Action::Invalidate {
                service_id: id,
                sections,
                lists: false,
            };
        }
        if SERVICE_EVENTS.contains(&t) {
            let Some(id) = service_id(&self.data["id"]) else {
                return Action::Ignore("no_service");
            };
            return Action::Invalidate {
                service_id: id,
                // The escalation policy may have changed with the service,
                // and with it who is on call.
                sections: vec![Section::Service, Section::Oncall],
                lists: true,
            };
        }
        Action::Ignore("unknown_event_type")
    }
}

/// See [`Event::type_label`].
pub fn label(event_type: &str) -> &'static str {
    INCIDENT_EVENTS
        .iter()
        .chain(SERVICE_EVENTS)
        .chain(&["pagey.ping"])
        .find(|t| **t == event_type)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(event_type: &str, data: serde_json::Value) -> Event {
        serde_json::from_value(json!({"event_type": event_type, "data": data})).unwrap()
    }

    #[test]
    fn incident_events_drop_the_services_incidents_and_assignment_ones_on_call() {
        let data = json!({"id": "Q1", "service": {"id": "PSVC1", "type": "service_reference"}});
        assert_eq!(
            event("incident.triggered", data.clone()).action(),
            Action::Invalidate {
                service_id: "PSVC1".into(),
                sections: vec![Section::Incidents],
                lists: false
            }
        );
        assert_eq!(
            event("incident.escalated", data).action(),
            Action::Invalidate {
                service_id: "PSVC1".into(),
                sections: vec![Section::Incidents, Section::Oncall],
                lists: false
            }
        );
    }

    #[test]
    fn service_events_drop_the_service_and_the_lists() {
        assert_eq!(
            event("service.updated", json!({"id": "PSVC2", "type": "service"})).action(),
            Action::Invalidate {
                service_id: "PSVC2".into(),
                sections: vec![Section::Service, Section::Oncall],
                lists: true
            }
        );
    }

    #[test]
    fn unusable_events_are_ignored_with_a_reason() {
        assert_eq!(event("pagey.ping", json!(null)).action(), Action::Ping);
        assert_eq!(
            event("incident.frobnicated", json!({})).action(),
            Action::Ignore("unknown_event_type")
        );
        assert_eq!(
            event("incident.frobnicated", json!({})).type_label(),
            "other"
        );
        assert_eq!(
            event("incident.triggered", json!({"service": {"id": "../x"}})).action(),
            Action::Ignore("no_service")
        );
        assert_eq!(
            event("service.deleted", json!({})).action(),
            Action::Ignore("no_service")
        );
    }
}
