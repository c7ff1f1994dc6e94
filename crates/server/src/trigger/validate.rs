//! Validation: every field against the Events API v2 limits (a 400 naming
//! the field; nothing leaves before that), and the event built from it.

use pagerduty::{Event, EventAction, EventLink, EventPayload};
use serde::Serialize;
use serde_json::Value;

use super::request::{FollowUpRequest, TriggerRequest};
use super::{DEFAULT_CLASS, MAX_IDEMPOTENCY_KEY_CHARS, TRIGGERED_BY, TriggerError};
use crate::auth::Caller;
use crate::config::TriggerSettings;

/// Where an event goes, as the request said it.
pub(super) enum Target {
    Service(String),
    Key(String),
}

/// A validated request, before its routing key is known.
pub(super) struct Prepared {
    pub action: EventAction,
    pub target: Target,
    pub event: Event,
    /// The dedup_key the caller chose (idempotency by dedup_key).
    pub caller_dedup_key: Option<String>,
    pub fingerprint: u64,
}

/// A placeholder routing key used to size-check an event before the real
/// key is resolved (both are exactly 32 characters).
const PLACEHOLDER_KEY: &str = "00000000000000000000000000000000";

pub(super) fn prepare_trigger(
    settings: &TriggerSettings,
    caller: &Caller,
    r: TriggerRequest,
    idempotency_key: Option<&str>,
) -> Result<Prepared, TriggerError> {
    check_idempotency_key(idempotency_key)?;
    let fingerprint = fingerprint(EventAction::Trigger, &r);
    let target = target(r.service_id, r.integration_key)?;
    if r.summary.trim().is_empty() {
        return Err(invalid("summary", "must not be empty"));
    }
    let severity = match &r.severity {
        None => settings.default_severity,
        Some(s) => s.parse().map_err(|_| {
            invalid(
                "severity",
                format!("must be one of critical, error, warning, info; got `{s}`"),
            )
        })?,
    };
    if let Some(url) = &r.client_url {
        check_url(url).map_err(|m| invalid("client_url", m))?;
    }
    check_dedup_key(r.dedup_key.as_deref())?;
    let mut details = match r.custom_details {
        None => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("custom_details", "must be a JSON object")),
    };
    // Attribution cannot be spoofed: ours overwrites any given value.
    details.insert(TRIGGERED_BY.into(), Value::String(caller.name.clone()));
    let mut links = Vec::new();
    for (i, link) in r.links.unwrap_or_default().into_iter().enumerate() {
        let href = link.href.unwrap_or_default();
        if href.trim().is_empty() {
            return Err(invalid(format!("links[{i}].href"), "is required"));
        }
        links.push(EventLink {
            href,
            text: link.text,
        });
    }
    let client_url = r.client_url.or_else(|| settings.client_url.clone());
    let dedup_key = r
        .dedup_key
        .clone()
        .unwrap_or_else(|| generated_dedup_key(caller, idempotency_key));
    let payload = EventPayload {
        summary: r.summary,
        source: r
            .source
            .filter(|s| !s.trim().is_empty())
            .or_else(|| client_url.clone())
            .unwrap_or_else(|| settings.client_name.clone()),
        severity,
        timestamp: None,
        component: r.component,
        group: r.group,
        class: Some(r.class.unwrap_or_else(|| DEFAULT_CLASS.to_owned())),
        custom_details: Some(Value::Object(details)),
    };
    let mut event = Event::trigger(PLACEHOLDER_KEY, payload);
    event.dedup_key = Some(dedup_key);
    event.client = Some(settings.client_name.clone());
    event.client_url = client_url;
    event.links = links;
    event.validate().map_err(from_validation)?;
    Ok(Prepared {
        action: EventAction::Trigger,
        target,
        event,
        caller_dedup_key: r.dedup_key,
        fingerprint,
    })
}

