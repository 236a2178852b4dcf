//! Masking of phone numbers (WhatsApp ids) wherever Pulse shows them, and of
//! what would let a reader recover one.

use sha2::{Digest, Sha256};

use crate::event::{Event, EventKind};

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

/// An event as the API and the live feed show it: the contact's number masked,
/// and message ids, which hold it too, replaced by opaque digests.
pub fn public_event(mut event: Event) -> Event {
    if let Some(contact) = event.contact.as_mut() {
        contact.wa_id = mask_phone(&contact.wa_id);
    }
    let mask = |id: &mut String| *id = mask_message_id(id);
    match &mut event.kind {
        EventKind::ButtonClick {
            message_id,
            context_message_id,
            ..
        } => {
            mask(message_id);
            context_message_id.as_mut().map(mask);
        }
        EventKind::ListSelection { message_id, .. }
        | EventKind::TextMessage { message_id, .. }
        | EventKind::MediaMessage { message_id, .. }
        | EventKind::OtherMessage { message_id, .. }
        | EventKind::StatusUpdate { message_id, .. } => mask(message_id),
        EventKind::OtherUpdate { .. } => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

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

    /// Every string of `value`, base64-decoded where it decodes (after the
    /// `wamid.` prefix), must not contain `digits`.
    fn leaks(value: &serde_json::Value, digits: &str) -> Vec<String> {
        use base64::Engine;
        let mut found = Vec::new();
        match value {
            serde_json::Value::String(text) => {
                let bare = text.trim_start_matches("wamid.");
                let engines = [
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE,
                ];
                let decoded = engines
                    .iter()
                    .filter_map(|e| e.decode(bare).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                for candidate in std::iter::once(text.clone()).chain(decoded) {
                    if candidate.contains(digits) {
                        found.push(text.clone());
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|v| found.extend(leaks(v, digits)));
            }
            serde_json::Value::Object(fields) => {
                fields.values().for_each(|v| found.extend(leaks(v, digits)));
            }
            _ => {}
        }
        found
    }

    #[test]
    fn shown_events_hold_no_recoverable_phone_number() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/whatsapp");
        let mut checked = 0;
        for file in std::fs::read_dir(samples).unwrap() {
            let body = std::fs::read(file.unwrap().path()).unwrap();
            for received in crate::event::events_from_body(&body, Utc::now()).unwrap() {
                let Some(wa_id) = received.event.contact.as_ref().map(|c| c.wa_id.clone()) else {
                    continue;
                };
                let shown = serde_json::to_value(public_event(received.event)).unwrap();
                let leaked = leaks(&shown, &wa_id);
                assert!(leaked.is_empty(), "{wa_id} recoverable from {leaked:?}");
                checked += 1;
            }
        }
        assert!(checked >= 5, "only {checked} events with a contact checked");
    }
}
