//! The state [`super::apply`] keeps per contact and per outbound message.

use serde::{Deserialize, Serialize};

use super::timeline::{Side, Timeline};
use crate::funnel::{self, Engagement, Failure, MessageView};

/// What Pulse knows of one customer: the conversation list and response times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    pub wa_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Latest event time of any direction, Unix ms.
    pub last_activity_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_ms: Option<i64>,
    /// Inbound messages and clicks.
    pub inbound: u64,
    /// Distinct outbound messages (those with a status).
    pub outbound: u64,
    /// The button of the latest click by WhatsApp time (not by arrival).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_button: Option<String>,
    /// When that click happened, Unix ms; absent in state stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_button_ms: Option<i64>,
    #[serde(default)]
    pub timeline: Timeline,
    /// Recent sends and clicks, for answers, segments and failed contacts.
    #[serde(default, skip_serializing_if = "Engagement::is_empty")]
    pub engagement: Engagement,
    /// The latest read status of a message to it, Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_ms: Option<i64>,
    /// The latest failed status of a message to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
}

impl ContactState {
    /// Time of the first inbound message still waiting for our reply.
    pub fn pending_since_ms(&self) -> Option<i64> {
        self.timeline.replies().1
    }

    /// Its inbound messages and clicks in `window` that its timeline still holds.
    pub fn inbound_in(&self, window: &std::ops::Range<i64>) -> u64 {
        let entries = self.timeline.entries.iter();
        entries
            .filter(|(at, side)| *side == Side::In && window.contains(at))
            .count() as u64
    }
}

/// What Pulse knows of one outbound message, from its statuses and the clicks on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The most advanced status so far; never goes back (a late `sent` after `read`
    /// leaves `read`). Empty while Pulse has only clicks on it.
    #[serde(default)]
    pub status: String,
    /// Earliest status time, Unix ms: where the message counts as outbound (its
    /// day). `None` while Pulse has only clicks on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_status_ms: Option<i64>,
    /// Earliest delivered-or-read time: where it counts as delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_ms: Option<i64>,
    /// Earliest read time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_ms: Option<i64>,
    /// `pricing.category`. Statuses of one message carry one; should two differ,
    /// the first alphabetically is kept, so that arrival order does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Its latest failed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// (time, button) of each click on it, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clicks: Vec<(i64, String)>,
}

impl MessageState {
    pub(super) fn funnel(&self) -> MessageView<'_> {
        MessageView {
            first_status_ms: self.first_status_ms,
            category: self.category.as_deref(),
            reached_ms: self.reached_ms,
            read_ms: self.read_ms,
            failure: self.failure.as_ref(),
            clicks: &self.clicks,
        }
    }

    /// The message as its contact's recent sends keep it.
    pub(super) fn send(&self, message_id: &str) -> Option<funnel::Send> {
        let level = if !self.clicks.is_empty() {
            funnel::CLICKED
        } else if self.read_ms.is_some() {
            funnel::READ
        } else if self.reached_ms.is_some() {
            funnel::DELIVERED
        } else {
            funnel::SENT
        };
        Some(funnel::Send {
            at_ms: self.first_status_ms?,
            tag: funnel::message_tag(message_id),
            level,
            failed: self.failure.as_ref().map(Failure::code_number),
        })
    }
}

/// The earlier of two optional times.
pub(super) fn earliest(held: Option<i64>, at: i64) -> Option<i64> {
    Some(held.map_or(at, |h| h.min(at)))
}

/// The order statuses advance in; `failed` and unknown ones do not advance it.
pub(super) fn status_rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        _ => 0,
    }
}
