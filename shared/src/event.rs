//! Domain events: what one WhatsApp update means to Pulse.
//!
//! [`events_from_body`] walks every `entry[].changes[]` of a webhook and turns each
//! message, status, error and other update into one [`Event`]. An event's id is a
//! digest of what makes the update unique (its message id, its message id and
//! status, or its content), so a redelivery yields the same id and is stored once.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::whatsapp::{self, Envelope, Message, MessagesValue, Status};

/// Button ids of the Click-to-Unlock flow. Any other id is counted under its own name.
pub const KNOWN_BUTTONS: [&str; 3] = ["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"];

/// One update of a webhook, as Pulse stores and shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Stable for the same update however often Meta delivers it.
    pub id: String,
    /// When it happened, by WhatsApp's `timestamp` (arrival time when there is
    /// none, or an implausible one).
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// WhatsApp's `timestamp` when it was not used because it cannot be right:
    /// more than [`MAX_CLOCK_AHEAD`] after arrival, or before WhatsApp existed.
    /// Such an event counts at its arrival time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implausible_timestamp: Option<i64>,
    /// The business phone number the update is about (`metadata.phone_number_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    /// The customer: the sender of an inbound message, the recipient of a status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<EventContact>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventContact {
    pub wa_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What kind of update an event is, with what each kind needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// An interactive `button_reply`, or a template quick-reply `button`.
    ButtonClick {
        message_id: String,
        button_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_message_id: Option<String>,
    },
    ListSelection {
        message_id: String,
        selection_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    TextMessage {
        message_id: String,
        body: String,
    },
    /// image, audio, video, document or sticker.
    MediaMessage {
        message_id: String,
        media_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// location, contacts, reaction, order, system, unsupported, edit, revoke, anything new.
    OtherMessage {
        message_id: String,
        message_type: String,
    },
    StatusUpdate {
        message_id: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<StatusError>,
        /// `pricing.category`: `marketing`, `utility`, `authentication`, `service`, …
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<String>,
    },
    /// Anything that is not a message or a status: template, account, phone-number,
    /// calls updates, errors of a messages change, and whatever Meta adds.
    OtherUpdate {
        field: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The event types, as the API names them (`type` of an event, `?type=` filter).
pub const EVENT_TYPES: [&str; 7] = [
    "button_click",
    "list_selection",
    "text_message",
    "media_message",
    "other_message",
    "status_update",
    "other_update",
];

impl EventKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ButtonClick { .. } => "button_click",
            EventKind::ListSelection { .. } => "list_selection",
            EventKind::TextMessage { .. } => "text_message",
            EventKind::MediaMessage { .. } => "media_message",
            EventKind::OtherMessage { .. } => "other_message",
            EventKind::StatusUpdate { .. } => "status_update",
            EventKind::OtherUpdate { .. } => "other_update",
        }
    }

    /// Whether the customer sent it (as opposed to a status of our own message or an
    /// account-level update).
    pub fn is_inbound(&self) -> bool {
        !matches!(
            self,
            EventKind::StatusUpdate { .. } | EventKind::OtherUpdate { .. }
        )
    }
}

impl Event {
    /// Text that an event's stored JSON holds exactly when its contact is
    /// `wa_id`: how the stores find one contact's events, stored by any
    /// version, without a column of their own.
    pub fn contact_marker(wa_id: &str) -> String {
        let quoted = serde_json::to_string(wa_id).expect("a string serialises");
        format!(r#""contact":{{"wa_id":{quoted}"#)
    }

    /// The text a free-text search looks in: message body, button id and title, list
    /// choice, caption, status, field and the contact's profile name, lower-cased.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<&str> = vec![self.kind.type_name()];
        match &self.kind {
            EventKind::ButtonClick {
                button_id, title, ..
            } => {
                parts.push(button_id);
                parts.extend(title.as_deref());
            }
            EventKind::ListSelection {
                selection_id,
                title,
                ..
            } => {
                parts.push(selection_id);
                parts.extend(title.as_deref());
            }
            EventKind::TextMessage { body, .. } => parts.push(body),
            EventKind::MediaMessage {
                media_type,
                caption,
                ..
            } => {
                parts.push(media_type);
                parts.extend(caption.as_deref());
            }
            EventKind::OtherMessage { message_type, .. } => parts.push(message_type),
            EventKind::StatusUpdate { status, error, .. } => {
                parts.push(status);
                parts.extend(error.as_ref().and_then(|e| e.title.as_deref()));
            }
            EventKind::OtherUpdate { field } => parts.push(field),
        }
        if let Some(name) = self.contact.as_ref().and_then(|c| c.name.as_deref()) {
            parts.push(name);
        }
        parts.join("\n").to_lowercase()
    }
}

