//! [`SpanFields`]: how a span's fields are kept for the JSON log line,
//! byte for byte the text `tracing-subscriber`'s `JsonFields` keeps (one
//! JSON object, keys sorted, later values of a key replacing earlier ones),
//! for less.
//!
//! `JsonFields` builds a `BTreeMap` of `serde_json::Value`s for every
//! span and, for every `Span::record`, parses the span's stored object
//! back into such a map to add the new field, then serializes it again.
//! Every request records three fields after its span is created (`caller`,
//! `http.status_code`, `otel.status_code`): that parse and rewrite was the
//! largest single cost of a warm card (12 % of the server's CPU, more than
//! the card lookups; BENCHMARKS.md, issue 18). Here each value is written
//! as JSON once, into a reused buffer, and a record merges the new entries
//! into the stored text, which it only scans (our own output: one object
//! of scalar values), never parses into values.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::ops::Range;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FormatFields, Writer};

/// The span fields of the JSON log; use with `fmt::layer().json()
/// .fmt_fields(SpanFields)` (and [`super::json_line::JsonLine`], which
/// writes them into each line as they are).
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        with_entries(fields, |new| {
            let mut out = Vec::with_capacity(new.text_len() + 2);
            write_object(&mut out, std::iter::empty(), new);
            writer.write_str(text(&out)?)
        })
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        with_entries(fields, |new| {
            // `JsonFields` starts a fresh object on an empty text, and
            // otherwise merges (failing, and keeping the text, when the
            // stored text is not an object it can read).
            let old = if current.fields.is_empty() {
                Vec::new()
            } else {
                stored_entries(&current.fields).ok_or(fmt::Error)?
            };
            let mut out = Vec::with_capacity(current.fields.len() + new.text_len() + 2);
            write_object(&mut out, old.into_iter(), new);
            current.fields = String::from_utf8(out).map_err(|_| fmt::Error)?;
            Ok(())
        })
    }
}

fn text(bytes: &[u8]) -> Result<&str, fmt::Error> {
    // JSON written by serde_json from `&str`s: always UTF-8.
    std::str::from_utf8(bytes).map_err(|_| fmt::Error)
}

/// The fields of one `record` call (or of a new span), each value written
/// as JSON into `buf`, sorted by key with the last value of a key kept:
/// what the `BTreeMap` of `JsonFields` would hold.
#[derive(Default)]
struct Entries {
    buf: Vec<u8>,
    /// (key, its value's bytes in `buf`), in the order recorded.
    entries: Vec<(&'static str, Range<usize>)>,
    /// A `Debug` value's text before it is escaped into `buf`.
    debug: String,
}

impl Entries {
    fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
        self.debug.clear();
    }

    fn text_len(&self) -> usize {
        self.buf.len() + self.entries.iter().map(|(k, _)| k.len() + 4).sum::<usize>()
    }

    /// Sorts by key, keeping the last value recorded for a key.
    fn settle(&mut self) {
        // Stable: among equal keys the recording order stays, so the last
        // of a run is the value recorded last.
        self.entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut kept: usize = 0;
        for i in 0..self.entries.len() {
            if kept > 0 && self.entries[kept - 1].0 == self.entries[i].0 {
                self.entries[kept - 1] = self.entries[i].clone();
            } else {
                self.entries.swap(kept, i);
                kept += 1;
            }
        }
        self.entries.truncate(kept);
    }

    fn push_json<T: serde::Serialize + ?Sized>(&mut self, name: &'static str, value: &T) {
        push(&mut self.buf, &mut self.entries, name, value);
    }
}

fn push<T: serde::Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    entries: &mut Vec<(&'static str, Range<usize>)>,
    name: &'static str,
    value: &T,
) {
    let start = buf.len();
    if serde_json::to_writer(&mut *buf, value).is_ok() {
        entries.push((name, start..buf.len()));
    } else {
        buf.truncate(start);
    }
}

