//! `pagerduty_entity_mapping`: which catalog entity a PagerDuty service
//! belongs to. One row per service (an upsert on `service_id` replaces it);
//! several services may name one entity.

use std::fmt;

use sqlx::Row;

use crate::{Store, StoreError, on_pool};

/// Rows per transaction of [`Store::insert_new_mappings`] (the Node
/// backend's chunk size).
pub const BULK_CHUNK: usize = 200;

/// An integration key at rest. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey(String);

impl StoredKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself (for mapping it to an alias, never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredKey([redacted])")
    }
}

/// A stored mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Insertion order (the Node backend's `index`).
    pub index: i64,
    /// A UUID v4, kept across upserts of the same service.
    pub id: String,
    pub service_id: String,
    pub integration_key: Option<StoredKey>,
    /// `kind:namespace/name`, lower case.
    pub entity_ref: String,
    /// The PagerDuty account id (`""` for the default account, as Node).
    pub account: String,
    /// When the row was last written, epoch milliseconds.
    pub processed_at_ms: i64,
    /// 1 on insert, +1 on every upsert of the row.
    pub revision: i64,
}

/// A mapping to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMapping {
    pub service_id: String,
    pub entity_ref: String,
    pub integration_key: Option<StoredKey>,
    pub account: String,
}

/// What [`Store::insert_new_mappings`] did with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Created(Mapping),
    /// A mapping for this service already existed; it was left unchanged.
    Exists,
}

const COLUMNS: &str =
    "idx, id, service_id, integration_key, entity_ref, account, processed_at_ms, revision";

/// Decodes one row of [`COLUMNS`] (a macro: the row types of the backends
/// differ).
macro_rules! mapping_of {
    ($row:expr) => {{
        let row = $row;
        Ok::<_, sqlx::Error>(Mapping {
            index: row.try_get("idx")?,
            id: row.try_get("id")?,
            service_id: row.try_get("service_id")?,
            integration_key: row
                .try_get::<Option<String>, _>("integration_key")?
                .filter(|k| !k.is_empty())
                .map(StoredKey),
            entity_ref: row.try_get("entity_ref")?,
            account: row.try_get("account")?,
            processed_at_ms: row.try_get("processed_at_ms")?,
            revision: row.try_get("revision")?,
        })
    }};
}

pub(crate) fn upsert_sql() -> String {
    format!(
        "INSERT INTO pagerduty_entity_mapping \
         (id, service_id, integration_key, entity_ref, account, processed_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (service_id) DO UPDATE SET \
         integration_key = excluded.integration_key, entity_ref = excluded.entity_ref, \
         account = excluded.account, processed_at_ms = excluded.processed_at_ms, \
         revision = pagerduty_entity_mapping.revision + 1 \
         RETURNING {COLUMNS}"
    )
}

