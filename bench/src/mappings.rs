//! `mapping-list` (issue 15): the Backstage admin page's
//! `GET /api/pagerduty/mapping/entity` over an account of 2,000 services, a
//! quarter of them mapped in the store: the first (cold) answer, which reads
//! the services list from PagerDuty, then the warm listing under load (a
//! full body every time), then the same load revalidating with the
//! listing's ETag (`If-None-Match`: a 304 without a body, as a browser that
//! has the listing asks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::load::{self, LoadSpec};
use crate::report::Row;
use crate::scenarios::{Bench, NotRun, Phase, get_ok};

/// Services in the account (issue 15: 2,000).
pub const SERVICES: usize = 2000;
/// Concurrent admin-page loads.
pub const CONCURRENCY: usize = 8;

impl Bench {
    /// `mapping-list`: see the module docs.
    pub async fn mapping_list(&self) -> Result<Vec<Row>, NotRun> {
        let setup = self.sim_setup(SERVICES, None);
        let (sim, server) = self.start(&setup, &self.server_options()).await?;
        let result = self.mapping_list_on(&sim, &server).await;
        server.stop();
        sim.shutdown().await;
        result
    }

    async fn mapping_list_on(
        &self,
        sim: &sim::SimHandle,
        server: &crate::harness::ServerProcess,
    ) -> Result<Vec<Row>, NotRun> {
        let ids: Vec<String> = sim
            .account()
            .services
            .iter()
            .map(|s| s.id.clone())
            .collect();
        if ids.len() < SERVICES {
            return Err(NotRun::Failed(format!(
                "the simulator made {} services",
                ids.len()
            )));
        }
        let url = format!("{}/api/pagerduty/mapping/entity", server.base_url);
        // Cold: the first listing reads every services page from PagerDuty.
        let one = LoadSpec {
            concurrency: 1,
            duration: Duration::from_secs(60),
            max_requests: 1,
            period: None,
        };
        let (http, cold_url) = (self.http.clone(), Arc::new(url.clone()));
        let phase = Phase::begin(sim, server);
        let result = load::run(&one, move |_, _| {
            let (http, url) = (http.clone(), cold_url.clone());
            async move { get_ok(&http, &url).await }
        })
        .await;
        let mut cold = Row::from_load("mapping-list", "cold", 1, &result);
        phase.end(&mut cold, sim, server);
        if cold.errors > 0 || cold.requests == 0 {
            return Err(NotRun::Failed(format!(
                "cold listing: {:?}",
                cold.first_error
            )));
        }
        let body = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        cold.extra
            .insert("body_bytes".to_owned(), json!(body.len()));

        // A quarter mapped, through the bulk route (one transaction per 200).
        let mappings: Vec<Value> = ids
            .iter()
            .step_by(4)
            .map(|id| json!({"entityRef": format!("component:default/{}", id.to_lowercase()), "serviceId": id}))
            .collect();
        let bulk = format!("{}/api/pagerduty/mapping/entities/bulk", server.base_url);
        let started = Instant::now();
        let res = self
            .http
            .post(&bulk)
            .json(&json!({ "mappings": mappings }))
            .send()
            .await
            .map_err(|e| format!("POST {bulk}: {e}"))?;
        let answer: Value = res.json().await.map_err(|e| format!("POST {bulk}: {e}"))?;
        if answer["successCount"].as_u64() != Some(mappings.len() as u64) {
            return Err(NotRun::Failed(format!("bulk mapping: {answer}")));
        }
        cold.extra.insert(
            "bulk_500_ms".to_owned(),
            json!(started.elapsed().as_secs_f64() * 1e3),
        );

        // Warm: the listing from the cached services list and the store.
        let spec = LoadSpec {
            concurrency: CONCURRENCY,
            duration: Duration::from_secs_f64(self.opts.warm_secs),
            max_requests: self.opts.max_requests,
            period: None,
        };
        let http = self.http.clone();
        let shared_url = Arc::new(url.clone());
        let phase = Phase::begin(sim, server);
        let result = load::run(&spec, move |_, _| {
            let (http, url) = (http.clone(), shared_url.clone());
            async move { get_ok(&http, &url).await }
        })
        .await;
        let mut warm = Row::from_load(
            "mapping-list",
            &format!("warm c={CONCURRENCY}"),
            CONCURRENCY,
            &result,
        );
        phase.end(&mut warm, sim, server);
        warm.card_views = 0;
        warm.upstream_per_1000_views = None;

        // Revalidating: the same load with the listing's ETag.
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let etag = res
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| format!("GET {url}: no ETag"))?;
        let (http, url, etag) = (self.http.clone(), Arc::new(url), Arc::new(etag));
        let phase = Phase::begin(sim, server);
        let result = load::run(&spec, move |_, _| {
            let (http, url, etag) = (http.clone(), url.clone(), etag.clone());
            async move { not_modified(&http, &url, &etag).await }
        })
        .await;
        let mut revalidated = Row::from_load(
            "mapping-list",
            &format!("304 c={CONCURRENCY}"),
            CONCURRENCY,
            &result,
        );
        phase.end(&mut revalidated, sim, server);
        revalidated.card_views = 0;
        revalidated.upstream_per_1000_views = None;
        Ok(vec![cold, warm, revalidated])
    }
}

/// `GET url` with `If-None-Match: etag`; only a 304 counts as answered.
async fn not_modified(http: &reqwest::Client, url: &str, etag: &str) -> load::Outcome {
    let failed = |error: String| load::Outcome {
        ok: false,
        error: Some(error),
        ..load::Outcome::default()
    };
    match http
        .get(url)
        .header(reqwest::header::IF_NONE_MATCH, etag)
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(_) if status == reqwest::StatusCode::NOT_MODIFIED => load::Outcome {
                    ok: true,
                    ..load::Outcome::default()
                },
                Ok(_) => failed(format!("GET {url} with If-None-Match: status {status}")),
                Err(e) => failed(format!("GET {url}: body: {e}")),
            }
        }
        Err(e) => failed(format!("GET {url}: {e}")),
    }
}
