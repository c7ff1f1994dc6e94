//! The scenarios that start a server for one burst of work: `cold-start`
//! (many cold cards at once), `trigger` (`POST /v1/incidents` at
//! concurrency 16) and `degraded` (5xx and 429 bursts from PagerDuty).

use super::*;

impl Bench {
    /// `cold-start`: `cold_cards` distinct cards at once on a fresh server.
    pub async fn cold_start(&self) -> Result<Vec<Row>, NotRun> {
        let n = self.opts.cold_cards.max(1);
        let setup = self.sim_setup(
            self.opts.services.max(n),
            Some(self.opts.pagerduty_limit_per_minute),
        );
        let (sim, server) = self.start(&setup, &self.server_options()).await?;
        let ids: Vec<String> = sim
            .account()
            .services
            .iter()
            .take(n)
            .map(|s| s.id.clone())
            .collect();
        let phase = Phase::begin(&sim, &server);
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(ids.len());
        for id in ids {
            let http = self.http.clone();
            let url = format!("{}/v1/cards/{id}", server.base_url);
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let o = match http.get(&url).send().await {
                    Ok(r) => {
                        let status = r.status();
                        match r.json::<Value>().await {
                            Ok(v) if status.is_success() => {
                                let (_, data, stale) = inspect_cards(&v);
                                Outcome {
                                    ok: data == 1,
                                    card_views: 1,
                                    cards_with_data: data,
                                    cards_stale: stale,
                                    error: (data == 0).then(|| format!("{url}: card without data")),
                                }
                            }
                            Ok(v) => failed(format!("{url}: status {status}: {v}")),
                            Err(e) => failed(format!("{url}: status {status}: {e}")),
                        }
                    }
                    Err(e) => failed(format!("{url}: {e}")),
                };
                (o, t0.elapsed())
            }));
        }
        let mut result = load::LoadResult {
            hist: load::new_histogram(),
            requests: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            card_views: 0,
            cards_with_data: 0,
            cards_stale: 0,
            first_error: None,
        };
        for t in tasks {
            let (o, took) = t
                .await
                .map_err(|e| format!("cold-start request task: {e}"))?;
            result
                .hist
                .saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            result.requests += 1;
            result.card_views += 1;
            result.cards_with_data += o.cards_with_data;
            if !o.ok {
                result.errors += 1;
                if result.first_error.is_none() {
                    result.first_error = o.error;
                }
            }
        }
        result.elapsed = start.elapsed();
        let mut row = Row::from_load("cold-start", &format!("{n} cards"), n, &result);
        phase.end(&mut row, &sim, &server);
        row.extra.insert(
            "all_answered_ms".to_owned(),
            json!(result.elapsed.as_secs_f64() * 1000.0),
        );
        let stats = sim.stats();
        let by_route: BTreeMap<String, u64> =
            stats.routes.iter().fold(BTreeMap::new(), |mut m, r| {
                *m.entry(format!("{} {}", r.method, r.route)).or_default() += r.count;
                m
            });
        row.extra
            .insert("upstream_by_route".to_owned(), json!(by_route));
        server.stop();
        sim.shutdown().await;
        Ok(vec![row])
    }

    /// `trigger`: `POST /v1/incidents` at `trigger_concurrency`; the added
    /// latency is ours over the simulator's fixed (jitter-free) latency.
    pub async fn trigger(&self) -> Result<Vec<Row>, NotRun> {
        let mut rows = Vec::new();
        // As configured by default, then without the client-side token
        // bucket (`pagerduty.rate_limit_per_minute = 0`), which the client
        // also applies to Events API calls.
        for (variant, limit) in [("default config", None), ("client limiter off", Some(0))] {
            let mut setup = self.sim_setup(self.opts.services.min(50), None);
            setup.jitter_ms = 0;
            let server_opts = ServerOptions {
                trigger_limits_off: true,
                client_rate_limit_per_minute: limit,
                ..self.server_options()
            };
            let (sim, server) = self.start(&setup, &server_opts).await?;
            let result = self.trigger_on(&sim, &server).await;
            server.stop();
            sim.shutdown().await;
            let mut row = result?;
            row.variant = format!("{}, {variant}", row.variant);
            rows.push(row);
        }
        Ok(rows)
    }

    async fn trigger_on(&self, sim: &SimHandle, server: &ServerProcess) -> Result<Row, NotRun> {
        let url = Arc::new(format!("{}/v1/incidents", server.base_url));
        let account = sim.account();
        let ids: Vec<String> = account
            .services
            .iter()
            .filter(|s| s.integrations.iter().any(|i| i.integration_key.is_some()))
            .take(self.opts.trigger_concurrency.max(1))
            .map(|s| s.id.clone())
            .collect();
        if ids.is_empty() {
            return Err(NotRun::Failed(
                "no simulated service has an Events integration".into(),
            ));
        }
        // Probe, and warm the routing-key cache of every service we use.
        for id in &ids {
            let resp = self
                .http
                .post(url.as_str())
                .json(&json!({"service_id": id, "summary": "dutycard-bench warm-up"}))
                .send()
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if status == reqwest::StatusCode::METHOD_NOT_ALLOWED
                || (status == reqwest::StatusCode::NOT_FOUND && body.contains("route_not_found"))
            {
                return Err(NotRun::Unavailable(format!(
                    "route not available: POST /v1/incidents answered {status} (issue 6 has not landed)"
                )));
            }
            if !status.is_success() {
                return Err(NotRun::Failed(format!(
                    "trigger warm-up for {id}: {status}: {body:.300}"
                )));
            }
        }
        let ids = Arc::new(ids);
        let c = self.opts.trigger_concurrency.max(1);
        let spec = LoadSpec {
            concurrency: c,
            duration: Duration::from_secs_f64(self.opts.trigger_secs),
            max_requests: self.opts.max_requests,
            period: None,
        };
        let http = self.http.clone();
        let phase = Phase::begin(sim, server);
        let result = load::run(&spec, move |worker, seq| {
            let (http, url, ids) = (http.clone(), url.clone(), ids.clone());
            async move {
                let body = json!({
                    "service_id": ids[worker % ids.len()],
                    "summary": format!("dutycard-bench trigger {seq}"),
                    "severity": "warning",
                    "dedup_key": format!("dutycard-bench-{seq}"),
                });
                match http.post(url.as_str()).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        Outcome {
                            ok: true,
                            ..Outcome::default()
                        }
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        failed(format!("POST {url}: {status}: {text:.200}"))
                    }
                    Err(e) => failed(format!("POST {url}: {e}")),
                }
            }
        })
        .await;
        let mut row = Row::from_load("trigger", &format!("c={c}"), c, &result);
        phase.end(&mut row, sim, server);
        let own = self.opts.latency_ms as f64;
        row.extra
            .insert("simulator_latency_ms".to_owned(), json!(own));
        for (key, v) in [
            ("added_p50_ms", row.p50_ms),
            ("added_p90_ms", row.p90_ms),
            ("added_p99_ms", row.p99_ms),
        ] {
            row.extra.insert(key.to_owned(), json!(v - own));
        }
        if result.requests > 0 {
            row.extra.insert(
                "upstream_per_trigger".to_owned(),
                json!(row.upstream_calls as f64 / result.requests as f64),
            );
        }
        Ok(row)
    }

    /// `degraded`: the portal workload at the lower rate while PagerDuty
    /// answers `degraded_error_rate` 5xx and bursts of 429 (after a
    /// fault-free warm-up that loads every card once, like a server that has
    /// been up for a while).
    pub async fn degraded(&self) -> Result<Vec<Row>, NotRun> {
        let mut rows = Vec::new();
        // With the default TTLs a warm server calls PagerDuty rarely, so the
        // faults touch few calls; the second run divides the TTLs by 10 so
        // that about ten times as many calls meet the faults.
        let short: Vec<(String, u64)> = [
            ("service_ttl_secs", 30),
            ("escalation_policy_ttl_secs", 30),
            ("oncall_ttl_secs", 6),
            ("incidents_ttl_secs", 2),
            ("change_events_ttl_secs", 18),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (label, cache) in [("default TTLs", Vec::new()), ("TTLs / 10", short)] {
            let setup = self.sim_setup(self.opts.services, None);
            let opts = ServerOptions {
                cache,
                ..self.server_options()
            };
            let (sim, server) = self.start(&setup, &opts).await?;
            let result = self.degraded_on(&sim, &server, &setup).await;
            server.stop();
            sim.shutdown().await;
            let mut row = result?;
            row.variant = format!("{label}, {}", row.variant);
            rows.push(row);
        }
        Ok(rows)
    }

    async fn degraded_on(
        &self,
        sim: &SimHandle,
        server: &ServerProcess,
        setup: &SimSetup,
    ) -> Result<Row, NotRun> {
        let url = format!("{}/v1/cards/batch", server.base_url);
        let ids = self.popularity_order(sim);
        for chunk in ids.chunks(self.opts.page_size.max(1)) {
            let o = page_view(&self.http, &url, chunk).await;
            if !o.ok {
                return Err(NotRun::Failed(format!(
                    "degraded warm-up: {}",
                    o.error.unwrap_or_default()
                )));
            }
        }
        // A 429 window: every call is answered 429 with `ratelimit-reset`
        // until the window closes. A client that honours the reset makes
        // about one call per in-flight request per window; one that does not
        // collects a 429 for every retry (the `429s` column).
        let faults = |limited: bool| Faults {
            global: FaultSpec {
                error_rate: self.opts.degraded_error_rate,
                fail_next: if limited { 1_000_000 } else { 0 },
                fail_status: 429,
                rate_limit_reset_secs: self.opts.burst_reset_secs,
                ..setup.latency_spec()
            },
            per_route: Vec::new(),
            rate_limit_per_minute: setup.rate_limit_per_minute,
        };
        sim.set_faults(faults(false));
        let done = AtomicBool::new(false);
        let bursts = async {
            let every = Duration::from_secs_f64(self.opts.burst_every_secs.max(0.5));
            let window = Duration::from_secs(self.opts.burst_reset_secs.max(1)).min(every / 2);
            let start = Instant::now();
            let mut windows = 0u64;
            let mut limited = false;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let into = start.elapsed().as_secs_f64() % every.as_secs_f64();
                // Windows open half-way through each period (the first one
                // after the load has reached its rate).
                let want = into >= every.as_secs_f64() / 2.0
                    && into < every.as_secs_f64() / 2.0 + window.as_secs_f64();
                if want != limited {
                    sim.set_faults(faults(want));
                    limited = want;
                    windows += u64::from(want);
                }
            }
            windows
        };
        let run = async {
            let r = self
                .portal_load(
                    sim,
                    server,
                    self.opts.portal_rate,
                    self.opts.degraded_secs,
                    "degraded",
                )
                .await;
            done.store(true, Ordering::Relaxed);
            r
        };
        let (row, n_bursts) = tokio::join!(run, bursts);
        sim.clear_faults();
        let mut row = row?;
        row.variant = format!(
            "{:.0}% 5xx, 429 for {}s every {:.1}s",
            self.opts.degraded_error_rate * 100.0,
            self.opts.burst_reset_secs,
            self.opts.burst_every_secs
        );
        row.extra.insert("windows_429".to_owned(), json!(n_bursts));
        if n_bursts > 0 {
            row.extra.insert(
                "upstream_429_per_window".to_owned(),
                json!(row.upstream_429 as f64 / n_bursts as f64),
            );
        }
        row.extra.remove("upstream_per_min_steady");
        let stats = sim.stats();
        let served_5xx: u64 = stats
            .routes
            .iter()
            .filter(|r| r.status >= 500)
            .map(|r| r.count)
            .sum();
        row.extra
            .insert("upstream_5xx_total".to_owned(), json!(served_5xx));
        Ok(row)
    }
}
