//! HTTP caching of cards: a weak `ETag`, `If-None-Match` → 304, and
//! `Cache-Control: private, no-cache`: a browser or portal may keep the card
//! but revalidates it on every view (cheap: a 304 when the ETag matches), so
//! it never shows a card older than the server's, e.g. right after a trigger.
//! The card's own freshness is in its body (`max_age_secs` per section).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use cards::ServiceCard;
use serde_json::Value;

/// Fields that change on every request without the content changing; they
/// are left out of the ETag, which is therefore weak.
const VOLATILE: [&str; 3] = ["generated_at", "fetched_at", "max_age_secs"];

/// The weak ETag of a card: a hash of its JSON without the volatile fields.
pub fn etag(card: &Value) -> String {
    let mut stable = card.clone();
    strip(&mut stable);
    let bytes = serde_json::to_vec(&stable).unwrap_or_default();
    format!("W/\"{:016x}\"", fnv1a(&bytes))
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in VOLATILE {
                map.remove(key);
            }
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// FNV-1a, 64 bits: stable across processes and releases (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Does `If-None-Match` name this ETag (weak comparison, lists and `*`)?
fn matches(req: &HttpRequest, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = bare(etag);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim() == "*" || bare(candidate) == ours)
}

/// 200 with the card, or 304 when the caller already has this version.
pub fn card_response(req: &HttpRequest, card: &ServiceCard) -> HttpResponse {
    let value = serde_json::to_value(card).unwrap_or(Value::Null);
    let etag = etag(&value);
    let not_modified = matches(req, &etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if not_modified {
        response.finish()
    } else {
        response.json(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn etag_ignores_volatile_fields_only() {
        let a = json!({"generated_at": "1", "incidents": {"fetched_at": "x", "max_age_secs": 3, "data": {"triggered": 1}}});
        let b = json!({"generated_at": "2", "incidents": {"fetched_at": "y", "max_age_secs": 9, "data": {"triggered": 1}}});
        let c = json!({"generated_at": "2", "incidents": {"fetched_at": "y", "max_age_secs": 9, "data": {"triggered": 2}}});
        assert_eq!(etag(&a), etag(&b));
        assert_ne!(etag(&a), etag(&c));
        assert!(etag(&a).starts_with("W/\""));
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = "W/\"00000000000000ff\"";
        for header_value in [
            "W/\"00000000000000ff\"",
            "\"00000000000000ff\"",
            "\"other\", W/\"00000000000000ff\"",
            "*",
        ] {
            let req = actix_web::test::TestRequest::default()
                .insert_header((header::IF_NONE_MATCH, header_value))
                .to_http_request();
            assert!(matches(&req, tag), "{header_value}");
        }
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"other\""))
            .to_http_request();
        assert!(!matches(&req, tag));
    }
}