/// `JsonFields`' visitor, value for value (`serde_json::Value::from` of
/// each, so a non-finite float is `null`; `Debug` values as strings; the
/// `log.` fields of `log` records skipped; `r#` prefixes dropped).
impl Visit for Entries {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push_json(field.name(), &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push_json(field.name(), &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push_json(field.name(), &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push_json(field.name(), &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_json(field.name(), value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.push_json(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = match field.name() {
            name if name.starts_with("log.") => return,
            name => name.strip_prefix("r#").unwrap_or(name),
        };
        self.debug.clear();
        if write!(self.debug, "{value:?}").is_ok() {
            push(&mut self.buf, &mut self.entries, name, self.debug.as_str());
        }
    }
}

thread_local! {
    /// Reused between calls: a record allocates nothing for its values.
    static ENTRIES: RefCell<Entries> = RefCell::default();
}

/// Runs `f` on the settled entries of `fields`.
fn with_entries<R: RecordFields>(
    fields: R,
    f: impl FnOnce(&Entries) -> fmt::Result,
) -> fmt::Result {
    let mut f = Some(f);
    let mut run = |entries: &mut Entries| {
        entries.clear();
        fields.record(entries);
        entries.settle();
        let result = f.take().map_or(Err(fmt::Error), |f| f(entries));
        entries.clear();
        result
    };
    ENTRIES
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut entries) => run(&mut entries),
            // A value's `Debug` that records a span field: its own buffer.
            Err(_) => run(&mut Entries::default()),
        })
        .unwrap_or_else(|_| run(&mut Entries::default()))
}

/// One entry of a stored object: its key as written (without quotes) and
/// its value's JSON text.
type StoredEntry<'a> = (&'a str, &'a str);

/// The entries of an object this module (or `JsonFields`) wrote: keys in
/// order, values scalars or arrays of numbers. `None` when the text is not
/// such an object, or a key holds an escape (`JsonFields` reads keys as
/// borrowed strings and fails on those).
fn stored_entries(text: &str) -> Option<Vec<StoredEntry<'_>>> {
    let bytes = text.as_bytes();
    let mut entries = Vec::with_capacity(8);
    let mut i = 1;
    if bytes.first() != Some(&b'{') {
        return None;
    }
    if bytes.get(1) == Some(&b'}') {
        return (bytes.len() == 2).then_some(entries);
    }
    loop {
        // "key":
        if bytes.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = i + 1 + text[i + 1..].find('"')?;
        let key = &text[i + 1..key_end];
        if key.contains('\\') || bytes.get(key_end + 1) != Some(&b':') {
            return None;
        }
        let value_start = key_end + 2;
        let value_end = value_end(bytes, value_start)?;
        entries.push((key, &text[value_start..value_end]));
        match bytes.get(value_end) {
            Some(b',') => i = value_end + 1,
            Some(b'}') if value_end + 1 == bytes.len() => return Some(entries),
            _ => return None,
        }
    }
}

/// Where the value starting at `start` ends (exclusive).
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match *bytes.get(start)? {
        b'"' => {
            let mut i = start + 1;
            loop {
                match *bytes.get(i)? {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    _ => i += 1,
                }
            }
        }
        b'[' => Some(start + bytes[start..].iter().position(|&b| b == b']')? + 1),
        _ => Some(
            start
                + bytes[start..]
                    .iter()
                    .position(|&b| b == b',' || b == b'}')?,
        ),
    }
}

/// `{…}` of the old entries merged with the new (both sorted by key; a new
/// value replaces an old one), as `JsonFields` serializes its map.
fn write_object<'a>(out: &mut Vec<u8>, old: impl Iterator<Item = StoredEntry<'a>>, new: &Entries) {
    out.push(b'{');
    let mut first = true;
    let mut entry = |out: &mut Vec<u8>, key: Key<'_>, value: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        match key {
            Key::Stored(key) => {
                out.push(b'"');
                out.extend_from_slice(key.as_bytes());
                out.push(b'"');
            }
            Key::Name(name) => {
                // A string always serializes.
                let _ = serde_json::to_writer(&mut *out, name);
            }
        }
        out.push(b':');
        out.extend_from_slice(value);
    };
    let mut old = old.peekable();
    for (name, range) in &new.entries {
        while let Some(&(key, value)) = old.peek() {
            if key >= *name {
                break;
            }
            entry(out, Key::Stored(key), value.as_bytes());
            old.next();
        }
        // Replaced: the stored key is this name written without escapes.
        if old.peek().is_some_and(|&(key, _)| key == *name) {
            old.next();
        }
        entry(out, Key::Name(name), &new.buf[range.clone()]);
    }
    for (key, value) in old {
        entry(out, Key::Stored(key), value.as_bytes());
    }
    out.push(b'}');
}

