//! Classic offset pagination.
//!
//! PagerDuty's list endpoints take `limit` (≤ 100, default 25) and `offset`,
//! and answer with `limit`, `offset`, `more` and `total` (null unless
//! `total=true`). `offset + limit` may not exceed 10 000: past that the API
//! answers 400, so the client stops with [`Error::PaginationLimit`] instead.

use serde::Serialize;

use crate::error::{Error, Result};

/// PagerDuty's cap on `offset + limit`.
pub const MAX_OFFSET_PLUS_LIMIT: u32 = 10_000;
/// PagerDuty's maximum page size.
pub const MAX_LIMIT: u32 = 100;

/// One page of a list call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Page size PagerDuty used.
    pub limit: u32,
    /// Start index of this page.
    pub offset: u32,
    /// Whether more items follow.
    pub more: bool,
    /// Total count, only when requested (`total=true`).
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The offset of the next page, if `more` is set.
    pub fn next_offset(&self) -> Option<u32> {
        if self.more && !self.items.is_empty() {
            Some(self.offset.saturating_add(self.limit.max(1)))
        } else {
            None
        }
    }
}

/// Checks `limit` (1..=100) and the 10 000 cap before a request is sent.
pub(crate) fn check_page(limit: Option<u32>, offset: Option<u32>) -> Result<()> {
    if let Some(l) = limit
        && (l == 0 || l > MAX_LIMIT)
    {
        return Err(Error::Config {
            field: "limit".into(),
            message: format!("must be between 1 and {MAX_LIMIT}, got {l}"),
        });
    }
    let o = offset.unwrap_or(0);
    let l = limit.unwrap_or(25);
    if o.saturating_add(l) > MAX_OFFSET_PLUS_LIMIT {
        return Err(Error::PaginationLimit {
            offset: o,
            limit: l,
        });
    }
    Ok(())
}
