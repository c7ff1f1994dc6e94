//! Optional sections that PagerDuty refuses, per account.
//!
//! PagerDuty's Backstage card reads the service, then standards, then
//! metrics, and any error blanks the whole card. A token without
//! `analytics.read`, a plan without analytics or a 404 from the standards
//! API would so blank every card of the portal. The Backstage routes answer
//! those two sections empty instead (as the Node backend does), and this
//! registry makes sure the operator still learns of it: the first refusal
//! of an account's section is logged once (not per request), it stays
//! listed in `/readyz` until a read succeeds again, and `/metrics` counts
//! the degraded answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A section a Backstage answer may leave empty when PagerDuty refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionalSection {
    // Listed in this order (alphabetical).
    Metrics,
    Standards,
}

impl OptionalSection {
    pub fn as_str(self) -> &'static str {
        match self {
            OptionalSection::Standards => "standards",
            OptionalSection::Metrics => "metrics",
        }
    }
}

/// One account's section answered empty because PagerDuty refuses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DegradedSection {
    /// The account id.
    pub account: String,
    /// `standards` or `metrics`.
    pub section: String,
    /// PagerDuty's status: 401, 402, 403 or 404.
    pub status: u16,
    /// What PagerDuty said.
    pub message: String,
    /// When the refusal was first seen (since the last success).
    pub since: DateTime<Utc>,
    /// Backstage answers left empty since then.
    pub answers: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// What is refused now; removed on the next success.
    current: BTreeMap<(String, OptionalSection), DegradedSection>,
    /// Every degraded answer ever, by (account, section, status): a counter
    /// must not go down when a section recovers.
    answered: BTreeMap<(String, OptionalSection, u16), u64>,
}

/// The registry (one per process, in `AppState`).
#[derive(Debug, Default)]
pub struct Degradations {
    // A std Mutex: held only to update a map entry, never across an await.
    inner: Mutex<Inner>,
}

impl Degradations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Each update is one insert or remove: a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An answer left `section` empty because PagerDuty refused it. Logs
    /// at WARN only when this account's section was not already refused
    /// with the same status.
    pub fn refused(&self, account: &str, section: OptionalSection, refusal: &cards::Refusal) {
        let mut inner = self.lock();
        *inner
            .answered
            .entry((account.to_owned(), section, refusal.status))
            .or_default() += 1;
        let key = (account.to_owned(), section);
        if let Some(entry) = inner.current.get_mut(&key)
            && entry.status == refusal.status
        {
            entry.answers += 1;
            return;
        }
        tracing::warn!(
            account,
            section = section.as_str(),
            status = refusal.status,
            reason = %refusal.message,
            "PagerDuty refuses this section: Backstage answers it empty until a read succeeds (listed in /readyz)"
        );
        inner.current.insert(
            key,
            DegradedSection {
                account: account.to_owned(),
                section: section.as_str().to_owned(),
                status: refusal.status,
                message: refusal.message.clone(),
                since: Utc::now(),
                answers: 1,
            },
        );
    }

    /// A read of `section` succeeded: it is no longer degraded.
    pub fn served(&self, account: &str, section: OptionalSection) {
        let mut inner = self.lock();
        // The common case (nothing refused) costs one lookup of an empty map.
        if inner.current.is_empty() {
            return;
        }
        if inner
            .current
            .remove(&(account.to_owned(), section))
            .is_some()
        {
            tracing::info!(
                account,
                section = section.as_str(),
                "PagerDuty serves this section again"
            );
        }
    }

    /// What is degraded now, by account then section.
    pub fn list(&self) -> Vec<DegradedSection> {
        self.lock().current.values().cloned().collect()
    }

    /// The Prometheus families: degraded answers (a counter) and the
    /// sections degraded now (a gauge per account and section).
    pub fn render(&self, out: &mut String) {
        let inner = self.lock();
        let _ = writeln!(
            out,
            "# HELP dutycard_backstage_degraded_answers_total Backstage standards/metrics answers left empty because PagerDuty refused the section, by status.\n# TYPE dutycard_backstage_degraded_answers_total counter"
        );
        for ((account, section, status), n) in &inner.answered {
            let _ = writeln!(
                out,
                "dutycard_backstage_degraded_answers_total{{account=\"{}\",section=\"{}\",status=\"{status}\"}} {n}",
                crate::metrics::escape(account),
                section.as_str()
            );
        }
        let _ = writeln!(
            out,
            "# HELP dutycard_backstage_section_degraded 1 while PagerDuty refuses an account's optional section.\n# TYPE dutycard_backstage_section_degraded gauge"
        );
        for ((account, section), entry) in &inner.current {
            let _ = writeln!(
                out,
                "dutycard_backstage_section_degraded{{account=\"{}\",section=\"{}\",status=\"{}\"}} 1",
                crate::metrics::escape(account),
                section.as_str(),
                entry.status
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16) -> cards::Refusal {
        cards::Refusal {
            status,
            message: format!("PagerDuty said {status}"),
        }
    }

    #[test]
    fn a_refusal_is_listed_once_counted_always_and_cleared_by_a_success() {
        let registry = Degradations::default();
        for _ in 0..3 {
            registry.refused("default", OptionalSection::Metrics, &refusal(403));
        }
        registry.refused("eu", OptionalSection::Standards, &refusal(404));
        let listed = registry.list();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(
            (listed[0].account.as_str(), listed[0].section.as_str()),
            ("default", "metrics")
        );
        assert_eq!((listed[0].status, listed[0].answers), (403, 3));

        registry.served("default", OptionalSection::Metrics);
        registry.served("default", OptionalSection::Standards); // never refused
        let listed = registry.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].account, "eu");

        let mut text = String::new();
        registry.render(&mut text);
        assert!(
            text.contains(
                "dutycard_backstage_degraded_answers_total{account=\"default\",section=\"metrics\",status=\"403\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "dutycard_backstage_section_degraded{account=\"eu\",section=\"standards\",status=\"404\"} 1"
            ),
            "{text}"
        );
        assert!(
            !text.contains("section_degraded{account=\"default\""),
            "{text}"
        );
    }

    #[test]
    fn a_new_status_replaces_the_entry() {
        let registry = Degradations::default();
        registry.refused("default", OptionalSection::Metrics, &refusal(403));
        registry.refused("default", OptionalSection::Metrics, &refusal(402));
        let listed = registry.list();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].status, listed[0].answers), (402, 1));
    }
}
