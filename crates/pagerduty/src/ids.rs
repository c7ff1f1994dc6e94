//! Validated PagerDuty ids ([`ServiceId`], [`EscalationPolicyId`],
//! [`IncidentId`], [`TeamId`], [`UserId`], [`ScheduleId`]) and the
//! redacted [`IntegrationKey`].
//!
//! An id is 1 to 64 ASCII letters and digits (`PABC123`): the rule every
//! dutycard entry point applies, so a value that passed one of these types
//! can go into a URL path segment as it is. Ids are not secrets: `Debug`
//! and `Display` show them. They hold an `Arc<str>`, so the many clones a
//! card makes of its ids cost a reference count, not an allocation.
//!
//! ```
//! use std::collections::HashMap;
//! use pagerduty::ServiceId;
//!
//! let id: ServiceId = "PABC123".parse().unwrap();
//! let names = HashMap::from([(id.clone(), "Payments API")]);
//! assert_eq!(names.get("PABC123"), Some(&"Payments API")); // looked up by &str
//! assert!("not an id!".parse::<ServiceId>().is_err());
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::events::RoutingKey;
use crate::secret::KeySecret;

/// The longest id accepted.
pub const MAX_ID_LEN: usize = 64;

/// A string that is not a PagerDuty id, naming which kind of id was expected.
///
/// The bad value itself is not kept: it is caller input, and a secret (an
/// integration key pasted into an id field) must not be echoed into logs
/// or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id: {}", InvalidId::RULE)]
pub struct InvalidId {
    kind: &'static str,
}

impl InvalidId {
    /// The rule, in the words every dutycard answer uses.
    pub const RULE: &'static str = "must be a PagerDuty id: 1 to 64 letters and digits";

    /// What kind of id was expected, e.g. `service` or `escalation policy`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

/// True when `s` is 1 to [`MAX_ID_LEN`] ASCII letters and digits.
pub fn is_pagerduty_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

macro_rules! pagerduty_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `id` (1 to 64 ASCII letters and digits).
            pub fn new(id: &str) -> Result<Self, InvalidId> {
                if is_pagerduty_id(id) {
                    Ok($name(Arc::from(id)))
                } else {
                    Err(InvalidId { kind: $kind })
                }
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&&*self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Consistent with `Eq`, `Hash` and `Ord` (all those of the `str`),
        /// so a map keyed by the id can be looked up with a `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

pagerduty_id!(
    /// A service id (`PIJ90N7`).
    ServiceId,
    "service"
);
pagerduty_id!(
    /// An escalation policy id.
    EscalationPolicyId,
    "escalation policy"
);
pagerduty_id!(
    /// An incident id (not its number).
    IncidentId,
    "incident"
);
pagerduty_id!(
    /// A team id.
    TeamId,
    "team"
);
pagerduty_id!(
    /// A user id.
    UserId,
    "user"
);
pagerduty_id!(
    /// A schedule id.
    ScheduleId,
    "schedule"
);

/// A service's integration key (for an Events API v2 integration, the
/// routing key of its events). A secret: `Debug` prints
/// `IntegrationKey(<redacted>)`; there is no `Display` and no serde, so it
/// cannot end up in a log line or an answer by accident. The key is zeroized
/// on drop. Not validated: use [`RoutingKey`] (via `From`) to send events,
/// which checks the length before sending.
#[derive(Clone)]
pub struct IntegrationKey(KeySecret);

impl IntegrationKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        IntegrationKey(KeySecret::new(key))
    }

    /// The key itself. It is a secret: never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// A short non-reversible fingerprint for logs and metrics, the same
    /// as [`RoutingKey::fingerprint`] of the same key.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }
}

impl secrecy::ExposeSecret<str> for IntegrationKey {
    fn expose_secret(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for IntegrationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrationKey(<redacted>)")
    }
}

impl From<&str> for IntegrationKey {
    fn from(key: &str) -> Self {
        IntegrationKey::new(key)
    }
}

impl From<String> for IntegrationKey {
    fn from(key: String) -> Self {
        IntegrationKey::new(key)
    }
}

/// An integration key is the routing key of the events sent to it.
impl From<IntegrationKey> for RoutingKey {
    fn from(key: IntegrationKey) -> Self {
        RoutingKey::from_secret(key.0)
    }
}

