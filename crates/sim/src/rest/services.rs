//! `GET /services` and `GET /services/{id}`.

use serde_json::json;

use super::{check_enum, ok, sort_by_name};
use crate::account::AccountView;
use crate::http::{Query, Reply, not_found};
use crate::render::Render;

/// What `include[]` may name.
const INCLUDES: &[&str] = &[
    "escalation_policies",
    "teams",
    "integrations",
    "auto_pause_notifications_parameters",
];

pub(super) fn list_services(q: &Query, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let page = q.page()?;
    let include = q.all("include");
    check_enum("include[]", &include, INCLUDES)?;
    let team_ids = q.all("team_ids");
    let query = q.one("query").map(str::to_lowercase);
    let name = q.one("name");
    let mut services: Vec<_> = account
        .services
        .iter()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .filter(|s| team_ids.is_empty() || s.team_ids.iter().any(|t| team_ids.contains(t)))
        .filter(|s| {
            query.as_deref().is_none_or(|qq| {
                s.name.to_lowercase().contains(qq)
                    || s.integrations
                        .iter()
                        .any(|i| i.integration_key.as_deref() == Some(qq))
            })
        })
        .collect();
    sort_by_name(q, &mut services)?;
    Ok(ok(
        page.wrap("services", &services, |s| r.service(s, &include))
    ))
}

pub(super) fn get_service(
    id: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let include = q.all("include");
    check_enum("include[]", &include, INCLUDES)?;
    let svc = account.service(id).ok_or_else(not_found)?;
    Ok(ok(json!({"service": r.service(svc, &include)})))
}
