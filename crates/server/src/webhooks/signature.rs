//! `X-PagerDuty-Signature`: comma-separated `v1=<hex>` values, each an
//! HMAC-SHA256 of the raw body (PagerDuty's "Verifying Signatures"). While a
//! secret is rotated PagerDuty sends one signature per secret, and we may
//! hold both the old and the new secret: the delivery is good when any of
//! our secrets made any of its `v1` signatures. The comparison is
//! `hmac`'s `verify_slice` (constant time), never `==` on the hex.

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Signatures more than this are refused unchecked (each costs an HMAC per
/// secret; PagerDuty sends one per active secret).
const MAX_SIGNATURES: usize = 8;

/// Why a delivery's signature was refused (the reason label of the
/// signature-failure metric; never the header's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-PagerDuty-Signature` header.
    #[error("the X-PagerDuty-Signature header is missing")]
    Missing,
    /// The header holds no well-formed `v1=<64 hex digits>`.
    #[error("X-PagerDuty-Signature holds no v1=<hex HMAC-SHA256> signature")]
    Malformed,
    /// Well-formed, but none of our secrets made it.
    #[error("X-PagerDuty-Signature matches none of the configured webhook secrets")]
    Mismatch,
    /// This account has no webhook secret configured: nothing can verify.
    #[error("no webhook secret is configured for this account (webhooks.secrets)")]
    NoSecret,
}

impl SignatureError {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Malformed => "malformed",
            SignatureError::Mismatch => "mismatch",
            SignatureError::NoSecret => "no_secret",
        }
    }
}

/// The decoded `v1` signatures of a header (other versions are skipped: a
/// future `v2` next to a `v1` must not make the header unusable).
pub fn parse(header: &str) -> Result<Vec<[u8; 32]>, SignatureError> {
    let mut out = Vec::new();
    for part in header.split(',') {
        let Some(hex) = part.trim().strip_prefix("v1=") else {
            continue;
        };
        if out.len() == MAX_SIGNATURES {
            return Err(SignatureError::Malformed);
        }
        out.push(decode_hex(hex.trim()).ok_or(SignatureError::Malformed)?);
    }
    if out.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(out)
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[i] = (high * 16 + low) as u8;
    }
    Some(out)
}

/// Is `header` a good signature of `body` by one of `secrets`?
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let signatures = parse(header.ok_or(SignatureError::Missing)?)?;
    // Every pair is checked (no early exit on the first secret): the time
    // taken says nothing about which secret or signature matched.
    let mut good = false;
    for secret in secrets {
        // HMAC takes keys of any length: this cannot fail.
        let Ok(mac) = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        let mac = mac.chain_update(body);
        for signature in &signatures {
            good |= mac.clone().verify_slice(signature).is_ok();
        }
    }
    if good {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `v1=` + the hex HMAC-SHA256 of `body` with `secret` (what PagerDuty
/// sends; for tests and the CLI's ping check).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mac = HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key")
        .chain_update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter().map(|s| SecretString::from(*s)).collect()
    }

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "v1=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn headers_parse_into_their_v1_signatures() {
        let a = "a".repeat(64);
        let b = "0B".repeat(32);
        let parsed = parse(&format!("v1={a}, v2=zzz ,v1={b}")).unwrap();
        assert_eq!(parsed, vec![[0xaa; 32], [0x0b; 32]]);
        for bad in [
            "",
            "v2=abc",
            "v1=",
            "v1=abc",
            &format!("v1={}", "g".repeat(64)),
            &format!("v1={}", "a".repeat(66)),
            &format!("v1={a},v1=short"),
            &vec![format!("v1={a}"); MAX_SIGNATURES + 1].join(","),
        ] {
            assert_eq!(parse(bad), Err(SignatureError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn any_secret_matching_any_signature_verifies() {
        let body = br#"{"event":{"event_type":"pagey.ping"}}"#;
        let (old, new) = ("old-secret-0123456789", "new-secret-0123456789");
        let both = secrets(&[old, new]);
        // During a rotation PagerDuty signs with both; either alone too.
        let rotated = format!("{},{}", sign(old, body), sign(new, body));
        assert_eq!(verify(Some(&rotated), body, &secrets(&[new])), Ok(()));
        assert_eq!(verify(Some(&sign(old, body)), body, &both), Ok(()));
        assert_eq!(verify(Some(&sign(new, body)), body, &both), Ok(()));
    }

    #[test]
    fn forged_stale_and_missing_signatures_are_refused() {
        let body = b"{}";
        let ours = secrets(&["current-secret-0123456789"]);
        let stale = sign("retired-secret-0123456789", body);
        assert_eq!(
            verify(Some(&stale), body, &ours),
            Err(SignatureError::Mismatch)
        );
        let forged = format!("v1={}", "0".repeat(64));
        assert_eq!(
            verify(Some(&forged), body, &ours),
            Err(SignatureError::Mismatch)
        );
        // A good signature of another body.
        let other = sign("current-secret-0123456789", b"{\"x\":1}");
        assert_eq!(
            verify(Some(&other), body, &ours),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(None, body, &ours), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some("sha256=abc"), body, &ours),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some(&sign("x", body)), body, &[]),
            Err(SignatureError::NoSecret)
        );
    }
}
