//! The tables, and the numbered migrations that bring a file written by an
//! older build up to them.
//!
//! A file's schema version is its `PRAGMA user_version`, and only that decides
//! which steps run: a new file gets [`SCHEMA`] and the latest version at once;
//! any other file runs the steps after its version, in order, all in one
//! transaction that ends with the new version's stamp, so a failure leaves the
//! file as it was. Builds before the versions left every file at 0, whatever
//! its layout: such a file is recognised once by what each step adds
//! ([`unversioned_layout`]), stamped, and then goes on as any other. A file
//! stamped with a version past the latest was written by a newer build, and is
//! refused rather than guessed at.
//!
//! | version | the step to it |
//! |---|---|
//! | 0 | none: the first layout, events keyed by their ids' text, quarter and minute cells in `counters` |
//! | 1 | quarter cells move to `quarter_counters`, a row per UTC day and counter name |
//! | 2 | `state_mark` starts at the last event: until then, the state tables were written with every commit |
//! | 3 | each day row gets its `total` |
//! | 4 | events are keyed by their ids' 16 bytes ([`IdKey`]) |
//! | 5 | the funnel's counters and state, counted from the stored events ([`count_the_funnel`]) |
//! | 6 | the contacts' segments, counted the same way ([`count_the_segments`]) |
//! | 7 | `alerts`, the alert transitions |
//! | 8 | the tables `event_ids` and `feed`, written with the state, in place of the id index and `events_newest_first` |
//!
//! A step is written against the layout of the version before it, never against
//! [`SCHEMA`], so that later changes to the tables leave it as it ran; each is
//! tested from a file at the version before it (`tests/migrations.rs`).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use rusqlite_migration::{HookError, HookResult, Migrations, M};

use super::quarters::{add_quarters, day_rows, decode_quarters, encode_quarters};
use super::{corrupt, to_json, unavailable, StoreError};
use crate::counters::{utc_from_ms, Granularity};
use crate::event::{Event, EventKind};
use crate::funnel;
use crate::ingest::{ContactState, Ledger};
use crate::whatsapp::Status;

