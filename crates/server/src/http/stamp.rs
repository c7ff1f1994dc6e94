//! A card's `generated_at`, formatted once per answer.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// A card's `generated_at` as serde writes it (a quoted RFC 3339 UTC
/// timestamp), formatted once per answer: a batch of twenty cards shares
/// one instant, and formatting a date is most of what filling a hole costs.
pub struct Stamp {
    json: [u8; Stamp::MAX],
    len: usize,
}

impl Stamp {
    /// `"2026-12-06T08:01:33.742786123Z"` is 32 bytes; a year past 9999
    /// adds a sign and digits.
    const MAX: usize = 48;

    /// The stamp of `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        let mut stamp = Stamp {
            json: [0; Stamp::MAX],
            len: 0,
        };
        if !stamp.write_digits(at) {
            let mut out = &mut stamp.json[..];
            // A timestamp always serializes, and fits (see `MAX`).
            let _ = serde_json::to_writer(&mut out, &at);
            stamp.len = Stamp::MAX - out.len();
        }
        stamp
    }

    /// The quoted timestamp.
    pub fn bytes(&self) -> &[u8] {
        &self.json[..self.len]
    }

    /// Writes `at` digit by digit, as chrono's serializer does (RFC 3339,
    /// `Z`, the fraction in 0, 3, 6 or 9 digits: the fewest that hold it,
    /// a leap second as second 60), for a year of four digits; `false`
    /// for any other year, which goes through serde. chrono writes through
    /// `fmt::Write` a character at a time, about 0.4 µs a card (BENCHMARKS.md).
    fn write_digits(&mut self, at: DateTime<Utc>) -> bool {
        let at = at.naive_utc();
        let year = at.year();
        if !(0..=9999).contains(&year) {
            return false;
        }
        let mut nano = at.nanosecond();
        let mut second = at.second();
        if nano >= 1_000_000_000 {
            second += 1;
            nano -= 1_000_000_000;
        }
        let year = year as u32;
        let mut w = Digits {
            out: &mut self.json,
            len: 0,
        };
        w.byte(b'"');
        w.two(year / 100);
        w.two(year % 100);
        w.byte(b'-');
        w.two(at.month());
        w.byte(b'-');
        w.two(at.day());
        w.byte(b'T');
        w.two(at.hour());
        w.byte(b':');
        w.two(at.minute());
        w.byte(b':');
        w.two(second);
        let (fraction, digits) = if nano == 0 {
            (0, 0)
        } else if nano.is_multiple_of(1_000_000) {
            (nano / 1_000_000, 3)
        } else if nano.is_multiple_of(1_000) {
            (nano / 1_000, 6)
        } else {
            (nano, 9)
        };
        if digits > 0 {
            w.byte(b'.');
            w.fixed(fraction, digits);
        }
        w.byte(b'Z');
        w.byte(b'"');
        self.len = w.len;
        true
    }
}

/// Writes into a stamp's buffer (at most 32 bytes: within `Stamp::MAX`).
struct Digits<'a> {
    out: &'a mut [u8; Stamp::MAX],
    len: usize,
}

impl Digits<'_> {
    fn byte(&mut self, b: u8) {
        self.out[self.len] = b;
        self.len += 1;
    }

    /// `n` (below 100) in two digits.
    fn two(&mut self, n: u32) {
        self.fixed(n, 2);
    }

    /// `n` zero-padded to `digits` digits.
    fn fixed(&mut self, mut n: u32, digits: usize) {
        for i in (0..digits).rev() {
            self.out[self.len + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += digits;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn serde(at: DateTime<Utc>) -> Vec<u8> {
        serde_json::to_vec(&at).unwrap()
    }

    #[test]
    fn a_stamp_is_what_serde_writes_for_the_instant() {
        for at in [
            "2026-12-06T08:01:33Z",
            "2026-12-06T08:01:33.742786123Z",
            "2026-12-06T08:01:33.742Z",
            "2026-12-06T08:01:33.742786Z",
            "2026-12-06T08:01:33.000000001Z",
            "2026-12-06T08:01:33.100Z",
            "1969-12-31T23:59:59.5Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            let at = at.parse::<DateTime<Utc>>().unwrap();
            assert_eq!(Stamp::new(at).bytes(), serde(at), "{at:?}");
        }
        // A leap second (chrono keeps it as nanoseconds past 10^9).
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_250_000_000)
            .unwrap();
        let leap = Utc.from_utc_datetime(&leap);
        assert_eq!(Stamp::new(leap).bytes(), serde(leap));
        // Years outside 0..=9999 take serde's path: signed, and the
        // longest (a signed six-digit year, nanoseconds) still fits.
        for at in [
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::MIN_UTC,
            "+10000-01-01T00:00:00Z".parse().unwrap(),
            "-0001-06-15T12:00:00.5Z".parse().unwrap(),
        ] {
            assert_eq!(Stamp::new(at).bytes(), serde(at), "{at:?}");
        }
    }

    /// Instants spread over four centuries, at every fraction length.
    #[test]
    fn stamps_match_serde_across_dates_and_fractions() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = (x % (400 * 365 * 86_400)) as i64 - 100 * 365 * 86_400;
            let nanos = match i % 4 {
                0 => 0,
                1 => (x >> 40) as u32 % 1000 * 1_000_000,
                2 => (x >> 40) as u32 % 1_000_000 * 1000,
                _ => (x >> 34) as u32 % 1_000_000_000,
            };
            let at = DateTime::from_timestamp(secs, nanos).unwrap();
            assert_eq!(Stamp::new(at).bytes(), serde(at), "{at:?}");
        }
    }
}
