//! The event store: one trait, two implementations with the same behaviour
//! ([`sqlite::SqliteStore`] for the local stack, [`dynamodb::DynamoStore`] in AWS),
//! checked by one contract test suite.
//!
//! Writes take a whole delivery ([`Store::record`]), applied by the pure
//! [`crate::ingest::Ledger`]: the embedded store writes it, with every other
//! delivery that arrived meanwhile, in one transaction; DynamoDB reads its state in
//! one go and writes it in as few transactions as fit it, optimistically. Reads
//! never touch more than the time window or page asked for.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::alerts::Transition;
use crate::counters::{DayCounter, SlotCounters};
use crate::event::{Event, ReceivedEvent};
use crate::ingest::{ContactState, Outcome, Summary};

pub mod dynamodb;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// A page of events, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events strictly older than this position.
    pub before: Option<Cursor>,
    pub limit: usize,
    /// An event type name (see [`crate::event::EVENT_TYPES`]).
    pub event_type: Option<String>,
    /// Case-insensitive text to find in body, button, title or profile name.
    pub text: Option<String>,
    /// Only the events of the contact with this `wa_id`.
    pub contact: Option<String>,
}

/// A contact's place in the list of contacts: by latest activity, newest
/// first, and by `wa_id` from high to low among contacts active in the same
/// millisecond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPosition {
    pub activity_ms: i64,
    pub wa_id: String,
}

impl ContactPosition {
    pub fn of(contact: &ContactState) -> Self {
        Self {
            activity_ms: contact.last_activity_ms,
            wa_id: contact.wa_id.clone(),
        }
    }

    /// Whether `contact` comes after this place in the list.
    pub fn is_before(&self, contact: &ContactState) -> bool {
        (contact.last_activity_ms, contact.wa_id.as_str()) < (self.activity_ms, self.wa_id.as_str())
    }

    /// Sorts contacts into the list's order.
    pub fn sort(contacts: &mut [ContactState]) {
        contacts
            .sort_by(|a, b| (b.last_activity_ms, &b.wa_id).cmp(&(a.last_activity_ms, &a.wa_id)));
    }
}

#[derive(Debug, Clone, Default)]
pub struct EventPage {
    /// At most the limit asked for; a page may be shorter and still have a next
    /// one (a store bounds the work of one request).
    pub events: Vec<Event>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl EventPage {
    /// A page from up to `limit + 1` matches fetched newest first: the extra one
    /// only tells that there is a next page, which starts after the last kept.
    pub fn from_overfetch(mut events: Vec<Event>, limit: usize) -> Self {
        let next = (events.len() > limit).then(|| {
            events.truncate(limit);
            Cursor::after(events.last().expect("limit is at least 1"))
        });
        Self { events, next }
    }
}

/// A position in the newest-first order of events: (time, id) of the last one seen.
/// An empty id stands before every event of that millisecond.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub occurred_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn after(event: &Event) -> Self {
        Self {
            occurred_ms: event.occurred_at.timestamp_millis(),
            id: event.id.clone(),
        }
    }

    /// An opaque token for the API.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.occurred_ms, self.id))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (ms, id) = text.split_once(':')?;
        let id_ok = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
        let occurred_ms = ms.parse().ok()?;
        id_ok.then(|| Self {
            occurred_ms,
            id: id.to_owned(),
        })
    }
}

/// What can go wrong in a store. None of these is the caller's fault: the webhook
/// answers 5xx so that Meta delivers again. The cause stays attached as the
/// error's source (log it with [`crate::telemetry::Chain`]).
#[derive(Debug, Clone)]
pub enum StoreError {
    Unavailable(Cause),
    Corrupt(Cause),
    /// The event's id.
    Contention(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(_) => f.write_str("the store did not answer"),
            Self::Corrupt(_) => f.write_str("stored data could not be read"),
            Self::Contention(id) => write!(f, "event {id} kept conflicting with concurrent writes"),
        }
    }
}

// By hand rather than derived: the source is the cause inside the `Arc`, so that
// callers can downcast it to what failed.
impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(cause) | Self::Corrupt(cause) => Some(&**cause),
            Self::Contention(_) => None,
        }
    }
}

/// Why a store failed. Shared, so that one failed group commit can answer each
/// delivery in it with the same error.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// The store did not answer, because of `cause` (an error, or a message).
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(cause.into().into())
    }

    /// Stored data could not be read, because of `cause` (an error, or a message).
    pub fn corrupt(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Corrupt(cause.into().into())
    }
}

