//! The shared state and the one handler every request goes through:
//! admin routes, route matching, faults, auth, rate limit, scopes, counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::account::AccountView;
use crate::config::{SimOAuthClient, SimToken};
use crate::faults::{self, FaultAction, Faults};
use crate::http::{Query, Reply, missing_scope, rate_limited, status_error, unauthorized};
use crate::rest::{self, Route};
use crate::stats::{STATUS_NO_ANSWER, StatsRecorder};
use crate::{events, oauth, webhooks};

/// The characters of PagerDuty's ids.
pub(crate) const ID_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Longest time a `timeout_next` request is held.
pub(crate) const HOLD: Duration = Duration::from_secs(60);

pub(crate) struct IssuedToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Instant,
}

struct Window {
    start: Instant,
    count: u32,
}

pub(crate) struct State {
    pub account: RwLock<AccountView>,
    pub stats: StatsRecorder,
    pub faults: Mutex<Faults>,
    pub fault_rng: Mutex<ChaCha8Rng>,
    pub runtime_rng: Mutex<ChaCha8Rng>,
    pub api_tokens: Vec<SimToken>,
    pub oauth_clients: Vec<SimOAuthClient>,
    pub oauth_ttl_secs: u64,
    pub issued: Mutex<HashMap<String, IssuedToken>>,
    windows: Mutex<HashMap<String, Window>>,
    pub base_url: String,
    clock_base: DateTime<Utc>,
    started: Instant,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub webhooks: Arc<webhooks::Hub>,
}

impl State {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        account: AccountView,
        faults: Faults,
        seed: u64,
        api_tokens: Vec<SimToken>,
        oauth_clients: Vec<SimOAuthClient>,
        oauth_ttl_secs: u64,
        base_url: String,
        clock_base: DateTime<Utc>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        webhooks: Arc<webhooks::Hub>,
    ) -> Self {
        use rand::SeedableRng;
        Self {
            account: RwLock::new(account),
            stats: StatsRecorder::default(),
            faults: Mutex::new(faults),
            fault_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17)),
            runtime_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x0A17_E5E1)),
            api_tokens,
            oauth_clients,
            oauth_ttl_secs,
            issued: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
            base_url,
            clock_base,
            started: Instant::now(),
            shutdown,
            webhooks,
        }
    }

    /// A `P` + 6 id (like PagerDuty's) that `taken` says is free.
    pub fn fresh_id(&self, taken: impl Fn(&str) -> bool) -> String {
        loop {
            let id = format!("P{}", self.random_chars(ID_CHARS, 6));
            if !taken(&id) {
                return id;
            }
        }
    }

    /// `len` characters drawn from `alphabet` (ids and keys made at run time).
    pub fn random_chars(&self, alphabet: &[u8], len: usize) -> String {
        use rand::Rng;
        let mut rng = self.runtime_rng.lock().unwrap_or_else(|e| e.into_inner());
        (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    /// The simulator's clock: the configured base advancing in real time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock_base + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }

    pub fn read_account(&self) -> std::sync::RwLockReadGuard<'_, AccountView> {
        self.account.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write_account(&self) -> std::sync::RwLockWriteGuard<'_, AccountView> {
        self.account.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the faults; a changed rate limit starts every window over.
    pub fn set_faults(&self, faults: Faults) {
        let mut current = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let limit_changed = current.rate_limit_per_minute != faults.rate_limit_per_minute;
        *current = faults;
        if limit_changed {
            self.windows
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    /// The rate limit in force (`None` = off).
    fn rate_limit(&self) -> Option<u32> {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rate_limit_per_minute
    }

    pub fn get_faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Who is calling: the rate-limit key and the granted scopes (`None` = all).
struct Principal {
    limit_key: String,
    scopes: Option<Vec<String>>,
}

fn authenticate(state: &State, header: Option<&str>) -> Option<Principal> {
    let header = header?.trim();
    if let Some(rest) = header.strip_prefix("Token ") {
        let token = rest.trim().strip_prefix("token=")?.trim().trim_matches('"');
        if token.is_empty() {
            return None;
        }
        if state.api_tokens.is_empty() {
            return Some(Principal {
                limit_key: format!("token:{token}"),
                scopes: None,
            });
        }
        let t = state.api_tokens.iter().find(|t| t.token == token)?;
        return Some(Principal {
            limit_key: format!("token:{token}"),
            scopes: t.scopes.clone(),
        });
    }
    if let Some(token) = header.strip_prefix("Bearer ") {
        let issued = state.issued.lock().unwrap_or_else(|e| e.into_inner());
        let t = issued.get(token.trim())?;
        if Instant::now() >= t.expires_at {
            return None;
        }
        // PagerDuty limits app tokens per app per account.
        return Some(Principal {
            limit_key: format!("app:{}", t.client_id),
            scopes: Some(t.scopes.clone()),
        });
    }
    None
}

/// `(limit, remaining, reset_secs)` after counting one request.
type RateOk = (u32, u32, u64);
/// `(limit, reset_secs)` when over the limit.
type RateExceeded = (u32, u64);

/// Counts one request against the key's window; `None` when no limit is set.
fn rate_check(state: &State, key: &str) -> Option<Result<RateOk, RateExceeded>> {
    let limit = state.rate_limit()?;
    let mut windows = state.windows.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let w = windows.entry(key.to_owned()).or_insert(Window {
        start: now,
        count: 0,
    });
    if now.duration_since(w.start) >= Duration::from_secs(60) {
        w.start = now;
        w.count = 0;
    }
    let elapsed = now.duration_since(w.start).as_secs();
    let reset = 60u64.saturating_sub(elapsed).max(1);
    if w.count >= limit {
        return Some(Err((limit, reset)));
    }
    w.count += 1;
    Some(Ok((limit, limit - w.count, reset)))
}

fn to_response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("content-type", reply.content_type));
    for (name, value) in reply.headers {
        builder.insert_header((name, value));
    }
    builder.body(reply.body)
}

async fn hold(state: &State) {
    let mut rx = state.shutdown.clone();
    let wait = async {
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                // Sender dropped: the simulator is gone.
                return;
            }
        }
    };
    let _ = tokio::time::timeout(HOLD, wait).await;
}

