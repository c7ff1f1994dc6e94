//! Incident analytics (`POST /analytics/metrics/incidents/services`),
//! derived from the incidents and the account's escalation policies and
//! on-call data, with PagerDuty's definitions of each metric
//! (`AnalyticsIncidentMetrics` in its OpenAPI description).
//!
//! What the simulator does not model is zero, not invented: nobody snoozes,
//! reassigns or escalates by hand, and there are no major incidents (those
//! need priorities), so the service was never down (`up_time_pct` 100).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

use super::{AccountView, Incident};

/// Incident metrics of one service over a period: the fields of
/// PagerDuty's `AnalyticsIncidentMetrics` (seconds and counts are whole
/// numbers, means rounded). `None` = no incident the mean applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMetrics {
    /// Service.
    pub service_id: String,
    /// Incidents created in the period.
    pub total_incident_count: u64,
    /// Of which acknowledged.
    pub total_incidents_acknowledged: u64,
    /// Resolved without anyone acknowledging: by the integration (an
    /// Events API `resolve`) or the service's auto-resolve timeout.
    pub total_incidents_auto_resolved: u64,
    /// Escalated by hand (never, in the simulator).
    pub total_incidents_manual_escalated: u64,
    /// Reassigned (never, in the simulator).
    pub total_incidents_reassigned: u64,
    /// Escalated at least once because nobody acknowledged in time.
    pub total_incidents_timeout_escalated: u64,
    /// Escalations from one level to the next, over all incidents.
    pub total_escalation_count: u64,
    /// Notifications sent: two per assignment of a high-urgency incident
    /// (push and phone), one per low-urgency assignment (email).
    pub total_notifications: u64,
    /// High-urgency pages (one per assignment), the sum of the three bands.
    pub total_interruptions: u64,
    /// Pages 8am–6pm Monday–Friday, in the paged user's time zone.
    pub total_business_hour_interruptions: u64,
    /// Pages 6pm–10pm Monday–Friday and all day Saturday and Sunday.
    pub total_off_hour_interruptions: u64,
    /// Pages 10pm–8am, every day.
    pub total_sleep_hour_interruptions: u64,
    /// From each acknowledgement to the resolution, over resolved incidents.
    pub total_engaged_seconds: u64,
    /// Same as `total_engaged_seconds` (nobody edits response effort here).
    pub total_user_defined_engaged_seconds: u64,
    /// Seconds incidents were snoozed (never, in the simulator).
    pub total_snoozed_seconds: u64,
    /// Mean assignments per incident (the levels it reached plus
    /// responders added by request).
    pub mean_assignment_count: Option<u64>,
    /// `total_engaged_seconds` per engagement of a resolved incident.
    pub mean_engaged_seconds: Option<u64>,
    /// Same as `mean_engaged_seconds`.
    pub mean_user_defined_engaged_seconds: Option<u64>,
    /// Mean users who acknowledged per incident.
    pub mean_engaged_user_count: Option<u64>,
    /// Mean from the first acknowledgement to the last, over incidents
    /// with several responders (`None` when none has).
    pub mean_seconds_to_engage: Option<u64>,
    /// Mean from creation to the first acknowledgement.
    pub mean_seconds_to_first_ack: Option<u64>,
    /// Mean from creation to the last responder's acknowledgement, over
    /// incidents with several responders.
    pub mean_seconds_to_mobilize: Option<u64>,
    /// Mean from creation to resolution, over resolved incidents.
    pub mean_seconds_to_resolve: Option<u64>,
    /// Share of the period without a major incident.
    pub up_time_pct: f64,
}

/// When one incident paged whom, and who engaged.
struct Lifecycle {
    escalations: u64,
    /// `(when, user)` per assignment.
    pages: Vec<(DateTime<Utc>, String)>,
    /// `(user, when)` per acknowledgement, the first first.
    engagements: Vec<(String, DateTime<Utc>)>,
}

impl AccountView {
    /// Incident metrics per service for incidents created in `[start, end)`,
    /// optionally only of one urgency; services without incidents are left
    /// out. An incident nobody acknowledged keeps escalating until it is
    /// resolved, or until `end`.
    pub fn incident_metrics(
        &self,
        service_ids: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        urgency: Option<&str>,
    ) -> Vec<ServiceMetrics> {
        self.incident_metrics_as_of(service_ids, start, end, urgency, end)
    }

    /// [`AccountView::incident_metrics`] with the escalations of
    /// unacknowledged incidents counted until `as_of` (the same for every
    /// bucket of one query, so buckets add up to the whole period).
    pub(crate) fn incident_metrics_as_of(
        &self,
        service_ids: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        urgency: Option<&str>,
        as_of: DateTime<Utc>,
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
        by_service
            .into_iter()
            .map(|(service_id, incs)| self.service_metrics(service_id, &incs, as_of))
            .collect()
    }

