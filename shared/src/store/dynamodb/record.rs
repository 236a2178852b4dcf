//! Recording a delivery in DynamoDB: optimistically, a delivery at a time.
//!
//! 1. **Read once.** Whether each event is stored, and the contacts and outbound
//!    messages the others touch with their versions, in strongly consistent
//!    `BatchGetItem`s of up to 100 keys, sent at once.
//! 2. **Write in as few transactions as DynamoDB allows.** The new events are cut
//!    into chunks that fit one `TransactWriteItems` (100 items, 4 MB). A chunk runs
//!    through a [`Ledger`], which threads the state through its events in order and
//!    merges their counter deltas per slot; it is written as one transaction: each
//!    event on condition that it does not exist, each changed state item once, on
//!    condition of the version read, and one `ADD` per counter slot.
//! 3. **Lose a race, read again.** A transaction cancelled by a condition means
//!    another writer got there first (the same update redelivered, or the same
//!    contact moved). What committed stays committed; what is left is read again
//!    and written on top, after a random wait.
//!
//! Why transactions rather than plain conditional writes: an event, the state it
//! moves and its counters must land together or not at all, or a redelivery after
//! a partial write would count nothing (lost) or count twice. The alternative,
//! writing only events and deriving state and counters from the table's stream
//! with idempotent batch markers, makes metrics lag behind the stream's polling
//! and moves contact state into a second consumer; transactions keep the webhook's
//! 200 meaning "counted". Their doubled write price is paid on far fewer items:
//! state and counters are written once per chunk, not once per event
//! (docs/performance.md, "Why DynamoDB records a delivery at a time").

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use futures::future::try_join_all;
use sha2::{Digest, Sha256};

use super::capacity;
use super::{
    event_item, key, n, number_attr, padded, parse, s, shard_of, string_attr, to_json, unavailable,
    DynamoStore, COUNTER_PREFIX, MINUTE_COUNTERS_KEPT_SECONDS,
};
use crate::counters::Granularity;
use crate::event::{Event, ReceivedEvent};
use crate::ingest::{expires_at, ContactState, Ledger, MessageState, Outcome, StateKeys};
use crate::store::StoreError;

/// Items one `TransactWriteItems` may hold.
const MAX_ITEMS: usize = 100;
/// Bytes a chunk's events may take: under the 4 MB a transaction may carry, with
/// room for its state and counter items.
const MAX_BYTES: usize = 3 * 1024 * 1024;
/// Keys one `BatchGetItem` may ask for.
const MAX_KEYS: usize = 100;
/// Rounds of reading again after losing a race, before the delivery fails with a
/// 5xx (and Meta retries it). Each loser waits a random time up to an exponentially
/// growing cap, so even dozens of concurrent deliveries for one contact get through.
const MAX_ATTEMPTS: u32 = 30;
const BACKOFF_CAP_MS: u64 = 200;
/// Rounds of asking again for keys DynamoDB left unprocessed (it does under
/// throttling).
const MAX_UNPROCESSED_ROUNDS: u32 = 8;

type Item = HashMap<String, AttributeValue>;

/// A state item as read, with the version it was read at (0: absent).
#[derive(Debug, Clone)]
struct Versioned<T> {
    value: Option<T>,
    version: u64,
}

impl<T> Default for Versioned<T> {
    fn default() -> Self {
        Self {
            value: None,
            version: 0,
        }
    }
}

/// What one read of a delivery's keys found.
#[derive(Debug, Default)]
struct Loaded {
    stored: HashSet<String>,
    contacts: HashMap<String, Versioned<ContactState>>,
    messages: HashMap<String, Versioned<MessageState>>,
}

/// Events that go into one transaction, applied.
#[derive(Debug, Default)]
struct Chunk {
    /// Indices into the delivery.
    events: Vec<usize>,
    ledger: Ledger,
    bytes: usize,
}