pub(super) fn prepare_follow_up(
    settings: &TriggerSettings,
    action: EventAction,
    dedup_key: String,
    r: FollowUpRequest,
    idempotency_key: Option<&str>,
) -> Result<Prepared, TriggerError> {
    check_idempotency_key(idempotency_key)?;
    check_dedup_key(Some(&dedup_key))?;
    let fingerprint = fingerprint(action, &(&dedup_key, &r));
    let target = target(r.service_id, r.integration_key)?;
    let mut event = Event::follow_up(PLACEHOLDER_KEY, action, dedup_key.clone());
    event.client = Some(settings.client_name.clone());
    event.validate().map_err(from_validation)?;
    Ok(Prepared {
        action,
        target,
        event,
        caller_dedup_key: Some(dedup_key),
        fingerprint,
    })
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> TriggerError {
    TriggerError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The client crate names Events API fields (`payload.summary`); we name the
/// request's (`summary`).
pub(super) fn from_validation(e: pagerduty::ValidationError) -> TriggerError {
    let field = e
        .field
        .strip_prefix("payload.")
        .unwrap_or(&e.field)
        .to_owned();
    let field = if field == "routing_key" {
        "integration_key".to_owned()
    } else {
        field
    };
    invalid(field, e.message)
}

fn target(
    service_id: Option<String>,
    integration_key: Option<String>,
) -> Result<Target, TriggerError> {
    match (service_id, integration_key) {
        (Some(_), Some(_)) => Err(invalid(
            "service_id",
            "give either service_id or integration_key, not both",
        )),
        (None, None) => Err(invalid(
            "service_id",
            "one of service_id or integration_key is required",
        )),
        (Some(id), None) => {
            if !pagerduty::ids::is_pagerduty_id(&id) {
                return Err(invalid("service_id", pagerduty::InvalidId::RULE));
            }
            Ok(Target::Service(id))
        }
        // An alias from a Backstage answer: mapped back when it is routed.
        (None, Some(key)) if crate::keys::KeyAliases::is_alias(&key) => Ok(Target::Key(key)),
        (None, Some(key)) => {
            let n = key.chars().count();
            if n != pagerduty::events::ROUTING_KEY_CHARS {
                // The key is a secret: never echo it.
                return Err(invalid(
                    "integration_key",
                    format!(
                        "must be exactly {} characters, got {n}",
                        pagerduty::events::ROUTING_KEY_CHARS
                    ),
                ));
            }
            if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "integration_key",
                    "must contain only letters and digits",
                ));
            }
            Ok(Target::Key(key))
        }
    }
}

fn check_dedup_key(key: Option<&str>) -> Result<(), TriggerError> {
    if let Some(key) = key {
        let n = key.chars().count();
        if key.trim().is_empty() {
            return Err(invalid("dedup_key", "must not be empty"));
        }
        if n > pagerduty::events::MAX_DEDUP_KEY_CHARS {
            return Err(invalid(
                "dedup_key",
                format!(
                    "must be at most {} characters, got {n}",
                    pagerduty::events::MAX_DEDUP_KEY_CHARS
                ),
            ));
        }
    }
    Ok(())
}

fn check_idempotency_key(key: Option<&str>) -> Result<(), TriggerError> {
    if let Some(key) = key {
        let n = key.chars().count();
        if n == 0 || n > MAX_IDEMPOTENCY_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "Idempotency-Key",
                format!(
                    "must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (a UUID is a good choice)"
                ),
            ));
        }
    }
    Ok(())
}

fn check_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    Ok(())
}

/// A dedup_key for a request without one. With an Idempotency-Key it is
/// derived from it, so a retry after the window (or after a failure whose
/// outcome was unknown) still merges into the same alert.
pub(super) fn generated_dedup_key(caller: &Caller, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(key) => {
            let mut bytes = caller.name.as_bytes().to_vec();
            bytes.push(0);
            bytes.extend_from_slice(key.as_bytes());
            format!("dutycard-{:016x}", hash64(&bytes))
        }
        None => format!("dutycard-{}", uuid::Uuid::new_v4().simple()),
    }
}

pub(super) fn dedup_store_key(key_hash: u64, action: EventAction, dedup_key: &str) -> String {
    format!("dedup\0{key_hash:016x}\0{action:?}\0{dedup_key}")
}