/// The tables as this build writes them, for a new file. Every statement holds
/// if the table is there already, so a test can put back one it dropped.
pub(super) const SCHEMA: &str = "
-- The events, in arrival order (rowid). `id` holds an event id's 16 bytes (see
-- `IdKey`; docs/performance.md, \"Why event ids are 16 bytes\"). The table has no
-- index but by expiry, which is arrival order too: its ids and its order by time
-- are the tables `event_ids` and `feed`, below.
CREATE TABLE IF NOT EXISTS events (
    id          BLOB NOT NULL,
    type        TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    search      TEXT NOT NULL,
    data        TEXT NOT NULL,
    raw         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_expiry ON events (expires_ms);
CREATE TABLE IF NOT EXISTS contacts (
    wa_id       TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    activity_ms INTEGER NOT NULL,
    inbound_ms  INTEGER,
    data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_by_activity ON contacts (activity_ms DESC);
CREATE TABLE IF NOT EXISTS messages (
    id      TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    data    TEXT NOT NULL
);
-- Quarter counters, a row per UTC day and counter name: `quarters` holds the
-- day's non-zero quarters as 9-byte pairs (quarter 0-95, value as i64 LE), so a
-- 30-day query reads ~31 rows a counter instead of 2 880 cells; `total` is their
-- sum, all a query needs of most counters on a day wholly inside its window.
CREATE TABLE IF NOT EXISTS quarter_counters (
    day      INTEGER NOT NULL,
    name     TEXT NOT NULL,
    quarters BLOB NOT NULL,
    total    INTEGER NOT NULL,
    PRIMARY KEY (day, name)
) WITHOUT ROWID;
-- Minute counters (in files before version 1, quarter cells too).
CREATE TABLE IF NOT EXISTS counters (
    granularity TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (granularity, slot, name)
) WITHOUT ROWID;
-- The last event (by rowid, which is arrival order) whose effects the contacts
-- and messages tables hold. The writer keeps state in memory between writes
-- (see `Writer`); events stored after the mark are applied again on open.
CREATE TABLE IF NOT EXISTS state_mark (
    only       INTEGER PRIMARY KEY CHECK (only = 0),
    last_event INTEGER NOT NULL
);
INSERT OR IGNORE INTO state_mark (only, last_event) SELECT 0, coalesce(max(rowid), 0) FROM events;
-- The events by id, and in the events route's order (newest first by WhatsApp
-- time): a row in each for every event up to `state_mark`, written with the
-- state; the writer keeps the events after the mark in memory, and readers find
-- them by rowid. Indexes on `events` would take two random inserts for each
-- event in every group commit (docs/performance.md, \"Why events are indexed
-- with the state\").
CREATE TABLE IF NOT EXISTS event_ids (
    id    BLOB PRIMARY KEY,
    event INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed (
    occurred_ms INTEGER NOT NULL,
    id          BLOB NOT NULL,
    event       INTEGER NOT NULL,
    PRIMARY KEY (occurred_ms, id)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS indexes_follow_deletes AFTER DELETE ON events BEGIN
    DELETE FROM event_ids WHERE id = old.id;
    DELETE FROM feed WHERE occurred_ms = old.occurred_ms AND id = old.id;
END;
CREATE TABLE IF NOT EXISTS connections (
    connection_id TEXT PRIMARY KEY,
    connected_ms  INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    types         TEXT
);
-- Alert transitions, by `Transition::id` (time first).
CREATE TABLE IF NOT EXISTS alerts (
    id   TEXT PRIMARY KEY,
    data TEXT NOT NULL
) WITHOUT ROWID;
";

/// An event id as the events table keys it: the 16 bytes its 32 lowercase hex
/// digits spell (every id [`crate::event`] makes), which sort as the digits do, so
/// the feed's tie order is the ids' order still. An id of any other form is kept
/// as text, which never equals a blob.
pub(super) enum IdKey<'a> {
    Bytes([u8; 16]),
    Text(&'a str),
}

impl<'a> IdKey<'a> {
    pub(super) fn of(id: &'a str) -> Self {
        let mut bytes = [0; 16];
        let lowercase = !id.bytes().any(|b| b.is_ascii_uppercase());
        match lowercase && hex::decode_to_slice(id, &mut bytes).is_ok() {
            true => Self::Bytes(bytes),
            false => Self::Text(id),
        }
    }
}

impl rusqlite::ToSql for IdKey<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Self::Bytes(bytes) => bytes.to_sql(),
            Self::Text(text) => text.to_sql(),
        }
    }
}

/// The steps, in order: the step at index `i` takes a file from version `i` to
/// `i + 1`. A step's SQL runs first, then its hook.
pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        // 0 → 1. The day rows have no total yet (that is step 3).
        M::up_with_hook(
            "CREATE TABLE quarter_counters (
                day      INTEGER NOT NULL,
                name     TEXT NOT NULL,
                quarters BLOB NOT NULL,
                PRIMARY KEY (day, name)
            ) WITHOUT ROWID;",
            move_quarter_cells,
        ),
        // 1 → 2. Up to this version the state tables were written with every
        // commit: they hold the effects of every stored event.
        M::up(
            "CREATE TABLE state_mark (
                only       INTEGER PRIMARY KEY CHECK (only = 0),
                last_event INTEGER NOT NULL
            );
            INSERT INTO state_mark (only, last_event) SELECT 0, coalesce(max(rowid), 0) FROM events;",
        ),
        // 2 → 3.
        M::up_with_hook(
            "ALTER TABLE quarter_counters ADD COLUMN total INTEGER NOT NULL DEFAULT 0;",
            add_quarter_totals,
        ),
        // 3 → 4. The old table's indexes go with it; the hook builds them again.
        M::up_with_hook(
            "ALTER TABLE events RENAME TO events_keyed_by_text;",
            key_event_ids,
        ),
        // 4 → 5. Data only.
        M::up_with_hook("", count_the_funnel),
        // 5 → 6. Data only.
        M::up_with_hook("", count_the_segments),
        // 6 → 7. (A file made from today's layout but never stamped has it.)
        M::up(
            "CREATE TABLE IF NOT EXISTS alerts (
                id   TEXT PRIMARY KEY,
                data TEXT NOT NULL
            ) WITHOUT ROWID;",
        ),
        // 7 → 8. The old table's indexes go with it.
        M::up_with_hook(
            "ALTER TABLE events RENAME TO events_with_indexes;",
            index_with_the_state,
        ),
    ])
}

/// The version [`SCHEMA`] is: the number of steps.
pub(super) const LATEST: usize = 8;

