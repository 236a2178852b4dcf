//! The DynamoDB store (`EVENTS_TABLE`), one table with one index.
//!
//! | item | `pk` | `sk` | `gsi1pk` / `gsi1sk` |
//! |---|---|---|---|
//! | event | `EVENT#{id}` | `EVENT` | `FEED#{utc date}#{shard}` / `{ms}#{id}` |
//! | contact | `CONTACT#{wa_id}` | `STATE` | `CONTACTS#{shard}` / `{last activity ms}#{wa_id}` |
//! | outbound message | `MESSAGE#{id}` | `STATE` | |
//! | counters | `COUNTERS#{Q or M}#{shard}` | `{slot ms}` | |
//! | alert transition | `ALERTS` | `{ms}#{rule}#{state}` | |
//!
//! A delivery is recorded in as few `TransactWriteItems` as fit it: the events put
//! on condition that they do not exist, the state puts on condition of their
//! versions, and one `ADD` update per counter slot (see [`record`]). Counter and feed items are spread over [`SHARDS`] partitions
//! picked by event id, so that no single item takes every write (DynamoDB limits
//! the writes a second to one item); readers sum or merge the shards. A
//! metrics query thus reads at most `SHARDS` items per slot of its window,
//! whatever the number of events (docs/performance.md, "Why DynamoDB shards its
//! counters and feed"). Raw events and minute counters carry a TTL
//! (`expires_at`); quarter counters and contacts stay.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, Select, StreamSpecification,
    StreamViewType, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use sha2::{Digest, Sha256};

use super::{ContactPosition, Cursor, EventPage, EventQuery, Store, StoreError};
use crate::counters::{DayCounter, Granularity, SlotCounters};
use crate::event::{Event, ReceivedEvent};
use crate::ingest::{ContactState, Outcome};

mod alerts;
mod capacity;
mod connections;
mod record;
pub use capacity::UsageFigures;
pub use connections::DynamoConnections;

/// Partitions that counters, the event feed and the contact list are spread over.
pub const SHARDS: u8 = 4;
/// The index of the feed and the contact list.
pub const INDEX: &str = "gsi1";
/// Minute counters serve only the last hour; DynamoDB deletes them after this.
const MINUTE_COUNTERS_KEPT_SECONDS: i64 = 2 * 86_400;
/// Prefix of counter attributes in a counter item (the rest are keys and TTL).
const COUNTER_PREFIX: &str = "c:";
/// Feed days queried at once when walking back through the events.
const FEED_DAYS_AT_ONCE: i64 = 7;
/// Feed days one request walks at most (days without events are skipped, not
/// walked). A page that is not full by then ends with a cursor to go on from, so
/// that a rare filter costs a bounded number of queries per request rather than
/// a walk back to the retention horizon.
const FEED_DAYS_PER_REQUEST: i64 = 14;
/// WhatsApp times can predate arrival (Meta retries for days): the feed is walked
/// this much further back than the retention.
const FEED_LATE_DAYS: i64 = 7;

/// The DynamoDB store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention_days: u32,
    /// Counter items read since this store was made (for benchmarks and logs).
    counter_items_read: Arc<AtomicU64>,
    /// Requests and capacity units of recording (for benchmarks).
    usage: Arc<capacity::Usage>,
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(error: E) -> StoreError {
    StoreError::unavailable(error)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A sort key that orders as the number does (for non-negative numbers).
fn padded(ms: i64) -> String {
    format!("{ms:015}")
}

/// The shard an event's writes go to: stable for the same event.
fn shard_of(key: &str) -> u8 {
    Sha256::digest(key.as_bytes())[0] % SHARDS
}

fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn string_attr<'a>(
    item: &'a HashMap<String, AttributeValue>,
    name: &str,
) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::corrupt(format!("item without string attribute {name}")))
}

fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn parse<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    serde_json::from_str(string_attr(item, "data")?).map_err(StoreError::corrupt)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("state serialises")
}

