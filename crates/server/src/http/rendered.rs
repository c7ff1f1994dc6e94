//! Rendered answers kept for reuse: a warm read writes bytes rendered
//! earlier, and serializes and hashes nothing.
//!
//! * **Cards** ([`CardTemplate`]): a card is rendered once per version of
//!   its sections ([`cards::CardVersions`]: each section's stored version
//!   and its `stale` flag), with its weak ETag computed then. Two fields of
//!   a card change with the clock alone, so the template leaves holes for
//!   them and fills them on every answer (a few digits and one timestamp,
//!   written straight into the output): each section's `max_age_secs` (from
//!   the same lookups the card would be built from) and `generated_at`.
//!   Everything else (`data`, `fetched_at`, `stale`, `error`) is a function
//!   of the versions, so the answer is byte for byte the one a fresh build
//!   would give at that instant (tested below).
//! * **Backstage bodies** ([`Bodies`]): those answers have no per-request
//!   field; a body is kept with the versions of the cached sections or
//!   lists it was rendered from. A route that answers `If-None-Match`
//!   asks for the body's weak ETag, hashed from its bytes once and kept
//!   with it ([`Body::etag`]).
//!
//! A replaced, refreshed or dropped section has a new version (see the
//! cards crate's `version`), so the next read renders again and replaces
//! the entry; nothing is invalidated here. A card with a failed section
//! (its error is not stored: a timeout, an upstream failure without a
//! stale copy) is built and rendered every time. Both caches are bounded
//! by the bytes they hold ([`MAX_CARD_BYTES`], [`MAX_BODY_BYTES`]); keys
//! are 64-bit hashes, and an entry is used only when its full key matches.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, Weak};

use actix_web::http::header::HeaderValue;
use bytes::{BufMut, Bytes, BytesMut};
use cards::{CardOptions, CardVersions, SectionResult, ServiceCard};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use super::stamp::Stamp;

/// Bytes of rendered cards kept (about 3,500 cards of 4.6 kB).
pub const MAX_CARD_BYTES: u64 = 16 << 20;
/// Bytes of rendered Backstage bodies kept.
pub const MAX_BODY_BYTES: u64 = 16 << 20;

/// Where a template needs a per-request value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    /// The `max_age_secs` of the section at this index, in card order.
    MaxAge(usize),
    /// The card's `generated_at`.
    GeneratedAt,
}

/// A card rendered once, with holes for its per-request fields, and its ETag.
#[derive(Debug)]
pub struct CardTemplate {
    bytes: Vec<u8>,
    /// Offsets into `bytes` (increasing) where a value goes.
    holes: Vec<(usize, Hole)>,
    etag: HeaderValue,
    etag_text: String,
    /// The fixed pieces between the holes, each deflated on its own (see
    /// [`super::gzip`]): computed the first time a gzip client reads the
    /// card, then kept with it.
    deflated: OnceLock<Vec<Bytes>>,
}

impl CardTemplate {
    /// Renders `card` (field for field what serde writes for a
    /// [`ServiceCard`]) and computes its ETag.
    pub fn render(card: &ServiceCard) -> Result<Self, serde_json::Error> {
        let mut t = Builder::default();
        t.raw(b"{");
        t.section("service", 0, &card.service, false)?;
        t.section("escalation_policy", 1, &card.escalation_policy, true)?;
        t.section("oncall", 2, &card.oncall, true)?;
        t.section("incidents", 3, &card.incidents, true)?;
        t.section("change_events", 4, &card.change_events, true)?;
        if let Some(standards) = &card.standards {
            t.section("standards", 5, standards, true)?;
        }
        if let Some(metrics) = &card.metrics {
            t.section("metrics", 6, metrics, true)?;
        }
        t.raw(b",\"generated_at\":");
        t.hole(Hole::GeneratedAt);
        t.raw(b"}");
        let etag_text = super::cache::etag(card);
        Ok(CardTemplate {
            bytes: t.bytes,
            holes: t.holes,
            // An ETag is `W/"` + 16 hex digits + `"`: always a header value.
            etag: HeaderValue::from_str(&etag_text).unwrap_or(HeaderValue::from_static("")),
            etag_text,
            deflated: OnceLock::new(),
        })
    }

