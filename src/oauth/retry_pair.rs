//! The token pair issued at a refresh, kept so that a client retrying the
//! same refresh within the grace window (a lost response, a flaky network)
//! gets the same pair instead of tripping reuse detection.
//!
//! The pair is sealed with ChaCha20-Poly1305 under a key derived from the
//! refresh token that was just rotated away. Only a client holding that
//! token can open it; a copy of the store alone reveals nothing.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

fn cipher(refresh_token: &str) -> ChaCha20Poly1305 {
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis retry pair v1\0");
    hasher.update(refresh_token.as_bytes());
    let key: [u8; 32] = hasher.finalize().into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

/// Seals `plaintext` under `refresh_token`: base64(nonce ‖ ciphertext).
pub fn seal(refresh_token: &str, plaintext: &[u8]) -> String {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(refresh_token)
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .expect("ChaCha20-Poly1305 encryption does not fail for in-memory data");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Opens a sealed pair; None for a wrong token or damaged data.
pub fn open(refresh_token: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(12);
    cipher(refresh_token)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_old_refresh_token_opens_the_pair() {
        let sealed = seal("old-refresh", b"{\"access_token\":\"a\"}");
        assert!(!sealed.contains("access_token"));
        assert_eq!(
            open("old-refresh", &sealed).unwrap(),
            b"{\"access_token\":\"a\"}"
        );
        assert_eq!(open("other", &sealed), None);
        assert_eq!(open("old-refresh", "garbage"), None);
        assert_eq!(open("old-refresh", ""), None);
        assert_ne!(
            seal("old-refresh", b"x"),
            seal("old-refresh", b"x"),
            "fresh nonce each time"
        );
    }
}
