//! The service section (and the escalation policy section, read with it):
//! single reads in parallel, or the paged services list when many services
//! are cold at once (the listing rule of the crate docs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pagerduty::Service;
use tokio::sync::watch;

use super::{SERVICE_INCLUDES, Upstream, list_services};
use crate::batcher::{BatchResults, Early};
use crate::build::BatchLoad;
use crate::clock::{Clock, deadline, later, until};
use crate::config::CardsConfig;
use crate::error::SectionError;
use crate::paging::PageSink;
use crate::store::{Store, Warming};
use crate::tasks::Tasks;

/// How far the running services listing got.
#[derive(Debug, Clone, Copy, Default)]
struct ListingProgress {
    /// Pages read and stored so far.
    pages: u32,
    /// The listing ended (read every page, hit the cap, failed or was cancelled).
    done: bool,
}

/// Loads services: single reads in parallel, or the paged list when many
/// services are cold at once (which also warms the cache for every service
/// on the pages read).
#[derive(Clone)]
pub(crate) struct ServiceLoader {
    up: Upstream,
    store: Store<String, Arc<Service>>,
    tasks: Tasks,
    clock: Arc<dyn Clock>,
    threshold: usize,
    /// Single reads since the last listing that switch to the list: the
    /// threshold, divided among the replicas that share (each sees about
    /// its share of the account's trickle of cold services).
    singles_threshold: usize,
    max_pages: u32,
    /// Single reads since the last listing: a steady trickle of cold services
    /// (users browsing many services one by one) also switches to the list.
    singles_since_list: Arc<AtomicUsize>,
    /// The running (or last) listing: one at a time. It runs in its own task
    /// and stores every service of every page as the page arrives; batches
    /// that want a listing while one runs follow it instead of starting one.
    listing: Arc<Mutex<Option<watch::Receiver<ListingProgress>>>>,
    /// Set when the account has more services than one listing reads:
    /// listing then costs more than it saves, so it pauses for `list_retry`
    /// (on the injected clock).
    list_disabled_until: Arc<Mutex<Option<Instant>>>,
    list_retry: Duration,
    /// How long a batch waits for its single reads: a read still running
    /// then answers `timeout` for its own service only (the other services
    /// of the batch are delivered) and stores its service when it finishes.
    single_wait: Duration,
}

impl ServiceLoader {
    pub(crate) fn new(
        up: Upstream,
        store: Store<String, Arc<Service>>,
        tasks: Tasks,
        clock: Arc<dyn Clock>,
        config: &CardsConfig,
    ) -> Self {
        ServiceLoader {
            up,
            store,
            tasks,
            clock,
            threshold: config.service_list_threshold,
            singles_threshold: config.service_list_threshold,
            max_pages: config.service_list_max_pages,
            singles_since_list: Arc::default(),
            listing: Arc::default(),
            list_disabled_until: Arc::default(),
            list_retry: config.max_stale,
            single_wait: config.section_timeout / 2,
        }
    }
}

impl BatchLoad<String, Arc<Service>> for ServiceLoader {
    /// Answers each wanted service as soon as it is known: from the store,
    /// from the page of a listing that holds it (the rest of the listing goes
    /// on in its own task and warms the store), or from a single read.
    async fn load(
        &self,
        keys: Vec<String>,
        early: Early<String, Arc<Service>>,
    ) -> Result<BatchResults<String, Arc<Service>>, SectionError> {
        let mut pending: Vec<String> = keys;
        // A listing may have stored some of these since their miss was queued.
        self.deliver_stored(&mut pending, &early).await;
        if let Some(mut progress) = self.follow_or_start_listing(pending.len()) {
            loop {
                let done = progress.borrow_and_update().done;
                self.deliver_stored(&mut pending, &early).await;
                if pending.is_empty() || done {
                    break;
                }
                if progress.changed().await.is_err() {
                    // The listing task is gone (cancelled by shutdown).
                    break;
                }
            }
        }
        Ok(self.read_singles(pending).await)
    }

    fn missing(&self, id: &String) -> Result<Arc<Service>, SectionError> {
        Err(SectionError::not_found(format!("service {id} not found")))
    }
}

