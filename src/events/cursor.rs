//! Opaque subscription cursors: a cursor is a position in the bus (epoch and sequence number)
//! sealed with ChaCha20-Poly1305 under a key from the configuration (`events.cursor_key_*`,
//! shared by replicas; random per process when none is given). The nonce is a keyed hash of the
//! position (SIV-style: one position always seals to one cursor, two positions never share a
//! nonce), so every subscriber of an event gets the same cursor for it, and a cursor tells a
//! caller nothing — not how many events happened between two of its own (events it may not see
//! included), not their order against another caller's. A string of a cursor's
//! shape that does not open under the key (another process's key, or altered) is a position
//! this server cannot know: the subscriber resyncs. Anything else is not a cursor.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use super::NotACursor;

/// What a cursor holds: 4 bytes of epoch, 8 of sequence number.
const PLAIN_LEN: usize = 12;
/// Poly1305's tag.
const TAG_LEN: usize = 16;
/// Bound before anything is decoded: nonce + sealed position + tag, base64url without padding.
const MAX_CURSOR_LEN: usize = 64;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct CursorKey {
    key: LessSafeKey,
    /// Derives each position's nonce (a different key from the cipher's).
    nonce_key: ring::hmac::Key,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// A key from 32 bytes of secret.
    pub fn new(secret: &[u8; 32]) -> Self {
        let derive = |label: &[u8]| {
            let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ring::hmac::sign(&k, label)
        };
        let cipher = derive(b"idp-graph cursor cipher");
        let key = UnboundKey::new(&CHACHA20_POLY1305, &cipher.as_ref()[..32])
            .expect("BUG: a 32-byte key is what ChaCha20-Poly1305 takes");
        let nonce = derive(b"idp-graph cursor nonce");
        Self {
            key: LessSafeKey::new(key),
            nonce_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, nonce.as_ref()),
        }
    }

    /// A key of this process alone (cursors then die with it).
    pub fn random() -> Self {
        Self::new(&rand::random::<[u8; 32]>())
    }

    pub fn seal(&self, epoch: u32, seq: u64) -> String {
        let mut buf = Vec::with_capacity(NONCE_LEN + PLAIN_LEN + 16);
        buf.extend_from_slice(&epoch.to_be_bytes());
        buf.extend_from_slice(&seq.to_be_bytes());
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(&ring::hmac::sign(&self.nonce_key, &buf).as_ref()[..NONCE_LEN]);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::empty(),
                &mut buf,
            )
            .expect("BUG: sealing 12 bytes cannot overflow");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        B64.encode(out)
    }

    /// The position in a cursor; `Ok(None)` for one of a cursor's shape that this key did not
    /// seal (or that was altered).
    pub fn open(&self, cursor: &str) -> Result<Option<(u32, u64)>, NotACursor> {
        let cursor = cursor.trim();
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(NotACursor);
        }
        let raw = B64.decode(cursor).map_err(|_| NotACursor)?;
        if raw.len() != NONCE_LEN + PLAIN_LEN + TAG_LEN {
            return Err(NotACursor);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| NotACursor)?;
        let mut sealed = sealed.to_vec();
        let Ok(plain) = self.key.open_in_place(nonce, Aad::empty(), &mut sealed) else {
            return Ok(None);
        };
        let (epoch, seq) = plain.split_at(4);
        let epoch = u32::from_be_bytes(epoch.try_into().map_err(|_| NotACursor)?);
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| NotACursor)?);
        Ok(Some((epoch, seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_position_opens_with_its_key_only() {
        let key = CursorKey::new(&[7; 32]);
        let a = key.seal(0xdead_beef, 213);
        let b = key.seal(0xdead_beef, 213);
        assert_eq!(
            a, b,
            "one position, one cursor (every subscriber of an event agrees)"
        );
        assert_eq!(key.open(&a), Ok(Some((0xdead_beef, 213))));
        assert_eq!(key.open(&b), Ok(Some((0xdead_beef, 213))));
        // Replicas sharing the key read each other's cursors; another key cannot.
        assert_eq!(
            CursorKey::new(&[7; 32]).open(&a),
            Ok(Some((0xdead_beef, 213)))
        );
        assert_eq!(CursorKey::new(&[8; 32]).open(&a), Ok(None));
        // Altered: a position nobody sealed.
        let mut bytes = B64.decode(&a).unwrap();
        bytes[15] ^= 1;
        assert_eq!(key.open(&B64.encode(&bytes)), Ok(None));
        // Truncated, padded, or not base64 at all: not a cursor.
        for bad in [
            "",
            "x",
            &a[..a.len() - 2],
            &format!("{a}AAAA"),
            "deadbeef-213",
            "💥",
        ] {
            assert_eq!(key.open(bad), Err(NotACursor), "{bad}");
        }
        // Neither the count nor the order shows: cursors of consecutive positions share no
        // prefix beyond chance.
        let c1 = key.seal(1, 1000);
        let c2 = key.seal(1, 1001);
        assert_ne!(c1[..8], c2[..8]);
    }
}
