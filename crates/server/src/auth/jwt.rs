//! `server.auth.mode = "jwt"`: callers present a JWT signed by an identity
//! provider (e.g. Backstage's user or service tokens), verified against the
//! provider's JSON Web Key Set.
//!
//! Checks: the signature with the JWKS key named by the token's `kid` (only
//! asymmetric algorithms; `none` and HMAC are refused, so a public JWKS can
//! never be used as an HMAC secret), `iss`, `aud` and `exp` (all required),
//! `nbf` when present, with `leeway_secs` of clock skew. The `sub` claim is
//! the caller's identity.
//!
//! Keys are cached for `jwks_cache_secs`. A token whose `kid` is unknown
//! triggers one refetch (key rotation), at most once per
//! `jwks_min_refresh_secs`, and concurrent refetches coalesce into one
//! request. The token is never logged; errors name the reason only.
//!
//! Built on `jsonwebtoken` (the maintained JOSE crate: JWK parsing, claim
//! validation, ES/RS/PS/EdDSA verification through aws-lc-rs, which the
//! workspace already links for rustls).

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::Caller;
use crate::config::JwtSettings;

/// Why a token was refused. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a JWT, or a header we cannot use.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is `none`, HMAC or otherwise not accepted.
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    /// No JWKS key has the token's `kid`.
    #[error("no signing key with kid `{0}`")]
    UnknownKey(String),
    /// The JWKS could not be fetched or read.
    #[error("cannot fetch the JWKS: {0}")]
    Jwks(String),
    /// Signature, issuer, audience, expiry... (jsonwebtoken's reason).
    #[error("token refused: {0}")]
    Invalid(String),
    /// The token has no (or an empty) `sub`.
    #[error("token has no `sub` claim")]
    NoSubject,
}

struct CachedKey {
    key: DecodingKey,
    /// The JWK's `alg`, when it names one: the token must use it.
    alg: Option<Algorithm>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, std::sync::Arc<CachedKey>>,
    fetched_at: Option<Instant>,
}

/// Verifies bearer JWTs against a JWKS. Share it (`Arc`) between workers.
pub struct JwtVerifier {
    jwks_url: String,
    issuer: String,
    audience: Vec<String>,
    leeway_secs: u64,
    cache_for: Duration,
    min_refresh: Duration,
    http: reqwest::Client,
    /// Longest a verification may take (the request deadline).
    budget: Duration,
    cache: RwLock<KeyCache>,
    /// Serialises fetches so concurrent misses cause one request.
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

impl JwtVerifier {
    /// From validated settings. `budget` (the server's request deadline)
    /// caps a JWKS fetch, so a slow identity provider cannot hold a request
    /// past it (authentication runs before the handler's own deadline).
    pub fn new(settings: &JwtSettings, budget: Duration) -> Result<Self, JwtError> {
        let budget = budget.max(Duration::from_millis(1));
        let http = reqwest::Client::builder()
            .connect_timeout(budget.min(Duration::from_secs(2)))
            .timeout(budget.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| JwtError::Jwks(format!("cannot build the HTTP client: {e}")))?;
        Ok(JwtVerifier {
            jwks_url: settings.jwks_url.clone(),
            issuer: settings.issuer.clone(),
            audience: settings
                .audience
                .iter()
                .filter(|a| !a.trim().is_empty())
                .cloned()
                .collect(),
            leeway_secs: settings.leeway_secs,
            cache_for: Duration::from_secs(settings.jwks_cache_secs),
            min_refresh: Duration::from_secs(settings.jwks_min_refresh_secs),
            http,
            budget,
            cache: RwLock::new(KeyCache::default()),
            fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// Verify `token` within the budget; the caller is its `sub`. Running
    /// out of time (waiting for a fetch) is a [`JwtError::Jwks`].
    pub async fn verify(&self, token: &str) -> Result<Caller, JwtError> {
        match tokio::time::timeout(self.budget, self.verify_now(token)).await {
            Ok(result) => result,
            Err(_) => Err(JwtError::Jwks(format!(
                "no answer within {} ms",
                self.budget.as_millis()
            ))),
        }
    }

    async fn verify_now(&self, token: &str) -> Result<Caller, JwtError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.clone().unwrap_or_default();
        let key = self.key(&kid).await?;
        if let Some(alg) = key.alg
            && alg != header.alg
        {
            return Err(JwtError::Algorithm(format!(
                "{:?} (the key is for {alg:?})",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| JwtError::Invalid(format!("{:?}", e.kind())))?;
        match data.claims.sub {
            Some(sub) if !sub.trim().is_empty() => Ok(Caller { name: sub }),
            _ => Err(JwtError::NoSubject),
        }
    }

    fn cached(&self, kid: &str) -> (Option<std::sync::Arc<CachedKey>>, bool) {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.cache_for);
        (cache.keys.get(kid).cloned(), fresh)
    }

    async fn key(&self, kid: &str) -> Result<std::sync::Arc<CachedKey>, JwtError> {
        let (key, fresh) = self.cached(kid);
        if let Some(key) = &key
            && fresh
        {
            return Ok(key.clone());
        }
        let mut last_fetch = self.fetch.lock().await;
        // Another request may have fetched while we waited.
        let (again, fresh_now) = self.cached(kid);
        if let Some(key) = &again
            && fresh_now
        {
            return Ok(key.clone());
        }
        // Expired keys and unknown kids both refetch, but never more often
        // than `min_refresh`: in between, known (even expired) keys serve.
        let may_fetch = last_fetch.is_none_or(|at| at.elapsed() >= self.min_refresh);
        if may_fetch {
            *last_fetch = Some(Instant::now());
            match self.fetch_jwks().await {
                Ok(keys) => {
                    let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                }
                // Keep serving known keys while the JWKS endpoint is down.
                Err(e) if again.is_some() => {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the cached keys");
                }
                Err(e) => return Err(e),
            }
        }
        self.cached(kid)
            .0
            .ok_or_else(|| JwtError::UnknownKey(kid.to_owned()))
    }

    async fn fetch_jwks(&self) -> Result<HashMap<String, std::sync::Arc<CachedKey>>, JwtError> {
        let response = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .map_err(|e| JwtError::Jwks(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(JwtError::Jwks(format!("HTTP {}", response.status())));
        }
        let set: JwkSet = response
            .json()
            .await
            .map_err(|e| JwtError::Jwks(format!("not a JWK set: {}", e.without_url())))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            let alg = jwk.common.key_algorithm.and_then(|a| key_algorithm(a).ok());
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, std::sync::Arc::new(CachedKey { key, alg }));
                }
                Err(e) => tracing::warn!(kid = %kid, error = %e, "skipping an unusable JWK"),
            }
        }
        tracing::info!(keys = keys.len(), "JWKS fetched");
        Ok(keys)
    }
}

fn key_algorithm(a: KeyAlgorithm) -> Result<Algorithm, ()> {
    Ok(match a {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return Err(()),
    })
}
