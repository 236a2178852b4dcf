//! What the REST API answers: the figures' shapes, with their OpenAPI schemas.
//! The computation that fills them is in the sibling modules.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::counters::utc_from_ms;
use crate::event::Event;
use crate::ingest::ContactState;
use crate::mask::mask_phone;

/// `data` of `GET /api/webhook/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WebhookMetrics {
    pub window: Window,
    pub button_clicks: ButtonClicks,
    pub messages: MessageCounts,
    pub statuses: StatusCounts,
    /// Outbound messages that reached delivered or read ÷ outbound messages with
    /// any status; `null` when there were none.
    pub delivery_success_rate: Option<f64>,
    pub response_time_ms: ResponseTimes,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Window {
    pub days: u32,
    /// First and last local calendar day, `YYYY-MM-DD`.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ButtonClicks {
    pub total: i64,
    /// Every known button, and any other id that was clicked.
    pub by_button: BTreeMap<String, i64>,
    pub daily: Vec<DailyClicks>,
    /// Clicks by local hour of day, 0 to 23.
    pub hourly: [i64; 24],
    /// Clicks by local weekday (Monday first) and hour: 7 rows of 24.
    pub weekday_hourly: [[i64; 24]; 7],
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyClicks {
    pub date: NaiveDate,
    pub total: i64,
    pub by_button: BTreeMap<String, i64>,
}

/// Inbound messages; clicks are not included, list selections count as other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct MessageCounts {
    pub text: i64,
    pub media: i64,
    pub other: i64,
    pub total: i64,
}

/// Distinct outbound messages for which each status was reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ResponseTimes {
    pub count: i64,
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// `data` of `GET /api/webhook/conversations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversations {
    /// Contacts with an inbound message in the last `active_minutes`.
    pub active_conversations: u64,
    pub active_minutes: u32,
    /// Inbound text messages today (local calendar day).
    pub daily_chat_volume: i64,
    pub conversations: Vec<Conversation>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversation {
    /// Masked.
    pub wa_id: String,
    pub name: Option<String>,
    pub last_activity: DateTime<Utc>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub last_button: Option<String>,
    pub reply_pending: bool,
    pub pending_since: Option<DateTime<Utc>>,
}

impl From<ContactState> for Conversation {
    fn from(contact: ContactState) -> Self {
        let pending = contact.pending_since_ms();
        Self {
            wa_id: mask_phone(&contact.wa_id),
            name: contact.name,
            last_activity: utc_from_ms(contact.last_activity_ms),
            messages_in: contact.inbound,
            messages_out: contact.outbound,
            last_button: contact.last_button,
            reply_pending: pending.is_some(),
            pending_since: pending.map(utc_from_ms),
        }
    }
}

/// `data` of `GET /api/webhook/stats/realtime`, by WhatsApp time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Realtime {
    pub last_minute: i64,
    pub last_5_minutes: i64,
    pub last_hour: i64,
    /// Oldest first, the current minute last.
    pub per_minute: Vec<MinuteCount>,
    pub last_event_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub count: i64,
}

/// `data` of `GET /api/webhook/events/recent`: a page, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentEvents {
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Body of `GET /health`: no personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub store: StoreHealth,
    pub last_event_at: Option<DateTime<Utc>>,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreHealth {
    pub reachable: bool,
    pub latency_ms: f64,
}

/// Body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthAnswer {
    #[serde(flatten)]
    pub health: Health,
    pub timestamp: DateTime<Utc>,
}
