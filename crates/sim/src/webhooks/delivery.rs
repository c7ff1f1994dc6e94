//! Delivering webhooks the way PagerDuty documents it
//! (developer.pagerduty.com, "Webhooks: Behavior" and "Verifying
//! Signatures"):
//!
//! - `POST` of the event with `Content-Type: application/json`,
//!   `User-Agent: PagerDuty-Webhook/V3.0`, `X-PagerDuty-Signature:
//!   v1=<hex HMAC-SHA256 of the raw body with the subscription's secret>`,
//!   `X-Webhook-Id` (the same on every attempt), `X-Webhook-Subscription`
//!   and the subscription's custom headers;
//! - a 2xx within the timeout delivers it; no answer, a 429 or a 5xx is
//!   retried with doubling waits; any other status (a 4xx) drops it at once;
//! - webhooks of one subscription and resource go out in order: while one
//!   is retried, the next ones wait behind it;
//! - after [`WebhookConfig::disable_after_drops`] consecutive dropped
//!   webhooks the subscription is temporarily disabled and its queue dropped.
//!
//! [`WebhookConfig::disable_after_drops`]: crate::config::WebhookConfig

use std::time::Duration;

use hmac::{KeyInit, Mac};

use super::{DeliveryAttempt, DeliveryState, Hub, Queued, Subscription, lock};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `v1=` + the hex HMAC-SHA256 of `body` keyed with `secret`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// What an attempt's outcome means.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry,
    Permanent,
}

fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        // 0 = no answer: a timeout or no connection.
        0 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Permanent,
    }
}

impl Hub {
    /// Puts a webhook in its lane and starts the lane's task if it has none.
    pub(super) fn start(&self, subscription_id: &str, resource_id: &str, webhook: Queued) {
        let key = (subscription_id.to_owned(), resource_id.to_owned());
        let idle = {
            let mut lanes = lock(&self.lanes);
            let lane = lanes.entry(key.clone()).or_default();
            lane.push_back(webhook);
            lane.len() == 1
        };
        if idle && let Some(hub) = self.me.upgrade() {
            self.runtime.spawn(async move { hub.run_lane(key).await });
        }
    }

    /// Delivers a lane's webhooks one after the other until it is empty.
    async fn run_lane(self: std::sync::Arc<Self>, key: (String, String)) {
        loop {
            let next = {
                let mut lanes = lock(&self.lanes);
                match lanes.get(&key).and_then(|l| l.front()).cloned() {
                    Some(w) => w,
                    None => {
                        lanes.remove(&key);
                        return;
                    }
                }
            };
            if *self.shutdown.borrow() {
                return;
            }
            self.deliver(&key.0, &next).await;
            if let Some(lane) = lock(&self.lanes).get_mut(&key) {
                lane.pop_front();
            }
        }
    }

    /// Attempts one webhook until it is delivered or dropped.
    async fn deliver(&self, subscription_id: &str, w: &Queued) {
        let mut attempts = 0u32;
        loop {
            // The subscription as it is now: deleted or disabled meanwhile
            // means the webhook goes no further.
            let sub = match self.get(subscription_id) {
                None => return self.drop_webhook(w, "subscription deleted"),
                Some(s) if s.temporarily_disabled => {
                    return self.drop_webhook(w, "subscription temporarily disabled");
                }
                Some(s) => s,
            };
            attempts += 1;
            let Some(attempt) = self.attempt(&sub, w).await else {
                return; // shutting down
            };
            let status = attempt.status;
            self.update(&w.webhook_id, |d| d.attempts.push(attempt));
            match verdict(status) {
                Verdict::Delivered => {
                    self.update(&w.webhook_id, |d| d.state = DeliveryState::Delivered);
                    if let Some(s) = lock(&self.subscriptions)
                        .iter_mut()
                        .find(|s| s.id == subscription_id)
                    {
                        s.consecutive_drops = 0;
                    }
                    return;
                }
                Verdict::Retry if attempts < self.config.max_attempts => {
                    let wait = self.backoff(attempts);
                    let mut shutdown = self.shutdown.clone();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                Verdict::Retry => {
                    let why = format!("no 2xx answer in {attempts} attempts");
                    return self.drop_and_count(subscription_id, w, &why);
                }
                Verdict::Permanent => {
                    let why = format!("status {status} (not retried)");
                    return self.drop_and_count(subscription_id, w, &why);
                }
            }
        }
    }

    /// The wait before attempt `attempts + 1`.
    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.config
            .first_retry_after
            .saturating_mul(factor)
            .min(self.config.max_retry_after)
    }

