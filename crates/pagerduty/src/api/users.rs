//! Users: `GET /users/{id}`.

use crate::client::Client;
use crate::error::Result;
use crate::models::User;

impl Client {
    /// `GET /users/{id}`. Scope: `users.read`.
    pub async fn get_user(&self, id: &str) -> Result<User> {
        super::require("user_id", id)?;
        self.get_one("/users/{id}", &["users", id], &[], "user")
            .await
    }
}