enum Key<'a> {
    /// As written in the stored text (no escapes in it).
    Stored(&'a str),
    /// A field's name, escaped when written.
    Name(&'a str),
}

#[cfg(test)]
mod tests {
    use crate::telemetry::captured::Captured;

    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::json_line::JsonLine;

    /// The lines without their timestamps.
    fn lines(out: &Captured) -> Vec<String> {
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let rest = line.split_once("\",\"level\"").unwrap().1;
                rest.to_owned()
            })
            .collect()
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Odd {
        text: &'static str,
    }

    fn log_everything() {
        let span = tracing::info_span!(
            "http_request",
            http.method = %"GET",
            http.target = %"/v1/cards/P\"1\\\n\u{1}é",
            request_id = %"id-1",
            caller = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            zz = tracing::field::Empty,
            r#type = "raw",
            a = 1i64,
        );
        let _entered = span.enter();
        tracing::info!(n = 1, "created");
        span.record("caller", "token:portal");
        span.record("zz", f64::NAN);
        span.record("a", -7i64);
        tracing::info!("after the first records");
        span.record("http.status_code", 200i32);
        span.record("otel.status_code", "OK");
        span.record(
            "exception.message",
            tracing::field::debug(Odd { text: "x\"y" }),
        );
        span.record("caller", u64::MAX);
        span.record("zz", 0.1f64 + 0.2);
        let error = std::io::Error::other("disk \"full\"");
        span.record("exception.message", &error as &dyn std::error::Error);
        tracing::info!("after every record");
        let empty = tracing::info_span!("empty", later = tracing::field::Empty);
        empty.in_scope(|| tracing::info!("no fields"));
        empty.record("later", true);
        empty.in_scope(|| tracing::info!("one field recorded later"));
        let bytes = tracing::info_span!("bytes", b = &b"\x00ab"[..], c = 2u8);
        bytes.in_scope(|| tracing::info!("bytes"));
        bytes.record("c", 3u8);
        bytes.in_scope(|| tracing::info!("bytes again"));
    }

    #[test]
    fn lines_are_byte_for_byte_those_of_json_fields() {
        let ours = Captured::default();
        let out = ours.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .json()
                .event_format(JsonLine::default())
                .fmt_fields(SpanFields)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, log_everything);
        let stock = Captured::default();
        let out = stock.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .json()
                .event_format(JsonLine::default())
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, log_everything);
        let (ours, stock) = (lines(&ours), lines(&stock));
        assert_eq!(ours.len(), 7, "{ours:#?}");
        assert_eq!(ours, stock);
        assert!(
            ours[2].contains("\"caller\":18446744073709551615"),
            "{}",
            ours[2]
        );
    }

    #[test]
    fn stored_objects_are_scanned_not_parsed() {
        assert_eq!(stored_entries("{}"), Some(vec![]));
        assert_eq!(
            stored_entries(r#"{"a":"x,\"}","b":[1,2],"c":-0.5,"d":null}"#),
            Some(vec![
                ("a", r#""x,\"}""#),
                ("b", "[1,2]"),
                ("c", "-0.5"),
                ("d", "null")
            ])
        );
        for bad in ["", "[1]", "{", r#"{"a":1"#, r#"{"a\"b":1}"#, r#"{"a":1}x"#] {
            assert_eq!(stored_entries(bad), None, "{bad}");
        }
    }
}
