//! PagerDuty's offset paging, counted: every loader reads its pages through
//! [`Pager`] (one page after another) or [`read_listing`] (the first page
//! asks for `total`, then the others at once), so the offset arithmetic, the
//! 10 000 cap and the upstream counter live in one place.

use std::future::Future;

use futures::StreamExt;
use pagerduty::Page;

use crate::stats::Counters;

/// PagerDuty's largest page.
pub(crate) const PAGE_LIMIT: u32 = pagerduty::page::MAX_LIMIT;
/// The last offset PagerDuty accepts with [`PAGE_LIMIT`] (`offset + limit ≤ 10 000`).
pub(crate) const MAX_OFFSET: u32 = pagerduty::page::MAX_OFFSET_PLUS_LIMIT - PAGE_LIMIT;
/// Pages below the offset cap.
pub(crate) const MAX_PAGES: u32 = MAX_OFFSET / PAGE_LIMIT + 1;

/// Walks the pages of one list call, one after another, at most
/// `max_pages` and never past [`MAX_OFFSET`].
///
/// ```ignore
/// let mut pager = Pager::new(max_pages);
/// while let Some(offset) = pager.next_offset() {
///     let page = pager.read(&counters, fetch(offset)).await?;
///     …
/// }
/// pager.capped() // true when pages were left unread
/// ```
#[derive(Debug)]
pub(crate) struct Pager {
    next: Option<u32>,
    pages_left: u32,
    capped: bool,
}

impl Pager {
    /// A pager starting at offset 0.
    pub(crate) fn new(max_pages: u32) -> Self {
        Pager {
            next: Some(0),
            pages_left: max_pages,
            capped: false,
        }
    }

    /// The offset of the next page to read, `None` when done.
    pub(crate) fn next_offset(&mut self) -> Option<u32> {
        let next = self.next?;
        if self.pages_left == 0 || next > MAX_OFFSET {
            self.capped = true;
            self.next = None;
            return None;
        }
        Some(next)
    }

    /// Counts and awaits one page request, and moves past the page.
    pub(crate) async fn read<T>(
        &mut self,
        counters: &Counters,
        request: impl Future<Output = pagerduty::Result<Page<T>>>,
    ) -> pagerduty::Result<Page<T>> {
        Counters::bump(&counters.upstream_calls);
        let page = request.await?;
        self.pages_left = self.pages_left.saturating_sub(1);
        self.next = page.next_offset();
        Ok(page)
    }

    /// Whether pages were left unread (the page or offset cap).
    pub(crate) fn capped(&self) -> bool {
        self.capped
    }
}

/// Reads every page (up to `max_pages`) of a list call, counting each request.
/// The bool is true when the cap left pages unread.
pub(crate) async fn read_all<T, F, Fut>(
    counters: &Counters,
    max_pages: u32,
    mut fetch: F,
) -> pagerduty::Result<(Vec<T>, bool)>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = pagerduty::Result<Page<T>>>,
{
    let mut items = Vec::new();
    let mut pager = Pager::new(max_pages);
    while let Some(offset) = pager.next_offset() {
        items.extend(pager.read(counters, fetch(offset)).await?.items);
    }
    Ok((items, pager.capped()))
}

/// Where a listing's pages go as they arrive.
pub(crate) trait PageSink<T>: Send {
    /// Takes the items of the page at `offset` (pages may arrive out of order).
    fn page(&mut self, offset: u32, items: Vec<T>) -> impl Future<Output = ()> + Send;
}