/// The item an event is stored as. Its new image in the table's stream is what the
/// broadcast function reads back with [`event_from_item`].
pub fn event_item(
    received: &ReceivedEvent,
    expires_at: DateTime<Utc>,
) -> HashMap<String, AttributeValue> {
    let event = &received.event;
    let occurred_ms = event.occurred_at.timestamp_millis();
    let shard = shard_of(&event.id);
    let mut item = key(format!("EVENT#{}", event.id), "EVENT");
    item.extend([
        ("type".to_owned(), s(event.kind.type_name())),
        ("occurred_ms".to_owned(), n(occurred_ms)),
        ("search".to_owned(), s(event.search_text())),
        ("data".to_owned(), s(to_json(event))),
        ("raw".to_owned(), s(received.raw.get())),
        ("expires_at".to_owned(), n(expires_at.timestamp())),
        (
            "gsi1pk".to_owned(),
            s(format!(
                "FEED#{}#{shard}",
                event.occurred_at.format("%Y-%m-%d")
            )),
        ),
        (
            "gsi1sk".to_owned(),
            s(format!("{}#{}", padded(occurred_ms), event.id)),
        ),
    ]);
    item
}

/// The event an item of the events table holds; `None` for any other item
/// (state, counters).
pub fn event_from_item(
    item: &HashMap<String, AttributeValue>,
) -> Option<Result<Event, StoreError>> {
    let pk = item.get("pk")?.as_s().ok()?;
    pk.starts_with("EVENT#").then(|| parse(item))
}

/// How long a DynamoDB call may take. The SDK sets no read timeout of its own: a
/// connection that stalls would hold a webhook until the Lambda's own timeout (or
/// the local stack for ever), and Meta would see a timeout instead of a 503. An
/// attempt gets 2 s (DynamoDB answers in milliseconds), a call with its retries
/// 6 s, under the functions' 10 and 15 s.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(6))
        .build()
}

