//! The scenarios of issue 8. Each starts its own simulator and server, so
//! caches start cold and the server's peak RSS belongs to that scenario.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sim::{FaultSpec, Faults, SimHandle};

use crate::harness::{self, ServerBin, ServerOptions, ServerProcess, SimSetup};
use crate::load::{self, LoadSpec, Outcome};
use crate::report::{self, Report, Row};
use crate::zipf::Zipf;

mod bursts;
mod freshness;
mod replicas;
pub mod routes;

/// A scenario name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One hot card, concurrency 1 and 64 (and the ceiling route beside it).
    WarmCard,
    /// Zipf-distributed portal pages of 20 cards, at two view rates.
    Portal,
    /// 200 distinct cold cards at once.
    ColdStart,
    /// `POST /v1/incidents` at concurrency 16.
    Trigger,
    /// 10 % 5xx and 429 bursts from PagerDuty.
    Degraded,
    /// `/healthz` under the warm-card load.
    Ceiling,
    /// A change at PagerDuty to the new card on a stream, and upstream
    /// calls with webhooks on and off.
    Freshness,
    /// `GET /api/pagerduty/mapping/entity` over 2,000 services (issue 15).
    MappingList,
    /// Every cached read route at concurrency 1 and 64, interleaved with
    /// `/healthz`, driven by `wrk` (issue 18).
    Routes,
    /// The portal load over 3 server processes, without and with a shared
    /// Redis (issue 17; needs `redis-server`).
    PortalReplicas,
    /// All of the above in sequence.
    All,
}

/// Knobs; the defaults are issue 8's.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds per warm-card/ceiling phase (issue: 15).
    pub warm_secs: f64,
    /// Seconds per `wrk` run of the routes scenario (default 3).
    pub routes_phase_secs: Option<f64>,
    /// Seconds per portal run (issue: 60).
    pub portal_secs: f64,
    /// Seconds of the trigger run.
    pub trigger_secs: f64,
    /// Seconds of the degraded run.
    pub degraded_secs: f64,
    /// Concurrencies of warm-card and ceiling (issue: 1 and 64).
    pub warm_concurrency: Vec<usize>,
    /// Simulated services in portal/degraded (issue: 500).
    pub services: usize,
    /// Account seed (and the load's random seed).
    pub seed: u64,
    /// PagerDuty's mean latency per call (issue: 80 ms).
    pub latency_ms: u64,
    /// Spread around it (`latency ± jitter/2`).
    pub jitter_ms: u64,
    /// Portal page views per second at the lower rate (the second run doubles it).
    pub portal_rate: f64,
    /// Portal users (issue: 64).
    pub users: usize,
    /// Cards per page view (issue: 20).
    pub page_size: usize,
    /// Zipf exponent (issue: ≈ 1.1).
    pub zipf_s: f64,
    /// Cards in the cold-start burst (issue: 200).
    pub cold_cards: usize,
    /// Trigger concurrency (issue: 16).
    pub trigger_concurrency: usize,
    /// Cap on requests per phase.
    pub max_requests: u64,
    /// Server worker threads (`server.workers`).
    pub server_workers: usize,
    /// Server `RUST_LOG`.
    pub server_log_level: String,
    /// Simulator worker threads.
    pub sim_workers: usize,
    /// Keep the server log files.
    pub keep_server_logs: bool,
    /// PagerDuty's per-token limit switched on in portal and cold-start.
    pub pagerduty_limit_per_minute: u32,
    /// Degraded: share of 5xx.
    pub degraded_error_rate: f64,
    /// Degraded: every this many seconds PagerDuty rate-limits us...
    pub burst_every_secs: f64,
    /// ...for this many seconds: every call in that window is answered 429
    /// with `ratelimit-reset` set to the window's length.
    pub burst_reset_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            warm_secs: 15.0,
            routes_phase_secs: None,
            portal_secs: 60.0,
            trigger_secs: 15.0,
            degraded_secs: 60.0,
            warm_concurrency: vec![1, 64],
            services: 500,
            seed: 42,
            latency_ms: 80,
            jitter_ms: 20,
            portal_rate: 16.0,
            users: 64,
            page_size: 20,
            zipf_s: 1.1,
            cold_cards: 200,
            trigger_concurrency: 16,
            max_requests: 10_000_000,
            server_workers: 2,
            server_log_level: "info".to_owned(),
            sim_workers: 1,
            keep_server_logs: false,
            pagerduty_limit_per_minute: 960,
            degraded_error_rate: 0.10,
            burst_every_secs: 10.0,
            burst_reset_secs: 2,
        }
    }
}

