//! WhatsApp Cloud API webhook payloads, as Meta sends them.
//!
//! Only the envelope (`entry[].changes[]`) is strict: a body without it is not a
//! webhook and is refused. Everything inside a change is read leniently, because
//! Meta adds fields and message types without notice and an unknown shape must
//! never make a delivery fail. Each update keeps its original bytes
//! ([`RawValue`]) so that it can be stored exactly as received.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The body of a webhook POST.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// `whatsapp_business_account` for WhatsApp; kept for the record, not enforced.
    #[serde(default)]
    pub object: Option<String>,
    pub entry: Vec<Entry>,
}

/// One business account's share of a delivery.
#[derive(Debug, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub id: Option<String>,
    /// Unix seconds; some fields (account updates) carry it here instead of in the value.
    #[serde(default)]
    pub time: Option<serde_json::Value>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change: a `field` and its `value`, whose shape depends on the field.
#[derive(Debug, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: Option<String>,
    pub value: Option<Box<RawValue>>,
}

/// The value of a `messages` change: inbound messages, delivery statuses, errors.
#[derive(Debug, Default, Deserialize)]
pub struct MessagesValue {
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<Box<RawValue>>,
    #[serde(default)]
    pub statuses: Vec<Box<RawValue>>,
    #[serde(default)]
    pub errors: Vec<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: Option<String>,
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
}

/// An inbound message. Every field is optional: a message we cannot read still
/// becomes an event (`other_message`).
#[derive(Debug, Default, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub text: Option<Text>,
    #[serde(default)]
    pub button: Option<QuickReply>,
    #[serde(default)]
    pub interactive: Option<Interactive>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub sticker: Option<Media>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Text {
    #[serde(default)]
    pub body: Option<String>,
}

/// A template's quick-reply button.
#[derive(Debug, Default, Deserialize)]
pub struct QuickReply {
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub button_reply: Option<Reply>,
    #[serde(default)]
    pub list_reply: Option<Reply>,
}

/// The chosen option of an interactive button or list.
#[derive(Debug, Default, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Media {
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// A delivery status of an outbound message.
#[derive(Debug, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    #[serde(default)]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
    /// Read as any JSON, so that an unexpected shape loses only the category.
    #[serde(default)]
    pub pricing: Option<serde_json::Value>,
}

impl Status {
    /// `pricing.category`, lower-cased: `marketing`, `utility`, `service`, …
    pub fn category(&self) -> Option<String> {
        let category = self.pricing.as_ref()?.get("category")?.as_str()?.trim();
        (!category.is_empty()).then(|| category.to_ascii_lowercase())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Unix seconds, which Meta sends as a string and some tools as a number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Text(String),
    Number(serde_json::Number),
}

impl Timestamp {
    pub fn unix_seconds(&self) -> Option<i64> {
        match self {
            Timestamp::Text(s) => s.trim().parse().ok(),
            Timestamp::Number(n) => n.as_i64(),
        }
    }
}

/// Reads `T` from a raw update, or `T::default()` when its shape is not the one we
/// know (so that the update is still recorded, with what could be read).
pub fn lenient<T: for<'de> Deserialize<'de> + Default>(raw: &RawValue) -> (T, bool) {
    match serde_json::from_str(raw.get()) {
        Ok(value) => (value, true),
        Err(_) => (T::default(), false),
    }
}