/// A dashboard's live WebSocket connection, as the connections table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// API Gateway's connection id.
    pub id: String,
    pub connected_at: DateTime<Utc>,
    /// When API Gateway will have ended it at the latest; the record expires then.
    pub expires_at: DateTime<Utc>,
    /// The event types it receives; `None`: every type.
    pub types: Option<Vec<String>>,
}

/// A page of live connections, in the store's own order.
#[derive(Debug, Clone, Default)]
pub struct ConnectionPage {
    /// At most the limit asked for; may be shorter and still have a next page.
    pub connections: Vec<Connection>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<String>,
}

/// The connections table (`CONNECTIONS_TABLE`): who receives live events.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Stores a new connection (or replaces one with the same id).
    async fn add(&self, connection: &Connection) -> Result<(), StoreError>;

    /// Forgets a connection; forgetting an unknown one is not an error.
    async fn remove(&self, id: &str) -> Result<(), StoreError>;

    /// Sets the event types a connection receives. `false`: no such connection.
    async fn subscribe(&self, id: &str, types: &[String]) -> Result<bool, StoreError>;

    /// Connections not expired at `now`, page by page: the first page with
    /// `after: None`, the next ones with the previous page's `next`.
    async fn connections(
        &self,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ConnectionPage, StoreError>;
}

/// Where alert transitions are kept ([`crate::alerts`]): the history the
/// active alerts are rebuilt from after a restart.
#[async_trait]
pub trait AlertLog: Send + Sync {
    /// Records transitions; recording one again (same rule, state and time)
    /// keeps one, as given the last time: how its notification went.
    async fn record_transitions(&self, transitions: &[Transition]) -> Result<(), StoreError>;

    /// The latest `limit` transitions, newest first.
    async fn transitions(&self, limit: usize) -> Result<Vec<Transition>, StoreError>;

    /// Each rule's latest transition, however old: the active alerts are
    /// those that fired.
    async fn latest_transitions(&self) -> Result<Vec<Transition>, StoreError>;
}

/// The operations Pulse needs from a store.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a delivery's events exactly once (see [`crate::ingest`]) and
    /// returns each one's outcome, in order. Returns only once every stored event
    /// is durable; on an error, some whole events may be stored, and recording the
    /// delivery again completes it without counting any twice.
    async fn record(
        &self,
        events: &[ReceivedEvent],
        retention_days: u32,
    ) -> Result<Vec<Outcome>, StoreError>;

    /// Quarter counters of `[from, to)`, a row per UTC day and counter name that
    /// has any count there (quarters outside the range left out). Rows of names
    /// starting with `quarters_of` come with their quarters; the others may come
    /// as totals alone on days wholly inside the range.
    async fn quarter_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        quarters_of: Option<&str>,
    ) -> Result<Vec<DayCounter>, StoreError>;

    /// Minute counters of `[from, to)`, one entry per minute that has any.
    async fn minute_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError>;

    /// Events newest first (by WhatsApp time, then id), filtered.
    async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError>;

    /// An event with its raw update as received.
    async fn event(&self, id: &str) -> Result<Option<(Event, String)>, StoreError>;

    /// Contacts by latest activity, newest first (see [`ContactPosition`]),
    /// from just after `after`.
    async fn contacts(
        &self,
        limit: usize,
        after: Option<&ContactPosition>,
    ) -> Result<Vec<ContactState>, StoreError>;

    /// One contact's state.
    async fn contact(&self, wa_id: &str) -> Result<Option<ContactState>, StoreError>;

    /// How many contacts sent something at or after `since`.
    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError>;

    /// A cheap round trip, for health checks.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Store calls that [`page_of_events`] makes at most for one page: on DynamoDB
/// each walks at most a fixed number of days that have events, so a request's
/// work stays bounded however rare the filter.
pub const PAGE_CALLS: usize = 8;