impl From<&IntegrationKey> for RoutingKey {
    fn from(key: &IntegrationKey) -> Self {
        RoutingKey::from_secret(key.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn ids_accept_1_to_64_letters_and_digits() {
        for ok in ["P", "PABC123", "pabc123", &"A".repeat(64), "0123"] {
            let id = ServiceId::new(ok).unwrap();
            assert_eq!(id.as_str(), ok);
            assert_eq!(id.to_string(), ok);
            assert_eq!(ServiceId::try_from(ok.to_string()).unwrap(), id);
            assert_eq!(ServiceId::try_from(ok).unwrap(), id);
            assert_eq!(ok.parse::<ServiceId>().unwrap(), id);
        }
        for bad in [
            "",
            " P1",
            "P1 ",
            "P-1",
            "P_1",
            "P/1",
            "Pé",
            &"A".repeat(65),
            "P1\n",
        ] {
            assert!(ServiceId::new(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn the_error_names_the_kind_and_keeps_the_rule_wording() {
        let e = "x y".parse::<EscalationPolicyId>().unwrap_err();
        assert_eq!(e.kind(), "escalation policy");
        assert_eq!(
            e.to_string(),
            "invalid escalation policy id: must be a PagerDuty id: 1 to 64 letters and digits"
        );
        assert!(e.to_string().contains(InvalidId::RULE));
        // The bad value is not echoed (it may be a secret pasted in the wrong field).
        let e = ServiceId::new("R0123456789abcdef0123456789abcd!").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("R0123456789"));
        assert_eq!(UserId::new("").unwrap_err().kind(), "user");
        assert_eq!(TeamId::new("-").unwrap_err().kind(), "team");
        assert_eq!(IncidentId::new("-").unwrap_err().kind(), "incident");
        assert_eq!(ScheduleId::new("-").unwrap_err().kind(), "schedule");
    }

    #[test]
    fn debug_shows_the_id() {
        let id = IncidentId::new("Q0RIJJZL24RC6W").unwrap();
        assert_eq!(format!("{id:?}"), r#"IncidentId("Q0RIJJZL24RC6W")"#);
    }

    #[test]
    fn maps_and_sets_look_up_by_str_and_order_like_str() {
        let a = ServiceId::new("PB").unwrap();
        let b = ServiceId::new("PA").unwrap();
        let map = HashMap::from([(a.clone(), 1), (b.clone(), 2)]);
        assert_eq!(map.get("PB"), Some(&1));
        assert_eq!(map.get("PA"), Some(&2));
        assert_eq!(map.get("PC"), None);
        let set: BTreeSet<_> = [a.clone(), b.clone()].into();
        assert_eq!(
            set.iter().map(ServiceId::as_str).collect::<Vec<_>>(),
            ["PA", "PB"]
        );
        assert!(set.contains("PA"));
        assert!(a == "PB" && a == *"PB");
        assert_eq!(String::from(a), "PB");
    }

    #[test]
    fn clones_share_the_string() {
        let a = ServiceId::new("PABC123").unwrap();
        let b = a.clone();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
    }

    #[test]
    fn serde_is_a_plain_string_and_validates_on_the_way_in() {
        let id = TeamId::new("PT4KHLK").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""PT4KHLK""#);
        let back: TeamId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        // Owned input (escapes) works too.
        let back: TeamId = serde_json::from_str(r#""PT4\u004bHLK""#).unwrap();
        assert_eq!(back, id);
        let err = serde_json::from_str::<TeamId>(r#""PT 4""#).unwrap_err();
        assert!(err.to_string().contains("invalid team id"), "{err}");
        assert!(serde_json::from_str::<TeamId>("42").is_err());
        let v: Vec<UserId> = serde_json::from_value(serde_json::json!(["PU1", "PU2"])).unwrap();
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!(["PU1", "PU2"])
        );
    }

    #[test]
    fn integration_key_is_redacted_and_exposable() {
        let key = IntegrationKey::from("0a1b2c3d4e5f60718293a4b5c6d7e8f9");
        assert_eq!(format!("{key:?}"), "IntegrationKey(<redacted>)");
        assert_eq!(
            format!("{:?}", Some(key.clone())),
            "Some(IntegrationKey(<redacted>))"
        );
        assert_eq!(key.expose(), "0a1b2c3d4e5f60718293a4b5c6d7e8f9");
        assert_eq!(key.expose_secret(), key.expose());
        let owned = IntegrationKey::from(String::from("k"));
        assert_eq!(owned.expose(), "k");
        // The same key as a routing key: same secret, same fingerprint.
        let routing = RoutingKey::from(&key);
        assert_eq!(routing.expose(), key.expose());
        assert_eq!(routing.fingerprint(), key.fingerprint());
        assert!(!format!("{routing:?}").contains("0a1b2c3d"));
        assert_eq!(RoutingKey::from(key).fingerprint(), routing.fingerprint());
    }
}