fn insert_new_sql() -> String {
    format!(
        "INSERT INTO pagerduty_entity_mapping \
         (id, service_id, integration_key, entity_ref, account, processed_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (service_id) DO NOTHING RETURNING {COLUMNS}"
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Writes `mapping`, replacing the service's previous one (one atomic
    /// statement, so concurrent writers of one service never interleave:
    /// the last commit wins, and each writer gets the row it wrote).
    /// Returns after the commit.
    pub async fn upsert_mapping(&self, mapping: &NewMapping) -> Result<Mapping, StoreError> {
        let sql = upsert_sql();
        let id = uuid::Uuid::new_v4().to_string();
        let key = mapping.integration_key.as_ref().map(StoredKey::expose);
        let now = now_ms();
        self.bounded("storing a mapping", async {
            on_pool!(self, |pool| {
                let row = sqlx::query(&sql)
                    .bind(&id)
                    .bind(&mapping.service_id)
                    .bind(key)
                    .bind(&mapping.entity_ref)
                    .bind(&mapping.account)
                    .bind(now)
                    .fetch_one(pool)
                    .await?;
                mapping_of!(row)
            })
        })
        .await
    }

    /// Inserts the mappings whose service has none yet, [`BULK_CHUNK`] rows
    /// per transaction; one outcome per row, in order. When a chunk fails,
    /// the chunks before it stay committed (a re-run skips them) and the
    /// error is returned.
    pub async fn insert_new_mappings(
        &self,
        mappings: &[NewMapping],
    ) -> Result<Vec<Inserted>, StoreError> {
        let sql = insert_new_sql();
        let mut outcomes = Vec::with_capacity(mappings.len());
        for chunk in mappings.chunks(BULK_CHUNK) {
            let now = now_ms();
            let done = self
                .bounded("storing mappings", async {
                    on_pool!(self, |pool| {
                        let mut tx = pool.begin().await?;
                        let mut done = Vec::with_capacity(chunk.len());
                        for m in chunk {
                            let row = sqlx::query(&sql)
                                .bind(uuid::Uuid::new_v4().to_string())
                                .bind(&m.service_id)
                                .bind(m.integration_key.as_ref().map(StoredKey::expose))
                                .bind(&m.entity_ref)
                                .bind(&m.account)
                                .bind(now)
                                .fetch_optional(&mut *tx)
                                .await?;
                            done.push(match row {
                                Some(row) => Inserted::Created(mapping_of!(row)?),
                                None => Inserted::Exists,
                            });
                        }
                        tx.commit().await?;
                        Ok(done)
                    })
                })
                .await?;
            outcomes.extend(done);
        }
        Ok(outcomes)
    }

    /// The mapping of `service_id`.
    pub async fn mapping_by_service(
        &self,
        service_id: &str,
    ) -> Result<Option<Mapping>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM pagerduty_entity_mapping WHERE service_id = $1");
        self.one_of_service("reading a mapping", &sql, service_id, None)
            .await
    }

    /// Every mapping naming `entity_ref`, oldest first.
    pub async fn mappings_of_entity(&self, entity_ref: &str) -> Result<Vec<Mapping>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM pagerduty_entity_mapping WHERE entity_ref = $1 ORDER BY idx"
        );
        self.all_of(&sql, Some(entity_ref)).await
    }

    /// Every mapping, oldest first.
    pub async fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM pagerduty_entity_mapping ORDER BY idx");
        self.all_of(&sql, None).await
    }

    /// The mappings revision: a counter the schema's triggers bump for
    /// every row inserted, updated or deleted, in the writing transaction
    /// (migration 2), so it moves exactly when a committed write changed
    /// rows, whichever process wrote. One single-row read: a caller that
    /// kept rows read after seeing revision `r` may keep using them while
    /// this is still `r` (read the revision first, then the rows: the rows
    /// are then at least as new as the revision they are kept under).
    pub async fn mappings_revision(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT revision FROM pagerduty_mappings_revision WHERE id = 1";
        self.bounded("reading the mappings revision", async {
            on_pool!(self, |pool| {
                let row = sqlx::query(SQL).fetch_one(pool).await?;
                row.try_get::<i64, _>("revision")
            })
        })
        .await
    }

    /// Removes the mapping of `service_id`; the removed row, if there was
    /// one. Returns after the commit.
    pub async fn delete_mapping(&self, service_id: &str) -> Result<Option<Mapping>, StoreError> {
        let sql = format!(
            "DELETE FROM pagerduty_entity_mapping WHERE service_id = $1 RETURNING {COLUMNS}"
        );
        self.one_of_service("removing a mapping", &sql, service_id, None)
            .await
    }

    /// Removes the mapping of `service_id` only if it names `account`
    /// (one statement: a concurrent remap to another account is never
    /// removed by mistake); the removed row, if there was one. Returns
    /// after the commit.
    pub async fn delete_mapping_in_account(
        &self,
        service_id: &str,
        account: &str,
    ) -> Result<Option<Mapping>, StoreError> {
        let sql = format!(
            "DELETE FROM pagerduty_entity_mapping WHERE service_id = $1 AND account = $2 \
             RETURNING {COLUMNS}"
        );
        self.one_of_service("removing a mapping", &sql, service_id, Some(account))
            .await
    }

    /// The row (if any) `sql` returns for `service_id` (its `$1`) and
    /// `account` (its `$2`, if any).
    async fn one_of_service(
        &self,
        op: &'static str,
        sql: &str,
        service_id: &str,
        account: Option<&str>,
    ) -> Result<Option<Mapping>, StoreError> {
        self.bounded(op, async {
            on_pool!(self, |pool| {
                let mut query = sqlx::query(sql).bind(service_id);
                if let Some(account) = account {
                    query = query.bind(account);
                }
                let row = query.fetch_optional(pool).await?;
                row.map(|row| mapping_of!(row)).transpose()
            })
        })
        .await
    }

    /// Every row `sql` returns (with `bind` as its `$1`, if any).
    async fn all_of(&self, sql: &str, bind: Option<&str>) -> Result<Vec<Mapping>, StoreError> {
        self.bounded("reading mappings", async {
            on_pool!(self, |pool| {
                let mut query = sqlx::query(sql);
                if let Some(value) = bind {
                    query = query.bind(value);
                }
                let rows = query.fetch_all(pool).await?;
                rows.iter().map(|row| mapping_of!(row)).collect()
            })
        })
        .await
    }
}
