//! PagerDuty's OpenAPI 3.0 descriptions as JSON Schema validators.
//!
//! The spec is read from `../shared/pagerduty-openapi/` (never copied into
//! the repository), turned into a JSON Schema draft 7 document (OpenAPI 3.0
//! schemas are a dialect of draft 4/5: `nullable` becomes a `null` type,
//! boolean `exclusiveMinimum`s become numbers, the rest is kept) and registered whole under one URI, so every
//! `#/components/...` reference resolves inside it. An answer is checked
//! twice:
//!
//! 1. by `jsonschema` against the operation's response schema (types,
//!    required fields, enums, formats such as `date-time`);
//! 2. by [`Spec::undeclared`], because OpenAPI objects are open by default
//!    and a field the spec does not have (the point of this test) would
//!    pass step 1: every property of the answer must be declared by the
//!    schema (through `allOf`, and the `anyOf`/`oneOf` branches the value
//!    matches), unless the schema declares no properties at all (a
//!    free-form object such as `custom_details`) or allows
//!    `additionalProperties`.

use std::collections::BTreeMap;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Registry, ValidationError, Validator};
use serde_json::{Map, Value, json};

/// Where the workspace keeps PagerDuty's descriptions (outside the repository).
pub const SPEC_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/pagerduty-openapi"
);

/// Fields the real API sends that its own description leaves out, each
/// with the evidence. Only these are let through [`Spec::undeclared`].
const KNOWN_OMISSIONS: &[(&str, &str)] = &[
    // The Integration schema has no integration_key; the real API returns
    // it on Events API integrations (PagerDuty's Backstage plugin reads it:
    // backstage-plugin-common/src/types.ts, PagerDutyIntegration), and
    // dutycard finds services by it.
    ("Integration", "integration_key"),
    // A missing OAuth scope answers 403 with error.required_scopes
    // (PagerDuty/terraform-provider-pagerduty#1027 quotes the body); the
    // generic error schema only has code, message and errors.
    ("error", "required_scopes"),
    // The change event lists take PagerDuty's offset pagination parameters
    // (offset_limit, offset_offset, offset_total) and their own example
    // answers carry limit, offset, total and more; the schema has only
    // change_events.
    (CHANGE_EVENTS_LIST, "limit"),
    (CHANGE_EVENTS_LIST, "offset"),
    (CHANGE_EVENTS_LIST, "total"),
    (CHANGE_EVENTS_LIST, "more"),
];

/// The 200 schemas of `GET /change_events` and `GET /services/{id}/change_events`
/// (matched by their pointer's end).
const CHANGE_EVENTS_LIST: &str = "change_events/get/responses/200/content/application~1json/schema";

/// One loaded description, converted twice: as written, and with
/// `include[]` modelled (see [`View::Include`]).
pub struct Spec {
    generic_error: Option<&'static str>,
    plain: Converted,
    include: Converted,
}

/// Which conversion a check uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The schemas as written: every reference is a reference.
    Plain,
    /// For answers to a request with `include[]`: PagerDuty then puts the
    /// full object where the schema has its reference (an
    /// `EscalationPolicyReference` becomes an `EscalationPolicy`; the
    /// descriptions of `include[]` say so, the schemas do not model it), so
    /// each `XReference` may also be a full `X`, told apart by `type`.
    Include,
}

struct Converted {
    uri: String,
    doc: &'static Value,
    registry: Registry<'static>,
    validators: std::sync::Mutex<BTreeMap<String, std::sync::Arc<Validator>>>,
}

