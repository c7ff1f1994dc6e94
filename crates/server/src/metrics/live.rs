//! The webhook and stream families: deliveries by event type and outcome,
//! signature failures, the lag from `occurred_at` to processing, streams
//! open and how they ended. Label values come from closed sets (event
//! types outside PagerDuty's list are `other`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Histogram, Metrics, escape, family, histogram};

#[derive(Debug, Default)]
pub(crate) struct Live {
    /// (account, event type, outcome) -> count
    deliveries: BTreeMap<(String, &'static str, &'static str), u64>,
    /// (account, reason) -> count
    signature_failures: BTreeMap<(String, &'static str), u64>,
    /// (account, event type) -> occurred_at to processed
    lag: BTreeMap<(String, &'static str), Histogram>,
    /// Streams open now.
    streams_open: i64,
    /// outcome (opened, refused_caller, refused_total, dropped_slow, closed) -> count
    streams: BTreeMap<&'static str, u64>,
}

impl Metrics {
    /// One webhook delivery answered (`outcome`: queued, ping, duplicate,
    /// an ignore reason, busy).
    pub fn observe_webhook(&self, account: &str, event_type: &'static str, outcome: &'static str) {
        *self
            .lock()
            .live
            .deliveries
            .entry((account.to_owned(), event_type, outcome))
            .or_default() += 1;
    }

    /// A delivery refused for its signature.
    pub fn observe_webhook_signature_failure(&self, account: &str, reason: &'static str) {
        *self
            .lock()
            .live
            .signature_failures
            .entry((account.to_owned(), reason))
            .or_default() += 1;
    }

    /// From the event's `occurred_at` to its invalidation.
    pub fn observe_webhook_lag(&self, account: &str, event_type: &'static str, lag: Duration) {
        self.lock()
            .live
            .lag
            .entry((account.to_owned(), event_type))
            .or_default()
            .observe(lag);
    }

    /// A stream event: `opened` (+1 open), `closed` / `dropped_slow` (-1
    /// open), `refused_*` (never open).
    pub fn observe_stream(&self, outcome: &'static str) {
        let mut inner = self.lock();
        match outcome {
            "opened" => inner.live.streams_open += 1,
            "closed" | "dropped_slow" => inner.live.streams_open -= 1,
            _ => {}
        }
        *inner.live.streams.entry(outcome).or_default() += 1;
    }
}

impl Live {
    pub(super) fn render(&self, out: &mut String) {
        family(
            out,
            "dutycard_webhook_deliveries_total",
            "counter",
            "PagerDuty webhooks answered 2xx or 503, by account, event type and outcome.",
        );
        for ((account, event_type, outcome), n) in &self.deliveries {
            let _ = writeln!(
                out,
                "dutycard_webhook_deliveries_total{{account=\"{}\",event_type=\"{event_type}\",outcome=\"{outcome}\"}} {n}",
                escape(account)
            );
        }
        family(
            out,
            "dutycard_webhook_signature_failures_total",
            "counter",
            "PagerDuty webhooks refused (401) for their signature, by account and reason.",
        );
        for ((account, reason), n) in &self.signature_failures {
            let _ = writeln!(
                out,
                "dutycard_webhook_signature_failures_total{{account=\"{}\",reason=\"{reason}\"}} {n}",
                escape(account)
            );
        }
        family(
            out,
            "dutycard_webhook_lag_seconds",
            "histogram",
            "From a webhook event's occurred_at to its invalidation, by account and event type.",
        );
        for ((account, event_type), h) in &self.lag {
            let labels = format!(
                "account=\"{}\",event_type=\"{event_type}\"",
                escape(account)
            );
            histogram(out, "dutycard_webhook_lag_seconds", &labels, h);
        }
        family(
            out,
            "dutycard_streams_open",
            "gauge",
            "Card streams (Server-Sent Events) open now.",
        );
        let _ = writeln!(out, "dutycard_streams_open {}", self.streams_open);
        family(
            out,
            "dutycard_streams_total",
            "counter",
            "Card streams by outcome: opened, refused_caller / refused_total (limits), dropped_slow, closed.",
        );
        for (outcome, n) in &self.streams {
            let _ = writeln!(out, "dutycard_streams_total{{outcome=\"{outcome}\"}} {n}");
        }
    }
}