impl Options {
    /// Short phases for a quick look (numbers are noisier).
    pub fn quick() -> Self {
        Self {
            warm_secs: 2.0,
            routes_phase_secs: Some(1.0),
            portal_secs: 8.0,
            trigger_secs: 2.0,
            degraded_secs: 8.0,
            burst_every_secs: 2.0,
            ..Self::default()
        }
    }

    /// The same duration for every phase.
    pub fn set_duration(&mut self, secs: f64) {
        self.warm_secs = secs;
        self.routes_phase_secs = Some(secs);
        self.portal_secs = secs;
        self.trigger_secs = secs;
        self.degraded_secs = secs;
    }
}

/// Why a scenario produced no rows.
#[derive(Debug)]
pub enum NotRun {
    /// The server lacks the route (e.g. `/v1/incidents` before issue 6 lands).
    Unavailable(String),
    /// Something broke.
    Failed(String),
}

impl From<String> for NotRun {
    fn from(e: String) -> Self {
        NotRun::Failed(e)
    }
}

/// The harness: options, the server binary and an HTTP client.
#[derive(Debug)]
pub struct Bench {
    /// Knobs.
    pub opts: Options,
    /// How the server is started.
    pub server_bin: ServerBin,
    pub(crate) http: reqwest::Client,
}

/// Counters at the start of a phase.
pub(crate) struct Phase {
    sim_total: u64,
    sim_429: u64,
    server_cpu: Option<f64>,
    self_cpu: Option<f64>,
}

impl Phase {
    pub(crate) fn begin(sim: &SimHandle, server: &ServerProcess) -> Self {
        let stats = sim.stats();
        Self {
            sim_total: stats.total(),
            sim_429: stats.rate_limited(),
            server_cpu: server.cpu_secs(),
            self_cpu: harness::self_cpu_secs(),
        }
    }

    pub(crate) fn end(self, row: &mut Row, sim: &SimHandle, server: &ServerProcess) {
        let stats = sim.stats();
        row.set_upstream(
            stats.total() - self.sim_total,
            stats.rate_limited() - self.sim_429,
        );
        row.server_peak_rss_mib = server.peak_rss_mib();
        row.server_cpu_s = delta(server.cpu_secs(), self.server_cpu);
        row.bench_cpu_s = delta(harness::self_cpu_secs(), self.self_cpu);
        // CPU per request is steadier than throughput on a shared machine.
        if let Some(cpu) = row.server_cpu_s
            && row.requests > 0
        {
            row.extra.insert(
                "server_cpu_us_per_request".to_owned(),
                json!(cpu * 1e6 / row.requests as f64),
            );
        }
    }
}

fn delta(now: Option<f64>, then: Option<f64>) -> Option<f64> {
    Some(now? - then?)
}

/// Counts views, cards with service data and cards with a stale section in
/// a card (`GET /v1/cards/{id}`) or batch (`POST /v1/cards/batch`) body.
pub fn inspect_cards(body: &Value) -> (u64, u64, u64) {
    fn card(v: &Value) -> Option<&Value> {
        if v.get("service").is_some_and(Value::is_object) {
            Some(v)
        } else {
            v.get("card").filter(|c| c.is_object())
        }
    }
    fn one(v: &Value) -> (u64, u64) {
        let Some(c) = card(v) else { return (0, 0) };
        let data = c["service"].get("data").is_some_and(|d| !d.is_null());
        let stale = c.as_object().is_some_and(|o| {
            o.values()
                .any(|s| s.get("stale") == Some(&Value::Bool(true)))
        });
        (u64::from(data), u64::from(data && stale))
    }
    let list = body.as_array().or_else(|| {
        ["cards", "results", "items"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_array))
    });
    match list {
        Some(items) => items.iter().fold((0, 0, 0), |(n, d, s), item| {
            let (dd, ss) = one(item);
            (n + 1, d + dd, s + ss)
        }),
        None => {
            let (d, s) = one(body);
            (1, d, s)
        }
    }
}