/// Brings the file to [`LATEST`], or refuses a file a newer build wrote.
pub(super) fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    let stamped: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let Some(version) = usize::try_from(stamped).ok().filter(|v| *v <= LATEST) else {
        return Err(unavailable(format!(
            "{} is at schema version {stamped}, and this build knows versions up to {LATEST}: \
             it was written by a newer Pulse, which is the one to open it with",
            c.path().unwrap_or("the file"),
        )));
    };
    if version == 0 {
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        if !has_table(&tx, "events")? {
            tx.execute_batch(SCHEMA).map_err(unavailable)?;
            stamp(&tx, LATEST)?;
            return tx.commit().map_err(unavailable);
        }
        let found = unversioned_layout(&tx)?;
        // Files from before `connections` lack it; it came with no step to count.
        // (The builds that dropped `events_newest_first`, since reverted, left
        // version 3 files: step 4 builds the index again.)
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS connections (
                connection_id TEXT PRIMARY KEY,
                connected_ms  INTEGER NOT NULL,
                expires_ms    INTEGER NOT NULL,
                types         TEXT
            );",
        )
        .map_err(unavailable)?;
        stamp(&tx, found)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!(
            version = found,
            "stamped a file from before schema versions"
        );
    }
    // The steps' transaction takes the write lock at once, as every write here does.
    c.set_transaction_behavior(TransactionBehavior::Immediate);
    let migrated = migrations().to_latest(c);
    c.set_transaction_behavior(TransactionBehavior::Deferred);
    migrated.map_err(|error| match error {
        // A hook's own errors are about the file's data; SQLite's are not.
        rusqlite_migration::Error::Hook(_) => corrupt(error),
        error => unavailable(error),
    })
}

/// The version of a file written before versions were stamped: the steps whose
/// mark it has, counted in order. Each step's mark is the first thing of the
/// layout it leaves that no version before it has.
pub(super) fn unversioned_layout(c: &Connection) -> Result<usize, StoreError> {
    if !has_table(c, "quarter_counters")? {
        return Ok(0);
    }
    if !has_table(c, "state_mark")? {
        return Ok(1);
    }
    let has_total: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('quarter_counters') WHERE name = 'total')",
            [],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    if !has_total {
        return Ok(2);
    }
    let id_type: Option<String> = c
        .query_row(
            "SELECT type FROM pragma_table_info('events') WHERE name = 'id'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    Ok(match id_type.as_deref() {
        Some("TEXT") => 3,
        _ if has_table(c, "event_ids")? => 8,
        _ => 4,
    })
}

fn has_table(c: &Connection, name: &str) -> Result<bool, StoreError> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
    .map_err(unavailable)
}

fn stamp(tx: &Transaction<'_>, version: usize) -> Result<(), StoreError> {
    let version = i64::try_from(version).expect("a version is a step count");
    tx.pragma_update(None, "user_version", version)
        .map_err(unavailable)
}

/// A stored day row that does not decode, as a hook reports it.
fn unreadable(error: StoreError) -> HookError {
    let cause = std::error::Error::source(&error).map_or(String::new(), |c| format!(": {c}"));
    HookError::Hook(format!("{error}{cause}"))
}

/// Step 1: moves the quarter cells of `counters` into day rows.
fn move_quarter_cells(tx: &Transaction<'_>) -> HookResult {
    let cells: Vec<(i64, String, i64)> = tx
        .prepare("SELECT slot, name, value FROM counters WHERE granularity = 'Q'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let rows: BTreeMap<_, _> = day_rows(
        cells
            .iter()
            .map(|(slot, name, value)| (*slot, name.as_str(), *value)),
    );
    let mut insert =
        tx.prepare("INSERT INTO quarter_counters (day, name, quarters) VALUES (?1, ?2, ?3)")?;
    for ((day, name), quarters) in &rows {
        insert.execute(params![day, name, encode_quarters(quarters)])?;
    }
    tx.execute("DELETE FROM counters WHERE granularity = 'Q'", [])?;
    tracing::info!(
        cells = cells.len(),
        "moved quarter counters to a row per day"
    );
    Ok(())
}