impl DynamoStore {
    /// Counters of the slots in `[from, to)`, one entry per slot that has any
    /// (an item per slot and shard holds all of its counter names).
    async fn slot_counters(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        if to_ms <= from_ms {
            return Ok(Vec::new());
        }
        let shards = (0..SHARDS).map(|shard| async move {
            let mut items = Vec::new();
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND sk BETWEEN :from AND :to")
                .expression_attribute_values(
                    ":p",
                    s(format!("COUNTERS#{}#{shard}", granularity.code())),
                )
                .expression_attribute_values(":from", s(padded(from_ms)))
                .expression_attribute_values(":to", s(padded(to_ms - 1)))
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                items.push(item.map_err(unavailable)?);
            }
            Ok::<_, StoreError>(items)
        });
        let mut slots: BTreeMap<i64, SlotCounters> = BTreeMap::new();
        let items: Vec<_> = try_join_all(shards).await?.into_iter().flatten().collect();
        self.counter_items_read
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        for item in items {
            let slot: i64 = string_attr(&item, "sk")?
                .parse()
                .map_err(|_| StoreError::corrupt("a counter item's slot is not a number"))?;
            let counters = slots.entry(slot).or_insert_with(|| SlotCounters {
                slot,
                values: Default::default(),
            });
            for (name, value) in &item {
                if let (Some(name), Ok(value)) = (name.strip_prefix(COUNTER_PREFIX), value.as_n()) {
                    *counters.values.entry(name.to_owned()).or_default() +=
                        value.parse::<i64>().unwrap_or(0);
                }
            }
        }
        Ok(slots
            .into_values()
            .filter(|s| s.values.values().any(|v| *v != 0))
            .collect())
    }

    /// The newest UTC day at or before `day` that has any event, found from the
    /// quarter counters (every stored event counts in the quarter of its
    /// WhatsApp time): one item read per shard.
    async fn newest_day_with_events(
        &self,
        day: chrono::NaiveDate,
    ) -> Result<Option<chrono::NaiveDate>, StoreError> {
        let end_ms = (day + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis();
        let shards = (0..SHARDS).map(|shard| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND sk < :end")
                .expression_attribute_values(
                    ":p",
                    s(format!("COUNTERS#{}#{shard}", Granularity::Quarter.code())),
                )
                .expression_attribute_values(":end", s(padded(end_ms)))
                .scan_index_forward(false)
                .limit(1)
                .send()
        });
        let mut newest: Option<i64> = None;
        for output in try_join_all(shards).await.map_err(unavailable)? {
            for item in output.items.unwrap_or_default() {
                let slot: i64 = string_attr(&item, "sk")?
                    .parse()
                    .map_err(|_| StoreError::corrupt("a counter item's slot is not a number"))?;
                newest = newest.max(Some(slot));
            }
        }
        Ok(newest
            .and_then(DateTime::from_timestamp_millis)
            .map(|at| at.date_naive()))
    }

    /// A store on `table`, whose raw events expire after `retention_days`.
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        Self {
            client,
            table: table.into(),
            retention_days,
            counter_items_read: Arc::default(),
            usage: Arc::default(),
        }
    }

    /// Requests and capacity units recording has taken since this store was made,
    /// by DynamoDB's sizing rules (see [`capacity`]).
    pub fn usage(&self) -> UsageFigures {
        self.usage.figures()
    }

    /// How many counter items metrics queries have read from this store.
    pub fn counter_items_read(&self) -> u64 {
        self.counter_items_read.load(Ordering::Relaxed)
    }

    /// A client from the environment (`AWS_REGION`, credentials, and
    /// `AWS_ENDPOINT_URL` for DynamoDB Local or moto).
    pub async fn client_from_env() -> Client {
        let config = aws_config::from_env()
            .timeout_config(timeouts())
            .load()
            .await;
        Client::new(&config)
    }

    /// The store a Lambda function uses: its client and table from the environment.
    pub async fn from_env(config: &crate::config::StoreConfig) -> Self {
        Self::new(
            Self::client_from_env().await,
            &config.events_table,
            config.retention_days,
        )
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn versioned_put(
        &self,
        mut item: HashMap<String, AttributeValue>,
        version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        item.insert("version".into(), n(version + 1));
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :version")
                .expression_attribute_values(":version", n(version))
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(unavailable)?)
            .build())
    }

    /// Queries one partition of the index newest first, following pages, keeping the
    /// items `keep` accepts until `wanted` are kept.
    async fn query_index(
        &self,
        partition: String,
        before: Option<String>,
        filter: &EventFilter,
        wanted: usize,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut kept = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .scan_index_forward(false)
                .expression_attribute_values(":p", s(&partition))
                .set_exclusive_start_key(start.take())
                .limit((wanted as i32).clamp(1, 1000));
            query = match &before {
                Some(before) => query
                    .key_condition_expression("gsi1pk = :p AND gsi1sk < :b")
                    .expression_attribute_values(":b", s(before)),
                None => query.key_condition_expression("gsi1pk = :p"),
            };
            let mut conditions = Vec::new();
            if let Some(event_type) = &filter.event_type {
                conditions.push("#type = :type");
                query = query
                    .expression_attribute_names("#type", "type")
                    .expression_attribute_values(":type", s(event_type));
            }
            if let Some(text) = &filter.text {
                conditions.push("contains(#search, :text)");
                query = query
                    .expression_attribute_names("#search", "search")
                    .expression_attribute_values(":text", s(text));
            }
            if let Some(contact) = &filter.contact {
                conditions.push("contains(#data, :contact)");
                query = query
                    .expression_attribute_names("#data", "data")
                    .expression_attribute_values(":contact", s(contact));
            }
            if !conditions.is_empty() {
                query = query.filter_expression(conditions.join(" AND "));
            }
            let page = query.send().await.map_err(unavailable)?;
            kept.extend(page.items.unwrap_or_default());
            if kept.len() >= wanted {
                kept.truncate(wanted);
                return Ok(kept);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(kept),
            }
        }
    }
}

