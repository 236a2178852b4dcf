//! The Click-to-Unlock funnel as counters: what one outbound message, and one
//! contact's recent sends and clicks, add to the funnel and failure counters.
//!
//! Each contribution is a pure function of a state that is itself the same
//! whatever order the events came in (earliest times, the most advanced status,
//! the set of clicks). [`crate::ingest::apply`] counts the contribution after an
//! event minus the one before it, so the counters always equal the sum of the
//! contributions of the current states, in any order of arrival.
//!
//! A message counts on the quarter of its earliest status (its *day*), so a late
//! `sent` that moves it to an earlier day moves all its counts there.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::counters::{histogram, Contribution};

/// Counter names, all under one prefix so that the funnel and failures routes
/// read them with their quarters (for local days).
pub mod names {
    pub const PREFIX: &str = "f:";
    /// `f:{stage}:{category}`, a message at its day.
    pub const STAGES: [&str; 5] = ["sent", "delivered", "read", "clicked", "failed"];
    /// `f:click:{button}`: clicks on messages, at the message's day.
    pub const CLICK: &str = "f:click:";
    /// Clicks on a message without any status, at the click's own time.
    pub const UNATTRIBUTED: &str = "f:unattributed";
    /// `f:ttr:{bucket}`, `f:ttc:{bucket}`: histograms of the time to read and to click.
    pub const TIME_TO_READ: &str = "f:ttr:";
    pub const TIME_TO_CLICK: &str = "f:ttc:";
    /// `f:fail:{code}:{title}`: failed messages by Meta's code (`-` for none) and title.
    pub const FAILURE: &str = "f:fail:";
    /// `f:failc:{code}`: each contact once, at the day of its latest message failed
    /// with that code (so a window that ends today sums distinct contacts).
    pub const FAILED_CONTACTS: &str = "f:failc:";
    /// Answers, at the clicked message's day.
    pub const ANSWER_CLICKS: &str = "f:a:clicks";
    pub const ANSWERED: &str = "f:a:answered";
    pub const ANSWER_DELIVERED: &str = "f:a:delivered";
    pub const ANSWER_SUM_MS: &str = "f:a:sum_ms";
    pub const ANSWER_BUCKET: &str = "f:a:b:";
    /// `f:seg:{level}`: each contact once, at the day of its latest message that
    /// got at least that far (see [`super::Level`]). A window that ends today
    /// sums the contacts with such a message in it.
    pub const SEGMENT: &str = "f:seg:";
    pub const LEVELS: [&str; 4] = [
        "f:seg:sent",
        "f:seg:delivered",
        "f:seg:read",
        "f:seg:clicked",
    ];
    /// Each contact once, at its latest activity: the window's contacts.
    pub const ACTIVE_CONTACTS: &str = "f:seg:active";

    pub fn stage(stage: &str, category: &str) -> String {
        format!("{PREFIX}{stage}:{category}")
    }
}

/// The category of a message whose statuses carry none.
pub const UNKNOWN_CATEGORY: &str = "unknown";
/// The code of a failure that Meta gave none for, in counter names.
pub const NO_CODE: &str = "-";
/// How long after a click an outbound message still answers it.
pub const ANSWER_WITHIN_MS: i64 = 24 * 3_600_000;
/// Titles longer than this are cut, so that a counter name stays small.
const TITLE_CHARS: usize = 120;

/// A failed status of a message, as the message keeps it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Failure {
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Failure {
    /// The code as a contact's sends keep it.
    pub fn code_number(&self) -> i64 {
        self.code.unwrap_or(NO_CODE_NUMBER)
    }

    /// The code as counter names write it.
    pub fn code_name(&self) -> String {
        self.code
            .map_or_else(|| NO_CODE.to_owned(), |c| c.to_string())
    }
}

/// What the funnel needs of one outbound message (kept in its state).
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// Earliest status time; `None` while Pulse has only clicks on it.
    pub first_status_ms: Option<i64>,
    pub category: Option<&'a str>,
    pub reached_ms: Option<i64>,
    pub read_ms: Option<i64>,
    pub failure: Option<&'a Failure>,
    /// (time, button) of each click on it.
    pub clicks: &'a [(i64, String)],
}

