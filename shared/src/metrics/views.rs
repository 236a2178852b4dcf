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
    /// `healthy`; `degraded` when the store does not answer (HTTP 503) or an
    /// alert is active (HTTP 200, its rule in `alerts`).
    pub status: &'static str,
    pub store: StoreHealth,
    pub last_event_at: Option<DateTime<Utc>>,
    /// The rules of the active alerts (`GET /api/webhook/alerts` says more).
    pub alerts: Vec<crate::alerts::Rule>,
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

/// How many of the window's outbound messages reached each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Stages {
    /// Every outbound message (any status).
    pub sent: i64,
    /// Delivered or read.
    pub delivered: i64,
    pub read: i64,
    /// At least one click on it.
    pub clicked: i64,
    /// Has a failed status.
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyStages {
    pub date: NaiveDate,
    #[serde(flatten)]
    pub stages: Stages,
}

/// `data` of `GET /api/webhook/funnel`: the window's outbound messages (those
/// whose earliest status falls on one of its local days), stage by stage.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Funnel {
    pub window: Window,
    #[serde(flatten)]
    pub stages: Stages,
    /// By `pricing.category` (`unknown` when no status carried one).
    pub by_category: BTreeMap<String, Stages>,
    /// Every local day of the window, oldest first.
    pub daily: Vec<DailyStages>,
    pub clicks: FunnelClicks,
    pub rates: FunnelRates,
    /// From a message's earliest status to its first read.
    pub time_to_read_ms: Durations,
    /// From a message's earliest status to each click on it.
    pub time_to_click_ms: Durations,
    pub answers: Answers,
    pub contacts: Segments,
}

/// How many of the window's contacts (those with any event in it) fall in each
/// segment, by the window's messages to them: the first that holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Segments {
    /// Clicked at least one.
    pub engaged: i64,
    /// Read at least one.
    pub reading: i64,
    /// At least one delivered.
    pub unread: i64,
    /// Sent some, none delivered.
    pub unreached: i64,
    /// Nothing sent.
    pub none: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FunnelClicks {
    /// Clicks on the window's messages.
    pub total: i64,
    pub by_button: BTreeMap<String, i64>,
    /// Clicks in the window (by their own time) on a message Pulse has no status for.
    pub unattributed: i64,
}

/// Each stage ÷ `sent`; `null` when nothing was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct FunnelRates {
    pub delivered: Option<f64>,
    pub read: Option<f64>,
    pub clicked: Option<f64>,
}

/// Percentiles are within 2 % (log-scale buckets).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Durations {
    pub count: i64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// What the clicks on the window's messages got back: a click is answered by
/// the first outbound message to the same contact whose earliest status comes
/// after it, within 24 hours.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Answers {
    pub clicks: i64,
    pub answered: i64,
    /// Answers that reached delivered or read.
    pub answered_delivered: i64,
    /// From the click to the answer's earliest status.
    pub answer_ms: ResponseTimes,
}

/// `data` of `GET /api/webhook/contacts`: the window's contacts (those with
/// any event in it), latest activity first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Contacts {
    pub window: Window,
    pub contacts: Vec<ContactSummary>,
    /// The `cursor` of the next page; null on the last. A filtered page may
    /// hold fewer than `limit` and still have a next one.
    pub next: Option<String>,
}

/// A contact and its figures over the window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactSummary {
    /// Stable and opaque: names the contact in `/contacts/{key}` and in
    /// `/events/recent?contact=`.
    pub key: String,
    pub name: Option<String>,
    /// Masked.
    pub wa_id: String,
    pub last_activity: DateTime<Utc>,
    pub last_click: Option<DateTime<Utc>>,
    pub last_read: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    /// Meta's code of that failure.
    pub last_failure_code: Option<i64>,
    pub segment: SegmentName,
    pub window: ContactFigures,
}

/// A contact's segment in the window (see [`Segments`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SegmentName {
    Engaged,
    Reading,
    Unread,
    Unreached,
    None,
}

impl SegmentName {
    pub fn of(segment: crate::funnel::Segment) -> Self {
        use crate::funnel::Segment;
        match segment {
            Segment::Engaged => Self::Engaged,
            Segment::Reading => Self::Reading,
            Segment::Unread => Self::Unread,
            Segment::Unreached => Self::Unreached,
            Segment::None => Self::None,
        }
    }
}

/// A contact's outbound messages stage by stage, its clicks and its inbound
/// messages (clicks included). In a window: the messages of its days, from the
/// newest the contact's state keeps (24 sends, 16 clicks, 64 inbound and sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct ContactFigures {
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub clicked: u64,
    pub failed: u64,
    pub clicks: u64,
    pub inbound: u64,
}

/// `data` of `GET /api/webhook/contacts/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactDetail {
    /// The days its `window` figures count.
    pub period: Window,
    #[serde(flatten)]
    pub contact: ContactSummary,
    /// Since Pulse first saw the contact.
    pub lifetime: ContactFigures,
}

/// `data` of `GET /api/webhook/failures`: the window's messages that failed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Failures {
    pub window: Window,
    pub total: i64,
    /// Most messages first.
    pub codes: Vec<FailureCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FailureCode {
    /// Meta's `errors[0].code`; `null` when it gave none.
    pub code: Option<i64>,
    /// The latest title Meta gave for it.
    pub title: Option<String>,
    pub messages: i64,
    /// Distinct contacts with a message failed with this code.
    pub contacts: i64,
    /// Every local day of the window, oldest first.
    pub daily: Vec<DailyFailures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyFailures {
    pub date: NaiveDate,
    pub messages: i64,
}
