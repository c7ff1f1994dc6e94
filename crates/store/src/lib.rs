//! dutycard's persistence: which catalog entity each PagerDuty service
//! belongs to (`pagerduty_entity_mapping`) and the Backstage admin page's
//! settings (`pagerduty_settings`), the Node backend's two tables.
//!
//! One [`Store`] over either backend, chosen by URL:
//!
//! - **SQLite** (`sqlite://path/file.db`, the embedded default; `sqlite::memory:`
//!   for the demo): WAL journal, `synchronous = FULL` (a write acknowledged is
//!   on disk), a busy timeout equal to the statement timeout;
//! - **Postgres** (`postgres://…`): a pool of `pool_size` connections, each
//!   with `statement_timeout`, TLS through rustls when the URL asks for it.
//!
//! The same SQL text runs on both (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); only the DDL differs ([`migrate`]). Migrations run in
//! [`Store::open`].
//!
//! **Bounds.** Every operation (acquiring a connection, its statements, the
//! commit) is bounded by [`StoreOptions::operation_timeout`]; a database that
//! is down, slow or locked yields [`StoreError::Unavailable`] within it,
//! never a hang. Writes return only after their commit.

mod error;
pub mod mappings;
pub mod migrate;
mod options;
pub mod settings;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use error::{StoreError, Unavailable};
pub use mappings::{BULK_CHUNK, Inserted, Mapping, NewMapping, StoredKey};
pub use options::{Backend, StoreOptions, redact_url};
pub use settings::Setting;

/// The open database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    operation_timeout: Duration,
    /// `store.url` without its password.
    location: String,
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Runs `$body` with `$pool` bound to the backend's pool (the two pool
/// types differ, the SQL does not).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Connects, then brings the schema up to date (on Postgres under an
    /// advisory lock). Fails when the database cannot be reached within the
    /// acquire timeout: the server does not start without its store.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        let url = options.url.expose_secret();
        let location = redact_url(url);
        let config_error = |message: String| StoreError::Config {
            url: location.clone(),
            message,
        };
        let backend = Backend::of(url).ok_or_else(|| {
            config_error("expected sqlite:… or postgres://… (postgresql://…)".into())
        })?;
        if options.pool_size == 0 {
            return Err(config_error("the pool size must be at least 1".into()));
        }
        let pool = match backend {
            Backend::Sqlite => {
                Pool::Sqlite(open_sqlite(url, options).await.map_err(|e| match e {
                    OpenError::Config(message) => config_error(message),
                    OpenError::Sqlx(e) => StoreError::from_sqlx("opening the store", e),
                })?)
            }
            Backend::Postgres => {
                // The driver's parse errors may quote the URL: say only
                // what is wrong in general.
                let connect = PgConnectOptions::from_str(url)
                    .map_err(|_| config_error("not a valid postgres:// URL".into()))?
                    .application_name("dutycard")
                    .options([(
                        "statement_timeout",
                        options.statement_timeout.as_millis().to_string(),
                    )]);
                let pool = PgPoolOptions::new()
                    .max_connections(options.pool_size)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect);
                let pool = tokio::time::timeout(options.operation_timeout(), pool)
                    .await
                    .map_err(|_| StoreError::timed_out("opening the store"))?
                    .map_err(|e| StoreError::from_sqlx("opening the store", e))?;
                Pool::Postgres(pool)
            }
        };
        let store = Store {
            pool,
            operation_timeout: options.operation_timeout(),
            location,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations not yet applied (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let backend = self.backend();
        let migrator = migrate::migrator(backend)
            .await
            .map_err(StoreError::Migrate)?;
        // sqlx locks only on Postgres. Two processes migrating one SQLite
        // file race: each migration runs in its own transaction, so the
        // loser's rolls back (a duplicate version) and a second pass sees the
        // winner's migration applied and skips it.
        let mut attempts = 0;
        loop {
            match on_pool!(self, |pool| migrator.run(pool).await) {
                Ok(()) => return Ok(()),
                Err(_) if backend == Backend::Sqlite && attempts < 3 => attempts += 1,
                Err(e) => return Err(StoreError::Migrate(e)),
            }
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// `store.url` without its password (for logs and `/readyz`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// One round trip (`SELECT 1`): is the database there now?
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.bounded("checking the store", async {
            on_pool!(self, |pool| sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| ()))
        })
        .await
    }

    /// The schema versions applied, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        use sqlx::Row;
        const SQL: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        self.bounded("reading the schema version", async {
            on_pool!(self, |pool| {
                let rows = sqlx::query(SQL).fetch_all(pool).await?;
                rows.iter()
                    .map(|r| r.try_get::<i64, _>("version"))
                    .collect()
            })
        })
        .await
    }

    /// Closes every connection (at shutdown); later operations are
    /// [`Unavailable::Closed`].
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    /// Runs one operation within the operation bound, classifying failures.
    pub(crate) async fn bounded<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.operation_timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::from_sqlx(op, e)),
            Err(_) => Err(StoreError::timed_out(op)),
        }
    }
}

enum OpenError {
    Config(String),
    Sqlx(sqlx::Error),
}

async fn open_sqlite(url: &str, options: &StoreOptions) -> Result<SqlitePool, OpenError> {
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(|e| OpenError::Config(format!("not a valid sqlite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(options.statement_timeout)
        .foreign_keys(true);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory {
        // A fresh data directory is created, like the file itself.
        if let Some(dir) = connect
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                OpenError::Config(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
    }
    let mut pool = SqlitePoolOptions::new()
        .max_connections(options.pool_size)
        .acquire_timeout(options.acquire_timeout);
    if in_memory {
        // An in-memory database lives as long as one connection does.
        pool = pool
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    // Switching a new file to WAL takes an exclusive lock for which SQLite
    // does not call the busy handler, so processes (or stores in one
    // process) opening one fresh file at once may get SQLITE_BUSY even with
    // `busy_timeout`: retry that, with a short backoff, within the bound.
    let connecting = async {
        let mut backoff = Duration::from_millis(10);
        loop {
            match pool.clone().connect_with(connect.clone()).await {
                Err(e) if is_sqlite_busy(&e) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                done => return done,
            }
        }
    };
    tokio::time::timeout(options.operation_timeout(), connecting)
        .await
        .map_err(|_| OpenError::Sqlx(sqlx::Error::PoolTimedOut))?
        .map_err(OpenError::Sqlx)
}

/// SQLITE_BUSY or SQLITE_LOCKED, with their extended codes.
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517" | "262")))
}

#[cfg(test)]
mod tests;