/// Every request lands here.
pub(crate) async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let method = req.method().as_str().to_owned();
    let path = req.path().to_owned();
    if path == "/__sim" || path.starts_with("/__sim/") {
        return to_response(admin(&method, &path, &body, &state));
    }
    let Some((route, template)) = Route::matches(&method, &path) else {
        state.stats.record(&method, "<unmatched>", 404);
        return to_response(crate::http::not_found());
    };
    let (decision, rate_limit) = {
        let mut faults = state.faults.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = state.fault_rng.lock().unwrap_or_else(|e| e.into_inner());
        let decision = faults::decide(&mut faults, template, &mut rng);
        (decision, faults.rate_limit_per_minute)
    };
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let is_events = matches!(route, Route::Enqueue | Route::ChangeEnqueue);
    let reply = match decision.action {
        FaultAction::Hold => {
            state.stats.record(&method, template, STATUS_NO_ANSWER);
            hold(&state).await;
            return to_response(Reply::empty(504));
        }
        FaultAction::Fail { status, reset_secs } => {
            if is_events {
                events::fault_reply(status, rate_limit.unwrap_or(960), reset_secs)
            } else if status == 429 {
                rate_limited(rate_limit.unwrap_or(960), reset_secs)
            } else {
                status_error(status)
            }
        }
        FaultAction::Malformed => Reply {
            status: 200,
            body: "{\"services\": [{\"id\": \"PABC123\", \"name\": ".to_owned(),
            content_type: "application/json; charset=utf-8",
            headers: Vec::new(),
        },
        FaultAction::Pass => serve(&route, &req, &body, &state),
    };
    state.stats.record(&method, template, reply.status);
    // Only the template: paths and queries may carry integration keys.
    tracing::debug!(%method, route = template, status = reply.status, "sim request");
    to_response(reply)
}

