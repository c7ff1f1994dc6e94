//! The account's directory: `GET /teams`, `GET /teams/{id}`,
//! `GET /users/{id}`, `GET /schedules/{id}`.

use serde_json::json;

use super::ok;
use crate::account::AccountView;
use crate::http::{Query, Reply, not_found};
use crate::render::Render;

pub(super) fn list_teams(q: &Query, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let page = q.page()?;
    let query = q.one("query").map(str::to_lowercase);
    let mut teams: Vec<_> = account
        .teams
        .iter()
        .filter(|t| {
            query
                .as_deref()
                .is_none_or(|qq| t.name.to_lowercase().contains(qq))
        })
        .collect();
    teams.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(ok(page.wrap("teams", &teams, |t| r.team(t))))
}

pub(super) fn get_team(id: &str, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let t = account.team(id).ok_or_else(not_found)?;
    Ok(ok(json!({"team": r.team(t)})))
}

pub(super) fn get_user(id: &str, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let u = account.user(id).ok_or_else(not_found)?;
    Ok(ok(json!({"user": r.user(u)})))
}

pub(super) fn get_schedule(id: &str, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let s = account.schedule(id).ok_or_else(not_found)?;
    Ok(ok(json!({"schedule": r.schedule(s)})))
}