    /// The card's weak ETag.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// The ETag as text.
    pub fn etag_text(&self) -> &str {
        &self.etag_text
    }

    /// Writes the card with these per-request values into `out`.
    pub fn write_to(&self, out: &mut BytesMut, max_ages: &[Option<u64>; 7], at: &Stamp) {
        let mut from = 0;
        for &(offset, hole) in &self.holes {
            out.put_slice(&self.bytes[from..offset]);
            hole.write((&mut *out).writer(), max_ages, at);
            from = offset;
        }
        out.put_slice(&self.bytes[from..]);
    }

    /// Appends the card with these per-request values to a gzip answer:
    /// the same bytes as [`CardTemplate::write_to`], its fixed pieces
    /// compressed once per template.
    pub fn write_gzip_to(
        &self,
        gz: &mut super::gzip::Splicer,
        max_ages: &[Option<u64>; 7],
        at: &Stamp,
    ) {
        let deflated = self.deflated.get_or_init(|| {
            self.pieces()
                .map(|(from, to)| super::gzip::deflate_piece(&self.bytes[from..to]))
                .collect()
        });
        for (i, (from, to)) in self.pieces().enumerate() {
            gz.piece(&self.bytes[from..to], &deflated[i]);
            if let Some(&(_, hole)) = self.holes.get(i) {
                hole.write(gz.literal(), max_ages, at);
            }
        }
    }

    /// The card gzip-compressed (see [`CardTemplate::write_gzip_to`]).
    pub fn fill_gzip(&self, max_ages: &[Option<u64>; 7], at: DateTime<Utc>) -> Bytes {
        let mut gz = super::gzip::Splicer::with_capacity(self.bytes.len() / 4);
        self.write_gzip_to(&mut gz, max_ages, &Stamp::new(at));
        gz.finish()
    }

    /// The `(from, to)` of each fixed piece: before each hole, and the tail.
    fn pieces(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let ends = self.holes.iter().map(|&(offset, _)| offset);
        let starts = std::iter::once(0).chain(ends.clone());
        starts.zip(ends.chain(std::iter::once(self.bytes.len())))
    }

    /// The card as one body (see [`CardTemplate::write_to`]).
    pub fn fill(&self, max_ages: &[Option<u64>; 7], at: DateTime<Utc>) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes.len() + 64);
        self.write_to(&mut out, max_ages, &Stamp::new(at));
        out.freeze()
    }

    fn weight(&self) -> u32 {
        // The compressed pieces, once made, are a fraction of the bytes:
        // counted as a third, so a gzip-read card is not under-weighed.
        u32::try_from(self.bytes.len() * 4 / 3 + self.holes.len() * 16 + 128).unwrap_or(u32::MAX)
    }
}

impl Hole {
    /// Writes this hole's value for the request.
    fn write(self, mut out: impl std::io::Write, max_ages: &[Option<u64>; 7], at: &Stamp) {
        // Writing into memory cannot fail.
        let _ = match self {
            Hole::MaxAge(i) => out.write_all(
                itoa::Buffer::new()
                    .format(max_ages[i].unwrap_or(0))
                    .as_bytes(),
            ),
            Hole::GeneratedAt => out.write_all(at.bytes()),
        };
    }
}

#[derive(Default)]
struct Builder {
    bytes: Vec<u8>,
    holes: Vec<(usize, Hole)>,
}

impl Builder {
    fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        serde_json::to_writer(&mut self.bytes, value)
    }

    fn hole(&mut self, hole: Hole) {
        self.holes.push((self.bytes.len(), hole));
    }

    /// `"name":{"data":…,"fetched_at":…,"stale":…,"error":…,"max_age_secs":HOLE}`
    /// (the field order of [`SectionResult`]'s derived `Serialize`).
    fn section<T: Serialize>(
        &mut self,
        name: &str,
        index: usize,
        section: &SectionResult<T>,
        comma: bool,
    ) -> Result<(), serde_json::Error> {
        if comma {
            self.raw(b",");
        }
        self.json(name)?;
        self.raw(b":{\"data\":");
        self.json(&section.data)?;
        self.raw(b",\"fetched_at\":");
        self.json(&section.fetched_at)?;
        self.raw(if section.stale {
            b",\"stale\":true"
        } else {
            b",\"stale\":false"
        });
        self.raw(b",\"error\":");
        self.json(&section.error)?;
        self.raw(b",\"max_age_secs\":");
        self.hole(Hole::MaxAge(index));
        self.raw(b"}");
        Ok(())
    }
}

