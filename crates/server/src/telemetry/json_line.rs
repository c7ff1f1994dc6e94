//! [`JsonLine`]: the JSON log line of `tracing-subscriber`'s JSON format
//! (`timestamp`, `level`, `fields`, `target`, `span` with the current
//! span's fields and `name`), written for less.
//!
//! That format keeps each span's fields as a JSON object in a string and,
//! for every event, parses that string back into a `serde_json::Value` to
//! copy its entries into the line (`SerializableSpan` in
//! tracing-subscriber 0.3). Every request's access line paid for that
//! parse: allocations for the map and each of the request span's fields,
//! the largest cost left on a cached route (BENCHMARKS.md, issue 18). Here
//! the stored object is written into the line as it is. The event's own
//! fields are serialized by the same `tracing-serde` visitor as there, so
//! a line holds the same keys and values; only the span's keys keep the
//! order they were recorded in instead of being sorted.

use std::fmt;

use serde::Serialize;
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_serde::fields::AsMap;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format of the log; use with `fmt::layer().json()`, whose
/// `JsonFields` keep the span fields this writes.
#[derive(Debug, Default)]
pub struct JsonLine {
    timer: SystemTime,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events from the `log` crate name their own level and target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        self.timer.format_time(&mut writer)?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_str("\",\"fields\":")?;
        write_json(&mut writer, &event.field_map())?;
        writer.write_str(",\"target\":")?;
        write_json(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            let extensions = span.extensions();
            let stored = extensions
                .get::<FormattedFields<N>>()
                .map_or("", |f| f.fields.as_str());
            writer.write_str(",\"span\":{")?;
            match object_entries(stored) {
                Some("") => {}
                Some(entries) => {
                    writer.write_str(entries)?;
                    writer.write_char(',')?;
                }
                // Not the JSON object `JsonFields` writes: say so, as the
                // stock format does, rather than break the line.
                None => {
                    writer.write_str("\"field_error\":\"span fields are not a JSON object\",")?
                }
            }
            writer.write_str("\"name\":")?;
            write_json(&mut writer, span.metadata().name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// The entries of a JSON object's text (`{…}` without its braces; `""`
/// for an empty or absent object), `None` when it is not an object.
fn object_entries(stored: &str) -> Option<&str> {
    let stored = stored.trim();
    if stored.is_empty() {
        return Some("");
    }
    stored
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .map(str::trim)
}

/// Serializes `value` as JSON into the line: into a reused byte buffer
/// first, then into the line in one piece (serde_json writes to an
/// `io::Write`, the line is a `fmt::Write`: one UTF-8 check and one copy
/// per value instead of one per fragment serde_json writes).
fn write_json<T: Serialize + ?Sized>(writer: &mut Writer<'_>, value: &T) -> fmt::Result {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut write = |buf: &mut Vec<u8>| {
        buf.clear();
        serde_json::to_writer(&mut *buf, value).map_err(|_| fmt::Error)?;
        // serde_json writes UTF-8 (its input is `&str`s and numbers).
        writer.write_str(std::str::from_utf8(buf).map_err(|_| fmt::Error)?)
    };
    BUF.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => write(&mut buf),
        // A value's `Serialize` that logs: its own buffer.
        Err(_) => write(&mut Vec::new()),
    })
    .unwrap_or_else(|_| write(&mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use crate::telemetry::captured::Captured;

    use serde_json::Value;
    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|line| {
                    let mut v: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    let at = v["timestamp"].as_str().unwrap();
                    assert!(at.ends_with('Z') && at.len() >= 20, "{at}");
                    v.as_object_mut().unwrap().remove("timestamp");
                    v
                })
                .collect()
        }
    }

    /// Every kind of field and span our code logs, through one format.
    fn log_through<L>(layer: impl FnOnce(Captured) -> L) -> Vec<Value>
    where
        L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(quoted = "a \"b\"\n\tc\u{1}é", n = -3i64, "outside any span");
            let span = tracing::info_span!(
                "http_request",
                http.method = %"GET",
                http.target = "/v1/cards/P1",
                request_id = %"id-1",
                caller = tracing::field::Empty,
                http.status_code = tracing::field::Empty,
            );
            let _entered = span.enter();
            tracing::warn!(ratio = 0.5f64, ok = true, big = u64::MAX, "in the span");
            span.record("caller", "token:portal");
            span.record("http.status_code", 200u16);
            let error = std::io::Error::other("disk \"full\"");
            tracing::error!(error = &error as &dyn std::error::Error, debug = ?Some("x"), "after record");
            let inner = tracing::info_span!("inner");
            inner.in_scope(|| tracing::info!("in a span without fields"));
            tracing::info!(parent: &inner, "explicit parent");
        });
        out.lines()
    }

    #[test]
    fn lines_hold_what_the_stock_json_format_writes() {
        let ours = log_through(|out| {
            fmt::layer()
                .json()
                .event_format(JsonLine::default())
                .with_writer(move || out.clone())
        });
        let stock = log_through(|out| {
            fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(move || out.clone())
        });
        assert_eq!(ours.len(), 5, "{ours:#?}");
        assert_eq!(ours, stock);
        assert_eq!(ours[2]["span"]["caller"], "token:portal", "{:#?}", ours[2]);
        assert_eq!(ours[2]["span"]["http.status_code"], 200);
        assert_eq!(ours[0]["fields"]["quoted"], "a \"b\"\n\tc\u{1}é");
        assert!(ours[0].get("span").is_none());
        assert_eq!(ours[4]["span"], serde_json::json!({"name": "inner"}));
    }

    #[test]
    fn span_text_that_is_not_an_object_is_named_not_written() {
        assert_eq!(object_entries(""), Some(""));
        assert_eq!(object_entries("{}"), Some(""));
        assert_eq!(object_entries("{\"a\":1}"), Some("\"a\":1"));
        assert_eq!(object_entries("[1]"), None);
    }
}
