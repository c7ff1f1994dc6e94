//! Versions of stored section values, so that the server can cache what it
//! rendered from them: every value stored in any section store (a load, a
//! refresh, a failed refresh that records its error) gets the next number
//! of one process-wide counter, so two reads that show the same version
//! saw the same value and error, and a value that was replaced or dropped
//! and loaded again never shows an old version.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The next version (never 0, never repeated within the process).
pub(crate) fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_increase() {
        let a = super::next();
        let b = super::next();
        assert!(b > a && a > 0);
    }
}