/// What one message adds to the counters.
pub fn message_counts(message: MessageView<'_>, cells: &mut Contribution) {
    let Some(day) = message.first_status_ms else {
        for (at, _) in message.clicks {
            cells.add(*at, names::UNATTRIBUTED, 1);
        }
        return;
    };
    let category = message.category.unwrap_or(UNKNOWN_CATEGORY);
    let stages = [
        true,
        message.reached_ms.is_some(),
        message.read_ms.is_some(),
        !message.clicks.is_empty(),
        message.failure.is_some(),
    ];
    for (stage, held) in names::STAGES.iter().zip(stages) {
        if held {
            cells.add(day, names::stage(stage, category), 1);
        }
    }
    for (at, button) in message.clicks {
        cells.add(day, format!("{}{button}", names::CLICK), 1);
        cells.add(day, bucket_name(names::TIME_TO_CLICK, at - day), 1);
    }
    if let Some(read) = message.read_ms {
        cells.add(day, bucket_name(names::TIME_TO_READ, read - day), 1);
    }
    if let Some(failure) = message.failure {
        let title: String = failure
            .title
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(TITLE_CHARS)
            .collect();
        let name = format!("{}{}:{title}", names::FAILURE, failure.code_name());
        cells.add(day, name, 1);
    }
}

fn bucket_name(prefix: &str, millis: i64) -> String {
    format!("{prefix}{}", histogram::bucket(millis.max(0)))
}

/// A short digest of a message id: enough to tell a contact's few dozen
/// messages apart (48 bits), a number so that a contact's state copies and
/// compares without allocating.
pub fn message_tag(message_id: &str) -> u64 {
    let digest = Sha256::digest(message_id.as_bytes());
    let mut bytes = [0; 8];
    bytes[2..].copy_from_slice(&digest[..6]);
    u64::from_be_bytes(bytes)
}

/// How far an outbound message got: each level holds those above it (a click
/// counts as read when the contact turned read receipts off).
pub type Level = u8;
pub const SENT: Level = 1;
pub const DELIVERED: Level = 2;
pub const READ: Level = 3;
pub const CLICKED: Level = 4;

/// One of a contact's recent outbound messages. Kept as a JSON array
/// (`[time, tag, level, failure code]`): a contact's row is rewritten as it
/// changes, and its size is what that costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "SendRow", into = "SendRow")]
pub struct Send {
    /// Its earliest status time.
    pub at_ms: i64,
    /// [`message_tag`] of its id.
    pub tag: u64,
    /// How far it got ([`SENT`] to [`CLICKED`]).
    pub level: Level,
    /// When it failed, Meta's code ([`NO_CODE_NUMBER`] when Meta gave none).
    pub failed: Option<i64>,
}

/// A failure without a code, as a [`Send`] keeps it (Meta's codes are positive).
pub const NO_CODE_NUMBER: i64 = 0;

impl Send {
    pub fn reached(&self) -> bool {
        self.level >= DELIVERED
    }
}

type SendRow = (i64, u64, StoredLevel, Option<i64>);

/// A send's level as stored: schema version 5 kept only whether it was
/// delivered, which version 6's upgrade replaces.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredLevel {
    Level(Level),
    Reached(bool),
}

impl From<SendRow> for Send {
    fn from((at_ms, tag, level, failed): SendRow) -> Self {
        let level = match level {
            StoredLevel::Level(level) => level,
            StoredLevel::Reached(reached) => [SENT, DELIVERED][usize::from(reached)],
        };
        Self {
            at_ms,
            tag,
            level,
            failed,
        }
    }
}

impl From<Send> for SendRow {
    fn from(send: Send) -> Self {
        (
            send.at_ms,
            send.tag,
            StoredLevel::Level(send.level),
            send.failed,
        )
    }
}

/// One of a contact's recent clicks, kept as `[time, tag]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "(i64, u64)", into = "(i64, u64)")]
pub struct Click {
    pub at_ms: i64,
    /// [`message_tag`] of the message clicked.
    pub tag: u64,
}

impl From<(i64, u64)> for Click {
    fn from((at_ms, tag): (i64, u64)) -> Self {
        Self { at_ms, tag }
    }
}

