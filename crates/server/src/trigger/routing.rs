//! Where an event goes: the routing key of a service (its Events API v2
//! integration, preferring Backstage's vendor `PRO19CT`) or a given key,
//! checked against the known services when `trigger.allow = "known"`; and
//! the card invalidation after an accepted event.

use std::time::Duration;

use cards::{CardService, Section};
use pagerduty::{Event, RoutingKey};

use super::TriggerError;
use super::validate::Target;
use crate::accounts::Account;
use crate::config::TriggerAllow;
use crate::keys::{AliasError, KeyAliases};

/// Resolve the routing key (and the service when known); an alias is first
/// mapped back to its key.
pub(super) async fn resolve(
    allow: TriggerAllow,
    keys: &KeyAliases,
    account: &Account,
    target: &Target,
) -> Result<(RoutingKey, Option<String>), TriggerError> {
    let cards = &account.cards;
    let key;
    let target = match target {
        Target::Key(text) if KeyAliases::is_alias(text) => {
            key = keys.key(account, text).await.map_err(|e| match e {
                AliasError::Unknown => TriggerError::KeyNotAllowed,
                AliasError::Unavailable(why) => {
                    TriggerError::Lookup(cards::CardError::Unavailable {
                        message: why,
                        cause: None,
                    })
                }
            })?;
            &Target::Key(key)
        }
        other => other,
    };
    match target {
        Target::Service(id) => {
            let info = cards
                .routing_key_for_service(id)
                .await
                .map_err(TriggerError::Lookup)?;
            Ok((info.routing_key, Some(info.service_id)))
        }
        Target::Key(key) => match allow {
            TriggerAllow::Any => Ok((RoutingKey::new(key.clone()), None)),
            TriggerAllow::Known => match cards.resolve_integration_key(key).await {
                Ok(resolved) => Ok((RoutingKey::new(key.clone()), Some(resolved.service_id))),
                Err(cards::CardError::NotFound { .. }) => Err(TriggerError::KeyNotAllowed),
                Err(e) => Err(TriggerError::Lookup(e)),
            },
        },
    }
}

/// Invalidate the service's incidents section after an accepted event, so
/// cards show the change. Runs in a task of its own, after the answer went
/// out: with `allow = "any"` finding the service may need a REST lookup,
/// which must not delay the 202. A known service was invalidated once
/// already; this only repeats it later.
pub(super) async fn invalidate_after(
    cards: &CardService,
    event: &Event,
    service_id: Option<String>,
) {
    let service_id = match service_id {
        Some(id) => Some(id),
        // `allow = "any"`: find the service if we can, for invalidation.
        None => {
            let found = cards
                .resolve_integration_key(event.routing_key.expose())
                .await
                .ok()
                .map(|r| r.service_id);
            if let Some(id) = &found {
                cards.invalidate(id, &[Section::Incidents]).await;
            }
            found
        }
    };
    if let Some(id) = service_id {
        // PagerDuty turns events into incidents asynchronously (usually
        // within seconds): drop whatever a card read in between, again.
        tokio::time::sleep(Duration::from_secs(5)).await;
        cards.invalidate(&id, &[Section::Incidents]).await;
    }
}