/// Reads a whole listing, handing each page to `sink` as it arrives.
///
/// `fetch(offset, total)` requests one page; the first asks for PagerDuty's
/// `total`. With it, the other pages (up to `max_pages` in all, never past
/// the offset cap) are read `concurrency` at a time: every item within two
/// round trips. Without it (PagerDuty may omit it), one after another.
/// True when the caps left items unread.
pub(crate) async fn read_listing<T, F, Fut>(
    counters: &Counters,
    max_pages: u32,
    concurrency: usize,
    fetch: F,
    sink: &mut impl PageSink<T>,
) -> pagerduty::Result<bool>
where
    F: Fn(u32, bool) -> Fut,
    Fut: Future<Output = pagerduty::Result<Page<T>>>,
{
    let mut pager = Pager::new(max_pages);
    let Some(offset) = pager.next_offset() else {
        return Ok(true);
    };
    let first = pager.read(counters, fetch(offset, true)).await?;
    let total = first.total;
    sink.page(offset, first.items).await;
    let Some(total) = total else {
        while let Some(offset) = pager.next_offset() {
            let page = pager.read(counters, fetch(offset, false)).await?;
            sink.page(offset, page.items).await;
        }
        return Ok(pager.capped());
    };
    if pager.next_offset().is_none() {
        // One page held everything, or the caps stop here.
        return Ok(pager.capped());
    }
    let pages = total.div_ceil(u64::from(PAGE_LIMIT));
    let read = pages.min(u64::from(max_pages.min(MAX_PAGES))) as u32;
    let offsets: Vec<u32> = (1..read).map(|n| n * PAGE_LIMIT).collect();
    let covered = (offsets.len() as u64 + 1) * u64::from(PAGE_LIMIT);
    let mut reads = futures::stream::iter(offsets.into_iter().map(|offset| {
        Counters::bump(&counters.upstream_calls);
        let page = fetch(offset, false);
        async move { page.await.map(|page| (offset, page.items)) }
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some(page) = reads.next().await {
        let (offset, items) = page?;
        sink.page(offset, items).await;
    }
    Ok(total > covered)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake list of `n` items (`total` sent when asked and `with_total`).
    fn page(n: u32, offset: u32, total: bool) -> pagerduty::Result<Page<u32>> {
        let items: Vec<u32> = (offset..n.min(offset + PAGE_LIMIT)).collect();
        Ok(Page {
            more: offset + PAGE_LIMIT < n,
            limit: PAGE_LIMIT,
            offset,
            total: total.then_some(u64::from(n)),
            items,
        })
    }

    struct Collect(Vec<u32>);

    impl PageSink<u32> for Collect {
        async fn page(&mut self, _offset: u32, items: Vec<u32>) {
            self.0.extend(items);
        }
    }

    #[tokio::test]
    async fn read_all_counts_pages_and_stops_at_the_cap() {
        let counters = Counters::default();
        let (items, capped) = read_all(&counters, 10, |o| async move { page(250, o, false) })
            .await
            .unwrap();
        assert_eq!(items.len(), 250);
        assert!(!capped);
        assert_eq!(counters.snapshot().upstream_calls, 3);

        let counters = Counters::default();
        let (items, capped) = read_all(&counters, 2, |o| async move { page(250, o, false) })
            .await
            .unwrap();
        assert_eq!(items.len(), 200);
        assert!(capped, "a third page was left");
        assert_eq!(counters.snapshot().upstream_calls, 2);
    }

    #[tokio::test]
    async fn read_all_never_asks_past_the_offset_cap() {
        let counters = Counters::default();
        let (items, capped) = read_all(
            &counters,
            u32::MAX,
            |o| async move { page(20_000, o, false) },
        )
        .await
        .unwrap();
        assert_eq!(items.len(), 10_000);
        assert!(capped);
        assert_eq!(counters.snapshot().upstream_calls, u64::from(MAX_PAGES));
    }

    /// Lists `n` fake items (sending the total when `with_total`): the
    /// items (sorted), whether the cap cut it, and the requests made.
    async fn listing(n: u32, max_pages: u32, with_total: bool) -> (Vec<u32>, bool, u64) {
        let counters = Counters::default();
        let mut sink = Collect(Vec::new());
        let fetch = |o, t: bool| async move { page(n, o, t && with_total) };
        let capped = read_listing(&counters, max_pages, 10, fetch, &mut sink)
            .await
            .unwrap();
        sink.0.sort_unstable();
        (sink.0, capped, counters.snapshot().upstream_calls)
    }

    #[tokio::test]
    async fn a_listing_with_a_total_reads_the_other_pages_at_once() {
        assert_eq!(listing(450, 20, true).await, ((0..450).collect(), false, 5));
    }

    #[tokio::test]
    async fn a_listing_says_when_its_page_cap_left_items_unread() {
        assert_eq!(listing(450, 3, true).await, ((0..300).collect(), true, 3));
    }

    #[tokio::test]
    async fn a_listing_without_a_total_reads_page_after_page() {
        assert_eq!(
            listing(250, 20, false).await,
            ((0..250).collect(), false, 3)
        );
        assert_eq!(listing(250, 2, false).await, ((0..200).collect(), true, 2));
    }
}
