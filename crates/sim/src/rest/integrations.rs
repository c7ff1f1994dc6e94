//! A service's integrations: `POST /services/{id}/integrations` and
//! `GET /services/{id}/integrations/{integration_id}`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{body, check_enum};
use crate::account::{AccountView, Integration, vendor};
use crate::http::{Query, Reply, invalid, not_found};
use crate::render::Render;
use crate::server::State;

/// Integration types the simulator can create: Events API v2 (which gets
/// a routing key) and email.
const TYPES: &[&str] = &[
    "events_api_v2_inbound_integration",
    "generic_email_inbound_integration",
];

/// What `include[]` may name on the single read.
const INCLUDES: &[&str] = &["services", "vendors"];

/// `GET /services/{id}/integrations/{integration_id}`.
pub(super) fn get(
    service_id: &str,
    integration_id: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let include = q.all("include");
    check_enum("include[]", &include, INCLUDES)?;
    let svc = account.service(service_id).ok_or_else(not_found)?;
    let integration = svc
        .integrations
        .iter()
        .find(|i| i.id == integration_id)
        .ok_or_else(not_found)?;
    Ok(Reply::json(
        200,
        &json!({"integration": r.integration_object(svc, integration, &include)}),
    ))
}

/// `POST /services/{id}/integrations`: `{"integration": {type?, name?,
/// service?, vendor?, integration_email?}}`. A vendor gives the type when
/// none is named (PagerDuty's Backstage plugin sends only name, service and
/// vendor `PRO19CT`); an Events API v2 integration gets a fresh
/// `integration_key`, routable at once. Answers 201.
pub(super) fn create(
    service_id: &str,
    raw: &[u8],
    state: &State,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let req = body::object(raw, false)?;
    let spec = body::required_object(&req["integration"], "integration")?;
    let field = |name: &str| spec.get(name).unwrap_or(&Value::Null);
    let mut account = state.write_account();
    if account.service(service_id).is_none() {
        return Err(not_found());
    }
    if !field("service").is_null() {
        let svc = body::required_object(field("service"), "integration.service")?;
        let id = body::required_str(
            svc.get("id").unwrap_or(&Value::Null),
            "integration.service.id",
        )?;
        if id != service_id {
            return Err(invalid(format!(
                "integration.service.id {id} is not the service {service_id} of the path"
            )));
        }
    }
    let vendor = match field("vendor") {
        Value::Null => None,
        v => {
            let r = body::required_object(v, "integration.vendor")?;
            let id =
                body::required_str(r.get("id").unwrap_or(&Value::Null), "integration.vendor.id")?;
            Some(vendor(id).ok_or_else(|| {
                invalid(format!("integration.vendor.id {id} is not a known vendor"))
            })?)
        }
    };
    let kind = match (
        body::optional_str(field("type"), "integration.type")?,
        vendor,
    ) {
        (Some(t), _) if !TYPES.contains(&t) => {
            return Err(invalid(format!(
                "integration.type {t:?} is not supported; allowed: {}",
                TYPES.join(", ")
            )));
        }
        (Some(t), Some(v)) if t != v.integration_type => {
            return Err(invalid(format!(
                "integration.type {t:?} does not match vendor {} ({})",
                v.id, v.integration_type
            )));
        }
        (Some(t), _) => t.to_owned(),
        (None, Some(v)) => v.integration_type.to_owned(),
        (None, None) => {
            return Err(invalid(
                "integration.type is required (or integration.vendor)",
            ));
        }
    };
    let email = kind == "generic_email_inbound_integration";
    let integration_email = match body::optional_str(
        field("integration_email"),
        "integration.integration_email",
    )? {
        Some(e) if !email => {
            return Err(invalid(format!(
                "integration.integration_email is only for generic_email_inbound_integration, not {kind} ({e})"
            )));
        }
        Some(e) if !e.contains('@') => {
            return Err(invalid(
                "integration.integration_email must be an email address",
            ));
        }
        Some(e) if taken_email(&account, e) => {
            return Err(invalid(format!(
                "integration.integration_email {e} is already used"
            )));
        }
        Some(e) => Some(e.to_owned()),
        None if email => {
            return Err(invalid(
                "integration.integration_email is required for generic_email_inbound_integration",
            ));
        }
        None => None,
    };
    let name = match body::optional_str(field("name"), "integration.name")? {
        Some(n) if n.trim().is_empty() => {
            return Err(invalid("integration.name must not be blank"));
        }
        Some(n) if n.chars().count() > 255 => {
            return Err(invalid(
                "integration.name is too long (maximum is 255 characters)",
            ));
        }
        Some(n) => n.to_owned(),
        None => vendor.map_or_else(
            || if email { "Email" } else { "Events API V2" }.to_owned(),
            |v| v.name.to_owned(),
        ),
    };
    let id = state.fresh_id(|id| taken_id(&account, id));
    let integration_key = (!email).then(|| {
        loop {
            let key = state.random_chars(b"0123456789abcdef", 32);
            if account.service_by_integration_key(&key).is_none() {
                break key;
            }
        }
    });
    let integration = Integration {
        id,
        kind,
        name,
        integration_key,
        vendor: vendor.map(|v| (v.id.to_owned(), v.name.to_owned())),
        integration_email,
        created_at: now,
    };
    account.add_integration(service_id, integration.clone());
    let r = Render {
        account: &account,
        base: &state.base_url,
        now,
    };
    let svc = account.service(service_id).ok_or_else(not_found)?;
    Ok(Reply::json(
        201,
        &json!({"integration": r.integration_object(svc, &integration, &[])}),
    ))
}

fn taken_email(account: &AccountView, email: &str) -> bool {
    account.services.iter().any(|s| {
        s.integrations
            .iter()
            .any(|i| i.integration_email.as_deref() == Some(email))
    })
}

/// Whether an id is in use by a service, an incident or an integration.
fn taken_id(account: &AccountView, id: &str) -> bool {
    account.service(id).is_some()
        || account.incident(id).is_some()
        || account
            .services
            .iter()
            .any(|s| s.integrations.iter().any(|i| i.id == id))
}