impl From<Click> for (i64, u64) {
    fn from(click: Click) -> Self {
        (click.at_ms, click.tag)
    }
}

/// A contact's recent sends and clicks: what answers, failed contacts and
/// segments are counted from. Holds the newest [`Engagement::SENDS`] sends and
/// [`Engagement::CLICKS`] clicks; what is dropped stays counted as it was, and
/// later updates about it are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<Send>,
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    pub clicks: Vec<Click>,
    /// Newest time dropped; older updates are left out.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub horizon_ms: Option<i64>,
    /// The latest dropped send at each level, [`SENT`] first: the contact's
    /// segments go on counting it.
    #[serde(rename = "d", default, skip_serializing_if = "no_levels")]
    pub dropped: [Option<i64>; 4],
    /// What the dropped sends and clicks counted, for the lifetime figures.
    #[serde(rename = "g", default, skip_serializing_if = "Figures::is_zero")]
    pub gone: Figures,
}

fn no_levels(dropped: &[Option<i64>; 4]) -> bool {
    dropped.iter().all(Option::is_none)
}

/// A contact's outbound messages by how far they got, and its clicks on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "[u64; 6]", into = "[u64; 6]")]
pub struct Figures {
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub clicked: u64,
    pub failed: u64,
    pub clicks: u64,
}

impl Figures {
    fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    fn count_send(&mut self, send: &Send) {
        self.sent += 1;
        self.delivered += u64::from(send.level >= DELIVERED);
        self.read += u64::from(send.level >= READ);
        self.clicked += u64::from(send.level >= CLICKED);
        self.failed += u64::from(send.failed.is_some());
    }

    fn plus(self, other: Self) -> Self {
        Self {
            sent: self.sent + other.sent,
            delivered: self.delivered + other.delivered,
            read: self.read + other.read,
            clicked: self.clicked + other.clicked,
            failed: self.failed + other.failed,
            clicks: self.clicks + other.clicks,
        }
    }
}

impl From<[u64; 6]> for Figures {
    fn from([sent, delivered, read, clicked, failed, clicks]: [u64; 6]) -> Self {
        Self {
            sent,
            delivered,
            read,
            clicked,
            failed,
            clicks,
        }
    }
}

impl From<Figures> for [u64; 6] {
    fn from(f: Figures) -> Self {
        [f.sent, f.delivered, f.read, f.clicked, f.failed, f.clicks]
    }
}

/// Where a contact stands in a window, by the window's messages to it: the
/// first that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Clicked at least one.
    Engaged,
    /// Read at least one.
    Reading,
    /// At least one delivered.
    Unread,
    /// Sent some, none delivered.
    Unreached,
    /// Nothing sent.
    None,
}

impl Segment {
    pub const ALL: [Segment; 5] = [
        Self::Engaged,
        Self::Reading,
        Self::Unread,
        Self::Unreached,
        Self::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Engaged => "engaged",
            Self::Reading => "reading",
            Self::Unread => "unread",
            Self::Unreached => "unreached",
            Self::None => "none",
        }
    }
}

