//! HTTP caching of cards (and of rendered Backstage bodies that opt in,
//! [`body_response`]): a weak `ETag`, `If-None-Match` → 304, and
//! `Cache-Control: private, no-cache`: a browser or portal may keep the card
//! but revalidates it on every view (cheap: a 304 when the ETag matches), so
//! it never shows a card older than the server's, e.g. right after a trigger.
//! The card's own freshness is in its body (`max_age_secs` per section).
//!
//! A warm card is the hottest route, so the card is serialized once, straight
//! to bytes, and the ETag is hashed while serializing a borrowed projection
//! (no JSON tree, no copy): an earlier version built a `serde_json::Value`,
//! cloned and stripped it, and spent half the server's CPU there. The card
//! routes go further: they answer from a template rendered once per
//! version of the card's sections, its ETag computed then
//! ([`template_response`], [`super::rendered`]).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use cards::{SectionError, SectionResult, ServiceCard};
use serde::Serialize;

use super::rendered::{Body, CardTemplate};

/// What a section's ETag covers: its content and state. Left out, because
/// they change without the content changing: `fetched_at`, `max_age_secs`
/// and the card's `generated_at`; the ETag is therefore weak.
#[derive(Serialize)]
struct StableSection<'a, T> {
    data: &'a Option<T>,
    stale: bool,
    error: &'a Option<SectionError>,
}

impl<'a, T> From<&'a SectionResult<T>> for StableSection<'a, T> {
    fn from(section: &'a SectionResult<T>) -> Self {
        StableSection {
            data: &section.data,
            stale: section.stale,
            error: &section.error,
        }
    }
}

#[derive(Serialize)]
struct StableCard<'a> {
    service: StableSection<'a, cards::ServiceSection>,
    escalation_policy: StableSection<'a, cards::EscalationPolicySection>,
    oncall: StableSection<'a, cards::OncallSection>,
    incidents: StableSection<'a, cards::IncidentsSection>,
    change_events: StableSection<'a, cards::ChangeEventsSection>,
    standards: Option<StableSection<'a, cards::StandardsSection>>,
    metrics: Option<StableSection<'a, cards::MetricsSection>>,
}

/// The weak ETag of a card: a hash of its content without the volatile fields.
pub fn etag(card: &ServiceCard) -> String {
    let stable = StableCard {
        service: (&card.service).into(),
        escalation_policy: (&card.escalation_policy).into(),
        oncall: (&card.oncall).into(),
        incidents: (&card.incidents).into(),
        change_events: (&card.change_events).into(),
        standards: card.standards.as_ref().map(Into::into),
        metrics: card.metrics.as_ref().map(Into::into),
    };
    let mut hasher = Fnv1a::default();
    // Writing into a hasher cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(&mut hasher, &stable);
    format!("W/\"{:016x}\"", hasher.0)
}

/// The weak ETag of a rendered body: a hash of its bytes (so replicas that
/// render the same body give the same tag).
pub fn body_etag(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut hasher = Fnv1a::default();
    // Writing into a hasher cannot fail.
    let _ = hasher.write_all(bytes);
    format!("W/\"{:016x}\"", hasher.0)
}

/// FNV-1a, 64 bits: stable across processes and releases (std's hasher is not).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl std::io::Write for Fnv1a {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Does `If-None-Match` name this ETag (weak comparison, lists and `*`)?
pub(crate) fn matches(req: &HttpRequest, etag: &str) -> bool {
    fn bare(t: &str) -> &str {
        t.trim().trim_start_matches("W/")
    }
    let ours = bare(etag);
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim() == "*" || bare(candidate) == ours)
}

/// `private, no-cache`: revalidate every view.
const NO_CACHE: header::HeaderValue = header::HeaderValue::from_static("private, no-cache");

/// 200 with a rendered card (its per-request fields filled in now), or
/// 304 when the caller already has this version: the same answer as
/// [`card_response`] for the card the template was rendered from.
pub fn template_response(
    req: &HttpRequest,
    template: &CardTemplate,
    max_ages: &[Option<u64>; 7],
) -> HttpResponse {
    if matches(req, template.etag_text()) {
        return not_modified_varying(template.etag());
    }
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((header::ETAG, template.etag().clone()))
        .insert_header((header::CACHE_CONTROL, NO_CACHE))
        .insert_header(super::JSON_CONTENT_TYPE)
        .insert_header((header::VARY, ACCEPT_ENCODING_VARY));
    let now = chrono::Utc::now();
    if accepts_gzip(req) {
        answer
            .insert_header(GZIP)
            .body(template.fill_gzip(max_ages, now))
    } else {
        answer.body(template.fill(max_ages, now))
    }
}

/// `Content-Encoding: gzip`.
pub const GZIP: (header::HeaderName, header::HeaderValue) = (
    header::CONTENT_ENCODING,
    header::HeaderValue::from_static("gzip"),
);