impl DynamoStore {
    /// Records a delivery's events exactly once (see the module docs); each one's
    /// outcome, in order.
    pub(super) async fn record_delivery(
        &self,
        events: &[ReceivedEvent],
        retention_days: u32,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; events.len()];
        let mut seen = HashSet::new();
        for (index, received) in events.iter().enumerate() {
            if !seen.insert(received.event.id.as_str()) {
                outcomes[index] = Some(Outcome::Duplicate);
            }
        }
        for attempt in 0..MAX_ATTEMPTS {
            let pending: Vec<usize> = (0..events.len())
                .filter(|&i| outcomes[i].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let mut loaded = self.load(pending.iter().map(|&i| &events[i].event)).await?;
            let mut rest: Vec<usize> = Vec::with_capacity(pending.len());
            for index in pending {
                if loaded.stored.contains(&events[index].event.id) {
                    outcomes[index] = Some(Outcome::Duplicate);
                } else {
                    rest.push(index);
                }
            }
            let mut rest = rest.as_slice();
            let mut lost_a_race = false;
            while !rest.is_empty() {
                let chunk = next_chunk(&mut rest, events, &loaded);
                if !self.write(&chunk, events, &loaded, retention_days).await? {
                    lost_a_race = true;
                    break;
                }
                for &index in &chunk.events {
                    outcomes[index] = Some(Outcome::Stored);
                }
                loaded.written(&chunk.ledger);
            }
            if !lost_a_race {
                break;
            }
            if attempt + 1 == MAX_ATTEMPTS {
                let first = outcomes.iter().position(Option::is_none).unwrap_or(0);
                return Err(StoreError::Contention(events[first].event.id.clone()));
            }
            tracing::debug!(attempt, "state moved while recording; reading again");
            let cap = (2u64 << attempt.min(10)).min(BACKOFF_CAP_MS);
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..=cap))).await;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every event has an outcome"))
            .collect())
    }

    /// Reads whether each event is stored and the state they touch.
    async fn load<'a>(
        &self,
        events: impl Iterator<Item = &'a Event>,
    ) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        let mut keys = Vec::new();
        let mut asked = HashSet::new();
        for event in events {
            let state = StateKeys::of(event);
            let wanted = [
                Some(format!("EVENT#{}", event.id)),
                state.contact.map(|c| format!("CONTACT#{c}")),
                state.message.map(|m| format!("MESSAGE#{m}")),
            ];
            for pk in wanted.into_iter().flatten() {
                if let Some(wa_id) = pk.strip_prefix("CONTACT#") {
                    loaded
                        .contacts
                        .insert(wa_id.to_owned(), Versioned::default());
                } else if let Some(id) = pk.strip_prefix("MESSAGE#") {
                    loaded.messages.insert(id.to_owned(), Versioned::default());
                }
                if asked.insert(pk.clone()) {
                    let sk = if pk.starts_with("EVENT#") {
                        "EVENT"
                    } else {
                        "STATE"
                    };
                    keys.push(key(pk, sk));
                }
            }
        }
        let reads = keys
            .chunks(MAX_KEYS)
            .map(|batch| self.batch_get(batch.to_vec()));
        for item in try_join_all(reads).await?.into_iter().flatten() {
            let pk = string_attr(&item, "pk")?;
            let version = number_attr(&item, "version").unwrap_or(0) as u64;
            if let Some(id) = pk.strip_prefix("EVENT#") {
                loaded.stored.insert(id.to_owned());
            } else if let Some(wa_id) = pk.strip_prefix("CONTACT#") {
                let value = Some(parse(&item)?);
                loaded
                    .contacts
                    .insert(wa_id.to_owned(), Versioned { value, version });
            } else if let Some(id) = pk.strip_prefix("MESSAGE#") {
                let value = Some(parse(&item)?);
                loaded
                    .messages
                    .insert(id.to_owned(), Versioned { value, version });
            }
        }
        Ok(loaded)
    }

    /// One `BatchGetItem`, asking again for what DynamoDB left unprocessed.
    async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for round in 0..=MAX_UNPROCESSED_ROUNDS {
            if round > 0 {
                let cap = 10u64 << round;
                tokio::time::sleep(Duration::from_millis(rand::random_range(0..=cap))).await;
            }
            self.usage.read(keys.len());
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression("pk, version, #d")
                .expression_attribute_names("#d", "data")
                .build()
                .map_err(unavailable)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(unavailable)?;
            found.extend(
                output
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            keys = output
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::unavailable(format!(
            "DynamoDB left {} keys unprocessed after {MAX_UNPROCESSED_ROUNDS} retries",
            keys.len()
        )))
    }

    /// Writes a chunk as one transaction. `false`: a condition failed (another
    /// writer got there first) and nothing was written.
    async fn write(
        &self,
        chunk: &Chunk,
        events: &[ReceivedEvent],
        loaded: &Loaded,
        retention_days: u32,
    ) -> Result<bool, StoreError> {
        let mut items = Vec::new();
        let mut usage = capacity::Write::default();
        let mut expires = 0;
        for &index in &chunk.events {
            let received = &events[index];
            let until = expires_at(received, retention_days);
            expires = expires.max(until.timestamp());
            let item = event_item(received, until);
            usage.put(&item, false);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(unavailable)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let mut versions = Vec::new();
        for state in chunk.ledger.changed_contacts() {
            let version = loaded.contacts.get(&state.wa_id).map_or(0, |v| v.version);
            let item = contact_item(state);
            usage.put(&item, version > 0);
            items.push(self.versioned_put(item, version)?);
            versions.push(version);
        }
        for (id, state) in chunk.ledger.changed_messages() {
            let version = loaded.messages.get(id).map_or(0, |v| v.version);
            let mut item = key(format!("MESSAGE#{id}"), "STATE");
            item.extend([
                ("data".to_owned(), s(to_json(state))),
                ("expires_at".to_owned(), n(expires)),
            ]);
            usage.put(&item, false);
            items.push(self.versioned_put(item, version)?);
            versions.push(version);
        }
        // One shard per chunk, picked by its first event: stable on a retry, and
        // spread over the shards across deliveries.
        let shard = shard_of(&events[chunk.events[0]].event.id);
        for ((granularity, slot), counters) in chunk.ledger.deltas().by_slot() {
            let mut update = Update::builder().table_name(&self.table).set_key(Some(key(
                format!("COUNTERS#{}#{shard}", granularity.code()),
                &padded(slot),
            )));
            let mut adds = Vec::with_capacity(counters.len());
            for (i, (name, value)) in counters.iter().enumerate() {
                adds.push(format!("#c{i} :c{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), format!("{COUNTER_PREFIX}{name}"))
                    .expression_attribute_values(format!(":c{i}"), n(value));
            }
            usage.counters(&counters);
            let mut expression = format!("ADD {}", adds.join(", "));
            if granularity == Granularity::Minute {
                expression.push_str(" SET expires_at = :expires");
                let expires = slot / 1000 + MINUTE_COUNTERS_KEPT_SECONDS;
                update = update.expression_attribute_values(":expires", n(expires));
            }
            let update = update
                .update_expression(expression)
                .build()
                .map_err(unavailable)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        debug_assert!(items.len() <= MAX_ITEMS);

        // The same chunk read at the same versions is the same write: the token makes
        // the SDK's own retries of it idempotent for ten minutes.
        let mut token = Sha256::new();
        for &index in &chunk.events {
            token.update(events[index].event.id.as_bytes());
            token.update(b",");
        }
        token.update(format!("{versions:?}").as_bytes());
        let token = hex::encode(&token.finalize()[..18]);

        self.usage.write(&usage);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(context)) => match context.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons = cancelled.cancellation_reasons();
                    let raced = reasons.iter().all(|r| {
                        matches!(
                            r.code(),
                            None | Some("None" | "ConditionalCheckFailed" | "TransactionConflict")
                        )
                    });
                    if raced {
                        Ok(false)
                    } else {
                        Err(StoreError::unavailable(format!(
                            "transaction cancelled: {:?}",
                            reasons.iter().map(|r| r.code()).collect::<Vec<_>>()
                        )))
                    }
                }
                _ => Err(StoreError::unavailable(SdkError::ServiceError(context))),
            },
            Err(other) => Err(unavailable(other)),
        }
    }
}