struct EventFilter {
    event_type: Option<String>,
    text: Option<String>,
    /// [`Event::contact_marker`] of the contact asked for.
    contact: Option<String>,
}

#[async_trait]
impl Store for DynamoStore {
    async fn record(
        &self,
        events: &[ReceivedEvent],
        retention_days: u32,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.record_delivery(events, retention_days).await
    }

    async fn quarter_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        _quarters_of: Option<&str>,
    ) -> Result<Vec<DayCounter>, StoreError> {
        // Quarter items hold no day totals: every row comes with its quarters.
        let slots = self.slot_counters(Granularity::Quarter, from, to).await?;
        let cells = slots.iter().flat_map(|slot| {
            slot.values
                .iter()
                .map(|(name, value)| (slot.slot, name.as_str(), *value))
        });
        Ok(DayCounter::gather(
            cells,
            from.timestamp_millis(),
            to.timestamp_millis(),
        ))
    }

    async fn minute_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        self.slot_counters(Granularity::Minute, from, to).await
    }

    async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let filter = EventFilter {
            event_type: query.event_type.clone(),
            text: query.text.as_ref().map(|t| t.to_lowercase()),
            contact: query.contact.as_deref().map(Event::contact_marker),
        };
        let wanted = query.limit + 1;
        let start = query.before.clone();
        let before_key = start
            .as_ref()
            .map(|c| format!("{}#{}", padded(c.occurred_ms), c.id));
        // A cursor without id marks a day boundary: go on from the day before it.
        let first_day = start
            .as_ref()
            .and_then(|c| {
                DateTime::from_timestamp_millis(c.occurred_ms - i64::from(c.id.is_empty()))
            })
            .unwrap_or_else(|| Utc::now() + chrono::Duration::days(1))
            .date_naive();
        let horizon = (Utc::now()
            - chrono::Duration::days(i64::from(self.retention_days) + FEED_LATE_DAYS))
        .date_naive();
        let mut found: Vec<Event> = Vec::new();
        // The newest day not walked yet, and how many days this request walked.
        let mut day = first_day;
        let mut walked = 0;
        let mut exhausted = false;
        while found.len() < wanted {
            if walked >= FEED_DAYS_PER_REQUEST {
                break;
            }
            // Days without any event are skipped rather than queried one by one,
            // so that a quiet stretch costs nothing.
            match self.newest_day_with_events(day).await? {
                Some(newest) if newest >= horizon => day = newest,
                _ => {
                    exhausted = true;
                    break;
                }
            }
            let days = FEED_DAYS_AT_ONCE
                .min(FEED_DAYS_PER_REQUEST - walked)
                .min((day - horizon).num_days() + 1);
            let remaining = wanted - found.len();
            let partitions = (0..days).flat_map(|back| {
                let walked_day = day - chrono::Duration::days(back);
                let before = before_key.clone().filter(|_| walked_day == first_day);
                (0..SHARDS).map(move |shard| {
                    (
                        format!("FEED#{}#{shard}", walked_day.format("%Y-%m-%d")),
                        before.clone(),
                    )
                })
            });
            let queries = partitions
                .map(|(partition, before)| self.query_index(partition, before, &filter, remaining));
            let mut window_events = Vec::new();
            for item in try_join_all(queries).await?.into_iter().flatten() {
                window_events.push(parse::<Event>(&item)?);
            }
            window_events.sort_by(|a, b| Cursor::after(b).cmp(&Cursor::after(a)));
            found.extend(window_events.into_iter().take(remaining));
            walked += days;
            day -= chrono::Duration::days(days);
            if day < horizon {
                exhausted = true;
                break;
            }
        }
        let mut page = EventPage::from_overfetch(found, query.limit);
        if page.next.is_none() && !exhausted {
            // Not full, but only because this request's walk ended: go on from the
            // start of the oldest day walked.
            let boundary = (day + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc();
            page.next = Some(Cursor {
                occurred_ms: boundary.timestamp_millis(),
                id: String::new(),
            });
        }
        Ok(page)
    }

    async fn event(&self, id: &str) -> Result<Option<(Event, String)>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("EVENT#{id}"), "EVENT")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|item| Ok((parse(&item)?, string_attr(&item, "raw")?.to_owned())))
            .transpose()
    }

    async fn contacts(
        &self,
        limit: usize,
        after: Option<&ContactPosition>,
    ) -> Result<Vec<ContactState>, StoreError> {
        let no_filter = EventFilter {
            event_type: None,
            text: None,
            contact: None,
        };
        // The index's sort key orders contacts as the list does.
        let before = after.map(|p| format!("{}#{}", padded(p.activity_ms), p.wa_id));
        let shards = (0..SHARDS).map(|shard| {
            self.query_index(
                format!("CONTACTS#{shard}"),
                before.clone(),
                &no_filter,
                limit,
            )
        });
        let mut contacts = Vec::new();
        for item in try_join_all(shards).await?.into_iter().flatten() {
            contacts.push(parse::<ContactState>(&item)?);
        }
        ContactPosition::sort(&mut contacts);
        contacts.truncate(limit);
        Ok(contacts)
    }

    async fn contact(&self, wa_id: &str) -> Result<Option<ContactState>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("CONTACT#{wa_id}"), "STATE")))
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(|item| parse(&item)).transpose()
    }

    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let since_ms = since.timestamp_millis();
        let shards = (0..SHARDS).map(|shard| async move {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .key_condition_expression("gsi1pk = :p AND gsi1sk >= :since")
                .filter_expression("inbound_ms >= :since_ms")
                .expression_attribute_values(":p", s(format!("CONTACTS#{shard}")))
                .expression_attribute_values(":since", s(padded(since_ms)))
                .expression_attribute_values(":since_ms", n(since_ms))
                .select(Select::Count)
                .into_paginator()
                .send();
            let mut count = 0u64;
            while let Some(page) = pages.next().await {
                count += page.map_err(unavailable)?.count as u64;
            }
            Ok::<_, StoreError>(count)
        });
        Ok(try_join_all(shards).await?.into_iter().sum())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key("PING".into(), "PING")))
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

