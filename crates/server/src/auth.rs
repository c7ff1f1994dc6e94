//! Caller authentication for the `/v1` API.
//!
//! Modes (`server.auth.mode`): `none` lets everyone in as `anonymous`;
//! `static` requires `Authorization: Bearer <token>` matching one of the
//! configured named tokens. The matched token's *name* identifies the caller
//! (logs, attribution); the token itself is never logged.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::config::{AuthMode, AuthSettings};
use crate::error::ApiError;

/// Who is calling, once authenticated. Handlers can extract it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's configured name, or `anonymous` when auth is off.
    pub name: String,
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| ApiError::Unauthorized.into()),
        )
    }
}

/// Checks credentials according to the configured mode.
pub struct Authenticator {
    mode: AuthMode,
    tokens: Vec<(String, SecretString)>,
    /// `mode = "jwt"`: the JWKS-backed verifier (see [`Authenticator::with_jwt`]).
    jwt: Option<std::sync::Arc<crate::jwt::JwtVerifier>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field(
                "token_names",
                &self.tokens.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Authenticator {
    /// From validated settings (a missing mode is treated as `static`: deny).
    pub fn from_settings(settings: &AuthSettings) -> Self {
        Self {
            mode: settings.mode.unwrap_or(AuthMode::Static),
            tokens: settings
                .tokens
                .iter()
                .map(|t| (t.name.clone(), t.token.clone()))
                .collect(),
            jwt: None,
        }
    }

    /// Use `verifier` for `mode = "jwt"`.
    pub fn with_jwt(mut self, verifier: std::sync::Arc<crate::jwt::JwtVerifier>) -> Self {
        self.jwt = Some(verifier);
        self
    }

    /// Identify the caller in any mode (JWT verification may fetch keys).
    pub async fn identify(&self, header: Option<&HeaderValue>) -> Result<Caller, ApiError> {
        if self.mode != AuthMode::Jwt {
            return self.authenticate(header);
        }
        let token = bearer(header).ok_or(ApiError::Unauthorized)?;
        let verifier = self.jwt.as_ref().ok_or(ApiError::Unauthorized)?;
        verifier.verify(token).await.map_err(|e| match e {
            // Our problem, not the caller's: no keys to check against.
            crate::jwt::JwtError::Jwks(why) => {
                tracing::warn!(reason = %why, "JWKS unavailable; cannot verify JWTs");
                ApiError::IdentityProviderUnavailable(why)
            }
            e => {
                tracing::info!(reason = %e, "JWT refused");
                ApiError::Unauthorized
            }
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Identify the caller from an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&HeaderValue>) -> Result<Caller, ApiError> {
        if self.mode == AuthMode::None {
            return Ok(Caller {
                name: "anonymous".into(),
            });
        }
        if self.mode == AuthMode::Jwt {
            // JWTs are checked by the async `identify`.
            return Err(ApiError::Unauthorized);
        }
        let presented = bearer(header).ok_or(ApiError::Unauthorized)?;
        // Compare against every token without stopping at the first match, so
        // timing reveals neither which token matched nor how much of it.
        let mut matched = None;
        for (name, token) in &self.tokens {
            let equal = ct_eq(presented.as_bytes(), token.expose_secret().as_bytes());
            if equal && matched.is_none() {
                matched = Some(name);
            }
        }
        matched
            .map(|name| Caller { name: name.clone() })
            .ok_or(ApiError::Unauthorized)
    }
}

/// Constant-time equality whose running time depends only on the length of
/// `presented` (the caller's input), never on the secret's length or
/// content: every presented byte is compared with the secret's byte at the
/// same position (cycling through the secret), and a length mismatch is a
/// flag folded in at the end, not an early return. (`subtle`'s slice `ct_eq`
/// returns early when the lengths differ, which times the token's length.)
fn ct_eq(presented: &[u8], secret: &[u8]) -> bool {
    if secret.is_empty() {
        return false;
    }
    let mut diff = 0u8;
    for (i, byte) in presented.iter().enumerate() {
        diff |= byte ^ secret[i % secret.len()];
    }
    let same_length = (presented.len() as u64).ct_eq(&(secret.len() as u64));
    (diff.ct_eq(&0) & same_length).into()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(header: Option<&HeaderValue>) -> Option<&str> {
    header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
}

/// Middleware: reject unauthenticated requests with a JSON 401, else put the
/// [`Caller`] in the request extensions.
pub async fn require_caller(
    auth: web::Data<Authenticator>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    match auth.identify(req.headers().get(AUTHORIZATION)).await {
        Ok(caller) => {
            // The request span (telemetry::RequestSpan) has a `caller` field.
            tracing::Span::current().record("caller", caller.name.as_str());
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticToken;

    fn authenticator(mode: AuthMode) -> Authenticator {
        Authenticator::from_settings(&AuthSettings {
            mode: Some(mode),
            tokens: vec![
                StaticToken {
                    name: "backstage".into(),
                    token: SecretString::from("0123456789abcdef-backstage"),
                },
                StaticToken {
                    name: "cli".into(),
                    token: SecretString::from("0123456789abcdef-cli"),
                },
            ],
            tokens_file: None,
            metrics_require_auth: false,
            jwt: None,
        })
    }

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn static_mode_names_the_matching_token() {
        let auth = authenticator(AuthMode::Static);
        let caller = auth
            .authenticate(Some(&header("Bearer 0123456789abcdef-cli")))
            .unwrap();
        assert_eq!(caller.name, "cli");
        let caller = auth
            .authenticate(Some(&header("bearer 0123456789abcdef-backstage")))
            .unwrap();
        assert_eq!(caller.name, "backstage");
    }

    #[test]
    fn static_mode_rejects_missing_wrong_and_non_bearer_credentials() {
        let auth = authenticator(AuthMode::Static);
        for value in [
            None,
            Some(header("Bearer nope")),
            Some(header("Bearer ")),
            Some(header("Basic 0123456789abcdef-cli")),
            Some(header("0123456789abcdef-cli")),
        ] {
            assert!(
                matches!(
                    auth.authenticate(value.as_ref()),
                    Err(ApiError::Unauthorized)
                ),
                "{value:?}"
            );
        }
    }

    #[test]
    fn none_mode_lets_anyone_in_as_anonymous() {
        let auth = authenticator(AuthMode::None);
        assert_eq!(auth.authenticate(None).unwrap().name, "anonymous");
    }

    #[test]
    fn ct_eq_needs_same_length_and_bytes() {
        assert!(ct_eq(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!ct_eq(b"0123456789abcdeF", b"0123456789abcdef"));
        // A prefix, a repetition (the loop cycles through the secret) and an
        // extension all differ.
        assert!(!ct_eq(b"0123456789", b"0123456789abcdef"));
        assert!(!ct_eq(b"01230123", b"0123"));
        assert!(!ct_eq(b"0123456789abcdef!", b"0123456789abcdef"));
        assert!(!ct_eq(b"", b"0123"));
        assert!(!ct_eq(b"", b""));
    }

    #[test]
    fn debug_never_prints_tokens() {
        let text = format!("{:?}", authenticator(AuthMode::Static));
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("backstage"));
    }
}