    /// One `POST`; `None` when the simulator shuts down meanwhile.
    async fn attempt(&self, sub: &Subscription, w: &Queued) -> Option<DeliveryAttempt> {
        let mut req = self
            .client
            .post(&sub.url)
            .timeout(self.config.timeout)
            .header("Content-Type", "application/json")
            .header("User-Agent", "PagerDuty-Webhook/V3.0")
            .header("X-PagerDuty-Signature", signature(&sub.secret, &w.body))
            .header("X-Webhook-Id", &w.webhook_id)
            .header("X-Webhook-Subscription", &sub.id);
        for (name, value) in &sub.custom_headers {
            req = req.header(name, value);
        }
        let mut shutdown = self.shutdown.clone();
        let result = tokio::select! {
            r = req.body(w.body.as_ref().clone()).send() => r,
            _ = shutdown.changed() => return None,
        };
        Some(match result {
            Ok(resp) => DeliveryAttempt {
                status: resp.status().as_u16(),
                error: None,
            },
            Err(e) => DeliveryAttempt {
                status: 0,
                // Without the URL: it may carry basic-auth credentials.
                error: Some(if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    e.without_url().to_string()
                }),
            },
        })
    }

    fn drop_webhook(&self, w: &Queued, why: &str) {
        self.update(&w.webhook_id, |d| {
            if d.state == DeliveryState::Queued {
                d.state = DeliveryState::Dropped;
                d.dropped_because = Some(why.to_owned());
            }
        });
    }

    /// Drops a webhook that failed; the subscription's consecutive drops
    /// count, and at the limit it is disabled and its queue dropped.
    fn drop_and_count(&self, subscription_id: &str, w: &Queued, why: &str) {
        self.drop_webhook(w, why);
        let disabled = {
            let mut subs = lock(&self.subscriptions);
            match subs.iter_mut().find(|s| s.id == subscription_id) {
                Some(s) => {
                    s.consecutive_drops += 1;
                    if s.consecutive_drops >= self.config.disable_after_drops {
                        s.temporarily_disabled = true;
                    }
                    s.temporarily_disabled
                }
                None => false,
            }
        };
        if disabled {
            self.drop_queued(subscription_id, "subscription temporarily disabled");
        }
        self.changed();
    }

    /// Drops the webhooks of a subscription waiting behind the one each of
    /// its lanes is delivering (that one stops at its next attempt).
    pub(super) fn drop_queued(&self, subscription_id: &str, why: &str) {
        let waiting: Vec<Queued> = {
            let mut lanes = lock(&self.lanes);
            lanes
                .iter_mut()
                .filter(|((sub, _), _)| sub == subscription_id)
                .flat_map(|(_, lane)| {
                    // The front is being delivered (a lane may be empty for
                    // the moment between two webhooks).
                    let waiting = lane.len().saturating_sub(1);
                    lane.split_off(lane.len() - waiting)
                })
                .collect()
        };
        for w in &waiting {
            self.drop_webhook(w, why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_no_answer_429_and_5xx_are_retried() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        for status in [0, 429, 500, 503] {
            assert_eq!(verdict(status), Verdict::Retry, "{status}");
        }
        for status in [301, 400, 401, 404, 410] {
            assert_eq!(verdict(status), Verdict::Permanent, "{status}");
        }
    }
}
