//! `GET /change_events` and `GET /services/{id}/change_events`.

use super::ok;
use crate::account::AccountView;
use crate::http::{Query, Reply, not_found};
use crate::render::Render;

pub(super) fn list_service_change_events(
    service_id: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    account.service(service_id).ok_or_else(not_found)?;
    list_change_events(Some(service_id), q, account, r)
}

pub(super) fn list_change_events(
    service_id: Option<&str>,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let page = q.page()?;
    let since = q.utc_time("since")?;
    let until = q.utc_time("until")?;
    let team_ids = q.all("team_ids");
    let integration_ids = q.all("integration_ids");
    let mut events: Vec<_> = account
        .change_events
        .iter()
        .filter(|c| service_id.is_none_or(|s| c.service_id == s))
        .filter(|c| since.is_none_or(|t| c.timestamp >= t))
        .filter(|c| until.is_none_or(|t| c.timestamp < t))
        .filter(|c| {
            team_ids.is_empty()
                || account
                    .service(&c.service_id)
                    .is_some_and(|s| s.team_ids.iter().any(|t| team_ids.contains(t)))
        })
        .filter(|c| {
            integration_ids.is_empty()
                || c.integration_id
                    .as_ref()
                    .is_some_and(|i| integration_ids.contains(i))
        })
        .collect();
    events.reverse(); // newest first
    Ok(ok(
        page.wrap("change_events", &events, |c| r.change_event(c))
    ))
}