fn serve(route: &Route, req: &HttpRequest, body: &[u8], state: &State) -> Reply {
    match route {
        Route::OAuthToken => return oauth::token(state, body),
        Route::Enqueue => return events::enqueue(state, body),
        Route::ChangeEnqueue => return events::change_enqueue(state, body),
        _ => {}
    }
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let Some(principal) = authenticate(state, header) else {
        return unauthorized();
    };
    let mut rate_headers = None;
    match rate_check(state, &principal.limit_key) {
        None => {}
        Some(Err((limit, reset))) => return rate_limited(limit, reset),
        Some(Ok(h)) => rate_headers = Some(h),
    }
    let mut reply = if let (Some(needed), Some(granted)) = (route.scopes(), &principal.scopes) {
        if needed.iter().any(|n| granted.iter().any(|g| g == n)) {
            None
        } else {
            Some(missing_scope(needed[0]))
        }
    } else {
        None
    }
    .unwrap_or_else(|| {
        let q = Query::parse(req.query_string());
        let from = req.headers().get("from").and_then(|v| v.to_str().ok());
        rest::handle(route, &q, body, from, state)
    });
    if let Some((limit, remaining, reset)) = rate_headers {
        reply = reply
            .header("ratelimit-limit", limit)
            .header("ratelimit-remaining", remaining)
            .header("ratelimit-reset", reset);
    }
    reply
}

fn admin(method: &str, path: &str, body: &[u8], state: &State) -> Reply {
    match (method, path) {
        ("GET", "/__sim/stats") => Reply::json(
            200,
            &serde_json::to_value(state.stats.snapshot()).unwrap_or_default(),
        ),
        ("POST", "/__sim/reset") => {
            state.stats.reset();
            Reply::empty(204)
        }
        ("GET", "/__sim/faults") => Reply::json(
            200,
            &serde_json::to_value(state.get_faults()).unwrap_or_default(),
        ),
        ("POST", "/__sim/faults") => {
            let parsed: Result<Faults, String> = if body.is_empty() {
                Ok(Faults::default())
            } else {
                serde_json::from_slice(body).map_err(|e| e.to_string())
            };
            match parsed.and_then(|f| f.validate().map(|()| f)) {
                Ok(f) => {
                    state.set_faults(f.clone());
                    Reply::json(200, &serde_json::to_value(f).unwrap_or_default())
                }
                Err(e) => Reply::json(
                    400,
                    &json!({"error": {"message": format!("invalid faults: {e}")}}),
                ),
            }
        }
        ("GET", "/__sim/webhooks") => Reply::json(
            200,
            &serde_json::to_value(state.webhooks.stats()).unwrap_or_default(),
        ),
        ("GET", "/__sim/account") => {
            let account = state.read_account();
            Reply::json(200, &account_summary(&account))
        }
        _ => Reply::json(404, &json!({"error": {"message": "unknown admin route"}})),
    }
}

fn account_summary(a: &AccountView) -> serde_json::Value {
    json!({
        "generated_at": crate::render::ts(a.generated_at),
        "counts": {
            "services": a.services.len(), "teams": a.teams.len(), "users": a.users.len(),
            "schedules": a.schedules.len(), "escalation_policies": a.escalation_policies.len(),
            "incidents": a.incidents.len(),
            "open_incidents": a.incidents.iter().filter(|i| i.is_open()).count(),
            "change_events": a.change_events.len(),
        },
        // Fake, generated keys: handy for the demo's trigger form.
        "services": a.services.iter().map(|s| json!({
            "id": s.id, "name": s.name,
            "escalation_policy_id": s.escalation_policy_id,
            "integration_keys": s.integrations.iter()
                .filter_map(|i| i.integration_key.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