/// Creates the events table (with its index, stream and TTL) and the connections
/// table, as `template.yaml` declares them; tables that exist are left alone.
pub async fn create_tables(
    client: &Client,
    events_table: &str,
    connections_table: &str,
) -> Result<(), StoreError> {
    let existing = client
        .list_tables()
        .send()
        .await
        .map_err(unavailable)?
        .table_names
        .unwrap_or_default();
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(unavailable)
    };
    let key_element = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(unavailable)
    };
    if !existing.iter().any(|t| t == events_table) {
        let index = GlobalSecondaryIndex::builder()
            .index_name(INDEX)
            .key_schema(key_element("gsi1pk", KeyType::Hash)?)
            .key_schema(key_element("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(
                        ["data", "type", "search", "inbound_ms"]
                            .map(String::from)
                            .to_vec(),
                    ))
                    .build(),
            )
            .build()
            .map_err(unavailable)?;
        client
            .create_table()
            .table_name(events_table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .attribute_definitions(attribute("gsi1pk")?)
            .attribute_definitions(attribute("gsi1sk")?)
            .key_schema(key_element("pk", KeyType::Hash)?)
            .key_schema(key_element("sk", KeyType::Range)?)
            .global_secondary_indexes(index)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(unavailable)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        enable_ttl(client, events_table).await?;
    }
    if !existing.iter().any(|t| t == connections_table) {
        client
            .create_table()
            .table_name(connections_table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("connection_id")?)
            .key_schema(key_element("connection_id", KeyType::Hash)?)
            .send()
            .await
            .map_err(unavailable)?;
        enable_ttl(client, connections_table).await?;
    }
    Ok(())
}

async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}
