//! `GET /standards/scores/{resource_type}` and
//! `GET /standards/scores/{resource_type}/{id}` (technical services only).

use serde_json::{Value, json};

use super::ok;
use crate::account::AccountView;
use crate::http::{Query, Reply, invalid, not_found};
use crate::render::Render;

pub(super) fn standards_many(
    kind: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    check_kind(kind)?;
    let ids: Vec<String> = q
        .all("ids")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(invalid("ids is required"));
    }
    if ids.len() > 100 {
        return Err(invalid("ids takes at most 100 items"));
    }
    let resources: Vec<Value> = ids
        .iter()
        .filter(|id| account.service(id).is_some())
        .map(|id| r.standards(id))
        .collect();
    Ok(ok(json!({ "resources": resources })))
}

pub(super) fn standards_one(
    kind: &str,
    id: &str,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    check_kind(kind)?;
    account.service(id).ok_or_else(not_found)?;
    Ok(ok(r.standards(id)))
}

fn check_kind(kind: &str) -> Result<(), Reply> {
    if kind == "technical_services" {
        Ok(())
    } else {
        Err(invalid("resource_type must be technical_services"))
    }
}
