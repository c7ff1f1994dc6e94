//! Change events: `GET /services/{id}/change_events`, `GET /change_events`.

use crate::client::Client;
use crate::error::Result;
use crate::models::ChangeEvent;
use crate::page::Page;
use crate::query::ListChangeEvents;

fn scrub(mut page: Page<ChangeEvent>) -> Page<ChangeEvent> {
    // The routing key of the integration that sent the event is a secret.
    // Decoding already drops it (see `ChangeEvent::extra`); kept as a guard.
    for ev in &mut page.items {
        ev.extra.remove("routing_key");
    }
    page
}

impl Client {
    /// `GET /services/{id}/change_events`: one page (scope `services.read`).
    /// `since`/`until` are sent as UTC `Z` timestamps. The `routing_key`
    /// field PagerDuty includes is dropped.
    pub async fn list_service_change_events(
        &self,
        service_id: &str,
        q: &ListChangeEvents,
    ) -> Result<Page<ChangeEvent>> {
        super::require("service_id", service_id)?;
        self.get_page(
            "/services/{id}/change_events",
            &["services", service_id, "change_events"],
            q,
            "change_events",
        )
        .await
        .map(scrub)
    }

    /// `GET /change_events`: one page, account-wide (scope `change_events.read`).
    pub async fn list_change_events(&self, q: &ListChangeEvents) -> Result<Page<ChangeEvent>> {
        self.get_page("/change_events", &["change_events"], q, "change_events")
            .await
            .map(scrub)
    }
}