    fn service_metrics(
        &self,
        service_id: &str,
        incs: &[&Incident],
        end: DateTime<Utc>,
    ) -> ServiceMetrics {
        let lives: Vec<(&Incident, Lifecycle)> =
            incs.iter().map(|i| (*i, self.lifecycle(i, end))).collect();
        let n = incs.len() as u64;
        let count = |f: &dyn Fn(&Incident, &Lifecycle) -> bool| {
            lives.iter().filter(|(i, l)| f(i, l)).count() as u64
        };
        let sum = |f: &dyn Fn(&Incident, &Lifecycle) -> u64| {
            lives.iter().map(|(i, l)| f(i, l)).sum::<u64>()
        };
        let secs = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_seconds().max(0) as u64;

        let pages = sum(&|_, l| l.pages.len() as u64);
        let mut bands = [0u64; 3];
        for (inc, life) in &lives {
            if inc.urgency != "high" {
                continue;
            }
            for (at, user) in &life.pages {
                let tz = self.user(user).map_or("Etc/UTC", |u| u.time_zone.as_str());
                bands[band(*at, tz)] += 1;
            }
        }
        // Engagement lasts until the resolution: only resolved incidents count.
        let engaged: Vec<u64> = lives
            .iter()
            .filter_map(|(i, l)| i.resolved_at.map(|r| (r, l)))
            .flat_map(|(r, l)| l.engagements.iter().map(move |(_, at)| secs(*at, r)))
            .collect();
        let total_engaged: u64 = engaged.iter().sum();
        let multi: Vec<&Lifecycle> = lives
            .iter()
            .map(|(_, l)| l)
            .filter(|l| l.engagements.len() > 1)
            .collect();
        let first_last = |l: &Lifecycle| {
            let first = l.engagements.iter().map(|(_, t)| *t).min();
            let last = l.engagements.iter().map(|(_, t)| *t).max();
            first.zip(last)
        };
        ServiceMetrics {
            service_id: service_id.to_owned(),
            total_incident_count: n,
            total_incidents_acknowledged: count(&|i, _| i.acknowledged_at.is_some()),
            total_incidents_auto_resolved: count(&|i, _| {
                i.resolved_at.is_some() && i.acknowledged_at.is_none()
            }),
            total_incidents_manual_escalated: 0,
            total_incidents_reassigned: 0,
            total_incidents_timeout_escalated: count(&|_, l| l.escalations > 0),
            total_escalation_count: sum(&|_, l| l.escalations),
            total_notifications: sum(&|i, l| {
                l.pages.len() as u64 * if i.urgency == "high" { 2 } else { 1 }
            }),
            total_interruptions: bands.iter().sum(),
            total_business_hour_interruptions: bands[BUSINESS],
            total_off_hour_interruptions: bands[OFF],
            total_sleep_hour_interruptions: bands[SLEEP],
            total_engaged_seconds: total_engaged,
            total_user_defined_engaged_seconds: total_engaged,
            total_snoozed_seconds: 0,
            mean_assignment_count: mean_of(pages, n),
            mean_engaged_seconds: mean_of(total_engaged, engaged.len() as u64),
            mean_user_defined_engaged_seconds: mean_of(total_engaged, engaged.len() as u64),
            mean_engaged_user_count: mean_of(sum(&|_, l| l.engagements.len() as u64), n),
            mean_seconds_to_engage: mean(
                multi
                    .iter()
                    .filter_map(|l| first_last(l))
                    .map(|(f, l)| secs(f, l)),
            ),
            mean_seconds_to_first_ack: mean(
                incs.iter()
                    .filter_map(|i| i.acknowledged_at.map(|a| secs(i.created_at, a))),
            ),
            mean_seconds_to_mobilize: mean(
                lives
                    .iter()
                    .filter(|(_, l)| l.engagements.len() > 1)
                    .filter_map(|(i, l)| first_last(l).map(|(_, last)| secs(i.created_at, last))),
            ),
            mean_seconds_to_resolve: mean(
                incs.iter()
                    .filter_map(|i| i.resolved_at.map(|r| secs(i.created_at, r))),
            ),
            up_time_pct: 100.0,
        }
    }

