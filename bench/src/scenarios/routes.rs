//! `routes` (issue 18): every cached read route, warm, at concurrency 1 and
//! 64, interleaved with `/healthz` (the ceiling) on the same server, driven
//! by `wrk` (one thread, a child process: it costs far less CPU than the
//! in-process reqwest generator, which matters on a 2-core machine where
//! the generator and the server share the cores).
//!
//! Each round runs `/healthz`, then every route, then `/healthz` again, one
//! short `wrk` run each; a route's share of the ceiling is its throughput
//! over the mean of the `/healthz` runs of the same concurrency. A
//! neighbour's build slows both alike, so the ratios hold up under load
//! better than the absolute numbers. Per route and concurrency the rows
//! report the summed requests over the summed time, and the median over
//! the rounds of wrk's p50 and p99 (wrk's histograms cannot be merged
//! across runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sim::SimHandle;

use super::{Bench, NotRun};
use crate::harness::ServerProcess;
use crate::report::Row;

/// Cards in the batch route's body (a portal page).
const BATCH: usize = 20;
/// Seconds per wrk run unless `--duration-secs` says otherwise.
const DEFAULT_PHASE_SECS: f64 = 3.0;
/// Rounds per concurrency.
const ROUNDS: usize = 2;
/// Where the Backstage routes live (`backstage.prefix`'s default).
const PREFIX: &str = "/api/pagerduty";
/// The label of one card (the batch's cost is compared with it).
pub const CARD_LABEL: &str = "GET /v1/cards/{id}";
/// The label of the batch route (followed by its size).
pub const BATCH_LABEL: &str = "POST /v1/cards/batch";
/// The label of the uncompressed full listing (informational row).
pub const IDENTITY_SERVICES: &str = "GET {bs}/services (identity)";

/// One route of the scenario.
struct Route {
    /// What the rows call it.
    label: String,
    /// Path and query.
    path: String,
    /// A JSON body makes it a POST.
    body: Option<String>,
    /// The `Accept-Encoding` sent, if any.
    accept_encoding: Option<&'static str>,
}

/// What a browser (Chromium) sends: the portal's frontends run there.
const BROWSER_ENCODINGS: &str = "gzip, deflate, br, zstd";

impl Route {
    /// A GET as a browser sends it.
    fn get(label: &str, path: String) -> Self {
        Route {
            label: label.to_owned(),
            path,
            body: None,
            accept_encoding: Some(BROWSER_ENCODINGS),
        }
    }

    /// A GET without `Accept-Encoding`: the identity body, as curl or a
    /// server-side client reads it.
    fn identity(label: &str, path: String) -> Self {
        Route {
            accept_encoding: None,
            ..Route::get(label, path)
        }
    }
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    requests: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    bad: u64,
    generator_cpu_s: f64,
    server_cpu_s: f64,
}

impl Bench {
    /// See the module docs.
    pub async fn routes(&self) -> Result<Vec<Row>, NotRun> {
        if Command::new("wrk").arg("--version").output().is_err() {
            return Err(NotRun::Unavailable(
                "`wrk` is not installed (Debian: apt-get install wrk)".to_owned(),
            ));
        }
        let setup = self.sim_setup(self.opts.services.min(50), None);
        let (sim, server) = self.start(&setup, &self.server_options()).await?;
        let result = self.routes_on(&sim, &server).await;
        server.stop();
        sim.shutdown().await;
        result
    }