impl Converted {
    fn new(spec: &Value, uri: String, include: bool) -> Self {
        let schemas = spec["components"]["schemas"].as_object();
        let full = |name: &str| schemas.is_some_and(|s| s.contains_key(name));
        let mut doc = to_json_schema(spec, include, &full);
        doc["$schema"] = json!("http://json-schema.org/draft-07/schema#");
        // Leaked: the registry borrows the document for the whole test run.
        let doc: &'static Value = Box::leak(Box::new(doc));
        let registry = Registry::new()
            .add(&uri, doc)
            .and_then(|b| b.prepare())
            .unwrap_or_else(|e| panic!("{uri}: not a schema registry: {e}"));
        Self {
            uri,
            doc,
            registry,
            validators: std::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

impl Spec {
    /// Loads `file` from [`SPEC_DIR`] and registers it as `uri`;
    /// `generic_error` points at the schema of the API's one error shape,
    /// used for a 4xx an operation does not list. `None` (after printing
    /// why) when the file is absent, the only case the schema tests skip.
    pub fn load(
        file: &str,
        uri: &'static str,
        generic_error: Option<&'static str>,
    ) -> Option<Spec> {
        let path = format!("{SPEC_DIR}/{file}");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("skipped: PagerDuty's OpenAPI description {path} is absent");
                return None;
            }
            Err(e) => panic!("cannot read {path}: {e}"),
        };
        let spec: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        if let Some(p) = generic_error {
            assert!(spec.pointer(p).is_some(), "{path} has no {p}");
        }
        Some(Spec {
            generic_error,
            plain: Converted::new(&spec, uri.to_owned(), false),
            include: Converted::new(&spec, format!("{uri}:include"), true),
        })
    }

    fn view(&self, view: View) -> &Converted {
        match view {
            View::Plain => &self.plain,
            View::Include => &self.include,
        }
    }

    /// The pointer (into the converted document) of the JSON schema of
    /// `method template`'s `status` answer, following `$ref`s to
    /// `components/responses`; `None` when the spec documents no body.
    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<String> {
        let op = format!(
            "/paths/{}/{}",
            escape(template),
            method.to_ascii_lowercase()
        );
        let op_value = self
            .plain
            .doc
            .pointer(&op)
            .unwrap_or_else(|| panic!("the spec has no operation {method} {template}"));
        let responses = &op_value["responses"];
        let code = status.to_string();
        let class = format!("{}XX", status / 100);
        let key = [code.as_str(), class.as_str(), "default"]
            .into_iter()
            .find(|k| responses.get(*k).is_some())?;
        let mut pointer = format!("{op}/responses/{}", escape(key));
        // A response may itself be a `$ref` to `components/responses`.
        while let Some(r) = self.plain.at(&pointer)["$ref"].as_str() {
            pointer = r.trim_start_matches('#').to_owned();
        }
        let content = self.plain.at(&pointer).get("content")?.as_object()?;
        let media = content
            .keys()
            .find(|m| m.starts_with("application/json"))?
            .clone();
        let schema = format!("{pointer}/content/{}/schema", escape(&media));
        self.plain.doc.pointer(&schema).map(|_| schema)
    }

    /// The schema of a 4xx answer the operation does not document.
    pub fn generic_error(&self, status: u16) -> Option<String> {
        self.generic_error
            .filter(|_| (400..500).contains(&status))
            .map(str::to_owned)
    }

    /// Every problem of `body` against the schema at `pointer`.
    pub fn problems(&self, pointer: &str, body: &Value, view: View) -> Vec<String> {
        let c = self.view(view);
        let mut out = Vec::new();
        for e in c.validator(pointer).iter_errors(body) {
            render(&e, &mut out);
        }
        c.undeclared(pointer, body, "", &mut out);
        out
    }
}

impl Converted {
    /// Whether `body` is valid against the schema at `pointer` (step 1 only).
    fn is_valid(&self, pointer: &str, body: &Value) -> bool {
        self.validator(pointer).is_valid(body)
    }