/// 64-bit FNV-1a: stable across builds and processes (unlike `DefaultHasher`).
pub(super) fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn fingerprint<T: Serialize>(action: EventAction, request: &T) -> u64 {
    let mut bytes = format!("{action:?}\0").into_bytes();
    bytes.extend(serde_json::to_vec(request).unwrap_or_default());
    hash64(&bytes)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::trigger::LinkInput;

    pub(crate) fn caller() -> Caller {
        Caller {
            name: "alice".into(),
        }
    }

    pub(crate) fn settings() -> TriggerSettings {
        TriggerSettings {
            client_name: "dutycard".into(),
            client_url: None,
            default_severity: pagerduty::Severity::Error,
            allow: crate::config::TriggerAllow::Known,
            deadline_ms: 1000,
            idempotency_window_secs: 60,
            per_caller_per_minute: 10,
            per_routing_key_per_minute: 10,
        }
    }

    pub(crate) fn request() -> TriggerRequest {
        serde_json::from_value(serde_json::json!({"service_id": "PABC123", "summary": "down"}))
            .unwrap()
    }

    fn field_of(r: TriggerRequest) -> String {
        match prepare_trigger(&settings(), &caller(), r, None) {
            Err(TriggerError::Invalid { field, .. }) => field,
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn defaults_follow_the_backstage_card_and_attribute_the_caller() {
        let p = prepare_trigger(&settings(), &caller(), request(), None).unwrap();
        let payload = p.event.payload.unwrap();
        assert_eq!(payload.severity, pagerduty::Severity::Error);
        assert_eq!(payload.class.as_deref(), Some(DEFAULT_CLASS));
        assert_eq!(payload.custom_details.unwrap()[TRIGGERED_BY], "alice");
        assert_eq!(p.event.client.as_deref(), Some("dutycard"));
        assert!(p.event.dedup_key.unwrap().starts_with("dutycard-"));
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut r = request();
        r.summary = " ".into();
        assert_eq!(field_of(r), "summary");
        let mut r = request();
        r.summary = "x".repeat(1025);
        assert_eq!(field_of(r), "summary");
        let mut r = request();
        r.severity = Some("fatal".into());
        assert_eq!(field_of(r), "severity");
        let mut r = request();
        r.dedup_key = Some("d".repeat(256));
        assert_eq!(field_of(r), "dedup_key");
        let mut r = request();
        r.custom_details = Some(serde_json::json!([1]));
        assert_eq!(field_of(r), "custom_details");
        let mut r = request();
        r.links = Some(vec![LinkInput {
            href: None,
            text: Some("t".into()),
        }]);
        assert_eq!(field_of(r), "links[0].href");
        let mut r = request();
        r.service_id = None;
        r.integration_key = Some("short".into());
        assert_eq!(field_of(r), "integration_key");
        let mut r = request();
        r.service_id = None;
        assert_eq!(field_of(r), "service_id");
        let mut r = request();
        r.custom_details = Some(serde_json::json!({"blob": "x".repeat(520 * 1024)}));
        assert_eq!(field_of(r), "body");
    }

    #[test]
    fn debug_never_shows_the_integration_key() {
        let key = "abcdefabcdefabcdefabcdefabcdef12";
        let mut r = request();
        r.integration_key = Some(key.into());
        let shown = format!("{r:?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let f = FollowUpRequest {
            service_id: None,
            integration_key: Some(key.into()),
        };
        let shown = format!("{f:?}");
        assert!(!shown.contains(key), "{shown}");
    }

    #[test]
    fn an_idempotency_key_gives_a_stable_dedup_key() {
        let a = generated_dedup_key(&caller(), Some("k1"));
        assert_eq!(a, generated_dedup_key(&caller(), Some("k1")));
        assert_ne!(a, generated_dedup_key(&caller(), Some("k2")));
        assert_ne!(
            generated_dedup_key(&caller(), None),
            generated_dedup_key(&caller(), None)
        );
    }
}
