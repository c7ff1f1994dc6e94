//! `portal-replicas` (issue 17): the portal workload (Zipf-drawn pages of
//! cards at `portal_rate`) spread round-robin over three server processes
//! that share one PagerDuty account (one simulator, its 960/min limiter
//! on), once without Redis (three caches, three budgets) and once sharing a
//! real `redis-server` through `[shared]`: upstream calls per minute, 429s
//! and cards served.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{Bench, NotRun, page_view, rate_per_min_since, sample_upstream};
use crate::harness::{ServerProcess, free_port};
use crate::load::{self, LoadSpec};
use crate::report::Row;
use crate::zipf::Zipf;

/// Server processes behind the (round-robin) load balancer.
const REPLICAS: usize = 3;

/// A `redis-server` in a temporary directory, killed on drop.
struct RedisProcess {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisProcess {
    fn start() -> Result<Self, NotRun> {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or_else(|| {
                NotRun::Unavailable(
                    "redis-server is not installed: run scripts/test, which installs it".into(),
                )
            })?;
        let port = free_port().map_err(|e| format!("picking a port: {e}"))?;
        let dir = std::env::temp_dir().join(format!("dutycard-bench-redis-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting redis-server: {e}"))?;
        let redis = RedisProcess { child, port, dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(NotRun::Failed(
                    "redis-server did not listen within 10 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bench {
    /// See the module docs.
    pub async fn portal_replicas(&self) -> Result<Vec<Row>, NotRun> {
        let mut rows = Vec::new();
        for shared in [false, true] {
            let redis = if shared {
                Some(RedisProcess::start()?)
            } else {
                None
            };
            let setup = self.sim_setup(
                self.opts.services,
                Some(self.opts.pagerduty_limit_per_minute),
            );
            let sim = setup.start().await?;
            let mut opts = self.server_options();
            if let Some(redis) = &redis {
                opts.extra_toml = format!(
                    "\n[shared]\nredis_url = {:?}\nreplicas = {REPLICAS}\n",
                    redis.url()
                );
            }
            let mut servers = Vec::new();
            let mut failed = None;
            for _ in 0..REPLICAS {
                match ServerProcess::start(&self.server_bin, &sim, &opts, &self.http).await {
                    Ok(server) => servers.push(server),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let result = match failed {
                Some(e) => Err(NotRun::Failed(e)),
                None => self.replicas_load(&sim, &servers, shared).await,
            };
            servers.into_iter().for_each(ServerProcess::stop);
            sim.shutdown().await;
            drop(redis);
            rows.push(result?);
        }
        Ok(rows)
    }

    async fn replicas_load(
        &self,
        sim: &sim::SimHandle,
        servers: &[ServerProcess],
        shared: bool,
    ) -> Result<Row, NotRun> {
        if shared {
            self.wait_shared(servers).await?;
        }
        let ids = Arc::new(self.popularity_order(sim));
        let zipf = Arc::new(Zipf::new(ids.len(), self.opts.zipf_s)?);
        let urls: Arc<Vec<String>> = Arc::new(
            servers
                .iter()
                .map(|s| format!("{}/v1/cards/batch", s.base_url))
                .collect(),
        );
        let rate = self.opts.portal_rate;
        let secs = self.opts.portal_secs;
        let users = self.opts.users.max(1);
        let spec = LoadSpec {
            concurrency: users,
            duration: Duration::from_secs_f64(secs),
            max_requests: self.opts.max_requests,
            period: Some(Duration::from_secs_f64(users as f64 / rate.max(0.001))),
        };
        let (http, seed, page) = (self.http.clone(), self.opts.seed, self.opts.page_size);
        let (total_before, limited_before) = (sim.stats().total(), sim.stats().rate_limited());
        let done = AtomicBool::new(false);
        let load = async {
            let r = load::run(&spec, move |worker, seq| {
                let (http, urls, ids, zipf) =
                    (http.clone(), urls.clone(), ids.clone(), zipf.clone());
                async move {
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        seed ^ (worker as u64) << 40 ^ seq.wrapping_mul(0x9e37_79b9),
                    );
                    let picks: Vec<String> = zipf
                        .sample_distinct(&mut rng, page)
                        .into_iter()
                        .map(|r| ids[r].clone())
                        .collect();
                    // The load balancer: each user's pages go round the replicas.
                    let url = &urls[(worker + seq as usize) % urls.len()];
                    page_view(&http, url, &picks).await
                }
            })
            .await;
            done.store(true, Ordering::Relaxed);
            r
        };
        let (result, samples) = tokio::join!(load, sample_upstream(sim, &done));
        let variant = if shared {
            "3 replicas, Redis"
        } else {
            "3 replicas, no Redis"
        };
        let mut row = Row::from_load("portal-replicas", variant, users, &result);
        let stats = sim.stats();
        row.set_upstream(
            stats.total() - total_before,
            stats.rate_limited() - limited_before,
        );
        let minutes = result.elapsed.as_secs_f64() / 60.0;
        row.extra.insert(
            "upstream_per_min".to_owned(),
            json!(row.upstream_calls as f64 / minutes.max(1e-9)),
        );
        if let Some(steady) = rate_per_min_since(&samples, secs / 2.0) {
            row.extra
                .insert("upstream_per_min_steady".to_owned(), json!(steady));
        }
        row.extra
            .insert("cards_served".to_owned(), json!(result.cards_with_data));
        row.extra
            .insert("page_views_per_s".to_owned(), json!(result.rps()));
        row.extra
            .insert("upstream_by_route".to_owned(), json!(by_route(&stats)));
        Ok(row)
    }

    /// Waits (bounded) until every replica's `/readyz` says `shared`.
    async fn wait_shared(&self, servers: &[ServerProcess]) -> Result<(), NotRun> {
        let started = Instant::now();
        for server in servers {
            loop {
                let url = format!("{}/readyz", server.base_url);
                let mode = match self.http.get(&url).send().await {
                    Ok(r) => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v["shared"]["mode"].as_str().map(str::to_owned)),
                    Err(_) => None,
                };
                if mode.as_deref() == Some("shared") {
                    break;
                }
                if started.elapsed() > Duration::from_secs(15) {
                    return Err(NotRun::Failed(format!(
                        "{url}: not shared after 15 s ({mode:?})"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

/// The simulator's calls per route (whole run, setup included), e.g.
/// `GET /incidents: 40`: where a variant's upstream calls go.
pub(crate) fn by_route(stats: &sim::SimStats) -> String {
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &stats.routes {
        *counts
            .entry(format!("{} {}", r.method, r.route))
            .or_default() += r.count;
    }
    counts
        .iter()
        .map(|(route, n)| format!("{route}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
