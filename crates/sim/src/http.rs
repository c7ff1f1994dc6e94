//! Small HTTP helpers: replies, PagerDuty error bodies, query parsing,
//! pagination.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A response before it becomes an `HttpResponse` (so it can be counted).
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            body: value.to_string(),
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: String::new(),
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// `{"error":{"message","code","errors"}}`.
pub(crate) fn pd_error(status: u16, message: &str, code: Option<i64>, errors: &[String]) -> Reply {
    let mut error = json!({ "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    if !errors.is_empty() {
        error["errors"] = json!(errors);
    }
    Reply::json(status, &json!({ "error": error }))
}

/// 400 "Invalid Input Provided" (code 2001) with one detail naming the field.
pub(crate) fn invalid(detail: impl Into<String>) -> Reply {
    pd_error(400, "Invalid Input Provided", Some(2001), &[detail.into()])
}

pub(crate) fn not_found() -> Reply {
    pd_error(404, "Not Found", Some(2100), &[])
}

pub(crate) fn unauthorized() -> Reply {
    pd_error(401, "Authentication failed", Some(2006), &[])
}

pub(crate) fn missing_scope(scope: &str) -> Reply {
    Reply::json(
        403,
        &json!({"error": {"message": "Token missing required scopes", "required_scopes": scope}}),
    )
}

pub(crate) fn rate_limited(limit: u32, reset_secs: u64) -> Reply {
    pd_error(429, "Rate Limit Exceeded", Some(2020), &[])
        .header("ratelimit-limit", limit)
        .header("ratelimit-remaining", 0)
        .header("ratelimit-reset", reset_secs)
}

/// The body PagerDuty sends for an injected error status on REST routes.
pub(crate) fn status_error(status: u16) -> Reply {
    match status {
        400 => invalid("Injected fault"),
        401 => unauthorized(),
        403 => pd_error(403, "Access Denied", Some(2010), &[]),
        404 => not_found(),
        429 => pd_error(429, "Rate Limit Exceeded", Some(2020), &[]),
        500 => pd_error(500, "An internal error has occurred", Some(2000), &[]),
        s if s >= 500 => pd_error(s, "Service Unavailable", None, &[]),
        s => pd_error(s, "Error", None, &[]),
    }
}

/// Decoded query pairs (keys and values percent-decoded, so `include%5B%5D` is `include[]`).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(qs: &str) -> Self {
        Self(
            url::form_urlencoded::parse(qs.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Values of `name[]` and `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        let bracket = format!("{name}[]");
        self.0
            .iter()
            .filter(|(k, _)| *k == name || *k == bracket)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// First value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn bool(&self, name: &str) -> Result<bool, Reply> {
        match self.one(name) {
            None => Ok(false),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(invalid(format!("{name} must be true or false"))),
        }
    }

    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, Reply> {
        match self.one(name) {
            None | Some("") => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| time_error(name)),
        }
    }

    /// Like [`Query::time`] but rejects non-UTC offsets (change events).
    pub fn utc_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, Reply> {
        match self.one(name) {
            None | Some("") => Ok(None),
            Some(v) => match DateTime::parse_from_rfc3339(v) {
                Ok(t) if t.offset().local_minus_utc() == 0 => Ok(Some(t.with_timezone(&Utc))),
                _ => Err(pd_error(
                    400,
                    "Invalid Input Provided",
                    Some(2001),
                    &[format!(
                        "{name} must be a UTC ISO 8601 date-time (YYYY-MM-DDThh:mm:ssZ)"
                    )],
                )),
            },
        }
    }

    pub fn page(&self) -> Result<Paging, Reply> {
        let num = |name: &str| -> Result<Option<u64>, Reply> {
            match self.one(name) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| invalid(format!("{name} must be a non-negative integer"))),
            }
        };
        let limit = num("limit")?.unwrap_or(25).clamp(1, 100);
        let offset = num("offset")?.unwrap_or(0);
        if offset.checked_add(limit).is_none_or(|end| end > 10_000) {
            return Err(invalid(
                "Offset plus limit must not exceed 10000; narrow the query with filters",
            ));
        }
        Ok(Paging {
            limit: limit as usize,
            offset: offset as usize,
            total: self.bool("total")?,
        })
    }
}

pub(crate) fn time_error(name: &str) -> Reply {
    pd_error(
        400,
        "Invalid time values in 'since' and/or 'until' parameters",
        Some(2004),
        &[format!("{name} is not a valid ISO 8601 date-time")],
    )
}

/// Classic offset pagination.
pub(crate) struct Paging {
    pub limit: usize,
    pub offset: usize,
    pub total: bool,
}

impl Paging {
    /// `{key: items, limit, offset, more, total}` for one page of `all`,
    /// rendering only the page.
    pub fn wrap<T>(&self, key: &str, all: &[T], render: impl Fn(&T) -> Value) -> Value {
        let n = all.len();
        let items: Vec<Value> = all
            .iter()
            .skip(self.offset)
            .take(self.limit)
            .map(render)
            .collect();
        json!({
            key: items,
            "limit": self.limit,
            "offset": self.offset,
            "more": self.offset.saturating_add(self.limit) < n,
            "total": if self.total { json!(n) } else { Value::Null },
        })
    }
}