/// What a rendered card is kept under: the account, the service, the
/// options, and the versions it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CardKey {
    account: String,
    service_id: String,
    options: (bool, bool, Option<usize>, Option<usize>),
}

struct CardEntry {
    key: CardKey,
    versions: CardVersions,
    template: Arc<CardTemplate>,
}

/// The rendered cards and Backstage bodies of every account.
pub struct Rendered {
    cards: moka::sync::Cache<u64, Arc<CardEntry>>,
    /// Rendered Backstage answers.
    pub bodies: Bodies,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Rendered {
    fn default() -> Self {
        Rendered {
            cards: moka::sync::Cache::builder()
                .weigher(|_, entry: &Arc<CardEntry>| entry.template.weight())
                .max_capacity(MAX_CARD_BYTES)
                .build(),
            bodies: Bodies::default(),
            hasher: Default::default(),
        }
    }
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("cards", &self.cards.entry_count())
            .finish_non_exhaustive()
    }
}

fn options_key(options: &CardOptions) -> (bool, bool, Option<usize>, Option<usize>) {
    (
        options.include_standards,
        options.include_metrics,
        options.incident_limit,
        options.change_event_limit,
    )
}

impl Rendered {
    /// The template of the card `parts` build for `account`: the one kept
    /// when its versions are the same, else built, rendered and kept.
    pub fn card(
        &self,
        account: &str,
        parts: &cards::CardParts,
        options: &CardOptions,
    ) -> Result<Arc<CardTemplate>, serde_json::Error> {
        let Some(versions) = parts.versions() else {
            // A failed section: nothing to key it by.
            return CardTemplate::render(&parts.build()).map(Arc::new);
        };
        let options = options_key(options);
        let fits = |entry: &CardEntry| {
            entry.versions == versions
                && entry.key.account == account
                && entry.key.service_id == parts.service_id()
                && entry.key.options == options
        };
        // Parts the warm path kept carry the entry an earlier read of them
        // used: no hashing, no cache lookup (checked all the same, as the
        // memo may have been filled under other options). The memo holds
        // it weakly: only the cache keeps entries alive, so its byte bound
        // stays the bound on rendered cards (an evicted entry is looked up
        // and rendered again like any other; the memo is filled once, so
        // those parts take the cache lookup until the warm path keeps new
        // ones, at the next write to one of their sections).
        if let Some(entry) = memo_entry(parts)
            && fits(&entry)
        {
            return Ok(Arc::clone(&entry.template));
        }
        let hash = self.hasher.hash_one((account, parts.service_id(), options));
        if let Some(entry) = self.cards.get(&hash)
            && fits(&entry)
        {
            parts.memo().set(Arc::new(Arc::downgrade(&entry)));
            return Ok(Arc::clone(&entry.template));
        }
        let template = Arc::new(CardTemplate::render(&parts.build())?);
        let entry = Arc::new(CardEntry {
            key: CardKey {
                account: account.to_owned(),
                service_id: parts.service_id().to_owned(),
                options,
            },
            versions,
            template: Arc::clone(&template),
        });
        parts.memo().set(Arc::new(Arc::downgrade(&entry)));
        self.cards.insert(hash, entry);
        Ok(template)
    }
}

/// The entry `parts`' memo points to, while the cache still holds it.
fn memo_entry(parts: &cards::CardParts) -> Option<Arc<CardEntry>> {
    parts.memo().get::<Weak<CardEntry>>()?.upgrade()
}

/// Rendered Backstage bodies, each under (route, account, arguments) with
/// the versions of what it was rendered from.
pub struct Bodies {
    cache: moka::sync::Cache<u64, Arc<Body>>,
    hasher: std::collections::hash_map::RandomState,
}

/// A rendered body, kept with what it was rendered from.
pub struct Body {
    route: &'static str,
    account: String,
    args: String,
    versions: Vec<u64>,
    bytes: Bytes,
    /// Hashed from `bytes` the first time a route asks for it, then kept:
    /// routes without conditional requests never pay for it.
    etag: OnceLock<HeaderValue>,
    /// Compressed the first time a client that accepts gzip asks for it,
    /// then kept: each rendering is compressed at most once (`None` for
    /// a body under [`GZIP_MIN_BYTES`]).
    gzip: OnceLock<Option<Bytes>>,
}

