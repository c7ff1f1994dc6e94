//! `GET /oncalls`.

use chrono::{DateTime, Duration, Utc};

use super::{check_enum, ok};
use crate::account::{AccountView, Oncall};
use crate::http::{Query, Reply, invalid};
use crate::render::Render;

pub(super) fn list_oncalls(
    q: &Query,
    account: &AccountView,
    r: &Render,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let page = q.page()?;
    let include = q.all("include");
    check_enum(
        "include[]",
        &include,
        &["escalation_policies", "users", "schedules"],
    )?;
    let ep_ids = q.all("escalation_policy_ids");
    let schedule_ids = q.all("schedule_ids");
    let user_ids = q.all("user_ids");
    let earliest = q.bool("earliest")?;
    let since = q.time("since")?.unwrap_or(now);
    let until = q.time("until")?.unwrap_or(since.max(now));
    if until < since {
        return Err(invalid("until must not be before since"));
    }
    if until - since > Duration::days(90) {
        return Err(invalid(
            "The range from since to until must not exceed 90 days",
        ));
    }
    let mut entries: Vec<Oncall> = Vec::new();
    for ep in &account.escalation_policies {
        if !ep_ids.is_empty() && !ep_ids.contains(&ep.id) {
            continue;
        }
        entries.extend(account.oncalls_for(&ep.id, since, until));
    }
    entries.retain(|o| {
        (schedule_ids.is_empty()
            || o.schedule_id
                .as_ref()
                .is_some_and(|s| schedule_ids.contains(s)))
            && (user_ids.is_empty() || user_ids.contains(&o.user_id))
    });
    if earliest {
        let mut kept: Vec<Oncall> = Vec::new();
        for o in entries {
            let same = kept.iter_mut().find(|k| {
                k.escalation_policy_id == o.escalation_policy_id
                    && k.escalation_level == o.escalation_level
                    && k.user_id == o.user_id
            });
            match same {
                // A permanent entry (no start) is the earliest possible.
                Some(k) if k.start.is_some() && (o.start.is_none() || o.start < k.start) => {
                    *k = o;
                }
                Some(_) => {}
                None => kept.push(o),
            }
        }
        entries = kept;
    }
    Ok(ok(page.wrap("oncalls", &entries, |o| r.oncall(o, &include))))
}