impl Loaded {
    /// Takes a committed chunk's state as the state now stored.
    fn written(&mut self, ledger: &Ledger) {
        for state in ledger.changed_contacts() {
            let entry = self.contacts.entry(state.wa_id.clone()).or_default();
            *entry = Versioned {
                value: Some(state.clone()),
                version: entry.version + 1,
            };
        }
        for (id, state) in ledger.changed_messages() {
            let entry = self.messages.entry(id.to_owned()).or_default();
            *entry = Versioned {
                value: Some(state.clone()),
                version: entry.version + 1,
            };
        }
    }
}

/// Takes from the front of `rest` the events that fit one transaction (at least
/// one), applied on top of `loaded`.
fn next_chunk(rest: &mut &[usize], events: &[ReceivedEvent], loaded: &Loaded) -> Chunk {
    let mut chunk = Chunk::default();
    let mut items = 0;
    while let Some((&index, tail)) = rest.split_first() {
        let received = &events[index];
        let missing = chunk.ledger.missing(&received.event);
        if let Some(wa_id) = missing.contact {
            let state = loaded.contacts.get(&wa_id).and_then(|v| v.value.clone());
            chunk.ledger.load_contact(wa_id, state);
        }
        if let Some(id) = missing.message {
            let state = loaded.messages.get(&id).and_then(|v| v.value.clone());
            chunk.ledger.load_message(id, state);
        }
        // Whether the event fits is known only from its effects (a late status
        // can move counts to other slots); the ledger takes them only if it does.
        let (keys, effects) = chunk.ledger.effects(&received.event);
        let added = 1
            + chunk.ledger.new_state_items(&keys)
            + chunk.ledger.deltas().new_slots(&effects.deltas);
        let bytes = chunk.bytes + 2 * received.raw.get().len() + 512;
        if !chunk.events.is_empty() && (items + added > MAX_ITEMS || bytes > MAX_BYTES) {
            break;
        }
        chunk.ledger.take(keys, effects);
        items += added;
        chunk.bytes = bytes;
        chunk.events.push(index);
        *rest = tail;
    }
    chunk
}

/// A contact's state item; its index entry lists contacts by latest activity.
fn contact_item(state: &ContactState) -> Item {
    let mut item = key(format!("CONTACT#{}", state.wa_id), "STATE");
    item.extend([
        ("data".to_owned(), s(to_json(state))),
        (
            "gsi1pk".to_owned(),
            s(format!("CONTACTS#{}", shard_of(&state.wa_id))),
        ),
        (
            "gsi1sk".to_owned(),
            s(format!(
                "{}#{}",
                padded(state.last_activity_ms),
                state.wa_id
            )),
        ),
    ]);
    if let Some(inbound_ms) = state.last_inbound_ms {
        item.insert("inbound_ms".into(), n(inbound_ms));
    }
    item
}