    async fn routes_on(&self, sim: &SimHandle, server: &ServerProcess) -> Result<Vec<Row>, NotRun> {
        let routes = routes_of(sim)?;
        // Warm every route (its sections and lists) before measuring.
        for route in &routes {
            self.warm(&server.base_url, route).await?;
        }
        let dir =
            std::env::temp_dir().join(format!("dutycard-bench-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let phase = self
            .opts
            .routes_phase_secs
            .unwrap_or(DEFAULT_PHASE_SECS)
            .max(1.0);
        let ceiling = Route::identity("ceiling /healthz", "/healthz".to_owned());
        let mut rows = Vec::new();
        for &c in &self.opts.warm_concurrency {
            let mut ceiling_runs = Vec::new();
            let mut runs: Vec<Vec<Run>> = vec![Vec::new(); routes.len()];
            for _ in 0..ROUNDS {
                ceiling_runs.push(wrk(&dir, server, &ceiling, c, phase)?);
                for (i, route) in routes.iter().enumerate() {
                    runs[i].push(wrk(&dir, server, route, c, phase)?);
                }
                ceiling_runs.push(wrk(&dir, server, &ceiling, c, phase)?);
            }
            let rss = server.peak_rss_mib();
            let ceiling_row = row(&ceiling, c, &ceiling_runs, rss);
            let ceiling_rps = ceiling_row.rps;
            rows.push(ceiling_row);
            for (route, runs) in routes.iter().zip(&runs) {
                let mut r = row(route, c, runs, rss);
                let share = if ceiling_rps > 0.0 {
                    r.rps / ceiling_rps
                } else {
                    0.0
                };
                r.extra.insert("share_of_ceiling".to_owned(), json!(share));
                rows.push(r);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(rows)
    }

    /// Reads `route` until it answers 2xx (≤ 20 s): its sections loaded.
    async fn warm(&self, base: &str, route: &Route) -> Result<(), NotRun> {
        let url = format!("{base}{}", route.path);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let request = match &route.body {
                Some(body) => self
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone()),
                None => self.http.get(&url),
            };
            let (status, text) = match request.send().await {
                Ok(r) => (Some(r.status()), r.text().await.unwrap_or_default()),
                Err(e) => (None, e.to_string()),
            };
            // A card whose sections are all loaded (a cold section would
            // be a `timeout` error inside it until its load ends).
            let complete = !text.contains("\"timeout\"");
            if status.is_some_and(|s| s.is_success()) && complete {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(NotRun::Failed(format!(
                    "{} did not answer 2xx within 20 s (last: {status:?} {text:.300})",
                    route.label
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The routes, on the simulator's first service (and the first 20 for the batch).
fn routes_of(sim: &SimHandle) -> Result<Vec<Route>, NotRun> {
    let account = sim.account();
    let first = account
        .services
        .first()
        .ok_or_else(|| "the simulator generated no services".to_owned())?;
    let id = first.id.clone();
    let key = account
        .services
        .iter()
        .flat_map(|s| &s.integrations)
        .find_map(|i| i.integration_key.clone())
        .ok_or_else(|| "no simulated service has an integration key".to_owned())?;
    let policy = first.escalation_policy_id.clone();
    let batch: Vec<&str> = account
        .services
        .iter()
        .take(BATCH)
        .map(|s| s.id.as_str())
        .collect();
    let batch_body = json!({ "service_ids": batch }).to_string();
    Ok(vec![
        Route::get(CARD_LABEL, format!("/v1/cards/{id}")),
        Route::get(
            "GET /v1/cards?integration_key=",
            format!("/v1/cards?integration_key={key}"),
        ),
        Route {
            label: format!("{BATCH_LABEL} ({BATCH})"),
            path: "/v1/cards/batch".to_owned(),
            body: Some(batch_body),
            accept_encoding: Some(BROWSER_ENCODINGS),
        },
        Route::get("GET {bs}/services/{id}", format!("{PREFIX}/services/{id}")),
        Route::get(
            "GET {bs}/services?integration_key=",
            format!("{PREFIX}/services?integration_key={key}"),
        ),
        Route::get("GET {bs}/services", format!("{PREFIX}/services")),
        // The same 170 kB listing uncompressed: bound by its bytes, so
        // reported without a budget (see report::routes_budgets).
        Route::identity(IDENTITY_SERVICES, format!("{PREFIX}/services")),
        Route::get(
            "GET {bs}/services?limit=10",
            format!("{PREFIX}/services?limit=10"),
        ),
        Route::get(
            "GET {bs}/services/{id}/incidents",
            format!("{PREFIX}/services/{id}/incidents"),
        ),
        Route::get(
            "GET {bs}/services/{id}/change-events",
            format!("{PREFIX}/services/{id}/change-events"),
        ),
        Route::get(
            "GET {bs}/services/{id}/standards",
            format!("{PREFIX}/services/{id}/standards"),
        ),
        Route::get(
            "GET {bs}/services/{id}/metrics",
            format!("{PREFIX}/services/{id}/metrics"),
        ),
        Route::get(
            "GET {bs}/oncall-users",
            format!("{PREFIX}/oncall-users?escalation_policy_ids[]={policy}"),
        ),
        Route::get(
            "GET {bs}/oncalls",
            format!("{PREFIX}/oncalls?escalation_policy_ids[]={policy}"),
        ),
        Route::get(
            "GET {bs}/escalation_policies",
            format!("{PREFIX}/escalation_policies"),
        ),
        Route::get("GET {bs}/teams", format!("{PREFIX}/teams")),
    ])
}

/// The wrk script: the request, and a `done` that prints exact numbers as
/// one JSON line (wrk's own summary rounds them).
fn script(route: &Route) -> String {
    let mut s = String::new();
    if let Some(body) = &route.body {
        s.push_str("wrk.method = \"POST\"\n");
        s.push_str(&format!("wrk.body = {}\n", lua_string(body)));
        s.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    if let Some(accept) = route.accept_encoding {
        s.push_str(&format!(
            "wrk.headers[\"Accept-Encoding\"] = {}\n",
            lua_string(accept)
        ));
    }
    s.push_str(
        r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("DUTYCARD-WRK {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d,\"bad\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"#,
    );
    s
}

fn lua_string(text: &str) -> String {
    // A long bracket string: no escapes needed for JSON.
    format!("[==[{text}]==]")
}

/// One wrk run of `route` at concurrency `c` for `secs`, with the CPU the
/// generator (a waited child: this process's `cutime + cstime`) and the
/// server used meanwhile.
fn wrk(
    dir: &Path,
    server: &ServerProcess,
    route: &Route,
    c: usize,
    secs: f64,
) -> Result<Run, NotRun> {
    let script_path: PathBuf = dir.join("route.lua");
    std::fs::write(&script_path, script(route))
        .map_err(|e| format!("writing the wrk script: {e}"))?;
    let url = format!("{}{}", server.base_url, route.path);
    let generator_before = children_cpu_secs();
    let server_before = server.cpu_secs();
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{c}"),
            &format!("-d{}s", secs.round() as u64),
        ])
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&script_path)
        .arg(&url)
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DUTYCARD-WRK "))
        .ok_or_else(|| {
            format!(
                "wrk printed no result for {} ({}): {stdout} {}",
                route.label,
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("wrk's result {line}: {e}"))?;
    let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
    Ok(Run {
        requests: n("requests") as u64,
        secs: n("duration_us") / 1e6,
        p50_ms: n("p50_us") / 1000.0,
        p99_ms: n("p99_us") / 1000.0,
        bad: n("bad") as u64,
        generator_cpu_s: delta(children_cpu_secs(), generator_before),
        server_cpu_s: delta(server.cpu_secs(), server_before),
    })
}

fn delta(now: Option<f64>, then: Option<f64>) -> f64 {
    match (now, then) {
        (Some(a), Some(b)) => a - b,
        _ => 0.0,
    }
}

/// CPU seconds of this process's waited-for children (`cutime + cstime`).
fn children_cpu_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) / 100.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The row of one route at one concurrency, from its runs.
fn row(route: &Route, c: usize, runs: &[Run], rss: Option<f64>) -> Row {
    let requests: u64 = runs.iter().map(|r| r.requests).sum();
    let secs: f64 = runs.iter().map(|r| r.secs).sum();
    let generator: f64 = runs.iter().map(|r| r.generator_cpu_s).sum();
    let server_cpu: f64 = runs.iter().map(|r| r.server_cpu_s).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut extra = std::collections::BTreeMap::new();
    if secs > 0.0 {
        extra.insert(
            "generator_cpu_share".to_owned(),
            json!(generator / (secs * cores)),
        );
    }
    if requests > 0 {
        extra.insert(
            "server_cpu_us_per_request".to_owned(),
            json!(server_cpu * 1e6 / requests as f64),
        );
    }
    let p50 = median(runs.iter().map(|r| r.p50_ms).collect());
    let p99 = median(runs.iter().map(|r| r.p99_ms).collect());
    Row {
        scenario: "routes".to_owned(),
        variant: format!("{} c={c}", route.label),
        concurrency: c,
        duration_s: secs,
        requests,
        errors: runs.iter().map(|r| r.bad).sum(),
        rps: if secs > 0.0 {
            requests as f64 / secs
        } else {
            0.0
        },
        p50_ms: p50,
        p90_ms: f64::NAN,
        p99_ms: p99,
        p999_ms: f64::NAN,
        max_ms: f64::NAN,
        upstream_calls: 0,
        upstream_429: 0,
        card_views: 0,
        upstream_per_1000_views: None,
        server_peak_rss_mib: rss,
        server_cpu_s: Some(server_cpu),
        bench_cpu_s: Some(generator),
        extra,
        first_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_scripts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let post = script(&Route {
            label: "batch".into(),
            path: "/v1/cards/batch".into(),
            body: Some(r#"{"service_ids":["PA"]}"#.into()),
            accept_encoding: None,
        });
        assert!(post.contains(r#"wrk.body = [==[{"service_ids":["PA"]}]==]"#));
        assert!(post.contains("DUTYCARD-WRK"));
        let get = script(&Route::get("x", "/x".into()));
        assert!(!get.contains("POST"));
        assert!(
            get.contains(r#"wrk.headers["Accept-Encoding"] = [==[gzip, deflate, br, zstd]==]"#)
        );
        assert!(!script(&Route::identity("x", "/x".into())).contains("Accept-Encoding"));
    }
}