    /// Replays the escalation policy: level 1 is paged at creation, each
    /// later level when the previous one's delay passes without an
    /// acknowledgement (looping `num_loops` times), until someone
    /// acknowledges, the incident is resolved, or `end`. Each level pages
    /// the first user on call there then (the incident's own responder at
    /// level 1); responders added by request are paged when they accept.
    fn lifecycle(&self, inc: &Incident, end: DateTime<Utc>) -> Lifecycle {
        let mut engagements: Vec<(String, DateTime<Utc>)> = inc
            .acknowledged_at
            .map(|at| {
                inc.acknowledger_ids
                    .iter()
                    .map(|u| (u.clone(), at))
                    .collect()
            })
            .unwrap_or_default();
        engagements.extend(inc.additional_responders.iter().cloned());
        let first_responder = inc
            .acknowledger_ids
            .first()
            .or(inc.assignee_ids.first())
            .cloned();
        let mut pages: Vec<(DateTime<Utc>, String)> = Vec::new();
        if let Some(u) = &first_responder {
            pages.push((inc.created_at, u.clone()));
        }
        let mut escalations = 0;
        if let Some(ep) = self.escalation_policy(&inc.escalation_policy_id) {
            let horizon = inc.acknowledged_at.or(inc.resolved_at).unwrap_or(end);
            let levels = ep.rules.len();
            let max = (levels as u64 * (u64::from(ep.num_loops) + 1)).saturating_sub(1);
            let mut at = inc.created_at;
            let mut level = 0;
            while escalations < max && levels > 0 {
                at += Duration::minutes(i64::from(ep.rules[level].escalation_delay_in_minutes));
                if at >= horizon {
                    break;
                }
                escalations += 1;
                level = (level + 1) % levels;
                let paged = self
                    .oncalls_for(&ep.id, at, at)
                    .into_iter()
                    .find(|o| o.escalation_level as usize == level + 1);
                if let Some(o) = paged {
                    pages.push((at, o.user_id));
                }
            }
        }
        pages.extend(
            inc.additional_responders
                .iter()
                .map(|(u, at)| (*at, u.clone())),
        );
        Lifecycle {
            escalations,
            pages,
            engagements,
        }
    }
}

const BUSINESS: usize = 0;
const OFF: usize = 1;
const SLEEP: usize = 2;

/// Which interruption band `at` falls in, in time zone `tz`: sleep hours
/// are 10pm–8am every day, business hours 8am–6pm Monday to Friday, off
/// hours the rest (6pm–10pm on weekdays, the day on weekends).
fn band(at: DateTime<Utc>, tz: &str) -> usize {
    let local = at.naive_utc() + Duration::hours(standard_offset_hours(tz));
    let hour = local.hour();
    let weekend = local.weekday().number_from_monday() >= 6;
    if !(8..22).contains(&hour) {
        SLEEP
    } else if weekend || hour >= 18 {
        OFF
    } else {
        BUSINESS
    }
}

/// UTC offsets of the time zones the generated users live in, without
/// daylight saving time (which moves a band's edges by an hour for part of
/// the year; not worth a time zone database here).
fn standard_offset_hours(tz: &str) -> i64 {
    match tz {
        "Europe/Berlin" => 1,
        "America/New_York" => -5,
        "America/Los_Angeles" => -8,
        "Asia/Tokyo" => 9,
        _ => 0,
    }
}

/// `total / n` rounded, `None` when `n` is 0.
fn mean_of(total: u64, n: u64) -> Option<u64> {
    (n > 0).then(|| (total as f64 / n as f64).round() as u64)
}

fn mean(values: impl Iterator<Item = u64>) -> Option<u64> {
    let (total, n) = values.fold((0u64, 0u64), |(t, n), v| (t + v, n + 1));
    mean_of(total, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn bands_follow_the_users_local_clock() {
        // Monday 2026-06-01.
        let at = |h| Utc.with_ymd_and_hms(2026, 6, 1, h, 0, 0).unwrap();
        assert_eq!(band(at(9), "Etc/UTC"), BUSINESS);
        assert_eq!(band(at(19), "Etc/UTC"), OFF);
        assert_eq!(band(at(23), "Etc/UTC"), SLEEP);
        assert_eq!(band(at(7), "Etc/UTC"), SLEEP);
        // 09:00 UTC is 01:00 in Los Angeles and 18:00 in Tokyo.
        assert_eq!(band(at(9), "America/Los_Angeles"), SLEEP);
        assert_eq!(band(at(9), "Asia/Tokyo"), OFF);
        // Saturday noon.
        let saturday = Utc.with_ymd_and_hms(2026, 6, 6, 12, 0, 0).unwrap();
        assert_eq!(band(saturday, "Etc/UTC"), OFF);
    }

    #[test]
    fn means_round_and_are_absent_without_samples() {
        assert_eq!(mean_of(7, 2), Some(4));
        assert_eq!(mean_of(7, 0), None);
        assert_eq!(mean([1, 2].into_iter()), Some(2));
        assert_eq!(mean(std::iter::empty()), None);
    }
}
