//! The writer's connection and the contact and message state it keeps in memory
//! between writes: what a group commit writes, when the state rows and the
//! events' index rows follow, and how both are rebuilt from the events after
//! `state_mark` after a crash.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::quarters::add_quarters;
use super::schema::IdKey;
use super::writer::Delivery;
use super::{from_json, lock, to_json, unavailable, StoreError, UnwrittenContacts};
use crate::counters::{Deltas, Granularity};
use crate::event::{Event, ReceivedEvent};
use crate::ingest::{expires_at, Ledger, Outcome};
use crate::telemetry::Chain;

/// How long, at most, contact and message state stays in the writer's memory
/// while deliveries keep coming: a busy contact's row is then written once in
/// this time instead of in every group commit.
const STATE_INTERVAL: Duration = Duration::from_secs(1);
/// How long instead while the writer has time to spare: it spent at most a
/// third of the time since the last state write in group commits. A state
/// write holds up the groups behind it for as long as it takes, so such a
/// writer writes smaller ones more often; a busy one gains more from writing a
/// busy contact once (docs/performance.md, "Why contact and message state is
/// written once a second").
const STATE_INTERVAL_SPARE: Duration = Duration::from_millis(200);
/// Sooner once this many events wait to be indexed: the writer holds their
/// state, about 1.5 KB an event, and the events route sorts them on each read
/// (docs/performance.md, "Why events are indexed with the state").
const STATE_EVENTS: usize = 20_000;
/// A writer with no work for this long writes the state in memory. Not at once:
/// under load the queue empties for a moment between most groups.
pub(super) const STATE_IDLE: Duration = Duration::from_millis(50);

/// The only writing connection, and the contact and message state applied since
/// that state was last written to its tables.
///
/// Events and counter deltas are written with every group commit; state rows
/// and the events' rows in `event_ids` and `feed` when they are
/// [due](state_due) and when the writer has had nothing to do for
/// [`STATE_IDLE`], because a busy contact's row rewritten in every commit, and
/// an event's two index rows at random places, are much of the pages a commit
/// writes (docs/performance.md, "Why contact and message state is written once
/// a second" and "Why events are indexed with the state"). Readers see the
/// contacts not yet written through [`UnwrittenContacts`], and the events not
/// yet indexed by their rowids.
///
/// The state tables and the indexes always match the events up to `state_mark`:
/// after a crash, [`Writer::catch_up`] applies the events stored after the mark
/// again (their counters are already written, so only state is rebuilt).
pub(super) struct Writer {
    pub(super) connection: Connection,
    /// State loaded or changed since state was last written, and no deltas
    /// between commits.
    ledger: Ledger,
    /// The events stored after the mark, whose rows in `feed` and `event_ids`
    /// go in with the state.
    unindexed: Unindexed,
    pub(super) unwritten: UnwrittenContacts,
    written_at: Instant,
    /// Time spent in group commits since the state was last written.
    busy: Duration,
    /// The ledger may hold the effects of a group that was rolled back: rebuild
    /// it from the tables before the next write.
    stale: bool,
}

impl Writer {
    /// Takes over the connection and brings the state tables up to the last event.
    pub(super) fn open(
        connection: Connection,
        unwritten: UnwrittenContacts,
    ) -> Result<Self, StoreError> {
        let mut writer = Self {
            connection,
            ledger: Ledger::default(),
            unindexed: Unindexed::default(),
            unwritten,
            written_at: Instant::now(),
            busy: Duration::ZERO,
            stale: true,
        };
        writer.write_state()?;
        Ok(writer)
    }

    /// Rebuilds the ledger and the index rows to come from the state tables and
    /// the events after the mark.
    fn catch_up(&mut self) -> Result<(), StoreError> {
        let mut ledger = Ledger::default();
        let mut unindexed = Unindexed::default();
        let tx = self.connection.transaction().map_err(unavailable)?;
        let mut replayed = 0;
        {
            let mut query = tx
                .prepare(
                    "SELECT rowid, data FROM events WHERE rowid > (SELECT last_event FROM state_mark) ORDER BY rowid",
                )
                .map_err(unavailable)?;
            let mut rows = query.query([]).map_err(unavailable)?;
            while let Some(row) = rows.next().map_err(unavailable)? {
                let event: Event = from_json(
                    row.get_ref(1)
                        .and_then(|v| Ok(v.as_str()?))
                        .map_err(unavailable)?,
                )?;
                load_state(&tx, &mut ledger, &event)?;
                ledger.apply(&event);
                unindexed.add(&event, row.get(0).map_err(unavailable)?);
                replayed += 1;
            }
        }
        tx.commit().map_err(unavailable)?;
        // Their counters were written with them.
        ledger.take_deltas();
        if replayed > 0 {
            tracing::info!(
                events = replayed,
                "applied events stored after the last state write"
            );
        }
        self.ledger = ledger;
        self.unindexed = unindexed;
        self.stale = false;
        Ok(())
    }