/// An event together with the raw update it came from.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub event: Event,
    /// The update's JSON exactly as Meta sent it (Meta offers no way to fetch it again).
    pub raw: Box<RawValue>,
}

/// Why a signed body is not a webhook we can read.
#[derive(Debug, thiserror::Error)]
#[error("the body is not a WhatsApp webhook")]
pub struct PayloadError(#[from] serde_json::Error);

/// Parses a webhook body and returns one event per update, in payload order.
///
/// Fails only when the body is not JSON or has no `entry` array; any change,
/// message or status of an unknown shape still yields an event.
pub fn events_from_body(
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Vec<ReceivedEvent>, PayloadError> {
    // serde's derived `Deserialize` also reads a struct from a JSON array (its
    // fields in order); a webhook is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(PayloadError(serde::de::Error::custom(
            "a webhook body is a JSON object",
        )));
    }
    let envelope: Envelope = serde_json::from_slice(body)?;
    let mut events = Vec::new();
    for entry in &envelope.entry {
        let entry_time = entry.time.as_ref().and_then(json_unix_seconds);
        for change in &entry.changes {
            let Some(value) = change.value.as_deref() else {
                continue;
            };
            let field = change.field.as_deref().unwrap_or("unknown");
            let messages = (field == "messages")
                .then(|| serde_json::from_str::<MessagesValue>(value.get()).ok())
                .flatten();
            match messages {
                Some(messages) => {
                    events_from_messages(&messages, entry_time, received_at, &mut events);
                }
                None => events.push(other_update(field, value, entry_time, received_at)),
            }
        }
    }
    Ok(events)
}

fn events_from_messages(
    value: &MessagesValue,
    entry_time: Option<i64>,
    received_at: DateTime<Utc>,
    events: &mut Vec<ReceivedEvent>,
) {
    let phone_number_id = value
        .metadata
        .as_ref()
        .and_then(|m| m.phone_number_id.clone());
    let contact = |wa_id: Option<&str>| -> Option<EventContact> {
        let wa_id = wa_id?.to_owned();
        let name = value
            .contacts
            .iter()
            .find(|c| c.wa_id.as_deref() == Some(&wa_id) || c.user_id.as_deref() == Some(&wa_id))
            .or(if value.contacts.len() == 1 {
                value.contacts.first()
            } else {
                None
            })
            .and_then(|c| c.profile.as_ref()?.name.clone());
        Some(EventContact { wa_id, name })
    };
    for raw in &value.messages {
        let (message, _) = whatsapp::lenient::<Message>(raw);
        let message_id = message
            .id
            .clone()
            .unwrap_or_else(|| content_digest("message", raw));
        let seconds = message
            .timestamp
            .as_ref()
            .and_then(|t| t.unix_seconds())
            .or(entry_time);
        let event = Event {
            id: event_id(&format!("message:{message_id}")),
            occurred_at: occurred_at(seconds, received_at),
            received_at,
            implausible_timestamp: implausible(seconds, received_at),
            phone_number_id: phone_number_id.clone(),
            contact: contact(message.from.as_deref()),
            kind: message_kind(message, message_id),
        };
        events.push(ReceivedEvent {
            event,
            raw: raw.clone(),
        });
    }
    for raw in &value.statuses {
        let (status, _) = whatsapp::lenient::<Status>(raw);
        let message_id = status
            .id
            .clone()
            .unwrap_or_else(|| content_digest("status", raw));
        let name = status
            .status
            .as_deref()
            .unwrap_or("unknown")
            .to_ascii_lowercase();
        let seconds = status
            .timestamp
            .as_ref()
            .and_then(|t| t.unix_seconds())
            .or(entry_time);
        let error = status.errors.first().map(|e| StatusError {
            code: e.code.as_ref().and_then(json_unix_seconds),
            title: e.title.clone().or_else(|| e.message.clone()),
        });
        let event = Event {
            id: event_id(&format!("status:{message_id}:{name}")),
            occurred_at: occurred_at(seconds, received_at),
            received_at,
            implausible_timestamp: implausible(seconds, received_at),
            phone_number_id: phone_number_id.clone(),
            contact: contact(status.recipient_id.as_deref()),
            kind: EventKind::StatusUpdate {
                message_id,
                status: name,
                error,
                category: status.category(),
            },
        };
        events.push(ReceivedEvent {
            event,
            raw: raw.clone(),
        });
    }
    for raw in &value.errors {
        let mut update = other_update("messages.errors", raw, entry_time, received_at);
        update.event.phone_number_id = phone_number_id.clone();
        events.push(update);
    }
}

