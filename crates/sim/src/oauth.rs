//! `POST /oauth/token`: the client-credentials grant of Scoped OAuth.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimOAuthClient};
use crate::http::Reply;
use crate::server::{IssuedToken, State};

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn valid_account_scope(s: &str) -> bool {
    s.strip_prefix("as_account-")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(region, sub)| matches!(region, "us" | "eu") && !sub.is_empty())
}

pub(crate) fn token(state: &State, body: &[u8]) -> Reply {
    let mut grant_type = None;
    let mut client_id = None;
    let mut client_secret = None;
    let mut scope = String::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "grant_type" => grant_type = Some(v.into_owned()),
            "client_id" => client_id = Some(v.into_owned()),
            "client_secret" => client_secret = Some(v.into_owned()),
            "scope" => scope = v.into_owned(),
            _ => {}
        }
    }
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        None | Some("") => {
            return oauth_error(
                400,
                "invalid_request",
                "The grant_type parameter is missing.",
            );
        }
        Some(_) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
    }
    let default_client = [SimOAuthClient {
        client_id: DEFAULT_CLIENT_ID.to_owned(),
        client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
        allowed_scopes: None,
    }];
    let clients: &[SimOAuthClient] = if state.oauth_clients.is_empty() {
        &default_client
    } else {
        &state.oauth_clients
    };
    let Some(client) = clients.iter().find(|c| {
        Some(c.client_id.as_str()) == client_id.as_deref()
            && Some(c.client_secret.as_str()) == client_secret.as_deref()
    }) else {
        return oauth_error(401, "invalid_client", "Client authentication failed.");
    };
    let parts: Vec<&str> = scope.split_whitespace().collect();
    let accounts: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|s| s.starts_with("as_account-"))
        .collect();
    if accounts.len() != 1 || !valid_account_scope(accounts[0]) {
        return oauth_error(
            400,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed: it must contain one as_account-{us|eu}.{subdomain} scope.",
        );
    }
    let granted: Vec<String> = parts
        .iter()
        .filter(|s| !s.starts_with("as_account-"))
        .filter(|s| {
            client
                .allowed_scopes
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|a| a == *s))
        })
        .map(|s| (*s).to_owned())
        .collect();
    let token = {
        let mut rng = state.runtime_rng.lock().unwrap_or_else(|e| e.into_inner());
        let hex = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> String {
            (0..n)
                .map(|_| b"0123456789abcdef"[rng.random_range(0..16)] as char)
                .collect()
        };
        format!(
            "pdus+_0XBPWQQ_{}-{}-{}-{}-{}",
            hex(&mut rng, 8),
            hex(&mut rng, 4),
            hex(&mut rng, 4),
            hex(&mut rng, 4),
            hex(&mut rng, 12)
        )
    };
    let ttl = state.oauth_ttl_secs;
    let mut issued = state.issued.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    issued.retain(|_, t| t.expires_at > now);
    issued.insert(
        token.clone(),
        IssuedToken {
            client_id: client.client_id.clone(),
            scopes: granted.clone(),
            expires_at: now + Duration::from_secs(ttl),
        },
    );
    drop(issued);
    let mut scope_out = vec![accounts[0].to_owned()];
    scope_out.extend(granted);
    Reply::json(
        200,
        &json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": ttl,
            "scope": scope_out.join(" "),
        }),
    )
}
