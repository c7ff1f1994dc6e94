//! REST API v2 calls, one module per resource. All are methods on [`Client`].

mod abilities;
mod analytics;
mod change_events;
mod dependencies;
mod escalation_policies;
mod incidents;
mod oncalls;
mod services;
mod standards;
mod teams;
mod users;
mod webhook_subscriptions;

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use webhook_subscriptions::{
    DeliveryMethod, NewWebhookSubscription, WebhookFilter, WebhookSubscription,
};

use crate::client::{Call, Client, Host};
use crate::error::{Error, Result};
use crate::page::{MAX_LIMIT, Page, Pages, Paging, check_page};
use crate::query::Paged;

/// Rejects an empty id before it turns into a different endpoint
/// (`/services/` lists services).
pub(crate) fn require(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::Config {
            field: field.to_string(),
            message: "must not be empty".into(),
        });
    }
    Ok(())
}

/// Decodes `{key: T}` and names the JSON path on failure.
pub(crate) fn decode_key<T: DeserializeOwned>(bytes: &[u8], key: &str) -> Result<T> {
    let mut top: Value = serde_json::from_slice(bytes).map_err(|e| Error::Decode {
        path: String::new(),
        message: format!("not JSON: {e}"),
    })?;
    let inner = top
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| Error::Decode {
            path: key.to_string(),
            message: "missing field".into(),
        })?;
    decode_value(inner, key)
}

pub(crate) fn decode_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let p = e.path().to_string();
        let path = if p == "." || p.is_empty() {
            prefix.to_string()
        } else if p.starts_with('[') || prefix.is_empty() {
            format!("{prefix}{p}")
        } else {
            format!("{prefix}.{p}")
        };
        Error::Decode {
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// Decodes a classic-pagination page whose items sit under `key`.
pub(crate) fn decode_page<T: DeserializeOwned>(
    bytes: &[u8],
    key: &str,
    requested_limit: Option<u32>,
    requested_offset: Option<u32>,
) -> Result<Page<T>> {
    let mut top: Value = serde_json::from_slice(bytes).map_err(|e| Error::Decode {
        path: String::new(),
        message: format!("not JSON: {e}"),
    })?;
    let items_v = top
        .get_mut(key)
        .map(Value::take)
        .ok_or_else(|| Error::Decode {
            path: key.to_string(),
            message: "missing field".into(),
        })?;
    let items: Vec<T> = decode_value(items_v, key)?;
    let num = |k: &str| top.get(k).and_then(Value::as_u64);
    Ok(Page {
        limit: num("limit")
            .map(|l| l.min(u64::from(u32::MAX)) as u32)
            .or(requested_limit)
            .unwrap_or(items.len() as u32),
        offset: num("offset")
            .map(|o| o.min(u64::from(u32::MAX)) as u32)
            .or(requested_offset)
            .unwrap_or(0),
        more: top.get("more").and_then(Value::as_bool).unwrap_or(false),
        total: num("total"),
        items,
    })
}

impl Client {
    pub(crate) async fn get_raw(
        &self,
        endpoint: &'static str,
        segments: &[&str],
        query: &[(String, String)],
    ) -> Result<Vec<u8>> {
        self.inner
            .execute(Call {
                method: Method::GET,
                host: Host::Api,
                endpoint,
                segments,
                query,
                body: None,
                idempotent: true,
                single_attempt: false,
            })
            .await
    }

    pub(crate) async fn get_one<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        segments: &[&str],
        query: &[(String, String)],
        key: &str,
    ) -> Result<T> {
        let bytes = self.get_raw(endpoint, segments, query).await?;
        decode_key(&bytes, key)
    }

    pub(crate) async fn get_page<T: DeserializeOwned, Q: Paged>(
        &self,
        endpoint: &'static str,
        segments: &[&str],
        q: &Q,
        key: &str,
    ) -> Result<Page<T>> {
        check_page(q.limit(), q.offset())?;
        let bytes = self.get_raw(endpoint, segments, &q.pairs()).await?;
        decode_page(&bytes, key, q.limit(), q.offset())
    }

    /// Every page, following `more` (pages of `q.limit`, default 100, from
    /// `q.offset`), one after the other. Ends with
    /// [`Error::PaginationLimit`] before passing PagerDuty's 10 000 cap.
    pub(crate) fn pages_of<T, Q>(
        &self,
        endpoint: &'static str,
        segments: Vec<String>,
        q: &Q,
        key: &'static str,
    ) -> Pages<'static, T>
    where
        T: DeserializeOwned + Send + 'static,
        Q: Paged + Send + Sync + 'static,
    {
        let paging = Paging::new()
            .limit(q.limit().unwrap_or(MAX_LIMIT))
            .offset(q.offset().unwrap_or(0));
        let client = self.clone();
        let q = q.clone();
        let segments: Arc<[String]> = segments.into();
        paging.pages(move |page| {
            let (client, segments) = (client.clone(), Arc::clone(&segments));
            let mut q = q.clone();
            q.set_page(page.limit, page.offset);
            async move {
                let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
                client.get_page(endpoint, &segs, &q, key).await
            }
        })
    }

    /// Streams every item of every page; see [`Client::pages_of`].
    pub(crate) fn paginate<T, Q>(
        &self,
        endpoint: &'static str,
        segments: Vec<String>,
        q: &Q,
        key: &'static str,
    ) -> BoxStream<'static, Result<T>>
    where
        T: DeserializeOwned + Send + 'static,
        Q: Paged + Send + Sync + 'static,
    {
        self.pages_of(endpoint, segments, q, key)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Collects every item of every page; see [`Client::pages_of`].
    pub(crate) async fn collect_all<T, Q>(
        &self,
        endpoint: &'static str,
        segments: Vec<String>,
        q: &Q,
        key: &'static str,
    ) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Send + 'static,
        Q: Paged + Send + Sync + 'static,
    {
        let all = self.pages_of(endpoint, segments, q, key).collect_items();
        Ok(all.await?.items)
    }
}
