//! Classic offset pagination.
//!
//! PagerDuty's list endpoints take `limit` (≤ 100, default 25) and `offset`,
//! and answer with `limit`, `offset`, `more` and `total` (null unless
//! `total=true`). `offset + limit` may not exceed 10 000: past that the API
//! answers 400, so the client stops with [`Error::PaginationLimit`] instead.
//!
//! [`Paging`] reads every page of any list call ([`Pages`], a stream of
//! pages): one after the other, or, after a first page with `total`,
//! several at once. The client's `list_all_*` and `*_stream` calls use it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, Stream, StreamExt};
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

/// What a read of every page does when the next page would pass PagerDuty's
/// 10 000 cap on `offset + limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AtCap {
    /// End with [`Error::PaginationLimit`], after every page below the cap
    /// (the `list_all_*` calls: a caller must not take part of a list for
    /// all of it).
    #[default]
    Fail,
    /// End without an error and set [`Pages::truncated`] (for callers that
    /// report a partial list as partial, like the cards' incident counts).
    Truncate,
}

/// One request of a [`Pages`] read, handed to its fetch function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start index of the page.
    pub offset: u32,
    /// Page size (1 to 100).
    pub limit: u32,
    /// Ask PagerDuty for `total` (`total=true`): set on the first request
    /// of a [`Paging::concurrent`] read only, since counting is slower.
    pub total: bool,
}

/// How to read every page of a classic-pagination list call; build one,
/// then call [`Paging::pages`] with the call itself.
///
/// Pages of `limit` items are read from `offset` while PagerDuty says
/// `more`, up to [`Paging::max_pages`] and below the 10 000 cap (see
/// [`AtCap`]). By default one page follows the other, and the next page is
/// only requested once the caller asks for it (stopping early costs no
/// extra request). With [`Paging::concurrent`] the first page asks for
/// `total`, and the remaining pages are then requested together, `n` at a
/// time: every page within two round trips, and exactly the pages `total`
/// says are filled (when PagerDuty does not send `total`, the read goes on
/// one page after the other). Items added while such a read runs may be
/// missed (pages past the first `total` are not read), or seen twice.
///
/// ```
/// # async fn demo(pd: pagerduty::Client) -> pagerduty::Result<()> {
/// use futures::TryStreamExt;
/// use pagerduty::{AtCap, ListServices, Paging};
///
/// let mut pages = Paging::new()
///     .concurrent(10)
///     .at_cap(AtCap::Truncate)
///     .pages(move |page| {
///         let pd = pd.clone();
///         let q = ListServices {
///             limit: Some(page.limit),
///             offset: Some(page.offset),
///             total: page.total,
///             ..Default::default()
///         };
///         async move { pd.list_services(&q).await }
///     });
/// while let Some(page) = pages.try_next().await? {
///     println!("{} services at offset {}", page.items.len(), page.offset);
/// }
/// println!("{} requests, truncated: {}", pages.requests(), pages.truncated());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    limit: u32,
    offset: u32,
    max_pages: Option<u32>,
    concurrency: Option<usize>,
    at_cap: AtCap,
}

impl Default for Paging {
    /// Pages of 100 from offset 0, one after the other, no page limit,
    /// [`AtCap::Fail`].
    fn default() -> Self {
        Paging {
            limit: MAX_LIMIT,
            offset: 0,
            max_pages: None,
            concurrency: None,
            at_cap: AtCap::Fail,
        }
    }
}

impl Paging {
    /// The defaults: see [`Paging::default`].
    pub fn new() -> Self {
        Paging::default()
    }

    /// Page size, clamped to 1..=100 (default 100, PagerDuty's largest).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_LIMIT);
        self
    }

    /// Start index of the first page (default 0).
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }

    /// Read at most `n` pages (at least 1); a list with more ends with
    /// [`Pages::truncated`] set, never with an error.
    pub fn max_pages(mut self, n: u32) -> Self {
        self.max_pages = Some(n.max(1));
        self
    }

    /// Ask for `total` on the first page, then request the remaining pages
    /// at once, at most `n` at a time (at least 1; `usize::MAX` for every
    /// page at once). Pages then arrive in the order they are answered.
    pub fn concurrent(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// What to do at PagerDuty's 10 000 cap (default [`AtCap::Fail`]).
    pub fn at_cap(mut self, at_cap: AtCap) -> Self {
        self.at_cap = at_cap;
        self
    }

    /// Starts the read: `fetch` is called once per page request (so it is
    /// also the place to count upstream calls) and its pages are yielded by
    /// the returned stream as they arrive. Nothing is requested before the
    /// stream is first polled.
    pub fn pages<'a, T, F, Fut>(self, mut fetch: F) -> Pages<'a, T>
    where
        T: Send + 'a,
        F: FnMut(PageRequest) -> Fut + Send + 'a,
        Fut: Future<Output = Result<Page<T>>> + Send + 'a,
    {
        let mut pages = Pages {
            fetch: Box::new(move |request| fetch(request).boxed()),
            paging: self,
            queue: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            mode: Mode::First,
            requests: 0,
            truncated: false,
            end_error: None,
            done: false,
        };
        if !pages.stops_at(self.offset, 0) {
            pages.queue.push_back(PageRequest {
                total: self.concurrency.is_some(),
                ..pages.request(self.offset)
            });
        }
        pages
    }
}