fn message_kind(message: Message, message_id: String) -> EventKind {
    let kind = message.kind.unwrap_or_else(|| "unknown".into());
    let context_message_id = message.context.and_then(|c| c.id);
    let interactive_reply =
        |reply: Option<whatsapp::Reply>| reply.and_then(|r| Some((r.id?, r.title)));
    match kind.as_str() {
        "text" => EventKind::TextMessage {
            message_id,
            body: message.text.and_then(|t| t.body).unwrap_or_default(),
        },
        "button" => match message.button {
            Some(whatsapp::QuickReply { payload, text }) if payload.is_some() || text.is_some() => {
                EventKind::ButtonClick {
                    message_id,
                    button_id: payload.or_else(|| text.clone()).unwrap_or_default(),
                    title: text,
                    context_message_id,
                }
            }
            _ => EventKind::OtherMessage {
                message_id,
                message_type: kind,
            },
        },
        "interactive" => {
            let interactive = message.interactive.unwrap_or_default();
            let sub_type = interactive.kind.unwrap_or_else(|| "unknown".into());
            match sub_type.as_str() {
                "button_reply" => match interactive_reply(interactive.button_reply) {
                    Some((button_id, title)) => EventKind::ButtonClick {
                        message_id,
                        button_id,
                        title,
                        context_message_id,
                    },
                    None => EventKind::OtherMessage {
                        message_id,
                        message_type: "interactive".into(),
                    },
                },
                "list_reply" => match interactive_reply(interactive.list_reply) {
                    Some((selection_id, title)) => EventKind::ListSelection {
                        message_id,
                        selection_id,
                        title,
                    },
                    None => EventKind::OtherMessage {
                        message_id,
                        message_type: "interactive".into(),
                    },
                },
                _ => EventKind::OtherMessage {
                    message_id,
                    message_type: format!("interactive.{sub_type}"),
                },
            }
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            let media = match kind.as_str() {
                "image" => message.image,
                "audio" => message.audio,
                "video" => message.video,
                "document" => message.document,
                _ => message.sticker,
            };
            let caption = media.and_then(|m| m.caption.or(m.filename));
            EventKind::MediaMessage {
                message_id,
                media_type: kind,
                caption,
            }
        }
        _ => EventKind::OtherMessage {
            message_id,
            message_type: kind,
        },
    }
}

fn other_update(
    field: &str,
    value: &RawValue,
    entry_time: Option<i64>,
    received_at: DateTime<Utc>,
) -> ReceivedEvent {
    let seconds = serde_json::from_str::<serde_json::Value>(value.get())
        .ok()
        .and_then(|v| v.get("timestamp").and_then(json_unix_seconds))
        .or(entry_time);
    let event = Event {
        id: event_id(&format!("update:{field}:{}", content_digest(field, value))),
        occurred_at: occurred_at(seconds, received_at),
        received_at,
        implausible_timestamp: implausible(seconds, received_at),
        phone_number_id: None,
        contact: None,
        kind: EventKind::OtherUpdate {
            field: field.to_owned(),
        },
    };
    ReceivedEvent {
        event,
        raw: value.to_owned(),
    }
}

