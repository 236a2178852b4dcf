//! The tables, and the migrations that bring a file written by an older build
//! to them.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::quarters::{add_quarters, decode_quarters};
use super::{unavailable, StoreError};

/// The events, in arrival order (rowid). `id` holds an event id's 16 bytes (see
/// [`IdKey`]): the id index and `events_newest_first` take random inserts, and
/// keys half as long make them fewer pages to write per group commit
/// (docs/benchmarks.md, "Event ids kept as 16 bytes").
pub(super) const EVENTS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          BLOB PRIMARY KEY,
    type        TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    search      TEXT NOT NULL,
    data        TEXT NOT NULL,
    raw         TEXT NOT NULL
);";

pub(super) const SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS events_newest_first ON events (occurred_ms DESC, id DESC);
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
-- Minute counters (and, in files from before quarter_counters, quarter cells,
-- which opening moves over).
CREATE TABLE IF NOT EXISTS counters (
    granularity TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (granularity, slot, name)
) WITHOUT ROWID;
-- The last event (by rowid, which is arrival order) whose effects the contacts
-- and messages tables hold. The writer keeps state in memory between writes
-- (see `Writer`); events stored after the mark are applied again on open. A
-- file from before the mark existed holds every event's state.
CREATE TABLE IF NOT EXISTS state_mark (
    only       INTEGER PRIMARY KEY CHECK (only = 0),
    last_event INTEGER NOT NULL
);
INSERT OR IGNORE INTO state_mark (only, last_event) SELECT 0, coalesce(max(rowid), 0) FROM events;
CREATE TABLE IF NOT EXISTS connections (
    connection_id TEXT PRIMARY KEY,
    connected_ms  INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    types         TEXT
);
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

/// Rewrites the events table of a file written while it keyed events by their
/// ids' hex text into the keyed-by-bytes form, in one transaction (a no-op on a
/// new file or once done). Rowids, which are arrival order and `state_mark`'s
/// measure, are kept.
pub(super) fn key_event_ids(c: &mut Connection) -> Result<(), StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let declared: Option<String> = tx
        .query_row(
            "SELECT type FROM pragma_table_info('events') WHERE name = 'id'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    if declared.as_deref() != Some("TEXT") {
        return Ok(());
    }
    // The old table's indexes go with it; SCHEMA builds them again on the new one.
    tx.execute_batch("ALTER TABLE events RENAME TO events_keyed_by_text")
        .and_then(|()| tx.execute_batch(EVENTS_TABLE))
        .map_err(unavailable)?;
    let moved = tx
        .execute(
            "INSERT INTO events (rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
             SELECT rowid,
                    CASE WHEN length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*' THEN unhex(id) ELSE id END,
                    type, occurred_ms, received_ms, expires_ms, search, data, raw
             FROM events_keyed_by_text",
            [],
        )
        .map_err(unavailable)?;
    tx.execute_batch("DROP TABLE events_keyed_by_text")
        .map_err(unavailable)?;
    tx.commit().map_err(unavailable)?;
    tracing::info!(events = moved, "keyed stored events by their ids' bytes");
    Ok(())
}

/// Gives `quarter_counters` rows of files written before it had `total` their
/// totals, in one transaction (a no-op on a new file or once done).
pub(super) fn add_quarter_totals(c: &mut Connection) -> Result<(), StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('quarter_counters')")
        .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
        .map_err(unavailable)?;
    if columns.is_empty() || columns.iter().any(|c| c == "total") {
        return Ok(());
    }
    tx.execute_batch("ALTER TABLE quarter_counters ADD COLUMN total INTEGER NOT NULL DEFAULT 0")
        .map_err(unavailable)?;
    let rows: Vec<(i64, String, Vec<u8>)> = tx
        .prepare("SELECT day, name, quarters FROM quarter_counters")
        .and_then(|mut q| {
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(unavailable)?;
    let mut update = tx
        .prepare("UPDATE quarter_counters SET total = ?3 WHERE day = ?1 AND name = ?2")
        .map_err(unavailable)?;
    for (day, name, quarters) in &rows {
        let total: i64 = decode_quarters(quarters)?.iter().sum();
        update
            .execute(params![day, name, total])
            .map_err(unavailable)?;
    }
    drop(update);
    tx.commit().map_err(unavailable)?;
    tracing::info!(rows = rows.len(), "added totals to the quarter counters");
    Ok(())
}

/// Moves quarter cells of files written before `quarter_counters` existed into
/// it, in one transaction (a no-op once done).
pub(super) fn move_quarter_cells(c: &mut Connection) -> Result<(), StoreError> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let cells: Vec<(i64, String, i64)> = tx
        .prepare("SELECT slot, name, value FROM counters WHERE granularity = 'Q'")
        .and_then(|mut q| {
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(unavailable)?;
    if cells.is_empty() {
        return Ok(());
    }
    add_quarters(
        &tx,
        cells
            .iter()
            .map(|(slot, name, value)| (*slot, name.as_str(), *value)),
    )?;
    tx.execute("DELETE FROM counters WHERE granularity = 'Q'", [])
        .map_err(unavailable)?;
    tx.commit().map_err(unavailable)?;
    tracing::info!(
        cells = cells.len(),
        "moved quarter counters to a row per day"
    );
    Ok(())
}