/// A page of events as the API and the dashboard show it: filled up to
/// `query.limit` by following the store's continuation, for at most
/// [`PAGE_CALLS`] calls. The page is then full, or the last one (no `next`), or,
/// only when a filter matches too little of a long history, short with a `next`.
/// So an empty first page without `next` means there is no such event.
pub async fn page_of_events(
    store: &dyn Store,
    query: &EventQuery,
) -> Result<EventPage, StoreError> {
    let mut page = store.events(query).await?;
    for _ in 1..PAGE_CALLS {
        let missing = query.limit.saturating_sub(page.events.len());
        if missing == 0 {
            break;
        }
        let Some(before) = page.next.take() else {
            break;
        };
        let more = store
            .events(&EventQuery {
                before: Some(before),
                limit: missing,
                ..query.clone()
            })
            .await?;
        page.events.extend(more.events);
        page.next = more.next;
    }
    Ok(page)
}

/// Records every event of a delivery exactly once; succeeds only when all are
/// durably stored.
pub async fn record_all(
    store: &dyn Store,
    events: &[ReceivedEvent],
    retention_days: u32,
) -> Result<Summary, StoreError> {
    let outcomes = store.record(events, retention_days).await?;
    debug_assert_eq!(outcomes.len(), events.len());
    Ok(Summary::of(&outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::events_from_body;
    use crate::telemetry::Chain;

    /// An endless history that gives one event per call, always with a `next`,
    /// as a store whose every call ends its walk early.
    struct OneAtATime;

    /// A plausible WhatsApp time, in seconds: the newest event is one before it.
    const START: i64 = 1_790_000_000;

    #[async_trait]
    impl Store for OneAtATime {
        async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
            let before = query
                .before
                .as_ref()
                .map_or(START, |c| c.occurred_ms / 1000);
            let body = format!(
                r#"{{"entry":[{{"changes":[{{"field":"messages","value":{{"messages":[
                {{"from":"1","id":"wamid.{before}","timestamp":"{}","type":"text","text":{{"body":"x"}}}}]}}}}]}}]}}"#,
                before - 1
            );
            let event = events_from_body(body.as_bytes(), Utc::now()).unwrap()[0]
                .event
                .clone();
            let next = Cursor::after(&event);
            Ok(EventPage {
                events: vec![event],
                next: Some(next),
            })
        }
        async fn record(&self, _: &[ReceivedEvent], _: u32) -> Result<Vec<Outcome>, StoreError> {
            unreachable!()
        }
        async fn quarter_counters(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: Option<&str>,
        ) -> Result<Vec<DayCounter>, StoreError> {
            unreachable!()
        }
        async fn minute_counters(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<SlotCounters>, StoreError> {
            unreachable!()
        }
        async fn event(&self, _: &str) -> Result<Option<(Event, String)>, StoreError> {
            unreachable!()
        }
        async fn contacts(
            &self,
            _: usize,
            _: Option<&ContactPosition>,
        ) -> Result<Vec<ContactState>, StoreError> {
            unreachable!()
        }
        async fn contact(&self, _: &str) -> Result<Option<ContactState>, StoreError> {
            unreachable!()
        }
        async fn active_contacts(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            unreachable!()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn a_page_follows_the_store_until_full_within_its_budget() {
        let query = |limit| EventQuery {
            limit,
            ..Default::default()
        };
        let full = page_of_events(&OneAtATime, &query(3)).await.unwrap();
        let times: Vec<_> = full
            .events
            .iter()
            .map(|e| e.occurred_at.timestamp())
            .collect();
        assert_eq!(
            times,
            [START - 1, START - 2, START - 3],
            "each call goes on from the last"
        );
        assert_eq!(full.next, Some(Cursor::after(&full.events[2])));
        let bounded = page_of_events(&OneAtATime, &query(50)).await.unwrap();
        assert_eq!(
            bounded.events.len(),
            PAGE_CALLS,
            "no more calls than the budget"
        );
        assert!(bounded.next.is_some(), "a short page says where to go on");
    }

    #[test]
    fn a_store_error_keeps_its_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StoreError::unavailable(refused);
        assert_eq!(error.to_string(), "the store did not answer");
        let cause = std::error::Error::source(&error).expect("a source");
        assert!(cause.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(
            Chain(&error).to_string(),
            "the store did not answer: refused"
        );
        let shared = error.clone();
        assert_eq!(Chain(&shared).to_string(), Chain(&error).to_string());
        let corrupt = StoreError::corrupt("a counter item's slot is not a number");
        assert_eq!(
            Chain(&corrupt).to_string(),
            "stored data could not be read: a counter item's slot is not a number"
        );
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            occurred_ms: 1_700_000_000_123,
            id: "0a1b".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "!!!", "bm9jb2xvbg", "YWJjOmRlZg", "MTIzOmEtYg"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