/// Unix seconds from a JSON number or numeric string.
fn json_unix_seconds(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// How far ahead of arrival a WhatsApp time may be (clock skew) and still be used.
pub const MAX_CLOCK_AHEAD: chrono::Duration = chrono::Duration::hours(1);
/// Nothing on WhatsApp happened before it launched (2009-01-01T00:00:00Z).
const EARLIEST_PLAUSIBLE_SECONDS: i64 = 1_230_768_000;

/// WhatsApp's time if it is a plausible one, else the arrival time. Meta
/// redelivers for days, so old times are normal; a time far ahead would sit on
/// top of every newest-first list for ever.
fn occurred_at(unix_seconds: Option<i64>, received_at: DateTime<Utc>) -> DateTime<Utc> {
    unix_seconds
        .filter(|s| implausible(Some(*s), received_at).is_none())
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .unwrap_or(received_at)
}

/// The time WhatsApp gave, when it cannot be right.
fn implausible(unix_seconds: Option<i64>, received_at: DateTime<Utc>) -> Option<i64> {
    let latest = (received_at + MAX_CLOCK_AHEAD).timestamp();
    unix_seconds.filter(|s| !(EARLIEST_PLAUSIBLE_SECONDS..=latest).contains(s))
}

/// A digest of an update's content that ignores formatting and key order, so that
/// the same update re-serialised by a proxy is still the same update.
fn content_digest(label: &str, raw: &RawValue) -> String {
    let canonical = serde_json::from_str::<serde_json::Value>(raw.get())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| raw.get().to_owned());
    let digest = Sha256::new()
        .chain_update(label)
        .chain_update([0])
        .chain_update(canonical)
        .finalize();
    hex::encode(&digest[..16])
}