    /// Writes a group of deliveries in one transaction: each event is inserted
    /// unless it is there already and applied to the state in memory in arrival
    /// order; the group's counter deltas, merged, are added at the end, and the
    /// state too when it is [due](state_due).
    /// All of it commits, or none of it.
    pub(super) fn write_group(
        &mut self,
        group: &[Delivery],
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let started = Instant::now();
        if self.stale {
            self.catch_up()?;
        }
        // Until the commit: a failure leaves the group's effects in the ledger.
        self.stale = true;
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut touched = Vec::new();
        for delivery in group {
            let mut these = Vec::with_capacity(delivery.events.len());
            for received in &delivery.events {
                if insert_event(&tx, received, delivery.retention_days, &mut self.unindexed)? {
                    load_state(&tx, &mut self.ledger, &received.event)?;
                    self.ledger.apply(&received.event);
                    touched.extend(received.event.contact.as_ref().map(|c| &c.wa_id));
                    these.push(Outcome::Stored);
                } else {
                    these.push(Outcome::Duplicate);
                }
            }
            outcomes.push(these);
        }
        add_deltas(&tx, &self.ledger.take_deltas())?;
        let with_state = state_due(self.written_at.elapsed(), self.busy, self.unindexed.len());
        if with_state {
            write_state(&tx, &self.ledger, &self.unindexed)?;
        }
        tx.commit().map_err(unavailable)?;
        self.stale = false;
        if with_state {
            self.state_written();
        } else {
            self.busy += started.elapsed();
            touched.sort_unstable();
            touched.dedup();
            let mut unwritten = lock(&self.unwritten);
            for wa_id in touched {
                if let Some(state) = self.ledger.contact(wa_id) {
                    unwritten.insert(wa_id.clone(), state.clone());
                }
            }
        }
        Ok(outcomes)
    }

    /// Writes the state in memory and the events' index rows, if there are any,
    /// in a transaction of its own.
    pub(super) fn write_state(&mut self) -> Result<(), StoreError> {
        if self.stale {
            self.catch_up()?;
        }
        if !self.ledger.has_changed_state() && self.unindexed.is_empty() {
            return Ok(());
        }
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        write_state(&tx, &self.ledger, &self.unindexed)?;
        tx.commit().map_err(unavailable)?;
        self.state_written();
        Ok(())
    }

    /// [`Writer::write_state`] where no one waits for the answer: a failure is
    /// logged and the state stays in memory for the next try.
    pub(super) fn write_state_logged(&mut self) {
        if let Err(error) = self.write_state() {
            tracing::warn!(error = %Chain(&error), "writing contact and message state failed; it stays in memory");
        }
    }

    fn state_written(&mut self) {
        self.ledger = Ledger::default();
        self.unindexed = Unindexed::default();
        lock(&self.unwritten).clear();
        self.written_at = Instant::now();
        self.busy = Duration::ZERO;
    }
}

/// Whether the state goes with a group, given the time since it was last
/// written, the time spent in group commits since and the events waiting to be
/// indexed: after [`STATE_INTERVAL`], or [`STATE_INTERVAL_SPARE`] when the
/// writer has time to spare, or once [`STATE_EVENTS`] wait.
pub(super) fn state_due(elapsed: Duration, busy: Duration, waiting: usize) -> bool {
    elapsed >= STATE_INTERVAL
        || (elapsed >= STATE_INTERVAL_SPARE && busy * 3 <= elapsed)
        || waiting >= STATE_EVENTS
}

/// Inserts an event unless one with its id is stored; whether it was new.
fn insert_event(
    tx: &Connection,
    received: &ReceivedEvent,
    retention_days: u32,
    unindexed: &mut Unindexed,
) -> Result<bool, StoreError> {
    let event = &received.event;
    if unindexed.holds(&event.id) {
        return Ok(false);
    }
    let key = IdKey::of(&event.id);
    let indexed: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM event_ids WHERE id = ?1)")
        .and_then(|mut query| query.query_row([&key], |r| r.get(0)))
        .map_err(unavailable)?;
    if indexed {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO events (id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            key,
            event.kind.type_name(),
            event.occurred_at.timestamp_millis(),
            event.received_at.timestamp_millis(),
            expires_at(received, retention_days).timestamp_millis(),
            event.search_text(),
            to_json(event),
            received.raw.get(),
        ])
    })
    .map_err(unavailable)?;
    unindexed.add(event, tx.last_insert_rowid());
    Ok(true)
}

