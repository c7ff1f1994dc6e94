//! Service dependencies and new integrations on PagerDuty, for the
//! Backstage routes `/dependencies/service/{id}` and
//! `/services/{id}/integration/{vendorId}`: writes go straight to the
//! account's client (nothing to cache), and a new integration drops the
//! service's cached section so the next card and lookup see it.

use cards::Section;

use crate::accounts::Account;

/// The integration name PagerDuty shows for one created here.
fn integration_name(vendor_id: &str) -> &'static str {
    if vendor_id == "PRO19CT" {
        "Backstage"
    } else {
        "dutycard"
    }
}

/// Every dependency of the service (both directions).
pub async fn list(
    account: &Account,
    service_id: &str,
) -> Result<Vec<pagerduty::ServiceDependency>, pagerduty::Error> {
    account.client.service_dependencies(service_id).await
}

/// Makes (or, `associate` false, removes) `service_id` depend on each of
/// `supporting`, in one call (all or nothing).
pub async fn change(
    account: &Account,
    service_id: &str,
    supporting: &[String],
    associate: bool,
) -> Result<(), pagerduty::Error> {
    let pairs: Vec<(String, String)> = supporting
        .iter()
        .map(|s| (s.clone(), service_id.to_owned()))
        .collect();
    account
        .client
        .change_service_dependencies(&pairs, associate)
        .await
        .map(|_| ())
}

/// Creates an integration of `vendor_id` on the service; its key.
pub async fn create_integration(
    account: &Account,
    service_id: &str,
    vendor_id: &str,
) -> Result<Option<String>, pagerduty::Error> {
    let integration = account
        .client
        .create_integration(service_id, vendor_id, integration_name(vendor_id))
        .await?;
    account
        .cards
        .invalidate(service_id, &[Section::Service])
        .await;
    Ok(integration.integration_key)
}