impl Engagement {
    /// About twelve days of daily content and its answers.
    pub const SENDS: usize = 24;
    pub const CLICKS: usize = 16;

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty() && self.clicks.is_empty() && self.horizon_ms.is_none()
    }

    fn too_old(&self, at_ms: i64) -> bool {
        self.horizon_ms.is_some_and(|h| at_ms <= h)
    }

    /// Puts a send as its message now stands (replacing what was known of it).
    /// Returns false when it is older than what the contact keeps.
    pub fn put_send(&mut self, send: Send) -> bool {
        if self.too_old(send.at_ms) {
            return false;
        }
        self.sends.retain(|s| s.tag != send.tag);
        let at = self.sends.partition_point(|s| *s < send);
        self.sends.insert(at, send);
        true
    }

    /// Adds a click (once: the clicks are a set). Returns false when it is
    /// older than what the contact keeps.
    pub fn add_click(&mut self, click: Click) -> bool {
        if self.too_old(click.at_ms) {
            return false;
        }
        if let Err(at) = self.clicks.binary_search(&click) {
            self.clicks.insert(at, click);
        }
        true
    }

    /// Drops the oldest beyond capacity (after their effect was counted).
    pub fn trim(&mut self) {
        let sends = drain_oldest(&mut self.sends, Self::SENDS);
        let clicks = drain_oldest(&mut self.clicks, Self::CLICKS);
        for send in &sends {
            for latest in &mut self.dropped[..usize::from(send.level)] {
                *latest = (*latest).max(Some(send.at_ms));
            }
            self.gone.count_send(send);
        }
        self.gone.clicks += clicks.len() as u64;
        let dropped = sends.iter().map(|s| s.at_ms);
        if let Some(newest) = dropped.chain(clicks.iter().map(|c| c.at_ms)).max() {
            self.horizon_ms = self.horizon_ms.max(Some(newest));
        }
    }

    /// The segment of a window that starts at `start_ms` and ends now: the same
    /// rule as the segment counters, so a list agrees with their counts.
    pub fn segment(&self, start_ms: i64) -> Segment {
        let reached = |level| self.latest(level).is_some_and(|at| at >= start_ms);
        match (SENT..=CLICKED).rev().find(|level| reached(*level)) {
            Some(CLICKED) => Segment::Engaged,
            Some(READ) => Segment::Reading,
            Some(DELIVERED) => Segment::Unread,
            Some(_) => Segment::Unreached,
            None => Segment::None,
        }
    }

    /// The kept sends of `window` (by their earliest status) and the kept
    /// clicks in it (by their own time).
    pub fn figures(&self, window: &std::ops::Range<i64>) -> Figures {
        let mut figures = Figures::default();
        for send in self.sends.iter().filter(|s| window.contains(&s.at_ms)) {
            figures.count_send(send);
        }
        figures.clicks = self
            .clicks
            .iter()
            .filter(|c| window.contains(&c.at_ms))
            .count() as u64;
        figures
    }

    /// Everything the contact's sends and clicks counted, dropped ones included.
    pub fn lifetime(&self) -> Figures {
        self.figures(&(i64::MIN..i64::MAX)).plus(self.gone)
    }

    /// Whether a kept send of `window` failed with `code` ([`NO_CODE_NUMBER`]
    /// for none).
    pub fn failed_with(&self, code: i64, window: &std::ops::Range<i64>) -> bool {
        self.sends
            .iter()
            .any(|s| s.failed == Some(code) && window.contains(&s.at_ms))
    }

    /// The time of the latest send at `level` or beyond, dropped ones included.
    fn latest(&self, level: Level) -> Option<i64> {
        let kept = self.sends.iter().rev().find(|s| s.level >= level);
        kept.map(|s| s.at_ms)
            .max(self.dropped[usize::from(level) - 1])
    }

    /// What the contact adds to the counters: its answers, its failure codes
    /// and its segments.
    pub fn counts(&self, cells: &mut Contribution) {
        for click in &self.clicks {
            // Only clicks on a message Pulse has a status for have a day.
            let Some(clicked) = self.sends.iter().find(|s| s.tag == click.tag) else {
                continue;
            };
            let day = clicked.at_ms;
            cells.add(day, names::ANSWER_CLICKS, 1);
            let answer = self
                .sends
                .iter()
                .find(|s| s.at_ms > click.at_ms && s.at_ms - click.at_ms <= ANSWER_WITHIN_MS);
            if let Some(answer) = answer {
                let took = answer.at_ms - click.at_ms;
                cells.add(day, names::ANSWERED, 1);
                if answer.reached() {
                    cells.add(day, names::ANSWER_DELIVERED, 1);
                }
                cells.add(day, names::ANSWER_SUM_MS, took);
                cells.add(day, bucket_name(names::ANSWER_BUCKET, took), 1);
            }
        }
        let mut latest: Vec<(i64, i64)> = Vec::new();
        for send in &self.sends {
            if let Some(code) = send.failed {
                match latest.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, at)) => *at = (*at).max(send.at_ms),
                    None => latest.push((code, send.at_ms)),
                }
            }
        }
        for (code, at) in latest {
            let code = match code {
                NO_CODE_NUMBER => NO_CODE.to_owned(),
                code => code.to_string(),
            };
            cells.add(at, format!("{}{code}", names::FAILED_CONTACTS), 1);
        }
        for (level, name) in (SENT..=CLICKED).zip(names::LEVELS) {
            if let Some(at) = self.latest(level) {
                cells.add(at, name, 1);
            }
        }
    }
}

