//! The store's typed errors. Callers tell "the database cannot be reached
//! now" ([`StoreError::Unavailable`], retry later: HTTP 503) from "the store
//! is broken" ([`StoreError::Failed`]); neither's `Display` carries a
//! driver message, so an HTTP layer may show it. The driver error stays the
//! `source` for logs (Postgres and SQLite messages carry no credentials).

use std::fmt;

/// Why the database is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No connection within the acquire timeout, or an operation took longer
    /// than its bound (statement timeout, commit, the whole operation).
    TimedOut,
    /// The server cannot be reached or closed the connection.
    Connection,
    /// The database is busy or shutting down (SQLite lock held past the busy
    /// timeout, Postgres admin shutdown, too many connections).
    Busy,
    /// The store was closed (the process is shutting down).
    Closed,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::TimedOut => "the database did not answer in time",
            Unavailable::Connection => "the database cannot be reached",
            Unavailable::Busy => "the database is busy or shutting down",
            Unavailable::Closed => "the store is closed",
        })
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot serve now; nothing was written (or, for a write
    /// whose commit did not answer, nothing was acknowledged). Retry later.
    #[error("{op}: {why}")]
    Unavailable {
        op: &'static str,
        why: Unavailable,
        #[source]
        source: Option<sqlx::Error>,
    },
    /// Anything else the database refused (a bug, a broken schema).
    #[error("{op}: the database refused the operation")]
    Failed {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date at start-up.
    #[error("migrating the store failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// `store.url` cannot be used (the message never shows a password).
    #[error("invalid store.url {url}: {message}")]
    Config { url: String, message: String },
}

impl StoreError {
    /// Classifies a driver error of operation `op`.
    pub(crate) fn from_sqlx(op: &'static str, e: sqlx::Error) -> StoreError {
        use sqlx::Error as E;
        let why = match &e {
            E::PoolTimedOut => Some(Unavailable::TimedOut),
            E::PoolClosed => Some(Unavailable::Closed),
            E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
                Some(Unavailable::Connection)
            }
            E::Database(db) => db.code().as_deref().and_then(classify_code),
            _ => None,
        };
        match why {
            Some(why) => StoreError::Unavailable {
                op,
                why,
                source: Some(e),
            },
            None => StoreError::Failed { op, source: e },
        }
    }

    /// `op` ran past its bound.
    pub(crate) fn timed_out(op: &'static str) -> StoreError {
        StoreError::Unavailable {
            op,
            why: Unavailable::TimedOut,
            source: None,
        }
    }

    /// Is this "the database is down or slow" (HTTP 503)?
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// SQLSTATE (Postgres) and primary result codes (SQLite) that mean "not
/// now" rather than "never".
fn classify_code(code: &str) -> Option<Unavailable> {
    match code {
        // query_canceled: statement_timeout fired; lock_not_available
        "57014" | "55P03" => Some(Unavailable::TimedOut),
        // admin_shutdown, crash_shutdown, cannot_connect_now
        "57P01" | "57P02" | "57P03" => Some(Unavailable::Busy),
        // too_many_connections and the other insufficient resources
        c if c.starts_with("53") => Some(Unavailable::Busy),
        // connection exceptions
        c if c.starts_with("08") => Some(Unavailable::Connection),
        // SQLite: SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
        "5" | "6" | "261" | "517" | "262" => Some(Unavailable::Busy),
        // SQLite: SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_FULL
        c if c == "10"
            || c == "14"
            || c == "13"
            || c.parse::<u32>().is_ok_and(|n| n & 0xff == 10) =>
        {
            Some(Unavailable::Connection)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_lost_connections_are_unavailable_and_bugs_are_not() {
        assert!(StoreError::from_sqlx("x", sqlx::Error::PoolTimedOut).is_unavailable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(StoreError::from_sqlx("x", sqlx::Error::Io(io)).is_unavailable());
        assert!(!StoreError::from_sqlx("x", sqlx::Error::RowNotFound).is_unavailable());
        assert_eq!(classify_code("57014"), Some(Unavailable::TimedOut));
        assert_eq!(classify_code("57P01"), Some(Unavailable::Busy));
        assert_eq!(classify_code("08006"), Some(Unavailable::Connection));
        assert_eq!(classify_code("5"), Some(Unavailable::Busy));
        assert_eq!(classify_code("23505"), None);
    }

    #[test]
    fn the_message_names_the_operation_not_the_driver() {
        let io = std::io::Error::other("driver detail");
        let e = StoreError::from_sqlx("reading a mapping", sqlx::Error::Io(io));
        assert_eq!(
            e.to_string(),
            "reading a mapping: the database cannot be reached"
        );
    }
}