    fn validator(&self, pointer: &str) -> std::sync::Arc<Validator> {
        let mut cache = self.validators.lock().unwrap();
        cache
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                let root = json!({"$ref": format!("{}#{}", self.uri, fragment(pointer))});
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft7)
                    .should_validate_formats(true)
                    .with_registry(&self.registry)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("schema at {pointer}: {e}"));
                std::sync::Arc::new(validator)
            })
            .clone()
    }

    fn at(&self, pointer: &str) -> &Value {
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling pointer {pointer}"))
    }

    /// Follows `$ref`s from `pointer` to the schema they name.
    fn resolve(&self, mut pointer: String) -> String {
        for _ in 0..32 {
            match self.at(&pointer)["$ref"].as_str() {
                Some(r) => pointer = r.trim_start_matches('#').to_owned(),
                None => return pointer,
            }
        }
        panic!("$ref loop at {pointer}")
    }

    /// The schemas that apply to `value` at `pointer`: the schema, its
    /// `allOf` parts, and the `anyOf`/`oneOf` branches `value` is valid
    /// against (recursively), each resolved.
    fn parts(&self, pointer: &str, value: &Value) -> Vec<String> {
        let pointer = self.resolve(pointer.to_owned());
        let schema = self.at(&pointer);
        let mut out = vec![pointer.clone()];
        match schema.get(MARK).and_then(Value::as_str) {
            // The wrappers `to_json_schema` adds: the branch `value` takes.
            Some("nullable") if value.is_null() => return out,
            Some("nullable") => {
                out.extend(self.parts(&format!("{pointer}/else"), value));
                return out;
            }
            Some("include") => {
                let branch = if is_reference(value) { "then" } else { "else" };
                out.extend(self.parts(&format!("{pointer}/{branch}"), value));
                return out;
            }
            _ => {}
        }
        for (keyword, all) in [("allOf", true), ("anyOf", false), ("oneOf", false)] {
            let Some(branches) = schema[keyword].as_array() else {
                continue;
            };
            for i in 0..branches.len() {
                let branch = format!("{pointer}/{keyword}/{i}");
                if all || self.is_valid(&branch, value) {
                    out.extend(self.parts(&branch, value));
                }
            }
        }
        out
    }

    /// Reports every property of `value` (at `path`) that the schema at
    /// `pointer` does not declare, recursively.
    fn undeclared(&self, pointer: &str, value: &Value, path: &str, out: &mut Vec<String>) {
        let parts = self.parts(pointer, value);
        match value {
            Value::Object(map) => self.undeclared_properties(&parts, map, path, out),
            Value::Array(items) => {
                for part in &parts {
                    if self.at(part).get("items").is_some() {
                        for (i, item) in items.iter().enumerate() {
                            self.undeclared(
                                &format!("{part}/items"),
                                item,
                                &format!("{path}/{i}"),
                                out,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn undeclared_properties(
        &self,
        parts: &[String],
        map: &Map<String, Value>,
        path: &str,
        out: &mut Vec<String>,
    ) {
        let mut declared: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut additional: Vec<String> = Vec::new();
        let mut open = false;
        let mut titles: Vec<&str> = Vec::new();
        for part in parts {
            let schema = self.at(part);
            if let Some(t) = schema["title"].as_str() {
                titles.push(t);
            }
            titles.push(part.rsplit('/').next().unwrap_or_default());
            if let Some(props) = schema["properties"].as_object() {
                for name in props.keys() {
                    declared
                        .entry(name.as_str())
                        .or_default()
                        .push(format!("{part}/properties/{}", escape(name)));
                }
            }
            match &schema["additionalProperties"] {
                Value::Bool(true) => open = true,
                Value::Object(_) => additional.push(format!("{part}/additionalProperties")),
                _ => {}
            }
        }
        // A schema that declares no properties anywhere is a free-form object.
        if declared.is_empty() {
            open = true;
        }
        for (key, v) in map {
            let child = format!("{path}/{key}");
            match declared.get(key.as_str()) {
                Some(schemas) => {
                    for s in schemas {
                        self.undeclared(s, v, &child, out);
                    }
                }
                None if !additional.is_empty() => {
                    for s in &additional {
                        self.undeclared(s, v, &child, out);
                    }
                }
                None if open => {}
                None if is_known_omission(parts, &titles, key, path) => {}
                None => out.push(format!(
                    "{child}: not in the spec (declared: {})",
                    declared.keys().copied().collect::<Vec<_>>().join(", ")
                )),
            }
        }
    }
}

/// One line per error; an `anyOf`/`oneOf` nobody matched is shown as the
/// errors of its closest branch (the one with the fewest), not as the whole
/// value.
fn render(e: &ValidationError<'_>, out: &mut Vec<String>) {
    match e.kind() {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }
            if context.iter().any(|branch| !branch.is_empty()) =>
        {
            let closest = context
                .iter()
                .filter(|branch| !branch.is_empty())
                .min_by_key(|branch| branch.len())
                .into_iter()
                .flatten();
            for inner in closest {
                render(inner, out);
            }
        }
        _ => out.push(format!("{}: {e}", e.instance_path())),
    }
}

fn is_reference(value: &Value) -> bool {
    value["type"]
        .as_str()
        .is_some_and(|t| t.ends_with("_reference"))
}

/// Whether `key` is one of [`KNOWN_OMISSIONS`] for an object described by
/// `parts` (schema pointers) and `titles`, found at `path`.
fn is_known_omission(parts: &[String], titles: &[&str], key: &str, path: &str) -> bool {
    KNOWN_OMISSIONS.iter().any(|(schema, field)| {
        *field == key
            && (titles.contains(schema)
                || path.rsplit('/').next() == Some(schema)
                || parts.iter().any(|p| p.ends_with(schema)))
    })
}

/// A JSON Pointer as a URI fragment: characters a URI may not carry
/// (`{id}` in path templates) are percent-encoded.
fn fragment(pointer: &str) -> String {
    pointer
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// JSON Pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Marks the wrappers [`to_json_schema`] adds (`"nullable"`, `"include"`),
/// so [`Converted::parts`] knows which branch a value takes.
const MARK: &str = "x-dutycard";

/// Whether a property's description says its value may be `null`
/// (`Value is `null` if the feature is disabled`, `If `null`, the on-call
/// is a permanent user on-call`): PagerDuty's schemas leave `nullable` out
/// in those places, their prose is the spec there. Only schemas with a
/// `type` count (a response or parameter object may mention `null` too).
fn documents_null(schema: &Map<String, Value>) -> bool {
    schema.get("type").is_some_and(Value::is_string)
        && schema
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| {
                d.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| word == "null")
            })
}

/// OpenAPI 3.0 → JSON Schema draft 7:
/// - `nullable: true` (or a description documenting `null`, see
///   [`documents_null`]) lets `null` through: a second type, an enum
///   value, or (around a `$ref` or a composition, which carry no `type`)
///   `if null then anything else the schema`;
/// - a boolean `exclusiveMinimum`/`exclusiveMaximum` (draft 4) becomes the
///   number it qualifies;
/// - with `include`, a `$ref` to an `XReference` whose full schema `X`
///   exists (`has_full`) becomes `if type ends with _reference then the
///   reference else X` (see [`View::Include`]).
///
/// Everything else is kept; validators ignore the keywords they do not
/// know (`example`, `discriminator`, `x-…`).
fn to_json_schema(v: &Value, include: bool, has_full: &dyn Fn(&str) -> bool) -> Value {
    convert(v, include, true, has_full)
}

/// [`to_json_schema`] of one node; `wrap` is false where the spec already
/// offers the full object next to the reference (see [`convert_branches`]).
fn convert(v: &Value, include: bool, wrap: bool, has_full: &dyn Fn(&str) -> bool) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| convert(i, include, wrap, has_full))
                .collect(),
        ),
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "nullable")
                .map(|(k, v)| match (k.as_str(), v) {
                    ("oneOf" | "anyOf", Value::Array(branches)) => {
                        (k.clone(), convert_branches(branches, include, has_full))
                    }
                    _ => (k.clone(), convert(v, include, true, has_full)),
                })
                .collect();
            for (exclusive, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if let Some(Value::Bool(on)) = out.get(exclusive).cloned() {
                    out.remove(exclusive);
                    if on && let Some(b) = out.remove(bound) {
                        out.insert(exclusive.to_owned(), b);
                    }
                }
            }
            if include
                && wrap
                && let Some(full) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .and_then(|name| name.strip_suffix("Reference"))
                    .filter(|name| has_full(name))
            {
                out = wrapper(json!({
                    "if": {"properties": {"type": {"type": "string", "pattern": "_reference$"}}},
                    "then": Value::Object(out),
                    "else": {"$ref": format!("#/components/schemas/{full}")},
                    MARK: "include",
                }));
            }
            let nullable = map.get("nullable") == Some(&Value::Bool(true)) || documents_null(map);
            if !nullable {
                return Value::Object(out);
            }
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                values.push(Value::Null);
            }
            match out.get("type").cloned() {
                Some(Value::String(t)) => {
                    out.insert("type".into(), json!([t, "null"]));
                    Value::Object(out)
                }
                _ if out.contains_key("enum") => Value::Object(out),
                _ => json!({
                    "if": {"type": "null"}, "then": true, "else": Value::Object(out),
                    MARK: "nullable",
                }),
            }
        }
        other => other.clone(),
    }
}