impl ServiceLoader {
    /// `GET /services/{id}` for each of `ids`, in parallel.
    async fn read_singles(&self, ids: Vec<String>) -> BatchResults<String, Arc<Service>> {
        self.singles_since_list
            .fetch_add(ids.len(), Ordering::Relaxed);
        // A lone read has nobody else to deliver: it is waited for in full
        // (the caller's own bound applies).
        let wait = if ids.len() > 1 {
            deadline(self.single_wait)
        } else {
            None
        };
        let reads = ids.into_iter().map(|id| {
            self.up.count();
            let client = self.up.client.clone();
            let store = self.store.clone();
            let key = id.clone();
            // In its own task: a read the batch stops waiting for still
            // stores its service for the next reader.
            let read = self.tasks.start(async move {
                let result = client.get_service(&key, &SERVICE_INCLUDES).await;
                let result = result.map(Arc::new).map_err(SectionError::from);
                if let Ok(service) = &result {
                    store.insert_fresh(key, Arc::clone(service)).await;
                }
                result
            });
            async move {
                let result = match until(wait, read).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(failed)) => Err(SectionError::unavailable(format!(
                        "the service read failed: {}",
                        failed.0
                    ))),
                    Err(()) => Err(SectionError::timeout(format!(
                        "service {id} did not load in time; it is still loading"
                    ))),
                };
                (id, result)
            }
        });
        futures::future::join_all(reads).await.into_iter().collect()
    }

    /// Answers the fresh stored services among `pending` and drops them from it.
    async fn deliver_stored(&self, pending: &mut Vec<String>, early: &Early<String, Arc<Service>>) {
        let mut rest = Vec::with_capacity(pending.len());
        for key in pending.drain(..) {
            match self.store.peek_fresh(&key).await {
                Some(service) => early.send(&key, Ok(service)),
                None => rest.push(key),
            }
        }
        *pending = rest;
    }

    /// The progress of the listing this batch waits on: the running one, or
    /// a new one when `cold` services call for it; `None` to read one by one
    /// (also after shutdown: no listing starts then).
    fn follow_or_start_listing(&self, cold: usize) -> Option<watch::Receiver<ListingProgress>> {
        if !self.list_allowed() || !self.wants_list(cold) {
            return None;
        }
        let mut current = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(progress) = current.as_ref()
            && !progress.borrow().done
        {
            return Some(progress.clone());
        }
        let (tx, rx) = watch::channel(ListingProgress::default());
        let loader = self.clone();
        self.tasks
            .background(async move { loader.run_listing(tx).await })
            .ok()?;
        self.singles_since_list.store(0, Ordering::Relaxed);
        *current = Some(rx.clone());
        Some(rx)
    }

    /// With `replicas` replicas sharing the service section, switches to
    /// the list after this replica's share of the single reads.
    pub(crate) fn shared_by(mut self, replicas: u32) -> Self {
        let replicas = usize::try_from(replicas.max(1)).unwrap_or(usize::MAX);
        self.singles_threshold = self.threshold.div_ceil(replicas);
        self
    }

    /// Many cold services at once, or many single reads since the last listing.
    fn wants_list(&self, cold: usize) -> bool {
        cold > 0
            && (cold >= self.threshold
                || self.singles_since_list.load(Ordering::Relaxed) >= self.singles_threshold)
    }

    /// False for a while after a listing could not read the whole account.
    fn list_allowed(&self) -> bool {
        self.list_disabled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|until| self.clock.now() >= until)
    }

    /// Runs one listing to its end, then marks it done.
    async fn run_listing(&self, progress: watch::Sender<ListingProgress>) {
        let mut sink = StorePages {
            store: &self.store,
            progress: &progress,
            warming: self.store.warming().await,
        };
        let listed = list_services(&self.up, self.max_pages, usize::MAX, &mut sink).await;
        match listed {
            Ok(true) => {
                tracing::info!(
                    max_pages = self.max_pages,
                    "the account has more services than one listing reads: reading services one by one"
                );
                *self
                    .list_disabled_until
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) =
                    Some(later(self.clock.now(), self.list_retry));
            }
            Ok(false) => {}
            Err(error) => {
                tracing::debug!(%error, "services listing failed; reading services one by one");
            }
        }
        progress.send_modify(|p| p.done = true);
    }
}

/// Stores each page of a listing, then tells the batches following it.
struct StorePages<'a> {
    store: &'a Store<String, Arc<Service>>,
    progress: &'a watch::Sender<ListingProgress>,
    warming: Warming,
}

