//! The one redacting key holder behind [`IntegrationKey`](crate::IntegrationKey)
//! and [`RoutingKey`](crate::RoutingKey): both are the same kind of secret
//! (an Events API v2 integration key is the routing key of its events), so
//! they share how the key is kept (zeroized on drop), exposed and
//! fingerprinted; each type chooses its own `Debug` wording.

use secrecy::{ExposeSecret, SecretString};

/// A key that must never be logged. No `Debug`, no `Display`, no serde:
/// the public wrappers decide what, if anything, is shown.
#[derive(Clone)]
pub(crate) struct KeySecret(SecretString);

impl KeySecret {
    pub(crate) fn new(key: impl Into<String>) -> Self {
        KeySecret(SecretString::from(key.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// First 8 hex digits of a 64-bit FNV-1a hash of the key: enough to
    /// tell keys apart in logs, and 32 bits cannot be reversed into a
    /// 32-character key (not a security hash, and not meant as one).
    pub(crate) fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.expose().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{:08x}", (h >> 32) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_short_and_not_the_key() {
        let k = KeySecret::new("R0123456789abcdef0123456789abcde");
        let f = k.fingerprint();
        assert_eq!(f.len(), 8);
        assert_eq!(f, KeySecret::new(k.expose()).fingerprint());
        assert_ne!(
            f,
            KeySecret::new("R0123456789abcdef0123456789abcdf").fingerprint()
        );
        assert!(!k.expose().contains(&f));
    }
}
