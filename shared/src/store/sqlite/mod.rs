//! The embedded store of the local stack: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread that owns the only writing connection and
//! commits in groups: the deliveries that arrive while a transaction is being
//! written go into the next one, all of them in one transaction. A syncer thread
//! then fsyncs the WAL and only after that answers each delivery of the group, so
//! an acknowledged webhook is on disk and survives a crash or a power cut; while
//! it waits for the disk, the writer goes on with the next group. With one
//! writer, a transaction reads the state it changes without any conflict to retry
//! (see [`crate::ingest::Ledger`]). Reads use a pool of their own connections,
//! which WAL lets read while a commit is being written.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `events` | `id`, an event id's 16 bytes ([`schema::IdKey`]); the rowid is arrival order | each event, parsed and as sent, until it expires |
//! | `contacts` | `wa_id` | each contact's state, as of `state_mark` |
//! | `messages` | `id` | each outbound message's state, as of `state_mark` |
//! | `quarter_counters` | `(day, name)` | a UTC day's quarters of one counter, and their total |
//! | `counters` | `(granularity, slot, name)` | minute counters (`M`), kept two days |
//! | `state_mark` | one row | the last event whose state `contacts` and `messages` hold |
//! | `connections` | `connection_id` | live WebSocket connections, until they expire |
//!
//! This file opens the store and holds the plumbing the others share:
//! [`schema`] the tables and their numbered migrations (`PRAGMA user_version`)
//! that bring older files up to them, [`writer`] the writer, syncer and
//! checkpointer threads, [`state`] the writer's connection and the state it
//! keeps in memory between writes, [`quarters`] a day row's bytes, [`store`] and
//! [`connections`] the store traits (reads run on the pool, writes go to the
//! writer). The tests are in `tests/`, a file per topic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use crate::ingest::ContactState;

mod alerts;
mod connections;
mod quarters;
mod schema;
mod state;
mod store;
#[cfg(test)]
mod tests;
mod writer;

use state::Writer;
use writer::{run_checkpointer, run_syncer, run_writer, Job, Unsynced};

/// Minute counters serve only the last hour; they are purged after this long.
const MINUTE_COUNTERS_KEPT_MS: i64 = 2 * 86_400_000;

/// Read connections: enough for the two cores and a few concurrent dashboards.
const READERS: u32 = 4;

/// The writer's connection. Its commits are not fsynced by SQLite
/// (`synchronous = NORMAL`): the syncer thread fsyncs the WAL after them and
/// before any answer, off the writer's path (see [`run_syncer`]). SQLite still
/// syncs around checkpoints and when the WAL starts over, which keeps the file
/// sound. Its page cache (8 MiB, against SQLite's 2 MiB default) holds the hot state and
/// index pages, so a group commit reads little and spills nothing mid-way; not
/// more, because SQLite walks the whole cache at the end of every transaction.
/// It checkpoints itself only as a backstop, once the WAL holds 64 MiB: the
/// checkpointer thread does that work off the writer's path, and a checkpoint
/// inside a commit is what made the slowest answers (docs/performance.md,
/// "Why checkpoints run off the writer's path").
const WRITER_SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 5000; PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 16384;
    PRAGMA journal_size_limit = 67108864;";

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::UnboundedSender<Job>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    unwritten: UnwrittenContacts,
    path: PathBuf,
}

/// Contacts the writer has committed events for but not yet written the state
/// of, by `wa_id`: readers take these over the table's rows, so an answered
/// webhook's contact can be read at once. The writer updates it after each commit
/// and before answering; a reader copies it before reading the table.
type UnwrittenContacts = Arc<Mutex<HashMap<String, Arc<ContactState>>>>;

/// Locks state shared with the writer's threads. Each holder changes it in one
/// step (a map extended or cleared whole, a count moved), so a panic elsewhere
/// leaves it usable.
fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::unavailable(error)
}

fn corrupt(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::corrupt(error)
}

fn writer_gone() -> StoreError {
    unavailable("the store's writer has stopped")
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut connection = Connection::open(&path).map_err(unavailable)?;
        connection
            .execute_batch(WRITER_SETTINGS)
            .map_err(unavailable)?;
        // Before any other connection: brings a file of an older build up to
        // this one's tables, or refuses one of a newer build.
        schema::migrate(&mut connection)?;
        let unwritten = UnwrittenContacts::default();
        let state_writer = Writer::open(connection, unwritten.clone())?;
        let mut wal_path = path.clone().into_os_string();
        wal_path.push("-wal");
        // fsync works on any descriptor of the file; SQLite keeps the WAL while
        // the writer's connection is open.
        let wal = std::fs::File::open(&wal_path).map_err(unavailable)?;
        let (synced, to_sync) = std::sync::mpsc::channel();
        let unsynced = Arc::new(Unsynced::default());
        let syncer_unsynced = unsynced.clone();
        std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || run_syncer(|| wal.sync_all(), to_sync, &syncer_unsynced))
            .map_err(unavailable)?;
        let checkpointer = Connection::open(&path).map_err(unavailable)?;
        checkpointer
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(unavailable)?;
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run_checkpointer(checkpointer, commits))
            .map_err(unavailable)?;
        let manager = SqliteConnectionManager::file(&path)
            .with_init(|c| c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;"));
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(unavailable)?;
        let (writer, jobs) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(state_writer, jobs, committed, synced, unsynced))
            .map_err(unavailable)?;
        Ok(Self {
            writer,
            readers,
            unwritten,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with a read connection on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let connection = readers.get().map_err(unavailable)?;
            work(&connection)
        })
        .await
        .map_err(unavailable)?
    }

    /// Runs `work` on the writer thread, between group commits.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, result) = oneshot::channel();
        let job = Job::Run(Box::new(move |c| {
            // The caller gone (its request cancelled) leaves no one to tell.
            let _ = done.send(work(c));
        }));
        self.writer.send(job).map_err(|_| writer_gone())?;
        result.await.map_err(|_| writer_gone())?
    }

    /// Deletes raw events past their retention, minute counters past use and
    /// connections past their lifetime, as DynamoDB's TTL does in AWS. Returns
    /// how many events went.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now_ms = now.timestamp_millis();
        self.write(move |c| purge(c, now_ms)).await
    }
}

/// What [`SqliteStore::purge_expired`] deletes, as of `now_ms`.
fn purge(c: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    let events = c
        .execute("DELETE FROM events WHERE expires_ms < ?1", [now_ms])
        .map_err(unavailable)?;
    c.execute(
        "DELETE FROM counters WHERE granularity = 'M' AND slot < ?1",
        [now_ms - MINUTE_COUNTERS_KEPT_MS],
    )
    .map_err(unavailable)?;
    c.execute("DELETE FROM connections WHERE expires_ms < ?1", [now_ms])
        .map_err(unavailable)?;
    // An emptied table starts its rowids again from 1: the mark follows. Events
    // whose state is not written yet are seconds old (retention is at least a
    // day), so this never moves the mark before one of them.
    c.execute(
        "UPDATE state_mark SET last_event = min(last_event, (SELECT coalesce(max(rowid), 0) FROM events))",
        [],
    )
    .map_err(unavailable)?;
    Ok(events)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("state serialises")
}