impl PageSink<Service> for StorePages<'_> {
    async fn page(&mut self, _offset: u32, services: Vec<Service>) {
        let items: Vec<_> = services
            .into_iter()
            .map(|service| (service.id.clone(), Arc::new(service)))
            .collect();
        for (id, service) in &items {
            self.store
                .insert_fresh(id.clone(), Arc::clone(service))
                .await;
        }
        // The batches waiting on this page first, then the other replicas.
        self.progress.send_modify(|p| p.pages += 1);
        self.store.offer_listed(&self.warming, &items).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::loaders::testing::{nobody, sim, upstream};

    fn loader(sim: &sim::SimHandle, config: &CardsConfig) -> (ServiceLoader, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let store = Store::with_ttl(1000, config.service_ttl, config.max_stale, clock.clone());
        let loader = ServiceLoader::new(
            upstream(sim),
            store,
            Tasks::default(),
            clock.clone(),
            config,
        );
        (loader, clock)
    }

    #[tokio::test]
    async fn a_few_cold_services_are_read_one_by_one() {
        let sim = sim(30).await;
        let ids: Vec<String> = sim.account().services[..3]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let (loader, _) = loader(&sim, &CardsConfig::default());
        let mut keys = ids.clone();
        keys.push("PMISSING".into());
        let results = loader.load(keys, nobody()).await.unwrap();
        for id in &ids {
            assert_eq!(&results[id].as_ref().unwrap().id, id);
        }
        assert!(results["PMISSING"].is_err(), "PagerDuty's 404");
        let stats = sim.stats();
        assert_eq!(stats.count("GET", "/services/{id}"), 4);
        assert_eq!(stats.count("GET", "/services"), 0);
    }

    #[tokio::test]
    async fn a_replica_of_three_lists_after_its_share_of_the_single_reads() {
        let sim = sim(30).await;
        let ids: Vec<String> = sim.account().services[..5]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let (alone, _) = loader(&sim, &CardsConfig::default());
        let (shared, _) = loader(&sim, &CardsConfig::default());
        let shared = shared.shared_by(3);
        for loader in [&alone, &shared] {
            loader.load(ids[..4].to_vec(), nobody()).await.unwrap();
        }
        // 10 single reads make one replica list; each of 3 makes about 4.
        assert!(!alone.wants_list(1), "4 of 10 single reads");
        assert!(shared.wants_list(1), "4 of ceil(10 / 3) single reads");
        assert!(!shared.wants_list(0), "nothing cold, nothing to list");
    }

    #[tokio::test]
    async fn many_cold_services_are_listed_and_the_listing_warms_the_store() {
        let sim = sim(250).await;
        let ids: Vec<String> = sim.account().services[..10]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let (loader, _) = loader(&sim, &CardsConfig::default());
        let early = nobody();
        let results = loader.load(ids.clone(), early).await.unwrap();
        // Answered early (nobody waited here), so not in the final results.
        assert!(results.is_empty(), "{results:?}");
        // The listing goes on and stores all 250 services (3 pages).
        tokio::time::timeout(Duration::from_secs(10), async {
            while loader
                .listing
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|p| !p.borrow().done)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the listing ends");
        for service in &sim.account().services {
            assert!(loader.store.peek_fresh(&service.id).await.is_some());
        }
        let stats = sim.stats();
        assert_eq!(stats.count("GET", "/services"), 3);
        assert_eq!(stats.count("GET", "/services/{id}"), 0);
        assert_eq!(loader.up.counters.snapshot().upstream_calls, 3);
    }

    #[tokio::test]
    async fn a_capped_listing_pauses_listings_until_the_clock_passes_max_stale() {
        let sim = sim(250).await;
        let config = CardsConfig {
            service_list_max_pages: 1,
            ..CardsConfig::default()
        };
        let (loader, clock) = loader(&sim, &config);
        let ids: Vec<String> = sim.account().services[200..]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        loader.load(ids[..10].to_vec(), nobody()).await.unwrap();
        assert_eq!(sim.stats().count("GET", "/services"), 1, "one page, capped");
        assert!(!loader.list_allowed());
        clock.advance(config.max_stale + Duration::from_secs(1));
        assert!(
            loader.list_allowed(),
            "the pause ends on the injected clock"
        );
    }
}