/// Step 3: gives each day row the sum of its quarters.
fn add_quarter_totals(tx: &Transaction<'_>) -> HookResult {
    let rows: Vec<(i64, String, Vec<u8>)> = tx
        .prepare("SELECT day, name, quarters FROM quarter_counters")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut update =
        tx.prepare("UPDATE quarter_counters SET total = ?3 WHERE day = ?1 AND name = ?2")?;
    for (day, name, quarters) in &rows {
        let total: i64 = decode_quarters(quarters).map_err(unreadable)?.iter().sum();
        update.execute(params![day, name, total])?;
    }
    tracing::info!(rows = rows.len(), "added totals to the quarter counters");
    Ok(())
}

/// Step 4: copies the events, renamed away by the step's SQL, into a table keyed
/// by their ids' bytes (an id not of 32 lowercase hex digits stays text, as
/// [`IdKey`] keeps it). Rowids, which are arrival order and `state_mark`'s
/// measure, are kept.
fn key_event_ids(tx: &Transaction<'_>) -> HookResult {
    tx.execute_batch(
        "CREATE TABLE events (
            id          BLOB PRIMARY KEY,
            type        TEXT NOT NULL,
            occurred_ms INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            expires_ms  INTEGER NOT NULL,
            search      TEXT NOT NULL,
            data        TEXT NOT NULL,
            raw         TEXT NOT NULL
        );",
    )?;
    let moved = tx.execute(
        "INSERT INTO events (rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
         SELECT rowid,
                CASE WHEN length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*' THEN unhex(id) ELSE id END,
                type, occurred_ms, received_ms, expires_ms, search, data, raw
         FROM events_keyed_by_text",
        [],
    )?;
    tx.execute_batch(
        "DROP TABLE events_keyed_by_text;
         CREATE INDEX events_newest_first ON events (occurred_ms DESC, id DESC);
         CREATE INDEX events_expiry ON events (expires_ms);",
    )?;
    tracing::info!(events = moved, "keyed stored events by their ids' bytes");
    Ok(())
}

/// Step 5: counts the funnel of the events stored before it was kept
/// (docs/funnel.md, "After an upgrade"), all but the segments (step 6).
fn count_the_funnel(tx: &Transaction<'_>) -> HookResult {
    replay(tx, |name| {
        name.starts_with(funnel::names::PREFIX) && !name.starts_with(funnel::names::SEGMENT)
    })?;
    tracing::info!("counted the funnel of the stored events");
    Ok(())
}

/// Step 6: counts the contacts' segments of the stored events: each contact's
/// recent sends now keep how far each got. The window's contacts are counted
/// from the contacts table, which knows each one's latest activity even when
/// retention has deleted its events.
fn count_the_segments(tx: &Transaction<'_>) -> HookResult {
    let active = funnel::names::ACTIVE_CONTACTS;
    replay(tx, |name| {
        name.starts_with(funnel::names::SEGMENT) && name != active
    })?;
    let contacts: Vec<String> = tx
        .prepare("SELECT data FROM contacts")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut latest = Vec::with_capacity(contacts.len());
    for data in &contacts {
        let contact: ContactState = serde_json::from_str(data)
            .map_err(|e| HookError::Hook(format!("a stored contact does not read: {e}")))?;
        latest.push(Granularity::Quarter.slot_of(utc_from_ms(contact.last_activity_ms)));
    }
    add_quarters(tx, latest.into_iter().map(|slot| (slot, active, 1))).map_err(unreadable)?;
    tracing::info!(contacts = contacts.len(), "counted the contacts' segments");
    Ok(())
}

