//! A contact's inbound messages and replies in WhatsApp time, for response times.

use serde::{Deserialize, Serialize};

/// Inbound messages and outbound `sent` statuses of a contact, in WhatsApp time
/// order, from which response times follow: each run of unanswered inbound
/// messages is answered by the first `sent` at or after its first message.
///
/// Kept so that updates arriving out of order still give exact response times: a
/// late update changes the runs, and [`super::apply`] counts the difference. It holds the
/// last [`Timeline::CAPACITY`] entries; updates older than what it dropped
/// (`horizon_ms`) are too old to change a response time and are left out of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    horizon_ms: Option<i64>,
    pub(super) entries: Vec<(i64, Side)>,
}

/// Inbound sorts before outbound at the same time: a reply in the same second answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) enum Side {
    #[serde(rename = "i")]
    In,
    #[serde(rename = "o")]
    Out,
}

/// A response: (first unanswered inbound, first reply at or after it), Unix ms.
pub(super) type Response = (i64, i64);

impl Timeline {
    pub(super) const CAPACITY: usize = 64;

    /// The responses, and the start of the run still waiting for a reply.
    pub(super) fn replies(&self) -> (Vec<Response>, Option<i64>) {
        let mut responses = Vec::new();
        let mut pending = None;
        for &(at, side) in &self.entries {
            match side {
                Side::In => {
                    pending.get_or_insert(at);
                }
                Side::Out => responses.extend(pending.take().map(|start| (start, at))),
            }
        }
        (responses, pending)
    }

    /// Adds an entry; returns the responses it removed and those it added.
    pub(super) fn insert(&mut self, at: i64, side: Side) -> (Vec<Response>, Vec<Response>) {
        if self.horizon_ms.is_some_and(|horizon| at <= horizon) {
            return (Vec::new(), Vec::new());
        }
        let (before, _) = self.replies();
        let position = self.entries.partition_point(|entry| *entry <= (at, side));
        self.entries.insert(position, (at, side));
        let (after, _) = self.replies();
        self.trim();
        let removed = before
            .iter()
            .filter(|r| !after.contains(r))
            .copied()
            .collect();
        let added = after.into_iter().filter(|r| !before.contains(r)).collect();
        (removed, added)
    }

    /// Drops the oldest entries beyond capacity, cutting right after a reply so that
    /// what is kept starts a fresh run and its responses stay as they were counted.
    fn trim(&mut self) {
        if self.entries.len() <= Self::CAPACITY {
            return;
        }
        let excess = self.entries.len() - Self::CAPACITY;
        let cut = self
            .entries
            .iter()
            .enumerate()
            .skip(excess - 1)
            .find(|(_, e)| e.1 == Side::Out)
            .map(|(i, _)| i + 1);
        let cut = cut.or_else(|| {
            self.entries
                .iter()
                .rposition(|e| e.1 == Side::Out)
                .map(|i| i + 1)
        });
        if let Some(cut) = cut {
            self.horizon_ms = Some(self.entries[cut - 1].0);
            self.entries.drain(..cut);
        }
        // An open run longer than capacity: keep its first message (it sets the
        // response time) and the newest ones.
        if self.entries.len() > Self::CAPACITY {
            let excess = self.entries.len() - Self::CAPACITY;
            self.entries.drain(1..1 + excess);
        }
    }
}
