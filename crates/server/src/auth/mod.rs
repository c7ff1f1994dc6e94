//! Who is calling: caller authentication, independent of HTTP (the
//! middleware in [`crate::middleware::auth`] hands it the `Authorization`
//! header and answers its errors in each surface's shape).
//!
//! Modes (`server.auth.mode`): `none` lets everyone in as `anonymous`;
//! `static` requires `Authorization: Bearer <token>` matching one of the
//! configured named tokens; `jwt` verifies a JWT against a JWKS ([`jwt`]).
//! The matched token's *name* (or the JWT's `sub`) identifies the caller
//! (logs, attribution); the token itself is never logged.

pub mod jwt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::config::{AuthMode, AuthSettings};

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's configured name, or `anonymous` when auth is off.
    pub name: String,
}

/// Why a caller was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials we do not accept (401).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// `mode = "jwt"`: the identity provider's signing keys (JWKS) could not
    /// be fetched in time, so no token can be checked. Our problem, not the
    /// caller's (503).
    #[error("cannot verify the token: the identity provider is unavailable ({0})")]
    IdentityProviderUnavailable(String),
}

/// Checks credentials according to the configured mode.
pub struct Authenticator {
    mode: AuthMode,
    tokens: Vec<(String, SecretString)>,
    /// `mode = "jwt"`: the JWKS-backed verifier (see [`Authenticator::with_jwt`]).
    jwt: Option<std::sync::Arc<jwt::JwtVerifier>>,
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
                .all_tokens()
                .map(|t| (t.name.clone(), t.token.clone()))
                .collect(),
            jwt: None,
        }
    }

    /// Use `verifier` for `mode = "jwt"`.
    pub fn with_jwt(mut self, verifier: std::sync::Arc<jwt::JwtVerifier>) -> Self {
        self.jwt = Some(verifier);
        self
    }

    /// Identify the caller in any mode from the `Authorization` header's
    /// value (JWT verification may fetch keys).
    pub async fn identify(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        if self.mode != AuthMode::Jwt {
            return self.authenticate(header);
        }
        let token = bearer(header).ok_or(AuthError::Unauthorized)?;
        let verifier = self.jwt.as_ref().ok_or(AuthError::Unauthorized)?;
        verifier.verify(token).await.map_err(|e| match e {
            // Our problem, not the caller's: no keys to check against.
            jwt::JwtError::Jwks(why) => {
                tracing::warn!(reason = %why, "JWKS unavailable; cannot verify JWTs");
                AuthError::IdentityProviderUnavailable(why)
            }
            e => {
                tracing::info!(reason = %e, "JWT refused");
                AuthError::Unauthorized
            }
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Identify the caller from an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        if self.mode == AuthMode::None {
            return Ok(Caller {
                name: "anonymous".into(),
            });
        }
        if self.mode == AuthMode::Jwt {
            // JWTs are checked by the async `identify`.
            return Err(AuthError::Unauthorized);
        }
        let presented = bearer(header).ok_or(AuthError::Unauthorized)?;
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
            .ok_or(AuthError::Unauthorized)
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
fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
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
            file_tokens: Vec::new(),
        })
    }

    #[test]
    fn static_mode_names_the_matching_token() {
        let auth = authenticator(AuthMode::Static);
        let caller = auth
            .authenticate(Some("Bearer 0123456789abcdef-cli"))
            .unwrap();
        assert_eq!(caller.name, "cli");
        let caller = auth
            .authenticate(Some("bearer 0123456789abcdef-backstage"))
            .unwrap();
        assert_eq!(caller.name, "backstage");
    }

    #[test]
    fn static_mode_rejects_missing_wrong_and_non_bearer_credentials() {
        let auth = authenticator(AuthMode::Static);
        for value in [
            None,
            Some("Bearer nope"),
            Some("Bearer "),
            Some("Basic 0123456789abcdef-cli"),
            Some("0123456789abcdef-cli"),
        ] {
            assert!(
                matches!(auth.authenticate(value), Err(AuthError::Unauthorized)),
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
