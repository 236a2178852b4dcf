//! The `key` that names a contact in the API: stable, opaque, and no way back
//! to the phone number for anyone who reads it.
//!
//! A key is the contact's `wa_id` encrypted with AES-SIV (RFC 5297), whose
//! encryption is deterministic, so one contact always has one key, and
//! authenticated, so a key Pulse did not make is refused. The cipher's key is
//! derived (HKDF-SHA256) from `CONTACT_KEY_SECRET`, which only the metrics
//! function holds. An unkeyed hash would not do: phone numbers are few enough
//! to try them all.

use std::sync::Arc;

use aes_siv::aead::{Aead, KeyInit};
use aes_siv::{Aes256SivAead, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// What the keys are made with.
#[derive(Clone)]
pub struct ContactKeys {
    cipher: Arc<Aes256SivAead>,
}

impl std::fmt::Debug for ContactKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactKeys([REDACTED])")
    }
}

/// The nonce is fixed: deterministic encryption is the point (SIV stays safe
/// with a repeated nonce; it then only shows that two plaintexts are equal).
const NONCE: [u8; 16] = [0; 16];
/// Names this use of the secret, so that the secret could serve another without
/// giving the same key.
const INFO: &[u8] = b"pulse contact key v1";

impl ContactKeys {
    pub fn new(secret: &SecretString) -> Self {
        let mut key = [0u8; 64];
        Hkdf::<Sha256>::new(None, secret.expose_secret().as_bytes())
            .expand(INFO, &mut key)
            .expect("64 bytes is a valid HKDF-SHA256 length");
        Self {
            cipher: Arc::new(Aes256SivAead::new((&key).into())),
        }
    }

    /// The key of the contact with this `wa_id`.
    pub fn key_of(&self, wa_id: &str) -> String {
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&NONCE), wa_id.as_bytes())
            .expect("AES-SIV encrypts any input");
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The `wa_id` a key names, or `None` for a key these keys did not make.
    pub fn wa_id_of(&self, key: &str) -> Option<String> {
        let sealed = URL_SAFE_NO_PAD.decode(key).ok()?;
        let opened = self
            .cipher
            .decrypt(Nonce::from_slice(&NONCE), sealed.as_slice())
            .ok()?;
        String::from_utf8(opened).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> ContactKeys {
        ContactKeys::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_key_is_stable_opaque_and_opens_only_under_its_secret() {
        let ours = keys("a secret of the metrics function");
        let key = ours.key_of("919876543210");
        assert_eq!(key, ours.key_of("919876543210"), "one contact, one key");
        assert_ne!(key, ours.key_of("919876543211"));
        assert!(!key.contains("9876") && !key.contains("3210"), "{key}");
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ours.wa_id_of(&key).as_deref(), Some("919876543210"));
        assert_eq!(keys("another secret").wa_id_of(&key), None);
        // A key changed by one character is refused, not opened to another number.
        let mut tampered = key.into_bytes();
        tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(ours.wa_id_of(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(ours.wa_id_of("not a key"), None);
        assert_eq!(ours.wa_id_of(""), None);
    }
}