/// Bodies shorter than this go out as they are (the threshold of the Node
/// backend's `compression` middleware: below it, gzip's header and the
/// work cost more than the bytes saved).
pub const GZIP_MIN_BYTES: usize = 1024;

impl Body {
    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Its weak ETag ([`super::cache::body_etag`] of the bytes), computed
    /// once per rendered body.
    pub fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            // `W/"` + 16 hex digits + `"`: always a header value.
            HeaderValue::from_str(&super::cache::body_etag(&self.bytes))
                .unwrap_or(HeaderValue::from_static(""))
        })
    }

    /// The body gzip-compressed, computed once per rendered body; `None`
    /// when it is shorter than [`GZIP_MIN_BYTES`].
    pub fn gzip(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| {
                if self.bytes.len() < GZIP_MIN_BYTES {
                    return None;
                }
                use std::io::Write as _;
                let out = Vec::with_capacity(self.bytes.len() / 4);
                let mut encoder =
                    flate2::write::GzEncoder::new(out, flate2::Compression::default());
                // Writing into memory cannot fail; if it did, the body
                // would go out uncompressed.
                encoder.write_all(&self.bytes).ok()?;
                encoder.finish().ok().map(Bytes::from)
            })
            .as_ref()
    }
}

impl Default for Bodies {
    fn default() -> Self {
        Bodies {
            cache: moka::sync::Cache::builder()
                .weigher(|_, body: &Arc<Body>| {
                    u32::try_from(body.bytes.len() + body.args.len() + 128).unwrap_or(u32::MAX)
                })
                .max_capacity(MAX_BODY_BYTES)
                .build(),
            hasher: Default::default(),
        }
    }
}

