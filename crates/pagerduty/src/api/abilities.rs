//! Abilities: `GET /abilities`.

use crate::client::Client;
use crate::error::Result;

impl Client {
    /// `GET /abilities`: the account's abilities (e.g. `teams`, `urgencies`).
    /// Scope: `abilities.read`.
    pub async fn list_abilities(&self) -> Result<Vec<String>> {
        self.get_one("/abilities", &["abilities"], &[], "abilities")
            .await
    }
}
