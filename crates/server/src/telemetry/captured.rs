//! A log writer for tests: keeps every byte written, shared by its clones.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// What a subscriber under test wrote (clone it into the writer, read it here).
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