/// The branches of a `oneOf`/`anyOf`: a reference whose full object is
/// already a sibling branch (`Incident.service` is `oneOf
/// [ServiceReference, Service]`) is left as it is; the others may be
/// replaced by the full object like anywhere else (`Oncall.schedule` is
/// `oneOf [ScheduleReference, V3ScheduleReference]`, and
/// `include[]=schedules` sends a `Schedule`).
fn convert_branches(branches: &[Value], include: bool, has_full: &dyn Fn(&str) -> bool) -> Value {
    let siblings: Vec<&str> = branches
        .iter()
        .filter_map(|b| b.get("$ref").and_then(Value::as_str))
        .collect();
    Value::Array(
        branches
            .iter()
            .map(|b| {
                let offered = b
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_suffix("Reference"))
                    .is_some_and(|full| siblings.contains(&full));
                convert(b, include, !offered, has_full)
            })
            .collect(),
    )
}

fn wrapper(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[test]
fn nullable_and_include_are_modelled() {
    let converted = to_json_schema(
        &json!({
        "a": {"type": "string", "nullable": true},
        "b": {"$ref": "#/x", "nullable": true},
        "c": {"type": "string", "enum": ["x"], "nullable": true},
        "d": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
        "e": {"type": "integer", "description": "Value is `null` if disabled."},
        "f": {"type": "string", "description": "Not nullable, no matter what."},
        "g": {"$ref": "#/components/schemas/TeamReference"},
        }),
        true,
        &|name| name == "Team",
    );
    assert_eq!(converted["a"], json!({"type": ["string", "null"]}));
    assert_eq!(converted["b"]["else"], json!({"$ref": "#/x"}));
    assert_eq!(converted["b"]["if"], json!({"type": "null"}));
    assert_eq!(
        converted["c"],
        json!({"type": ["string", "null"], "enum": ["x", null]})
    );
    assert_eq!(
        converted["d"],
        json!({"type": "integer", "exclusiveMinimum": 0})
    );
    assert_eq!(converted["e"]["type"], json!(["integer", "null"]));
    assert_eq!(converted["f"]["type"], json!("string"));
    assert_eq!(
        converted["g"]["else"],
        json!({"$ref": "#/components/schemas/Team"})
    );
    assert_eq!(
        converted["g"]["then"],
        json!({"$ref": "#/components/schemas/TeamReference"})
    );
}