/// The 304 of an answer whose 200 varies by encoding says so too (RFC
/// 9110 §15.4.5); its weak ETag is shared by both encodings.
fn not_modified_varying(etag: &header::HeaderValue) -> HttpResponse {
    let mut answer = not_modified(etag);
    answer
        .headers_mut()
        .insert(header::VARY, ACCEPT_ENCODING_VARY);
    answer
}

/// 200 with a rendered JSON body, or 304 (no body) when the caller
/// already has it: the card routes' validators, for a body kept in
/// [`super::rendered::Bodies`] (its ETag computed once per rendering).
pub fn body_response(req: &HttpRequest, body: &Body) -> HttpResponse {
    let etag = body.etag();
    if matches(req, etag.to_str().unwrap_or_default()) {
        return not_modified_varying(etag);
    }
    let mut answer = HttpResponse::Ok();
    answer
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, NO_CACHE));
    encoded_body(req, body, &mut answer)
}

/// `Vary` of every answer [`encoded_body`] chooses the encoding of.
pub const ACCEPT_ENCODING_VARY: header::HeaderValue =
    header::HeaderValue::from_static("Accept-Encoding");

/// 200 with a rendered JSON body (no validators).
pub fn json_body(req: &HttpRequest, body: &Body) -> HttpResponse {
    encoded_body(req, body, &mut HttpResponse::Ok())
}

/// The body gzip-compressed (computed once per rendering, see
/// [`Body::gzip`]) when the client accepts gzip and it is long enough, as
/// it is; `Vary: Accept-Encoding` either way, since the answer depends on it.
fn encoded_body(
    req: &HttpRequest,
    body: &Body,
    answer: &mut actix_web::HttpResponseBuilder,
) -> HttpResponse {
    answer
        .insert_header(super::JSON_CONTENT_TYPE)
        .insert_header((header::VARY, ACCEPT_ENCODING_VARY));
    match body.gzip().filter(|_| accepts_gzip(req)) {
        Some(gzip) => answer.insert_header(GZIP).body(gzip.clone()),
        None => answer.body(body.bytes().clone()),
    }
}

/// Does `Accept-Encoding` allow gzip (`gzip`, `x-gzip` or `*`, with a
/// non-zero `q`)? An explicit `gzip;q=0` refuses it even after a `*`.
pub(crate) fn accepts_gzip(req: &HttpRequest) -> bool {
    let mut star = false;
    for item in req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let allowed = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return allowed;
        }
        if coding == "*" {
            star = allowed;
        }
    }
    star
}

/// 304 with the validators of the version the caller has.
fn not_modified(etag: &header::HeaderValue) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, NO_CACHE))
        .finish()
}

/// 200 with the card, or 304 when the caller already has this version.
/// Fails only if the card cannot be serialized (a bug: the caller answers
/// 500 in its surface's shape).
pub fn card_response(
    req: &HttpRequest,
    card: &ServiceCard,
) -> Result<HttpResponse, serde_json::Error> {
    let etag = etag(card);
    if matches(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, "private, no-cache"))
            .finish());
    }
    let body = serde_json::to_vec(card)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header(super::JSON_CONTENT_TYPE)
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(fetched_at: &str, max_age: u64, stale: bool) -> serde_json::Value {
        json!({"data": null, "fetched_at": fetched_at, "stale": stale, "error": null, "max_age_secs": max_age})
    }

    fn card(generated_at: &str, fetched_at: &str, max_age: u64, stale: bool) -> ServiceCard {
        let s = section(fetched_at, max_age, stale);
        serde_json::from_value(json!({
            "service": s, "escalation_policy": s, "oncall": s, "incidents": s,
            "change_events": s, "generated_at": generated_at,
        }))
        .unwrap()
    }

    #[test]
    fn etag_ignores_volatile_fields_only() {
        let a = card("2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", 3, false);
        let b = card("2026-11-01T00:00:09Z", "2026-11-01T00:00:05Z", 9, false);
        let c = card("2026-11-01T00:00:09Z", "2026-11-01T00:00:05Z", 9, true);
        assert_eq!(etag(&a), etag(&b));
        assert_ne!(etag(&a), etag(&c));
        assert!(etag(&a).starts_with("W/\""));
        let mut with_metrics = a.clone();
        with_metrics.metrics = Some(SectionResult {
            data: None,
            fetched_at: None,
            stale: false,
            error: None,
            max_age_secs: 0,
        });
        assert_ne!(etag(&a), etag(&with_metrics));
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

    #[test]
    fn accept_encoding_allows_gzip_by_name_or_star_unless_q_is_zero() {
        let accepts = |value: Option<&str>| {
            let mut req = actix_web::test::TestRequest::default();
            if let Some(value) = value {
                req = req.insert_header((header::ACCEPT_ENCODING, value));
            }
            accepts_gzip(&req.to_http_request())
        };
        assert!(accepts(Some("gzip, deflate, br, zstd")));
        assert!(accepts(Some("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts(Some("*")));
        assert!(!accepts(None));
        assert!(!accepts(Some("br")));
        assert!(!accepts(Some("gzip;q=0")));
        assert!(!accepts(Some("*, gzip;q=0")));
        assert!(!accepts(Some("identity")));
    }
}
