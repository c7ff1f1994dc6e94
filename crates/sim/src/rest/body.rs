//! Reading JSON request bodies field by field, each mistake a 400 naming
//! the field (`webhook_subscription.filter.type must be ...`).

use serde_json::{Map, Value};

use crate::http::{Reply, invalid};

/// The body as a JSON object; an empty body is `{}` when `empty_ok`.
pub(super) fn object(body: &[u8], empty_ok: bool) -> Result<Value, Reply> {
    if body.is_empty() {
        return if empty_ok {
            Ok(Value::Object(Map::new()))
        } else {
            Err(invalid("body is required (a JSON object)"))
        };
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("body is not valid JSON: {e}")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(invalid("body must be a JSON object"))
    }
}

/// `v` must be an object (`field` names it in the error).
pub(super) fn required_object<'a>(
    v: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, Reply> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Err(invalid(format!("{field} is required (an object)"))),
        _ => Err(invalid(format!("{field} must be an object"))),
    }
}

/// A non-empty string.
pub(super) fn required_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, Reply> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) | Value::Null => Err(invalid(format!("{field} is required"))),
        _ => Err(invalid(format!("{field} must be a string"))),
    }
}

/// A string, or nothing.
pub(super) fn optional_str<'a>(v: &'a Value, field: &str) -> Result<Option<&'a str>, Reply> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(invalid(format!("{field} must be a string"))),
    }
}

/// A boolean, or `default`.
pub(super) fn optional_bool(v: &Value, field: &str, default: bool) -> Result<bool, Reply> {
    match v {
        Value::Null => Ok(default),
        Value::Bool(b) => Ok(*b),
        _ => Err(invalid(format!("{field} must be true or false"))),
    }
}

/// An array of strings, or nothing (empty).
pub(super) fn string_list(v: &Value, field: &str) -> Result<Vec<String>, Reply> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("{field} must be an array of strings")))
            })
            .collect(),
        _ => Err(invalid(format!("{field} must be an array of strings"))),
    }
}