/// Runs the stored events again, in arrival order, through today's
/// [`Ledger`]: the counters that `counted` names (only new ones: the others
/// were counted as the events came) are added, each message's state is
/// replaced by the one rebuilt from its events, and each contact gets its
/// recent sends and clicks. A status's category is read from its raw update,
/// which builds before version 5 did not. Events after `state_mark` are applied
/// again on open, as always; what they add to a state is there already and
/// changes nothing.
fn replay(tx: &Transaction<'_>, counted: impl Fn(&str) -> bool) -> HookResult {
    let mut ledger = Ledger::default();
    let mut categorised = Vec::new();
    {
        let mut rows = tx.prepare("SELECT rowid, data, raw FROM events ORDER BY rowid")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let data: String = row.get(1)?;
            let mut event: Event = serde_json::from_str(&data)
                .map_err(|e| HookError::Hook(format!("a stored event does not read: {e}")))?;
            if let EventKind::StatusUpdate { category, .. } = &mut event.kind {
                if category.is_none() {
                    let raw: String = row.get(2)?;
                    *category = serde_json::from_str::<Status>(&raw)
                        .ok()
                        .and_then(|status| status.category());
                    if category.is_some() {
                        categorised.push((row.get::<_, i64>(0)?, to_json(&event)));
                    }
                }
            }
            ledger.apply(&event);
        }
    }
    let deltas = ledger.take_deltas();
    let funnel = deltas
        .iter()
        .filter(|(key, _)| key.granularity == Granularity::Quarter && counted(&key.name));
    add_quarters(
        tx,
        funnel.map(|(key, by)| (key.slot, key.name.as_str(), by)),
    )
    .map_err(unreadable)?;
    let mut update = tx.prepare("UPDATE events SET data = ?2 WHERE rowid = ?1")?;
    for (rowid, data) in &categorised {
        update.execute(params![rowid, data])?;
    }
    let mut message = tx.prepare(
        "INSERT INTO messages (id, version, data) VALUES (?1, 1, ?2)
         ON CONFLICT (id) DO UPDATE SET version = messages.version + 1, data = excluded.data",
    )?;
    let mut messages = 0;
    for (id, state) in ledger.changed_messages() {
        message.execute(params![id, to_json(state)])?;
        messages += 1;
    }
    let mut read = tx.prepare("SELECT data FROM contacts WHERE wa_id = ?1")?;
    let mut write = tx.prepare("UPDATE contacts SET data = ?2 WHERE wa_id = ?1")?;
    for rebuilt in ledger.changed_contacts() {
        let stored: Option<String> = read.query_row([&rebuilt.wa_id], |r| r.get(0)).optional()?;
        // A contact not in the table yet is one of the events after the mark,
        // which brings it in whole.
        let Some(stored) = stored else { continue };
        let mut contact: ContactState = serde_json::from_str(&stored)
            .map_err(|e| HookError::Hook(format!("a stored contact does not read: {e}")))?;
        contact.engagement = rebuilt.engagement.clone();
        contact.last_read_ms = rebuilt.last_read_ms;
        contact.last_failure = rebuilt.last_failure.clone();
        write.execute(params![rebuilt.wa_id, to_json(&contact)])?;
    }
    tracing::info!(
        messages,
        categorised = categorised.len(),
        "ran the stored events again"
    );
    Ok(())
}

/// Step 8: copies the events, renamed away by the step's SQL, into a table
/// without indexes but by expiry, and indexes those up to the mark in
/// `event_ids` and `feed`, each in its own order; the writer indexes the
/// events after the mark on open. Rowids are kept.
fn index_with_the_state(tx: &Transaction<'_>) -> HookResult {
    tx.execute_batch(
        "CREATE TABLE events (
            id          BLOB NOT NULL,
            type        TEXT NOT NULL,
            occurred_ms INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            expires_ms  INTEGER NOT NULL,
            search      TEXT NOT NULL,
            data        TEXT NOT NULL,
            raw         TEXT NOT NULL
        );
        CREATE TABLE event_ids (
            id    BLOB PRIMARY KEY,
            event INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE feed (
            occurred_ms INTEGER NOT NULL,
            id          BLOB NOT NULL,
            event       INTEGER NOT NULL,
            PRIMARY KEY (occurred_ms, id)
        ) WITHOUT ROWID;",
    )?;
    let moved = tx.execute(
        "INSERT INTO events (rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
         SELECT rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw
         FROM events_with_indexes ORDER BY rowid",
        [],
    )?;
    tx.execute_batch(
        "DROP TABLE events_with_indexes;
         CREATE INDEX events_expiry ON events (expires_ms);
         INSERT INTO event_ids (id, event)
             SELECT id, rowid FROM events WHERE rowid <= (SELECT last_event FROM state_mark) ORDER BY id;
         INSERT INTO feed (occurred_ms, id, event)
             SELECT occurred_ms, id, rowid FROM events WHERE rowid <= (SELECT last_event FROM state_mark)
             ORDER BY occurred_ms, id;
         CREATE TRIGGER indexes_follow_deletes AFTER DELETE ON events BEGIN
             DELETE FROM event_ids WHERE id = old.id;
             DELETE FROM feed WHERE occurred_ms = old.occurred_ms AND id = old.id;
         END;",
    )?;
    tracing::info!(
        events = moved,
        "indexed stored events in event_ids and feed"
    );
    Ok(())
}