pub(crate) async fn get_ok(http: &reqwest::Client, url: &str) -> Outcome {
    match http.get(url).send().await {
        Ok(resp) => {
            let status = resp.status();
            let drained = resp.bytes().await;
            match (status.is_success(), drained) {
                (true, Ok(_)) => Outcome {
                    ok: true,
                    ..Outcome::default()
                },
                (_, Err(e)) => failed(format!("GET {url}: body: {e}")),
                (false, _) => failed(format!("GET {url}: status {status}")),
            }
        }
        Err(e) => failed(format!("GET {url}: {e}")),
    }
}

fn failed(error: String) -> Outcome {
    Outcome {
        ok: false,
        error: Some(error),
        ..Outcome::default()
    }
}

/// A portal page view: `POST /v1/cards/batch` with `ids`.
async fn page_view(http: &reqwest::Client, url: &str, ids: &[String]) -> Outcome {
    let views = ids.len() as u64;
    let resp = match http
        .post(url)
        .json(&json!({ "service_ids": ids }))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                card_views: views,
                ..failed(format!("POST {url}: {e}"))
            };
        }
    };
    let status = resp.status();
    let body = resp.bytes().await;
    let parsed = body
        .as_ref()
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok());
    match (status.is_success(), parsed) {
        (true, Some(v)) => {
            let (_, with_data, stale) = inspect_cards(&v);
            Outcome {
                ok: true,
                card_views: views,
                cards_with_data: with_data,
                cards_stale: stale,
                error: (with_data < views).then(|| {
                    format!(
                        "a page had {} of {views} cards without data",
                        views - with_data
                    )
                }),
            }
        }
        (ok, parsed) => Outcome {
            card_views: views,
            ..failed(format!(
                "POST {url}: status {status}{}",
                if ok && parsed.is_none() {
                    ", body is not JSON"
                } else {
                    ""
                }
            ))
        },
    }
}

/// Samples the simulator's request counter once a second while `done` is unset.
async fn sample_upstream(sim: &SimHandle, done: &AtomicBool) -> Vec<(f64, u64, u64)> {
    let start = Instant::now();
    let mut samples = vec![(0.0, sim.stats().total(), sim.stats().rate_limited())];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !done.load(Ordering::Relaxed) {
        tick.tick().await;
        let s = sim.stats();
        samples.push((start.elapsed().as_secs_f64(), s.total(), s.rate_limited()));
    }
    samples
}

/// Upstream calls per minute between `from_secs` and the last sample.
fn rate_per_min_since(samples: &[(f64, u64, u64)], from_secs: f64) -> Option<f64> {
    let first = samples.iter().find(|s| s.0 >= from_secs)?;
    let last = samples.last()?;
    let span = last.0 - first.0;
    (span >= 1.0).then(|| (last.1 - first.1) as f64 * 60.0 / span)
}

/// Retry storms: maximal runs of 1-second buckets whose upstream calls
/// exceed `max(3 × median, median + 30)` of the run's buckets.
pub fn retry_storms(per_second: &[u64]) -> (u64, u64, u64) {
    if per_second.is_empty() {
        return (0, 0, 0);
    }
    let mut sorted = per_second.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let threshold = (median * 3).max(median + 30);
    let mut storms = 0;
    let mut inside = false;
    for &n in per_second {
        if n > threshold && !inside {
            storms += 1;
        }
        inside = n > threshold;
    }
    (storms, median, *sorted.last().unwrap_or(&0))
}

