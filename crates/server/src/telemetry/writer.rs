//! The log's writer thread: lines are queued by the logging threads and
//! written by one thread, through a buffer, many per system call.
//!
//! It replaces `tracing-appender`'s non-blocking writer, which did the
//! same but parked its thread on the queue whenever it had written what
//! was there: a server answering faster than one line per wake-up then
//! paid a futex wake (and the writer a context switch) for nearly every
//! line, 7 % of the server's CPU on a warm card (BENCHMARKS.md, issue 18).
//! Here, after writing a batch, the thread pauses [`BATCH_PAUSE`] and
//! looks again; it parks on the queue only once a look finds nothing, so
//! while lines keep coming no logging thread has to wake it. A line waits
//! at most about that pause before it is written.
//!
//! Like the writer it replaces it is **not lossy**: when the queue is full
//! a logging thread waits for room (backpressure). The [`WriterGuard`]
//! flushes what is queued when it is dropped.

use std::io::Write;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines the queue holds before a logging thread waits.
pub const QUEUE_LINES: usize = 128_000;
/// How long the thread lets lines gather after writing some.
pub const BATCH_PAUSE: Duration = Duration::from_millis(2);
/// How long dropping the guard waits for the queued lines to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

enum Msg {
    Line(Vec<u8>),
    /// Write what is queued, flush, answer on the channel, stop.
    Shutdown(SyncSender<()>),
}

/// The logging threads' end of the queue (a `MakeWriter` for the fmt layer).
#[derive(Clone)]
pub struct LineWriter {
    queue: SyncSender<Msg>,
}

/// One line's writer.
pub struct Line<'a>(&'a SyncSender<Msg>);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Blocks while the queue is full (never drops a line).
        self.0
            .send(Msg::Line(buf.to_vec()))
            .map_err(|_| std::io::Error::other("the log writer has stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(&self.queue)
    }
}

/// Writes the queued lines, flushes and stops the thread when dropped.
#[must_use = "dropping the guard stops the log writer"]
pub struct WriterGuard {
    queue: SyncSender<Msg>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let (done, written) = mpsc::sync_channel(1);
        if self.queue.send(Msg::Shutdown(done)).is_ok() {
            // Bounded: a stdout nobody reads must not hang the exit.
            let _ = written.recv_timeout(FLUSH_WAIT);
        }
    }
}

/// The writer in front of `out` (written through a 64 KiB buffer) and its guard.
pub fn writer<W: Write + Send + 'static>(out: W) -> (LineWriter, WriterGuard) {
    let (queue, lines) = mpsc::sync_channel(QUEUE_LINES);
    let out = std::io::BufWriter::with_capacity(64 << 10, out);
    let spawned = std::thread::Builder::new()
        .name("dutycard-log".into())
        .spawn(move || work(&lines, out));
    if let Err(e) = spawned {
        // No thread, no log: say so where someone may see it.
        eprintln!("dutycard: cannot start the log writer thread: {e}");
    }
    (
        LineWriter {
            queue: queue.clone(),
        },
        WriterGuard { queue },
    )
}

fn work(lines: &Receiver<Msg>, mut out: impl Write) {
    // Idle: park until the next line.
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        loop {
            // Everything queued now, then one flush.
            let mut written = 0;
            loop {
                let msg = match next.take() {
                    Some(msg) => msg,
                    None => match lines.try_recv() {
                        Ok(msg) => msg,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            let _ = out.flush();
                            return;
                        }
                    },
                };
                match msg {
                    Msg::Line(line) => {
                        // A log that cannot be written has nowhere to say so.
                        let _ = out.write_all(&line);
                        written += 1;
                    }
                    Msg::Shutdown(done) => {
                        let _ = out.flush();
                        let _ = done.send(());
                        return;
                    }
                }
            }
            let _ = out.flush();
            if written == 0 {
                break;
            }
            // Lines are coming: let more gather rather than park and be
            // woken for the next one (a sleep, not a wait on the queue: a
            // waiting receiver is what each sender would have to wake).
            std::thread::sleep(BATCH_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::telemetry::captured::Captured;
    use std::time::Instant;

    use super::*;

    impl Captured {
        /// The text once it holds `lines` lines (within 5 s).
        fn wait_for(&self, lines: usize) -> String {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
                if text.lines().count() >= lines || Instant::now() > deadline {
                    return text;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// A line is written soon without the guard being dropped, after a
    /// burst as after a quiet spell, and lines keep their order.
    #[test]
    fn lines_are_written_in_order_without_waiting_for_the_guard() {
        let captured = Captured::default();
        let (out, guard) = writer(captured.clone());
        out.make_writer().write_all(b"first\n").unwrap();
        assert_eq!(captured.wait_for(1), "first\n");
        for i in 0..1000 {
            out.make_writer()
                .write_all(format!("{i}\n").as_bytes())
                .unwrap();
        }
        let text = captured.wait_for(1001);
        let expected: Vec<String> = std::iter::once("first".to_owned())
            .chain((0..1000).map(|i| i.to_string()))
            .collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        std::thread::sleep(BATCH_PAUSE * 5);
        out.make_writer().write_all(b"after a pause\n").unwrap();
        assert!(captured.wait_for(1002).ends_with("after a pause\n"));
        drop(guard);
    }
}