type PageFuture<'a, T> = BoxFuture<'a, Result<Page<T>>>;

/// The pages of a list call, read as [`Paging`] says: a stream of
/// `Result<Page<T>>` that ends after the last page or the first error.
/// Dropping it stops the read (requests in flight are dropped).
#[must_use = "a stream does nothing unless polled"]
pub struct Pages<'a, T> {
    fetch: Box<dyn FnMut(PageRequest) -> PageFuture<'a, T> + Send + 'a>,
    paging: Paging,
    /// Requests decided on but not started yet (started on the next poll,
    /// so that a caller who stops early sends nothing more).
    queue: VecDeque<PageRequest>,
    in_flight: FuturesUnordered<PageFuture<'a, T>>,
    mode: Mode,
    requests: u32,
    truncated: bool,
    /// Yielded after the last page: the cap with [`AtCap::Fail`].
    end_error: Option<Error>,
    done: bool,
}

/// Where a [`Pages`] read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for the first page.
    First,
    /// Each page decides whether the next one is read.
    Sequential,
    /// The first page's `total` decided every page.
    Planned,
}

impl<T> fmt::Debug for Pages<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("paging", &self.paging)
            .field("requests", &self.requests)
            .field("in_flight", &self.in_flight.len())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

/// Every item of a [`Pages`] read; see [`Pages::collect_items`].
#[derive(Debug, Clone, PartialEq)]
pub struct Collected<T> {
    /// The items, page after page (in answer order for a concurrent read).
    pub items: Vec<T>,
    /// The read stopped before the end of the list ([`Pages::truncated`]).
    pub truncated: bool,
    /// Requests sent ([`Pages::requests`]).
    pub requests: u32,
}

impl<'a, T: Send + 'a> Pages<'a, T> {
    /// Page requests started so far (failed ones included).
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// True when the read ended, or will end, before the end of the list:
    /// [`Paging::max_pages`] was reached, or the 10 000 cap with
    /// [`AtCap::Truncate`]. Final once the stream has ended.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Reads every page and returns the items (the first error ends it).
    pub async fn collect_items(mut self) -> Result<Collected<T>> {
        let mut items = Vec::new();
        while let Some(page) = self.next().await {
            items.extend(page?.items);
        }
        Ok(Collected {
            items,
            truncated: self.truncated,
            requests: self.requests,
        })
    }

    /// Whether a request at `offset` must not be sent, with `planned` pages
    /// already requested or planned: `false` to send it; `true` when the
    /// read ends before it instead (setting `truncated`, or the error to
    /// end with).
    fn stops_at(&mut self, offset: u32, planned: u32) -> bool {
        if self.paging.max_pages.is_some_and(|max| planned >= max) {
            self.truncated = true;
            return true;
        }
        let limit = self.paging.limit;
        if offset.saturating_add(limit) > MAX_OFFSET_PLUS_LIMIT {
            match self.paging.at_cap {
                AtCap::Fail => self.end_error = Some(Error::PaginationLimit { offset, limit }),
                AtCap::Truncate => self.truncated = true,
            }
            return true;
        }
        false
    }

    fn request(&self, offset: u32) -> PageRequest {
        PageRequest {
            offset,
            limit: self.paging.limit,
            total: false,
        }
    }

    /// Decides what follows `page`: the next page; or, after a first page
    /// with `total` in a concurrent read, every remaining one; or nothing.
    fn plan_after(&mut self, page: &Page<T>) {
        let planned_total = match self.mode {
            Mode::First => {
                let total = page.total.filter(|_| self.paging.concurrency.is_some());
                self.mode = if total.is_some() {
                    Mode::Planned
                } else {
                    Mode::Sequential
                };
                total
            }
            Mode::Sequential => None,
            // `total` planned every page already.
            Mode::Planned => return,
        };
        let Some(next) = page.next_offset() else {
            return;
        };
        let Some(total) = planned_total else {
            if !self.stops_at(next, self.requests) {
                self.queue.push_back(self.request(next));
            }
            return;
        };
        let step = page.limit.max(1);
        let mut offset = Some(next);
        let mut planned = self.requests;
        while let Some(o) = offset.filter(|o| u64::from(*o) < total) {
            if self.stops_at(o, planned) {
                return;
            }
            self.queue.push_back(self.request(o));
            planned += 1;
            offset = o.checked_add(step);
        }
    }

    /// Starts queued requests, up to the concurrency.
    fn start_queued(&mut self) {
        let at_once = self.paging.concurrency.unwrap_or(1);
        while self.in_flight.len() < at_once {
            let Some(request) = self.queue.pop_front() else {
                break;
            };
            self.requests += 1;
            self.in_flight.push((self.fetch)(request));
        }
    }
}

impl<'a, T: Send + 'a> Stream for Pages<'a, T> {
    type Item = Result<Page<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        this.start_queued();
        if this.in_flight.is_empty() {
            this.done = true;
            return Poll::Ready(this.end_error.take().map(Err));
        }
        match this.in_flight.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(page))) => {
                this.plan_after(&page);
                Poll::Ready(Some(Ok(page)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                this.queue.clear();
                this.in_flight.clear();
                Poll::Ready(Some(Err(e)))
            }
            // Not reached: `in_flight` is not empty.
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
