//! Service dependencies: `GET /service_dependencies/technical_services/{id}`,
//! `POST /service_dependencies/associate` and `.../disassociate`.
//!
//! Only technical services exist in the simulator: a reference typed
//! `business_service` names nothing (404), like an unknown id.

use serde_json::{Value, json};

use super::body;
use super::ok;
use crate::account::{AccountView, ServiceDependency, check_dependency};
use crate::http::{Reply, invalid, not_found, pd_error};
use crate::server::State;

/// Reference types that name a technical service.
const SERVICE_TYPES: &[&str] = &[
    "service",
    "service_reference",
    "technical_service",
    "technical_service_reference",
];

fn reference(id: &str) -> Value {
    json!({"id": id, "type": "technical_service_reference"})
}

fn relationship(d: &ServiceDependency) -> Value {
    json!({
        "id": d.id,
        "type": "service_dependency",
        "supporting_service": reference(&d.supporting_service_id),
        "dependent_service": reference(&d.dependent_service_id),
    })
}

/// `GET /service_dependencies/technical_services/{id}`.
pub(super) fn list(id: &str, account: &AccountView) -> Result<Reply, Reply> {
    account.service(id).ok_or_else(not_found)?;
    let relationships: Vec<Value> = account
        .dependencies_of(id)
        .into_iter()
        .map(relationship)
        .collect();
    Ok(ok(json!({ "relationships": relationships })))
}

/// The `(supporting, dependent)` pairs of a body, every reference checked.
fn pairs(raw: &[u8], account: &AccountView) -> Result<Vec<(String, String)>, Reply> {
    let req = body::object(raw, false)?;
    let items = match &req["relationships"] {
        Value::Array(items) if !items.is_empty() => items,
        Value::Array(_) => return Err(invalid("relationships must not be empty")),
        Value::Null => return Err(invalid("relationships is required (an array)")),
        _ => return Err(invalid("relationships must be an array")),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut ids = Vec::with_capacity(2);
        for side in ["supporting_service", "dependent_service"] {
            let field = format!("relationships[{i}].{side}");
            let r = body::required_object(&item[side], &field)?;
            let id =
                body::required_str(r.get("id").unwrap_or(&Value::Null), &format!("{field}.id"))?;
            let kind = body::required_str(
                r.get("type").unwrap_or(&Value::Null),
                &format!("{field}.type"),
            )?;
            if kind == "business_service" || kind == "business_service_reference" {
                return Err(pd_error(
                    404,
                    "Not Found",
                    Some(2100),
                    &[format!("{field}: business service {id} not found")],
                ));
            }
            if !SERVICE_TYPES.contains(&kind) {
                return Err(invalid(format!(
                    "{field}.type {kind:?} is invalid; allowed: service, business_service"
                )));
            }
            if account.service(id).is_none() {
                return Err(pd_error(
                    404,
                    "Not Found",
                    Some(2100),
                    &[format!("{field}: service {id} not found")],
                ));
            }
            ids.push(id.to_owned());
        }
        out.push((ids[0].clone(), ids[1].clone()));
    }
    Ok(out)
}

/// `POST /service_dependencies/associate`: all or nothing; an existing
/// dependency is answered as it is.
pub(super) fn associate(raw: &[u8], state: &State) -> Result<Reply, Reply> {
    let mut account = state.write_account();
    let pairs = pairs(raw, &account)?;
    let mut made = Vec::with_capacity(pairs.len());
    // Checked against the account plus the ones this request adds before.
    let mut staged = account.dependencies.clone();
    for (i, (supporting, dependent)) in pairs.iter().enumerate() {
        let existing = staged.iter().find(|d| {
            d.supporting_service_id == *supporting && d.dependent_service_id == *dependent
        });
        if let Some(d) = existing {
            made.push(d.clone());
            continue;
        }
        check_dependency(&staged, supporting, dependent)
            .map_err(|e| invalid(format!("relationships[{i}]: {e}")))?;
        let d = ServiceDependency {
            id: format!("D{}", state.random_chars(crate::server::ID_CHARS, 15)),
            supporting_service_id: supporting.clone(),
            dependent_service_id: dependent.clone(),
        };
        staged.push(d.clone());
        made.push(d);
    }
    account.dependencies = staged;
    Ok(ok(
        json!({"relationships": made.iter().map(relationship).collect::<Vec<_>>()}),
    ))
}

/// `POST /service_dependencies/disassociate`: all or nothing; a pair that
/// is not associated is a 404.
pub(super) fn disassociate(raw: &[u8], state: &State) -> Result<Reply, Reply> {
    let mut account = state.write_account();
    let pairs = pairs(raw, &account)?;
    let mut removed = Vec::with_capacity(pairs.len());
    for (i, (supporting, dependent)) in pairs.iter().enumerate() {
        match account.dependency(supporting, dependent) {
            Some(d) => removed.push(d.clone()),
            None => {
                return Err(pd_error(
                    404,
                    "Not Found",
                    Some(2100),
                    &[format!(
                        "relationships[{i}]: {dependent} does not depend on {supporting}"
                    )],
                ));
            }
        }
    }
    account
        .dependencies
        .retain(|d| !removed.iter().any(|r| r.id == d.id));
    Ok(ok(
        json!({"relationships": removed.iter().map(relationship).collect::<Vec<_>>()}),
    ))
}
