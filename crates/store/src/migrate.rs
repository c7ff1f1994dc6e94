//! The schema, compiled into the binary (one directory per backend, the same
//! tables) and applied at start-up by sqlx's `Migrator`. sqlx records every
//! applied version with its checksum in `_sqlx_migrations`, so a re-run
//! applies nothing and an edited, already applied migration is an error; on
//! Postgres it holds `pg_advisory_lock` while it migrates, so replicas that
//! start together migrate once, one after the other.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::options::Backend;

/// (version, description, SQLite text, Postgres text), oldest first. A new
/// migration is a new entry; applied ones are never edited.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "mappings and settings",
        include_str!("../migrations/sqlite/0001_mappings_and_settings.sql"),
        include_str!("../migrations/postgres/0001_mappings_and_settings.sql"),
    ),
    (
        2,
        "mappings revision",
        include_str!("../migrations/sqlite/0002_mappings_revision.sql"),
        include_str!("../migrations/postgres/0002_mappings_revision.sql"),
    ),
];

/// The embedded migrations of one backend.
#[derive(Debug)]
struct Embedded(Backend);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sqlite, postgres)| {
                    let sql = match self.0 {
                        Backend::Sqlite => sqlite,
                        Backend::Postgres => postgres,
                    };
                    Migration::new(
                        *version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The migrator of `backend` (locking on, sqlx's default).
pub(crate) async fn migrator(backend: Backend) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(backend)).await
}

/// How many migrations the binary knows (the schema version it expects).
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}