/// Gives the ledger the stored state `event` reads that it does not hold yet.
fn load_state(tx: &Connection, ledger: &mut Ledger, event: &Event) -> Result<(), StoreError> {
    let missing = ledger.missing(event);
    if let Some(wa_id) = missing.contact {
        let state = read_state(tx, "SELECT data FROM contacts WHERE wa_id = ?1", &wa_id)?;
        ledger.load_contact(wa_id, state);
    }
    if let Some(id) = missing.message {
        let state = read_state(tx, "SELECT data FROM messages WHERE id = ?1", &id)?;
        ledger.load_message(id, state);
    }
    Ok(())
}

/// The events stored after the mark, by id, with their time and rowid: the
/// rows `feed` and `event_ids` will have of them.
#[derive(Default)]
struct Unindexed(HashMap<String, Placed>);

struct Placed {
    occurred_ms: i64,
    rowid: i64,
}

impl Unindexed {
    fn add(&mut self, event: &Event, rowid: i64) {
        let occurred_ms = event.occurred_at.timestamp_millis();
        self.0
            .insert(event.id.clone(), Placed { occurred_ms, rowid });
    }

    fn holds(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes their rows, each table's in its own order, so that rows for the
    /// same page go in one after another.
    fn write(&self, tx: &Connection) -> Result<(), StoreError> {
        let mut rows: Vec<_> = self
            .0
            .iter()
            .map(|(id, placed)| (id, IdKey::of(id), placed))
            .collect();
        rows.sort_unstable_by_key(|(_, _, placed)| placed.occurred_ms);
        let mut feed = tx
            .prepare_cached("INSERT INTO feed (occurred_ms, id, event) VALUES (?1, ?2, ?3)")
            .map_err(unavailable)?;
        for (_, key, placed) in &rows {
            feed.execute(params![placed.occurred_ms, key, placed.rowid])
                .map_err(unavailable)?;
        }
        // Hex digits sort as the bytes they spell.
        rows.sort_unstable_by_key(|(id, _, _)| *id);
        let mut ids = tx
            .prepare_cached("INSERT INTO event_ids (id, event) VALUES (?1, ?2)")
            .map_err(unavailable)?;
        for (_, key, placed) in &rows {
            ids.execute(params![key, placed.rowid])
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

/// Writes the ledger's changed contact and message state and the index rows of
/// the events after the mark, and moves the mark to the last stored event, whose
/// effects the ledger holds.
fn write_state(tx: &Connection, ledger: &Ledger, unindexed: &Unindexed) -> Result<(), StoreError> {
    let mut contact = tx
        .prepare_cached(
            "INSERT INTO contacts (wa_id, version, activity_ms, inbound_ms, data) VALUES (?1, 1, ?2, ?3, ?4)
             ON CONFLICT (wa_id) DO UPDATE SET version = contacts.version + 1,
               activity_ms = excluded.activity_ms, inbound_ms = excluded.inbound_ms, data = excluded.data",
        )
        .map_err(unavailable)?;
    for state in ledger.changed_contacts() {
        contact
            .execute(params![
                state.wa_id,
                state.last_activity_ms,
                state.last_inbound_ms,
                to_json(state)
            ])
            .map_err(unavailable)?;
    }
    let mut message = tx
        .prepare_cached(
            "INSERT INTO messages (id, version, data) VALUES (?1, 1, ?2)
             ON CONFLICT (id) DO UPDATE SET version = messages.version + 1, data = excluded.data",
        )
        .map_err(unavailable)?;
    for (id, state) in ledger.changed_messages() {
        message
            .execute(params![id, to_json(state)])
            .map_err(unavailable)?;
    }
    unindexed.write(tx)?;
    tx.execute(
        "UPDATE state_mark SET last_event = (SELECT coalesce(max(rowid), 0) FROM events)",
        [],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Adds counter deltas: minute cells one by one, quarters to their day rows.
fn add_deltas(tx: &Connection, deltas: &Deltas) -> Result<(), StoreError> {
    let mut add = tx
        .prepare_cached(
            "INSERT INTO counters (granularity, slot, name, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (granularity, slot, name) DO UPDATE SET value = value + excluded.value",
        )
        .map_err(unavailable)?;
    let mut quarters = Vec::new();
    for (key, value) in deltas.iter() {
        match key.granularity {
            Granularity::Quarter => quarters.push((key.slot, key.name.as_str(), value)),
            Granularity::Minute => {
                add.execute(params![key.granularity.code(), key.slot, key.name, value])
                    .map_err(unavailable)?;
            }
        }
    }
    add_quarters(tx, quarters)
}

/// A state row's JSON, decoded; `None` when there is no row.
pub(super) fn read_state<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let data = c
        .prepare_cached(sql)
        .and_then(|mut query| query.query_row([key], |r| r.get::<_, String>(0)).optional())
        .map_err(unavailable)?;
    data.map(|d| from_json(&d)).transpose()
}