/// The event id for a uniqueness key: 32 hex digits of its SHA-256.
fn event_id(unique_key: &str) -> String {
    hex::encode(&Sha256::digest(unique_key.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Vec<Event> {
        events_from_body(body.as_bytes(), Utc::now())
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .collect()
    }

    fn messages(items: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{
            "metadata":{{"phone_number_id":"PN"}},
            "contacts":[{{"profile":{{"name":"Asha"}},"wa_id":"919876543210"}}],{items}}}}}]}}]}}"#
        )
    }

    #[test]
    fn button_reply_and_quick_reply_are_clicks() {
        let events = parse(&messages(
            r#""messages":[
            {"from":"919876543210","id":"wamid.1","timestamp":"1700000000","type":"interactive",
             "context":{"id":"wamid.0"},
             "interactive":{"type":"button_reply","button_reply":{"id":"UNLOCK_CONTENT","title":"Unlock"}}},
            {"from":"919876543210","id":"wamid.2","timestamp":"1700000001","type":"button",
             "button":{"payload":"RETRIEVE_CONTENT","text":"Get it"}}]"#,
        ));
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].kind,
            EventKind::ButtonClick {
                message_id: "wamid.1".into(),
                button_id: "UNLOCK_CONTENT".into(),
                title: Some("Unlock".into()),
                context_message_id: Some("wamid.0".into()),
            }
        );
        assert_eq!(events[0].occurred_at.timestamp(), 1_700_000_000);
        assert_eq!(
            events[0].contact.as_ref().unwrap().name.as_deref(),
            Some("Asha")
        );
        assert!(
            matches!(&events[1].kind, EventKind::ButtonClick { button_id, .. } if button_id == "RETRIEVE_CONTENT")
        );
    }

    #[test]
    fn every_update_of_a_batch_becomes_one_event() {
        let events = parse(&messages(
            r#""messages":[
              {"from":"1","id":"m1","timestamp":"1","type":"text","text":{"body":"hi"}},
              {"from":"1","id":"m2","timestamp":"2","type":"image","image":{"caption":"pic"}},
              {"from":"1","id":"m3","timestamp":"3","type":"location","location":{}},
              {"from":"1","id":"m4","timestamp":"4","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"L","title":"T"}}},
              {"from":"1","id":"m5","timestamp":"5","type":"brand_new_type"}],
            "statuses":[{"id":"out1","status":"failed","timestamp":"6","recipient_id":"1",
              "errors":[{"code":131047,"title":"Re-engagement message"}],
              "pricing":{"billable":true,"category":"Marketing"}}],
            "errors":[{"code":1,"title":"x"}]"#,
        ));
        let types: Vec<_> = events.iter().map(|e| e.kind.type_name()).collect();
        assert_eq!(
            types,
            [
                "text_message",
                "media_message",
                "other_message",
                "list_selection",
                "other_message",
                "status_update",
                "other_update"
            ]
        );
        assert_eq!(
            events[5].kind,
            EventKind::StatusUpdate {
                message_id: "out1".into(),
                status: "failed".into(),
                error: Some(StatusError {
                    code: Some(131047),
                    title: Some("Re-engagement message".into())
                }),
                category: Some("marketing".into()),
            }
        );
    }

    #[test]
    fn ids_are_stable_and_distinguish_status_from_message() {
        let body = messages(
            r#""messages":[{"from":"1","id":"X","timestamp":"1","type":"text","text":{"body":"a"}}],
               "statuses":[{"id":"X","status":"sent","timestamp":"1"},{"id":"X","status":"read","timestamp":"2"}]"#,
        );
        let (a, b) = (parse(&body), parse(&body));
        assert_eq!(
            a.iter().map(|e| &e.id).collect::<Vec<_>>(),
            b.iter().map(|e| &e.id).collect::<Vec<_>>()
        );
        assert_ne!(a[0].id, a[1].id);
        assert_ne!(a[1].id, a[2].id);
    }

    #[test]
    fn other_fields_are_other_updates_keyed_by_content() {
        let update = |value: &str| {
            format!(
                r#"{{"entry":[{{"id":"1","time":1700000000,"changes":[{{"field":"account_update","value":{value}}}]}}]}}"#
            )
        };
        let a = parse(&update(
            r#"{"event":"VERIFIED_ACCOUNT","phone_number":"1"}"#,
        ));
        let reordered = parse(&update(
            r#"{ "phone_number": "1", "event": "VERIFIED_ACCOUNT" }"#,
        ));
        let other = parse(&update(r#"{"event":"DISABLED_UPDATE","phone_number":"1"}"#));
        assert_eq!(
            a[0].kind,
            EventKind::OtherUpdate {
                field: "account_update".into()
            }
        );
        assert_eq!(a[0].occurred_at.timestamp(), 1_700_000_000);
        assert_eq!(a[0].id, reordered[0].id);
        assert_ne!(a[0].id, other[0].id);
    }

    #[test]
    fn unknown_shapes_never_fail_but_non_webhooks_do() {
        let odd = r#"{"entry":[{"changes":[{"field":"messages","value":{"messages":"not a list"}},
                      {"field":"messages","value":{"messages":[{"type":42}]}}]}]}"#;
        let events = parse(odd);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind.type_name(), "other_update");
        assert_eq!(events[1].kind.type_name(), "other_message");
        assert!(events_from_body(b"{\"entry\": 1}", Utc::now()).is_err());
        assert!(events_from_body(b"[]", Utc::now()).is_err());
        assert!(events_from_body(b"{\"entry\":[]", Utc::now()).is_err());
    }

    #[test]
    fn raw_update_is_kept_byte_for_byte() {
        let body = messages(
            r#""messages":[{"from":"1","id":"m","timestamp":"1","type":"text","text":{"body":"a\/b"}}]"#,
        );
        let received = events_from_body(body.as_bytes(), Utc::now()).unwrap();
        assert!(received[0].raw.get().contains(r#""body":"a\/b""#));
    }

    #[test]
    fn implausible_times_count_at_arrival_and_say_so() {
        let received = Utc.timestamp_opt(1_767_225_600, 0).unwrap(); // 2026-01-01
        let at = |timestamp: &str| {
            let body = messages(&format!(
                r#""messages":[{{"from":"919876543210","id":"wamid.t","timestamp":"{timestamp}","type":"text","text":{{"body":"x"}}}}]"#
            ));
            let event = events_from_body(body.as_bytes(), received)
                .unwrap()
                .remove(0)
                .event;
            (event.occurred_at.timestamp(), event.implausible_timestamp)
        };
        let now = received.timestamp();
        // Year 5138, before WhatsApp, and Unix time 0: arrival time, marked.
        assert_eq!(at("99999999999"), (now, Some(99_999_999_999)));
        assert_eq!(at("1000000000"), (now, Some(1_000_000_000)));
        assert_eq!(at("0"), (now, Some(0)));
        // Clock skew within the hour, and a redelivery days late: kept as sent.
        assert_eq!(at(&(now + 1_800).to_string()), (now + 1_800, None));
        assert_eq!(
            at(&(now - 3 * 86_400).to_string()),
            (now - 3 * 86_400, None)
        );
        assert_eq!(at(&(now + 7_200).to_string()), (now, Some(now + 7_200)));
    }
}
