//! Logging: a `RUST_LOG`-style filter, JSON or pretty lines (the per-request
//! span is [`crate::middleware::telemetry`]).
//!
//! JSON lines are written by [`json_line::JsonLine`] (the stock JSON
//! layout without its per-event re-parse of the span's fields), and the
//! span's fields are kept by [`span_fields::SpanFields`] (the stock text,
//! without a parse and rewrite per recorded field).
//!
//! Lines are not written on the request path: the formatter hands each
//! line to [`writer`]'s queue, whose one thread writes them to stdout
//! through a 64 KiB buffer (flushed whenever its queue is empty, so a busy
//! server writes many lines per system call; while lines keep coming it
//! pauses between batches instead of being woken for each line).
//! It is **not lossy**: when the queue is full (128,000 lines) a logging
//! thread waits for room (backpressure) rather than dropping a line, so
//! every access line reaches the log. The [`LogGuard`] that [`init`]
//! returns flushes what is queued when it is dropped: hold it until the
//! server has stopped.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

#[cfg(test)]
pub(crate) mod captured;
pub mod json_line;
pub mod span_fields;
pub mod writer;

use json_line::JsonLine;
use span_fields::SpanFields;

/// Flushes the queued log lines when dropped (at shutdown).
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] writer::WriterGuard);

/// Install the global subscriber. `RUST_LOG` sets the filter (default
/// `info`). Returns an error if a subscriber is already installed (tests).
pub fn init(format: LogFormat) -> Result<LogGuard, tracing_subscriber::util::TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let (out, guard) = writer::writer(std::io::stdout());
    match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .event_format(JsonLine::default())
                    .fmt_fields(SpanFields)
                    .with_writer(out),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().compact().with_writer(out))
            .try_init(),
    }
    .map(|()| LogGuard(guard))
}

#[cfg(test)]
mod tests {
    use crate::telemetry::captured::Captured;

    use super::*;

    /// Far more lines than the queue holds, written as fast as possible:
    /// none is lost, and dropping the guard flushes them all.
    #[test]
    fn the_writer_loses_no_line_and_the_guard_flushes() {
        let captured = Captured::default();
        let (out, guard) = writer::writer(captured.clone());
        let subscriber = tracing_subscriber::registry().with(fmt::layer().json().with_writer(out));
        let lines = 200_000;
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..lines {
                tracing::info!(i, "line");
            }
        });
        drop(guard);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), lines);
    }
}
