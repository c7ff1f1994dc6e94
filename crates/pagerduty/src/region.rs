//! PagerDuty's service regions ([`Region`]) and their default hosts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Default REST base URL, US region.
pub const US_API_BASE_URL: &str = "https://api.pagerduty.com";
/// Default REST base URL, EU region.
pub const EU_API_BASE_URL: &str = "https://api.eu.pagerduty.com";
/// Default Events API v2 base URL, US region.
pub const US_EVENTS_BASE_URL: &str = "https://events.pagerduty.com/v2";
/// Default Events API v2 base URL, EU region.
pub const EU_EVENTS_BASE_URL: &str = "https://events.eu.pagerduty.com/v2";
/// OAuth token endpoint (both regions; the region goes in the scope).
pub const OAUTH_TOKEN_URL: &str = "https://identity.pagerduty.com/oauth/token";

/// The PagerDuty service region of the account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// United States (the default).
    #[default]
    Us,
    /// European Union.
    Eu,
}

impl Region {
    /// `us` or `eu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }
    /// The default REST base URL.
    pub fn api_base_url(self) -> &'static str {
        match self {
            Region::Us => US_API_BASE_URL,
            Region::Eu => EU_API_BASE_URL,
        }
    }
    /// The default Events API v2 base URL (ends in `/v2`).
    pub fn events_base_url(self) -> &'static str {
        match self {
            Region::Us => US_EVENTS_BASE_URL,
            Region::Eu => EU_EVENTS_BASE_URL,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "us" => Ok(Region::Us),
            "eu" => Ok(Region::Eu),
            other => Err(format!(
                "unknown PagerDuty region `{other}` (expected us or eu)"
            )),
        }
    }
}
