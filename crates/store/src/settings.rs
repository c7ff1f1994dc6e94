//! `pagerduty_settings`: one value per id (the server checks ids and values).

use sqlx::Row;

use crate::{Store, StoreError, on_pool};

/// One stored setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub id: String,
    pub value: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS` (the Node backend's SQLite format).
    pub updated_at: String,
}

impl Store {
    /// The setting `id`, if stored.
    pub async fn setting(&self, id: &str) -> Result<Option<Setting>, StoreError> {
        const SQL: &str = "SELECT id, value, updated_at FROM pagerduty_settings WHERE id = $1";
        self.bounded("reading a setting", async {
            on_pool!(self, |pool| {
                let row = sqlx::query(SQL).bind(id).fetch_optional(pool).await?;
                row.map(|row| {
                    Ok(Setting {
                        id: row.try_get("id")?,
                        value: row.try_get("value")?,
                        updated_at: row.try_get("updated_at")?,
                    })
                })
                .transpose()
            })
        })
        .await
    }

    /// Stores every `(id, value)` in one transaction: all or none. Returns
    /// after the commit.
    pub async fn put_settings(&self, settings: &[(String, String)]) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO pagerduty_settings (id, value, updated_at) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        self.bounded("storing settings", async {
            on_pool!(self, |pool| {
                let mut tx = pool.begin().await?;
                for (id, value) in settings {
                    sqlx::query(SQL)
                        .bind(id)
                        .bind(value)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            })
        })
        .await
    }
}