impl Bench {
    /// A harness with these options and server binary.
    pub fn new(opts: Options, server_bin: ServerBin) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            opts,
            server_bin,
            http,
        })
    }

    pub(crate) fn sim_setup(&self, services: usize, rate_limit: Option<u32>) -> SimSetup {
        SimSetup {
            services,
            seed: self.opts.seed,
            latency_ms: self.opts.latency_ms,
            jitter_ms: self.opts.jitter_ms,
            rate_limit_per_minute: rate_limit,
            workers: self.opts.sim_workers,
        }
    }

    pub(crate) fn server_options(&self) -> ServerOptions {
        ServerOptions {
            workers: self.opts.server_workers,
            log_level: self.opts.server_log_level.clone(),
            trigger_limits_off: false,
            client_rate_limit_per_minute: None,
            keep_log: self.opts.keep_server_logs,
            cache: Vec::new(),
            port: None,
            extra_toml: String::new(),
        }
    }

    pub(crate) async fn start(
        &self,
        setup: &SimSetup,
        server: &ServerOptions,
    ) -> Result<(SimHandle, ServerProcess), String> {
        let sim = setup.start().await?;
        match ServerProcess::start(&self.server_bin, &sim, server, &self.http).await {
            Ok(server) => Ok((sim, server)),
            Err(e) => {
                sim.shutdown().await;
                Err(e)
            }
        }
    }

    /// Runs `scenarios` in order (`all` expands) and evaluates the budgets.
    pub async fn run(&self, scenarios: &[Scenario]) -> Report {
        let all = scenarios.contains(&Scenario::All);
        let wants = |s: Scenario| all || scenarios.contains(&s);
        let mut environment = BTreeMap::new();
        environment.insert(
            "server_binary".to_owned(),
            json!(self.server_bin.describe()),
        );
        environment.insert(
            "cpus".to_owned(),
            json!(std::thread::available_parallelism().map_or(0, |n| n.get())),
        );
        environment.insert(
            "load_average_before".to_owned(),
            json!(harness::load_average()),
        );
        environment.insert("options".to_owned(), json!(format!("{:?}", self.opts)));
        let mut rows = Vec::new();
        let mut unavailable = Vec::new();
        let mut record = |name: &str, result: Result<Vec<Row>, NotRun>| match result {
            Ok(r) => rows.extend(r),
            Err(NotRun::Unavailable(why)) => {
                eprintln!("dutycard-bench: {name}: not run: {why}");
                unavailable.push((name.to_owned(), why));
            }
            Err(NotRun::Failed(why)) => {
                eprintln!("dutycard-bench: {name}: failed: {why}");
                unavailable.push((name.to_owned(), format!("failed: {why}")));
            }
        };
        if wants(Scenario::WarmCard) || wants(Scenario::Ceiling) {
            // warm-card is reported as a share of the ceiling, so it always
            // measures the ceiling beside it, on the same server.
            let r = self.warm_and_ceiling(wants(Scenario::WarmCard), true).await;
            record("warm-card/ceiling", r);
        }
        if wants(Scenario::Portal) {
            let r = self.portal().await;
            record("portal", r);
        }
        if wants(Scenario::ColdStart) {
            let r = self.cold_start().await;
            record("cold-start", r);
        }
        if wants(Scenario::Trigger) {
            let r = self.trigger().await;
            record("trigger", r);
        }
        if wants(Scenario::Degraded) {
            let r = self.degraded().await;
            record("degraded", r);
        }
        if wants(Scenario::Freshness) {
            let r = self.freshness().await;
            record("freshness", r);
        }
        if wants(Scenario::PortalReplicas) {
            let r = self.portal_replicas().await;
            record("portal-replicas", r);
        }
        if wants(Scenario::MappingList) {
            let r = self.mapping_list().await;
            record("mapping-list", r);
        }
        if wants(Scenario::Routes) {
            let r = self.routes().await;
            record("routes", r);
        }
        environment.insert(
            "load_average_after".to_owned(),
            json!(harness::load_average()),
        );
        let budgets = report::evaluate_budgets(&rows);
        Report {
            environment,
            rows,
            unavailable,
            budgets,
        }
    }

    /// `warm-card` and `ceiling`: one hot card and `/healthz`, alternated on
    /// the same server at each concurrency.
    pub async fn warm_and_ceiling(&self, warm: bool, ceiling: bool) -> Result<Vec<Row>, NotRun> {
        let setup = self.sim_setup(self.opts.services.min(50), None);
        let (sim, server) = self.start(&setup, &self.server_options()).await?;
        let result = self.warm_and_ceiling_on(&sim, &server, warm, ceiling).await;
        server.stop();
        sim.shutdown().await;
        result
    }

    async fn warm_and_ceiling_on(
        &self,
        sim: &SimHandle,
        server: &ServerProcess,
        warm: bool,
        ceiling: bool,
    ) -> Result<Vec<Row>, NotRun> {
        let hot = sim
            .account()
            .services
            .first()
            .map(|s| s.id.clone())
            .ok_or_else(|| "the simulator generated no services".to_owned())?;
        let card_url = format!("{}/v1/cards/{hot}", server.base_url);
        let card_bytes = if warm {
            Some(self.expect_card(&card_url).await?)
        } else {
            None
        };
        let mut rows = Vec::new();
        for &c in &self.opts.warm_concurrency {
            let spec = LoadSpec {
                concurrency: c,
                duration: Duration::from_secs_f64(self.opts.warm_secs),
                max_requests: self.opts.max_requests,
                period: None,
            };
            let mut pair = Vec::new();
            for (name, url, enabled) in [
                ("warm-card", card_url.clone(), warm),
                ("ceiling", format!("{}/healthz", server.base_url), ceiling),
            ] {
                if !enabled {
                    continue;
                }
                let http = self.http.clone();
                let url = Arc::new(url);
                let phase = Phase::begin(sim, server);
                let result = load::run(&spec, move |_, _| {
                    let (http, url) = (http.clone(), url.clone());
                    async move {
                        let o = get_ok(&http, &url).await;
                        Outcome {
                            card_views: u64::from(name == "warm-card"),
                            ..o
                        }
                    }
                })
                .await;
                let mut row = Row::from_load(name, &format!("c={c}"), c, &result);
                phase.end(&mut row, sim, server);
                if name == "ceiling" {
                    row.card_views = 0;
                    row.upstream_per_1000_views = None;
                }
                pair.push(row);
            }
            if let [w, c] = pair.as_mut_slice() {
                let share = if c.rps > 0.0 { w.rps / c.rps } else { 0.0 };
                w.extra.insert("share_of_ceiling".to_owned(), json!(share));
                w.extra.insert("card_bytes".to_owned(), json!(card_bytes));
            }
            rows.extend(pair);
        }
        Ok(rows)
    }

    /// GETs a card until it answers 200 with service data (≤ 20 s).
    async fn expect_card(&self, url: &str) -> Result<usize, NotRun> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let resp = self.http.get(url).send().await;
            let (status, body) = match resp {
                Ok(r) => (Some(r.status()), r.text().await.unwrap_or_default()),
                Err(e) => (None, e.to_string()),
            };
            if status.is_some_and(|s| s.is_success())
                && let Ok(v) = serde_json::from_str::<Value>(&body)
                && inspect_cards(&v).1 == 1
            {
                return Ok(body.len());
            }
            if status == Some(reqwest::StatusCode::NOT_FOUND) && body.contains("route_not_found") {
                return Err(NotRun::Unavailable(format!(
                    "the server has no card route yet ({url} answered route_not_found)"
                )));
            }
            if Instant::now() >= deadline {
                return Err(NotRun::Failed(format!(
                    "{url} did not answer a card with data within 20 s (last: {status:?} {body:.300})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The service ids in Zipf popularity order (a seeded shuffle of the account).
    fn popularity_order(&self, sim: &SimHandle) -> Vec<String> {
        let mut ids: Vec<String> = sim
            .account()
            .services
            .iter()
            .map(|s| s.id.clone())
            .collect();
        ids.shuffle(&mut ChaCha8Rng::seed_from_u64(self.opts.seed ^ 0x5eed));
        ids
    }

    /// `portal`: pages of Zipf-drawn cards at `portal_rate` and twice that.
    pub async fn portal(&self) -> Result<Vec<Row>, NotRun> {
        let mut rows = Vec::new();
        for factor in [1.0, 2.0] {
            let rate = self.opts.portal_rate * factor;
            let setup = self.sim_setup(
                self.opts.services,
                Some(self.opts.pagerduty_limit_per_minute),
            );
            let (sim, server) = self.start(&setup, &self.server_options()).await?;
            let result = self
                .portal_load(&sim, &server, rate, self.opts.portal_secs, "portal")
                .await;
            server.stop();
            sim.shutdown().await;
            rows.push(result?);
        }
        Ok(rows)
    }

    /// The portal workload on a running pair; fills the portal extras.
    async fn portal_load(
        &self,
        sim: &SimHandle,
        server: &ServerProcess,
        rate: f64,
        secs: f64,
        scenario: &str,
    ) -> Result<Row, NotRun> {
        let ids = Arc::new(self.popularity_order(sim));
        let zipf = Arc::new(Zipf::new(ids.len(), self.opts.zipf_s)?);
        let url = Arc::new(format!("{}/v1/cards/batch", server.base_url));
        let probe: Vec<String> = ids.iter().take(self.opts.page_size).cloned().collect();
        let first = page_view(&self.http, &url, &probe).await;
        if !first.ok {
            let why = first.error.unwrap_or_default();
            if why.contains("404") || why.contains("405") {
                return Err(NotRun::Unavailable(format!("no batch card route: {why}")));
            }
        }
        let users = self.opts.users.max(1);
        let spec = LoadSpec {
            concurrency: users,
            duration: Duration::from_secs_f64(secs),
            max_requests: self.opts.max_requests,
            period: Some(Duration::from_secs_f64(users as f64 / rate.max(0.001))),
        };
        let (http, seed, page) = (self.http.clone(), self.opts.seed, self.opts.page_size);
        let phase = Phase::begin(sim, server);
        let done = AtomicBool::new(false);
        let load = async {
            let r = load::run(&spec, move |worker, seq| {
                let (http, url, ids, zipf) = (http.clone(), url.clone(), ids.clone(), zipf.clone());
                async move {
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        seed ^ (worker as u64) << 40 ^ seq.wrapping_mul(0x9e37_79b9),
                    );
                    let picks: Vec<String> = zipf
                        .sample_distinct(&mut rng, page)
                        .into_iter()
                        .map(|r| ids[r].clone())
                        .collect();
                    page_view(&http, &url, &picks).await
                }
            })
            .await;
            done.store(true, Ordering::Relaxed);
            r
        };
        let (result, samples) = tokio::join!(load, sample_upstream(sim, &done));
        let mut row = Row::from_load(scenario, &format!("rate={rate}/s"), users, &result);
        phase.end(&mut row, sim, server);
        let minutes = result.elapsed.as_secs_f64() / 60.0;
        row.extra
            .insert("page_views_per_s".to_owned(), json!(result.rps()));
        row.extra.insert(
            "upstream_per_min".to_owned(),
            json!(row.upstream_calls as f64 / minutes.max(1e-9)),
        );
        // Steady state: the second half of the run (the first half includes the cold fill).
        if let Some(steady) = rate_per_min_since(&samples, secs / 2.0) {
            row.extra
                .insert("upstream_per_min_steady".to_owned(), json!(steady));
        }
        if result.cards_with_data > 0 {
            row.extra.insert(
                "stale_share".to_owned(),
                json!(result.cards_stale as f64 / result.cards_with_data as f64),
            );
        }
        if result.card_views > 0 {
            row.extra.insert(
                "availability".to_owned(),
                json!(result.cards_with_data as f64 / result.card_views as f64),
            );
        }
        let per_second: Vec<u64> = samples.windows(2).map(|w| w[1].1 - w[0].1).collect();
        let (storms, median, peak) = retry_storms(&per_second);
        row.extra
            .insert("upstream_per_s_median".to_owned(), json!(median));
        row.extra
            .insert("upstream_per_s_peak".to_owned(), json!(peak));
        if scenario == "degraded" {
            row.extra.insert("retry_storms".to_owned(), json!(storms));
        }
        row.extra.insert(
            "upstream_by_route".to_owned(),
            json!(replicas::by_route(&sim.stats())),
        );
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_counts_cards_data_and_staleness() {
        let fresh =
            json!({"service": {"data": {"id": "P1"}, "stale": false}, "oncall": {"stale": false}});
        let stale = json!({"service": {"data": {"id": "P2"}, "stale": false}, "incidents": {"stale": true}});
        let error = json!({"error": {"code": "not_found"}});
        assert_eq!(inspect_cards(&fresh), (1, 1, 0));
        assert_eq!(
            inspect_cards(&json!({"cards": [fresh, stale, error]})),
            (3, 2, 1)
        );
        assert_eq!(
            inspect_cards(&json!([{"card": {"service": {"data": null}}}])),
            (1, 0, 0)
        );
    }

    #[test]
    fn storms_are_runs_above_the_threshold() {
        let calls = [5, 6, 5, 80, 90, 5, 4, 6, 70, 5, 5];
        assert_eq!(retry_storms(&calls), (2, 5, 90));
        assert_eq!(retry_storms(&[]), (0, 0, 0));
    }

    #[test]
    fn steady_rate_uses_the_window() {
        let samples = [(0.0, 0, 0), (1.0, 100, 0), (2.0, 110, 0), (3.0, 120, 0)];
        assert_eq!(rate_per_min_since(&samples, 1.0), Some(600.0));
        assert_eq!(rate_per_min_since(&samples, 2.5), None);
    }
}
