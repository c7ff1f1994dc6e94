//! `GET /escalation_policies` and `GET /escalation_policies/{id}`.

use serde_json::json;

use super::{check_enum, ok, sort_by_name};
use crate::account::{AccountView, Target};
use crate::http::{Query, Reply, not_found};
use crate::render::Render;

/// What `include[]` may name.
const INCLUDES: &[&str] = &["services", "teams", "targets"];

pub(super) fn list_escalation_policies(
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let page = q.page()?;
    let include = q.all("include");
    check_enum("include[]", &include, INCLUDES)?;
    let service_ids = q.all("service_ids");
    let team_ids = q.all("team_ids");
    let user_ids = q.all("user_ids");
    let query = q.one("query").map(str::to_lowercase);
    let mut eps: Vec<_> = account
        .escalation_policies
        .iter()
        .filter(|e| {
            query
                .as_deref()
                .is_none_or(|qq| e.name.to_lowercase().contains(qq))
        })
        .filter(|e| team_ids.is_empty() || e.team_ids.iter().any(|t| team_ids.contains(t)))
        .filter(|e| {
            service_ids.is_empty()
                || account
                    .services_of_policy(&e.id)
                    .iter()
                    .any(|s| service_ids.contains(&s.id))
        })
        .filter(|e| {
            user_ids.is_empty()
                || e.rules.iter().any(|rule| {
                    rule.targets.iter().any(|t| match t {
                        Target::User(u) => user_ids.contains(u),
                        Target::Schedule(s) => account
                            .schedule(s)
                            .is_some_and(|s| s.user_ids.iter().any(|u| user_ids.contains(u))),
                    })
                })
        })
        .collect();
    eps.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    sort_by_name(q, &mut eps)?;
    Ok(ok(page.wrap("escalation_policies", &eps, |e| {
        r.escalation_policy(e, &include)
    })))
}

pub(super) fn get_escalation_policy(
    id: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let e = account.escalation_policy(id).ok_or_else(not_found)?;
    let include = q.all("include");
    check_enum("include[]", &include, INCLUDES)?;
    Ok(ok(
        json!({"escalation_policy": r.escalation_policy(e, &include)}),
    ))
}
