//! Masking of phone numbers (WhatsApp ids) wherever Pulse shows them, and of
//! what would let a reader recover one.

use sha2::{Digest, Sha256};

/// `919876543210` → `91•••••3210`. The middle is always five dots, so the mask
/// does not tell the number's length either; short ids keep at most their last two
/// characters.
pub fn mask_phone(wa_id: &str) -> String {
    const DOTS: &str = "•••••";
    let chars: Vec<char> = wa_id.chars().collect();
    match chars.len() {
        n if n >= 8 => {
            let head: String = chars[..2].iter().collect();
            let tail: String = chars[n - 4..].iter().collect();
            format!("{head}{DOTS}{tail}")
        }
        n if n >= 4 => format!("{DOTS}{}", chars[n - 2..].iter().collect::<String>()),
        _ => DOTS.to_owned(),
    }
}

/// A WhatsApp message id as shown: `msg_` and 24 hex digits of its SHA-256.
///
/// Meta's `wamid.HBgM…` ids are base64 of a structure that holds the contact's
/// full number, so they are never shown as they are. The digest is stable, so a
/// status still matches the message it is about, and it cannot be turned back
/// into the id (the id holds a random part besides the number). Stored events
/// keep the real id, which deduplication needs.
pub fn mask_message_id(id: &str) -> String {
    format!("msg_{}", hex::encode(&Sha256::digest(id.as_bytes())[..12]))
}

#[cfg(test)]
mod tests {
    use super::{mask_message_id, mask_phone};

    #[test]
    fn message_ids_become_stable_opaque_digests() {
        let id = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhgUM0VCMDlBNjg4RTRFRjdCOEE2RDkA";
        let masked = mask_message_id(id);
        assert_eq!(masked, mask_message_id(id));
        assert_ne!(masked, mask_message_id("wamid.other"));
        assert!(masked.starts_with("msg_") && masked.len() == 28, "{masked}");
        assert!(!masked.contains("HBgM"));
    }

    #[test]
    fn masks_the_middle() {
        assert_eq!(mask_phone("919876543210"), "91•••••3210");
        assert_eq!(mask_phone("16315551181"), "16•••••1181");
        assert_eq!(mask_phone("US.13491208655302741918"), "US•••••1918");
        assert_eq!(mask_phone("12345"), "•••••45");
        assert_eq!(mask_phone("12"), "•••••");
        assert_eq!(mask_phone(""), "•••••");
    }
}