impl Bodies {
    /// The body of `route` for `account` and `args` rendered from
    /// `versions`: the kept one when they match, else `render`'s (kept).
    pub fn get_or_render<E>(
        &self,
        route: &'static str,
        account: &str,
        args: &str,
        versions: &[u64],
        render: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<Arc<Body>, E> {
        self.body(route, account, args, versions, |_| render())
    }

    /// [`Bodies::get_or_render`]'s entry itself (its ETag with it).
    /// `render` is given the length of the body kept before under other
    /// versions (0 when none), to size its buffer: a large body then does
    /// not grow (and copy) its buffer a dozen times while it is written.
    pub fn body<E>(
        &self,
        route: &'static str,
        account: &str,
        args: &str,
        versions: &[u64],
        render: impl FnOnce(usize) -> Result<Vec<u8>, E>,
    ) -> Result<Arc<Body>, E> {
        let hash = self.hasher.hash_one((route, account, args));
        let kept = self
            .cache
            .get(&hash)
            .filter(|body| body.route == route && body.account == account && body.args == args);
        if let Some(body) = &kept
            && body.versions == versions
        {
            return Ok(Arc::clone(body));
        }
        let body = Arc::new(Body {
            route,
            account: account.to_owned(),
            args: args.to_owned(),
            versions: versions.to_vec(),
            bytes: Bytes::from(render(kept.map_or(0, |b| b.bytes.len()))?),
            etag: OnceLock::new(),
            gzip: OnceLock::new(),
        });
        self.cache.insert(hash, Arc::clone(&body));
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card(with_optional: bool) -> ServiceCard {
        let s = |max_age: u64, stale: bool| {
            json!({"data": null, "fetched_at": "2026-11-01T00:00:00.123456Z", "stale": stale,
                   "error": null, "max_age_secs": max_age})
        };
        let mut value = json!({
            "service": {"data": {"id": "PABC123", "name": "Checkout \"quoted\" ünïcode",
                        "status": "active", "html_url": null, "description": "a\nb",
                        "teams": [{"id": "PT1", "name": "Team</script>", "html_url": null}],
                        "created_at": "2026-01-02T03:04:05Z"},
                        "fetched_at": "2026-11-01T00:00:00Z", "stale": false, "error": null,
                        "max_age_secs": 300},
            "escalation_policy": s(12, false),
            "oncall": s(0, true),
            "incidents": {"data": null, "fetched_at": null, "stale": false,
                          "error": {"kind": "timeout", "message": "the incidents section did not load in time"},
                          "max_age_secs": 0},
            "change_events": s(7, false),
            "generated_at": "2026-11-01T00:00:09.987654321Z",
        });
        if with_optional {
            value["standards"] = s(3600, false);
            value["metrics"] = s(900, false);
        }
        serde_json::from_value(value).unwrap()
    }

    fn max_ages(card: &ServiceCard) -> [Option<u64>; 7] {
        [
            Some(card.service.max_age_secs),
            Some(card.escalation_policy.max_age_secs),
            Some(card.oncall.max_age_secs),
            Some(card.incidents.max_age_secs),
            Some(card.change_events.max_age_secs),
            card.standards.as_ref().map(|s| s.max_age_secs),
            card.metrics.as_ref().map(|s| s.max_age_secs),
        ]
    }

    #[test]
    fn a_filled_template_is_byte_identical_to_serde() {
        for optional in [false, true] {
            let card = card(optional);
            let template = CardTemplate::render(&card).unwrap();
            let filled = template.fill(&max_ages(&card), card.generated_at);
            assert_eq!(
                std::str::from_utf8(&filled).unwrap(),
                serde_json::to_string(&card).unwrap()
            );
            assert_eq!(template.etag_text(), super::super::cache::etag(&card));
        }
    }

    /// Against the simulator: a kept card is the one a fresh build gives,
    /// byte for byte, and an invalidated section renders the card again.
    #[tokio::test]
    async fn a_kept_card_is_a_fresh_one_and_an_invalidation_renders_again() {
        use cards::{CardService, CardsConfig, Section, ServiceId, ServiceRef};
        let sim = sim::Sim::start(sim::SimConfig {
            services: 3,
            ..sim::SimConfig::default()
        })
        .await
        .unwrap();
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            pagerduty::SecretString::from(sim.api_token()),
        ))
        .api_base_url(sim.base_url())
        .build()
        .unwrap();
        let clock = Arc::new(cards::clock::ManualClock::new());
        let cards = CardService::with_clock(client, CardsConfig::default(), clock);
        let id: ServiceId = sim.account().services[0].id.parse().unwrap();
        let options = CardOptions::default();
        let rendered = Rendered::default();
        let read = || cards.card_parts(ServiceRef::Id(id.clone()), &options);
        let parts = read().await.unwrap();
        let first = rendered.card("acc", &parts, &options).unwrap();
        let parts = read().await.unwrap();
        let kept = rendered.card("acc", &parts, &options).unwrap();
        assert!(
            Arc::ptr_eq(&first, &kept),
            "the same versions reuse the template"
        );
        let fresh = parts.build();
        assert_eq!(
            kept.fill(&parts.max_age_secs(), fresh.generated_at),
            serde_json::to_vec(&fresh).unwrap()
        );
        let other = rendered.card("other", &parts, &options).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "accounts do not share entries"
        );
        // A warm read's parts point to the cache's entry (their memo), but
        // do not keep it: once the cache drops it, it is rendered again.
        let parts = read().await.unwrap();
        let entry = memo_entry(&parts).expect("the entry, through the memo");
        assert!(Arc::ptr_eq(&first, &entry.template), "the memo's template");
        drop(entry);
        // The same kept parts read with other options (the same warm slot):
        // their memo holds the entry of the first options, which is checked
        // and not used.
        let limited = CardOptions {
            incident_limit: Some(1),
            ..CardOptions::default()
        };
        let limited_parts = cards
            .card_parts(ServiceRef::Id(id.clone()), &limited)
            .await
            .unwrap();
        assert!(
            memo_entry(&limited_parts).is_some_and(|e| Arc::ptr_eq(&first, &e.template)),
            "the kept parts' memo, filled under the first options"
        );
        let other_options = rendered.card("acc", &limited_parts, &limited).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other_options),
            "the memo's entry is for other options: not used"
        );
        let fresh = limited_parts.build();
        assert_eq!(
            other_options.fill(&limited_parts.max_age_secs(), fresh.generated_at),
            serde_json::to_vec(&fresh).unwrap()
        );
        let hash = rendered
            .hasher
            .hash_one(("acc", id.as_str(), options_key(&options)));
        rendered.cards.invalidate(&hash);
        rendered.cards.run_pending_tasks();
        assert!(memo_entry(&parts).is_none(), "the memo kept it alive");
        let evicted = rendered.card("acc", &parts, &options).unwrap();
        assert!(!Arc::ptr_eq(&first, &evicted), "rendered again");
        let fresh = parts.build();
        assert_eq!(
            evicted.fill(&parts.max_age_secs(), fresh.generated_at),
            serde_json::to_vec(&fresh).unwrap()
        );
        let first = evicted;
        cards.invalidate(id.as_str(), &[Section::Incidents]).await;
        let parts = read().await.unwrap();
        let again = rendered.card("acc", &parts, &options).unwrap();
        assert!(!Arc::ptr_eq(&first, &again), "rendered again");
        let fresh = parts.build();
        let answer = again.fill(&parts.max_age_secs(), fresh.generated_at);
        assert_eq!(answer, serde_json::to_vec(&fresh).unwrap());
        assert_ne!(
            answer,
            first.fill(&parts.max_age_secs(), fresh.generated_at),
            "the reloaded section shows its new fetch"
        );
    }

    #[test]
    fn bodies_are_kept_per_versions() {
        let bodies = Bodies::default();
        let render = |text: &'static str| move || Ok::<_, ()>(text.as_bytes().to_vec());
        let a = bodies
            .get_or_render("r", "acc", "P1", &[1], render("one"))
            .unwrap();
        let again = bodies
            .get_or_render("r", "acc", "P1", &[1], || -> Result<Vec<u8>, ()> {
                panic!("rendered again")
            })
            .unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let b = bodies
            .get_or_render("r", "acc", "P1", &[2], render("two"))
            .unwrap();
        assert_eq!(&b.bytes()[..], b"two", "a new version renders again");
        let c = bodies
            .get_or_render("r", "other", "P1", &[2], render("three"))
            .unwrap();
        assert_eq!(&c.bytes()[..], b"three", "another account is another entry");
    }

    #[test]
    fn a_body_is_rendered_sized_from_the_last_and_its_etag_follows_its_bytes() {
        let bodies = Bodies::default();
        let render = |text: &'static str, hint: &'static std::sync::Mutex<Vec<usize>>| {
            move |capacity| {
                hint.lock().unwrap().push(capacity);
                Ok::<_, ()>(text.as_bytes().to_vec())
            }
        };
        static HINTS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
        let one = bodies
            .body("r", "", "", &[1], render("one!", &HINTS))
            .unwrap();
        let kept = bodies
            .body("r", "", "", &[1], |_| -> Result<Vec<u8>, ()> {
                panic!("rendered again")
            })
            .unwrap();
        assert!(Arc::ptr_eq(&one, &kept));
        assert_eq!(one.etag(), kept.etag());
        let two = bodies
            .body("r", "", "", &[2], render("two", &HINTS))
            .unwrap();
        assert_eq!(*HINTS.lock().unwrap(), [0, 4], "sized from the body before");
        assert_ne!(one.etag(), two.etag(), "other bytes, another ETag");
        let same = bodies
            .body("r", "", "", &[3], render("two", &HINTS))
            .unwrap();
        assert_eq!(two.etag(), same.etag(), "the ETag is the bytes'");
        assert!(two.etag().to_str().unwrap().starts_with("W/\""));
    }

    #[test]
    fn a_long_body_is_gzipped_once_and_a_short_one_never() {
        use std::io::Read as _;
        let bodies = Bodies::default();
        let long = serde_json::to_vec(&vec!["a service"; 400]).unwrap();
        let body = bodies
            .get_or_render("r", "", "", &[1], || Ok::<_, ()>(long.clone()))
            .unwrap();
        let gzip = body.gzip().expect("long enough to compress");
        assert!(gzip.len() < long.len() / 4, "{} bytes", gzip.len());
        assert_eq!(body.gzip().unwrap().as_ptr(), gzip.as_ptr(), "kept");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, long, "byte for byte the identity body");
        let short = bodies
            .get_or_render("r", "", "s", &[1], || {
                Ok::<_, ()>(vec![b'x'; GZIP_MIN_BYTES - 1])
            })
            .unwrap();
        assert!(short.gzip().is_none());
    }
}