/// Removes and returns the oldest entries beyond `capacity` (kept in time order).
fn drain_oldest<T>(entries: &mut Vec<T>, capacity: usize) -> Vec<T> {
    let excess = entries.len().saturating_sub(capacity);
    entries.drain(..excess).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::counters::{utc_from_ms, Deltas, Granularity};

    const T0: i64 = 1_767_225_600_000;
    const MINUTE: i64 = 60_000;

    /// What a contribution adds, as deltas.
    fn added(cells: Contribution) -> Deltas {
        let mut deltas = Deltas::default();
        deltas.add_change(Contribution::default(), cells);
        deltas
    }

    fn message_deltas(message: MessageView<'_>) -> Deltas {
        let mut cells = Contribution::default();
        message_counts(message, &mut cells);
        added(cells)
    }

    fn contact_deltas(contact: &Engagement) -> Deltas {
        let mut cells = Contribution::default();
        contact.counts(&mut cells);
        added(cells)
    }

    fn totals(deltas: &Deltas) -> std::collections::BTreeMap<String, i64> {
        let mut sums = std::collections::BTreeMap::new();
        for (key, value) in deltas.iter() {
            *sums.entry(key.name.clone()).or_default() += value;
        }
        sums
    }

    #[test]
    fn a_message_counts_each_stage_once_at_its_day() {
        let failure = Failure {
            at_ms: T0 + MINUTE,
            code: Some(131_047),
            title: Some("Re-engagement message".into()),
        };
        let clicks = [(T0 + 5 * MINUTE, "UNLOCK_CONTENT".to_owned())];
        let message = MessageView {
            first_status_ms: Some(T0),
            category: Some("utility"),
            reached_ms: Some(T0 + MINUTE),
            read_ms: Some(T0 + 2 * MINUTE),
            failure: Some(&failure),
            clicks: &clicks,
        };
        let deltas = message_deltas(message);
        let sums = totals(&deltas);
        for stage in names::STAGES {
            assert_eq!(sums[&names::stage(stage, "utility")], 1, "{stage}");
        }
        assert_eq!(sums["f:click:UNLOCK_CONTENT"], 1);
        assert_eq!(sums["f:fail:131047:Re-engagement message"], 1);
        assert_eq!(deltas.slots(), 1, "all at the message's quarter");
        // A change to the same state changes nothing.
        let mut cells = Contribution::default();
        message_counts(message, &mut cells);
        let mut unchanged = Deltas::default();
        unchanged.add_change(cells.clone(), cells);
        assert!(unchanged.is_empty());
    }

    #[test]
    fn clicks_without_a_status_are_unattributed_at_their_time() {
        let clicks = [(T0 + 90 * MINUTE, "X".to_owned())];
        let deltas = message_deltas(MessageView {
            first_status_ms: None,
            category: None,
            reached_ms: None,
            read_ms: None,
            failure: None,
            clicks: &clicks,
        });
        assert_eq!(
            deltas.get(
                Granularity::Quarter,
                utc_from_ms(T0 + 90 * MINUTE),
                names::UNATTRIBUTED
            ),
            1
        );
        assert_eq!(deltas.iter().count(), 1);
    }

    fn send(at_ms: i64, tag: &str, reached: bool) -> Send {
        Send {
            at_ms,
            tag: message_tag(tag),
            level: if reached { DELIVERED } else { SENT },
            failed: None,
        }
    }

    #[test]
    fn a_click_is_answered_by_the_next_send_within_a_day() {
        let mut contact = Engagement::default();
        contact.put_send(send(T0, "content", true));
        contact.put_send(send(T0 + 10 * MINUTE, "answer", true));
        contact.put_send(send(T0 + 11 * MINUTE, "second", false));
        contact.add_click(Click {
            at_ms: T0 + 8 * MINUTE,
            tag: message_tag("content"),
        });
        // A click on a message without a status is not among the answers' clicks.
        contact.add_click(Click {
            at_ms: T0 + 9 * MINUTE,
            tag: message_tag("unknown"),
        });
        let deltas = contact_deltas(&contact);
        let sums = totals(&deltas);
        assert_eq!(sums[names::ANSWER_CLICKS], 1);
        assert_eq!(sums[names::ANSWERED], 1);
        assert_eq!(sums[names::ANSWER_DELIVERED], 1);
        assert_eq!(sums[names::ANSWER_SUM_MS], 2 * MINUTE);
        // The answer counts at the clicked message's day.
        assert_eq!(
            deltas.get(Granularity::Quarter, utc_from_ms(T0), names::ANSWERED),
            1
        );

        let mut late = Engagement::default();
        late.put_send(send(T0, "content", true));
        late.put_send(send(T0 + ANSWER_WITHIN_MS + 9 * MINUTE, "late", true));
        late.add_click(Click {
            at_ms: T0 + 8 * MINUTE,
            tag: message_tag("content"),
        });
        let deltas = contact_deltas(&late);
        assert_eq!(totals(&deltas).get(names::ANSWERED), None);
    }

    #[test]
    fn a_contact_counts_once_per_code_at_its_latest_failure() {
        let mut contact = Engagement::default();
        for (i, code) in [131_026, 131_026, 131_049].into_iter().enumerate() {
            contact.put_send(Send {
                failed: Some(code),
                ..send(T0 + i as i64 * ANSWER_WITHIN_MS, &format!("m{i}"), false)
            });
        }
        let deltas = contact_deltas(&contact);
        let sums = totals(&deltas);
        assert_eq!(sums["f:failc:131026"], 1);
        assert_eq!(sums["f:failc:131049"], 1);
        assert_eq!(
            deltas.get(
                Granularity::Quarter,
                utc_from_ms(T0 + ANSWER_WITHIN_MS),
                "f:failc:131026"
            ),
            1
        );
    }

    #[test]
    fn a_contact_counts_once_per_level_at_its_latest_send_dropped_or_kept() {
        let mut contact = Engagement::default();
        contact.put_send(Send {
            level: CLICKED,
            ..send(T0, "clicked", true)
        });
        for i in 1..=Engagement::SENDS as i64 {
            contact.put_send(send(T0 + i * MINUTE, &format!("m{i}"), i == 1));
        }
        let before = contact_deltas(&contact);
        let at = |deltas: &Deltas, ms: i64, name: &str| {
            deltas.get(Granularity::Quarter, utc_from_ms(ms), name)
        };
        let last = T0 + Engagement::SENDS as i64 * MINUTE;
        for (name, ms) in [
            ("f:seg:sent", last),
            ("f:seg:delivered", T0 + MINUTE),
            ("f:seg:read", T0),
            ("f:seg:clicked", T0),
        ] {
            assert_eq!(at(&before, ms, name), 1, "{name}");
            assert_eq!(totals(&before)[name], 1, "{name} once");
        }
        // Dropping the clicked send leaves what the contact adds as it was.
        contact.trim();
        assert_eq!(contact.sends.len(), Engagement::SENDS);
        assert_eq!(contact_deltas(&contact), before);
    }

    #[test]
    fn engagement_keeps_the_newest_and_refuses_what_is_older() {
        let mut contact = Engagement::default();
        for i in 0..(Engagement::SENDS as i64 + 5) {
            assert!(contact.put_send(send(T0 + i * MINUTE, &format!("m{i}"), false)));
            contact.trim();
        }
        assert_eq!(contact.sends.len(), Engagement::SENDS);
        assert_eq!(contact.horizon_ms, Some(T0 + 4 * MINUTE));
        assert!(!contact.put_send(send(T0 + 4 * MINUTE, "old", false)));
        // Putting a known message again replaces it.
        assert!(contact.put_send(send(T0 + 10 * MINUTE, "m10", true)));
        assert_eq!(contact.sends.len(), Engagement::SENDS);
        assert!(message_tag("wamid.A") < 1 << 48, "48 bits");
        assert_ne!(message_tag("wamid.A"), message_tag("wamid.B"));
    }
}
