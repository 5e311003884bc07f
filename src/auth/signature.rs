//! HMAC-SHA256 body signatures in lowercase hex: the one implementation behind every signed
//! request the product checks or sends — GitHub's webhook deliveries (`http::webhooks`), Slack's
//! slash commands and `notify`'s own webhooks (`notify::commands`, `notify::webhook`). Each
//! caller owns its header's format (`sha256=…`, `v0=…`) and what is signed; this file owns the
//! MAC and the constant-time comparison.

use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(secret: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).expect("BUG: HMAC-SHA256 takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The hex HMAC-SHA256 of `parts` (concatenated) under `secret`.
pub fn sign_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    mac(secret, parts)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Is `hex` the HMAC-SHA256 of `parts` (concatenated) under `secret`? Compared in constant
/// time; anything that is not 64 hex digits is simply wrong.
pub fn verify_hex(secret: &[u8], parts: &[&[u8]], hex: &str) -> bool {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let expected: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    expected.is_some_and(|e| mac(secret, parts).verify_slice(&e).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_under_its_secret_only_and_garbage_is_refused() {
        let sig = sign_hex(b"secret", &[b"v0:", b"1:", b"body"]);
        assert_eq!(sig.len(), 64);
        assert!(verify_hex(b"secret", &[b"v0:1:body"], &sig));
        assert!(verify_hex(b"secret", &[b"v0:1:body"], &sig.to_uppercase()));
        assert!(!verify_hex(b"other", &[b"v0:1:body"], &sig));
        assert!(!verify_hex(b"secret", &[b"v0:1:bodY"], &sig));
        for bad in ["", "zz", &sig[..62], &format!("{sig}00"), &"é".repeat(32)] {
            assert!(!verify_hex(b"secret", &[b"v0:1:body"], bad), "{bad:?}");
        }
    }
}
