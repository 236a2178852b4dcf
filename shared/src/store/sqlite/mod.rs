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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{
    Connection as LiveConnection, ConnectionPage, ConnectionStore, EventPage, EventQuery, Store,
    StoreError,
};
use crate::counters::{
    day_and_quarter, utc_from_ms, DayCounter, Deltas, Granularity, SlotCounters, DAY_MS,
    QUARTERS_PER_DAY,
};
use crate::event::{Event, ReceivedEvent};
use crate::ingest::{expires_at, ContactState, Ledger, Outcome};

/// The events, in arrival order (rowid). `id` holds an event id's 16 bytes (see
/// [`IdKey`]): the id index and `events_newest_first` take random inserts, and
/// keys half as long make them about 40 % fewer pages to write per group commit.
const EVENTS_TABLE: &str = "
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

const SCHEMA: &str = "
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

/// Minute counters serve only the last hour; they are purged after this long.
const MINUTE_COUNTERS_KEPT_MS: i64 = 2 * 86_400_000;

/// At most this many events go into one group commit; more waits for the next.
const MAX_GROUP_EVENTS: usize = 5_000;
/// A group with fewer events waits for the fsync in flight (at most
/// [`SMALL_GROUP_WAIT`]) and takes in what arrives meanwhile before it commits:
/// small groups committed back to back write the same hot pages (counters, the
/// tails of indexes) again and again, which cost more than the overlap gained.
const SMALL_GROUP_EVENTS: usize = 100;
const SMALL_GROUP_WAIT: Duration = Duration::from_millis(5);
/// Read connections: enough for the two cores and a few concurrent dashboards.
const READERS: u32 = 4;
/// How long, at most, contact and message state stays in the writer's memory
/// while deliveries keep coming: a busy contact's row is then written once in
/// this time instead of in every group commit.
const STATE_INTERVAL: Duration = Duration::from_secs(1);
/// A writer with no work for this long writes the state in memory. Not at once:
/// under load the queue empties for a moment between most groups.
const STATE_IDLE: Duration = Duration::from_millis(50);
/// How often, at most, the checkpointer copies committed pages from the WAL
/// into the database file. Between two runs a hot page (the current slot's
/// counters, the tail of an index) is committed many times and copied once.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The writer's connection. Its commits are not fsynced by SQLite
/// (`synchronous = NORMAL`): the syncer thread fsyncs the WAL after them and
/// before any answer, off the writer's path (see [`run_syncer`]). SQLite still
/// syncs around checkpoints and when the WAL starts over, which keeps the file
/// sound. Its page cache (8 MiB, against SQLite's 2 MiB default) holds the hot state and
/// index pages, so a group commit reads little and spills nothing mid-way; not
/// more, because SQLite walks the whole cache at the end of every transaction.
/// It checkpoints itself only as a backstop, once the WAL holds 64 MiB: the
/// checkpointer thread does that work off the writer's path, and a checkpoint
/// inside a commit is what made the slowest answers (see docs/benchmarks.md).
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
type UnwrittenContacts = Arc<Mutex<HashMap<String, ContactState>>>;

/// Locks state shared with the writer's threads. Each holder changes it in one
/// step (a map extended or cleared whole, a count moved), so a panic elsewhere
/// leaves it usable.
fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Work for the writer thread.
enum Job {
    /// A delivery, to be written in the next group commit.
    Record(Delivery),
    /// Any other write, run on its own between groups.
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

struct Delivery {
    events: Vec<ReceivedEvent>,
    retention_days: u32,
    done: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
}

/// Groups committed and not yet answered: the writer holds a small group back
/// while there are any (see [`SMALL_GROUP_EVENTS`]).
#[derive(Default)]
struct Unsynced {
    groups: Mutex<usize>,
    answered: std::sync::Condvar,
}

impl Unsynced {
    fn add(&self) {
        *lock(&self.groups) += 1;
    }

    fn answered(&self, groups: usize) {
        *lock(&self.groups) -= groups;
        self.answered.notify_all();
    }

    /// Waits, at most `limit`, until every committed group is answered.
    fn wait(&self, limit: Duration) {
        let groups = lock(&self.groups);
        let _ = self
            .answered
            .wait_timeout_while(groups, limit, |groups| *groups > 0);
    }
}

/// A group the writer has committed (or failed to), waiting for the fsync that
/// makes it durable before its deliveries are answered.
struct Committed {
    group: Vec<Delivery>,
    written: Result<Vec<Vec<Outcome>>, StoreError>,
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
        add_quarter_totals(&mut connection)?;
        key_event_ids(&mut connection)?;
        connection
            .execute_batch(EVENTS_TABLE)
            .and_then(|()| connection.execute_batch(SCHEMA))
            .map_err(unavailable)?;
        move_quarter_cells(&mut connection)?;
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

/// The writer thread: runs jobs in arrival order, deliveries in groups, until
/// every handle of the store is gone. Other jobs come after the state in memory
/// is written, and so does a wait for work longer than [`STATE_IDLE`].
fn run_writer(
    mut writer: Writer,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    committed: std::sync::mpsc::SyncSender<()>,
    synced: std::sync::mpsc::Sender<Committed>,
    unsynced: Arc<Unsynced>,
) {
    // A clock for the idle wait; the thread runs nothing else on it.
    let clock = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(clock) => clock,
        Err(error) => {
            tracing::error!(%error, "the store's writer could not start");
            return;
        }
    };
    let mut next = jobs.blocking_recv();
    while let Some(job) = next.take() {
        match job {
            Job::Run(work) => {
                writer.write_state_logged();
                work(&mut writer.connection);
            }
            Job::Record(first) => {
                let mut events = first.events.len();
                let mut group = vec![first];
                gather(&mut jobs, &mut group, &mut events, &mut next);
                if events < SMALL_GROUP_EVENTS && next.is_none() {
                    unsynced.wait(SMALL_GROUP_WAIT);
                    gather(&mut jobs, &mut group, &mut events, &mut next);
                }
                let written = writer.write_group(&group);
                // A checkpoint is due; one already due is enough.
                let _ = committed.try_send(());
                unsynced.add();
                if let Err(std::sync::mpsc::SendError(lost)) =
                    synced.send(Committed { group, written })
                {
                    unsynced.answered(1);
                    answer(
                        lost.group,
                        &Err(unavailable("the store's syncer has stopped")),
                    );
                }
            }
        }
        if next.is_none() {
            let job = clock.block_on(async { tokio::time::timeout(STATE_IDLE, jobs.recv()).await });
            next = match job {
                Ok(job) => job,
                Err(_idle) => {
                    writer.write_state_logged();
                    jobs.blocking_recv()
                }
            };
        }
    }
    writer.write_state_logged();
}

/// Takes the deliveries waiting into the group, up to [`MAX_GROUP_EVENTS`]; any
/// other job ends the group and becomes `next`.
fn gather(
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    group: &mut Vec<Delivery>,
    events: &mut usize,
    next: &mut Option<Job>,
) {
    while *events < MAX_GROUP_EVENTS && next.is_none() {
        match jobs.try_recv() {
            Ok(Job::Record(delivery)) => {
                *events += delivery.events.len();
                group.push(delivery);
            }
            Ok(other) => *next = Some(other),
            Err(_) => break,
        }
    }
}

/// The syncer thread: makes committed groups durable with `sync` (an fsync of
/// the WAL), then answers their deliveries. One fsync covers every group that
/// committed before it started, so the groups that commit while one runs share the
/// next. A failed fsync answers the groups it was for with an error: Meta sends
/// them again, and what did reach the disk is then found and not counted twice.
fn run_syncer(
    mut sync: impl FnMut() -> std::io::Result<()>,
    committed: std::sync::mpsc::Receiver<Committed>,
    unsynced: &Unsynced,
) {
    while let Ok(first) = committed.recv() {
        let mut batch = vec![first];
        batch.extend(committed.try_iter());
        let synced = match batch.iter().any(|c| c.written.is_ok()) {
            true => sync(),
            false => Ok(()),
        };
        if let Err(error) = &synced {
            tracing::error!(%error, "fsync of the WAL failed; its deliveries are answered with an error");
        }
        let groups = batch.len();
        for Committed { group, written } in batch {
            let written = match (&synced, written) {
                (Err(error), Ok(_)) => Err(unavailable(format!(
                    "the write could not be made durable: {error}"
                ))),
                (_, written) => written,
            };
            answer(group, &written);
        }
        unsynced.answered(groups);
    }
}

/// Answers each delivery of a group with its outcomes, or the group's error.
fn answer(group: Vec<Delivery>, written: &Result<Vec<Vec<Outcome>>, StoreError>) {
    for (index, delivery) in group.into_iter().enumerate() {
        let result = match written {
            Ok(outcomes) => Ok(outcomes[index].clone()),
            Err(error) => Err(error.clone()),
        };
        // A caller gone (its request cancelled) leaves no one to tell.
        let _ = delivery.done.send(result);
    }
}

/// The checkpointer thread: after commits, at most every [`CHECKPOINT_INTERVAL`],
/// copies what the WAL holds into the database file (PASSIVE: it never blocks the
/// writer or readers), until the writer is gone.
fn run_checkpointer(connection: Connection, commits: std::sync::mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "checkpoint failed; the writer's own will catch up");
        }
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
}

/// The only writing connection, and the contact and message state applied since
/// that state was last written to its tables.
///
/// Events and counter deltas are written with every group commit; state rows
/// every [`STATE_INTERVAL`] and when the writer has had nothing to do for
/// [`STATE_IDLE`], because a busy contact's row rewritten in every commit is much
/// of the pages a commit writes. Readers see the contacts not yet written through
/// [`UnwrittenContacts`].
///
/// The state tables always match the events up to `state_mark`: after a crash,
/// [`Writer::catch_up`] applies the events stored after the mark again (their
/// counters are already written, so only state is rebuilt).
struct Writer {
    connection: Connection,
    /// State loaded or changed since state was last written, and no deltas
    /// between commits.
    ledger: Ledger,
    unwritten: UnwrittenContacts,
    written_at: Instant,
    /// The ledger may hold the effects of a group that was rolled back: rebuild
    /// it from the tables before the next write.
    stale: bool,
}

impl Writer {
    /// Takes over the connection and brings the state tables up to the last event.
    fn open(connection: Connection, unwritten: UnwrittenContacts) -> Result<Self, StoreError> {
        let mut writer = Self {
            connection,
            ledger: Ledger::default(),
            unwritten,
            written_at: Instant::now(),
            stale: true,
        };
        writer.write_state()?;
        Ok(writer)
    }

    /// Rebuilds the ledger from the state tables and the events after the mark.
    fn catch_up(&mut self) -> Result<(), StoreError> {
        let mut ledger = Ledger::default();
        let tx = self.connection.transaction().map_err(unavailable)?;
        let mut replayed = 0;
        {
            let mut query = tx
                .prepare(
                    "SELECT data FROM events WHERE rowid > (SELECT last_event FROM state_mark) ORDER BY rowid",
                )
                .map_err(unavailable)?;
            let mut rows = query.query([]).map_err(unavailable)?;
            while let Some(row) = rows.next().map_err(unavailable)? {
                let event: Event = from_json(
                    row.get_ref(0)
                        .and_then(|v| Ok(v.as_str()?))
                        .map_err(unavailable)?,
                )?;
                load_state(&tx, &mut ledger, &event)?;
                ledger.apply(&event);
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
        self.stale = false;
        Ok(())
    }

    /// Writes a group of deliveries in one transaction: each event is inserted
    /// unless it is there already and applied to the state in memory in arrival
    /// order; the group's counter deltas, merged, are added at the end, and the
    /// state too once [`STATE_INTERVAL`] has passed since it was last written.
    /// All of it commits, or none of it.
    fn write_group(&mut self, group: &[Delivery]) -> Result<Vec<Vec<Outcome>>, StoreError> {
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
                if insert_event(&tx, received, delivery.retention_days)? {
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
        let with_state = self.written_at.elapsed() >= STATE_INTERVAL;
        if with_state {
            write_state(&tx, &self.ledger)?;
        }
        tx.commit().map_err(unavailable)?;
        self.stale = false;
        if with_state {
            self.state_written();
        } else {
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

    /// Writes the state in memory, if any changed, in a transaction of its own.
    fn write_state(&mut self) -> Result<(), StoreError> {
        if self.stale {
            self.catch_up()?;
        }
        if !self.ledger.has_changed_state() {
            return Ok(());
        }
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        write_state(&tx, &self.ledger)?;
        tx.commit().map_err(unavailable)?;
        self.state_written();
        Ok(())
    }

    /// [`Writer::write_state`] where no one waits for the answer: a failure is
    /// logged and the state stays in memory for the next try.
    fn write_state_logged(&mut self) {
        if let Err(error) = self.write_state() {
            tracing::warn!(%error, "writing contact and message state failed; it stays in memory");
        }
    }

    fn state_written(&mut self) {
        self.ledger = Ledger::default();
        lock(&self.unwritten).clear();
        self.written_at = Instant::now();
    }
}

/// An event id as the events table keys it: the 16 bytes its 32 lowercase hex
/// digits spell (every id [`crate::event`] makes), which sort as the digits do, so
/// the feed's tie order is the ids' order still. An id of any other form is kept
/// as text, which never equals a blob.
enum IdKey<'a> {
    Bytes([u8; 16]),
    Text(&'a str),
}

impl<'a> IdKey<'a> {
    fn of(id: &'a str) -> Self {
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

/// Inserts an event unless one with its id is stored; whether it was new.
fn insert_event(
    tx: &Connection,
    received: &ReceivedEvent,
    retention_days: u32,
) -> Result<bool, StoreError> {
    let event = &received.event;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                IdKey::of(&event.id),
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
    Ok(inserted == 1)
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

/// Writes the ledger's changed contact and message state and moves the mark to
/// the last stored event, whose effects the ledger holds.
fn write_state(tx: &Connection, ledger: &Ledger) -> Result<(), StoreError> {
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

/// Adds quarter cells `(slot, name, value)` to their day rows.
fn add_quarters<'a>(
    tx: &Connection,
    cells: impl IntoIterator<Item = (i64, &'a str, i64)>,
) -> Result<(), StoreError> {
    let mut rows: BTreeMap<(i64, &str), [i64; QUARTERS_PER_DAY]> = BTreeMap::new();
    for (slot, name, value) in cells {
        let (day, quarter) = day_and_quarter(slot);
        rows.entry((day, name)).or_insert([0; QUARTERS_PER_DAY])[usize::from(quarter)] += value;
    }
    let mut read = tx
        .prepare_cached("SELECT quarters FROM quarter_counters WHERE day = ?1 AND name = ?2")
        .map_err(unavailable)?;
    let mut write = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO quarter_counters (day, name, quarters, total) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(unavailable)?;
    for ((day, name), additions) in rows {
        let stored: Option<Vec<u8>> = read
            .query_row(params![day, name], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
        let mut quarters = match stored {
            Some(bytes) => decode_quarters(&bytes)?,
            None => [0; QUARTERS_PER_DAY],
        };
        for (sum, addition) in quarters.iter_mut().zip(additions) {
            *sum += addition;
        }
        let total: i64 = quarters.iter().sum();
        write
            .execute(params![day, name, encode_quarters(&quarters), total])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// A day's quarters as stored: the non-zero ones as (quarter, i64 LE) pairs.
fn encode_quarters(quarters: &[i64; QUARTERS_PER_DAY]) -> Vec<u8> {
    let held = quarters.iter().filter(|v| **v != 0).count();
    let mut bytes = Vec::with_capacity(9 * held);
    for (quarter, value) in quarters.iter().enumerate().filter(|(_, v)| **v != 0) {
        bytes.push(quarter as u8);
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

fn decode_quarters(bytes: &[u8]) -> Result<[i64; QUARTERS_PER_DAY], StoreError> {
    let mut quarters = [0; QUARTERS_PER_DAY];
    for pair in quarter_pairs(bytes)? {
        let (quarter, value) = pair?;
        quarters[usize::from(quarter)] += value;
    }
    Ok(quarters)
}

/// The (quarter, value) pairs of a stored day row, each checked as it is read.
fn quarter_pairs(
    bytes: &[u8],
) -> Result<impl Iterator<Item = Result<(u8, i64), StoreError>> + '_, StoreError> {
    let pairs = bytes.chunks_exact(9);
    if !pairs.remainder().is_empty() {
        return Err(corrupt(
            "a quarter_counters row is not whole (quarter, value) pairs",
        ));
    }
    Ok(pairs.map(|pair| {
        if usize::from(pair[0]) >= QUARTERS_PER_DAY {
            return Err(corrupt("a quarter_counters row names a quarter past 95"));
        }
        let value = i64::from_le_bytes(pair[1..].try_into().expect("8 bytes"));
        Ok((pair[0], value))
    }))
}

/// Rewrites the events table of a file written while it keyed events by their
/// ids' hex text into the keyed-by-bytes form, in one transaction (a no-op on a
/// new file or once done). Rowids, which are arrival order and `state_mark`'s
/// measure, are kept.
fn key_event_ids(c: &mut Connection) -> Result<(), StoreError> {
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
fn add_quarter_totals(c: &mut Connection) -> Result<(), StoreError> {
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
fn move_quarter_cells(c: &mut Connection) -> Result<(), StoreError> {
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

/// A state row's JSON, decoded; `None` when there is no row.
fn read_state<T: serde::de::DeserializeOwned>(
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

/// The contacts' ids as a JSON array, for `json_each`.
fn wa_ids(contacts: &[ContactState]) -> String {
    to_json(&contacts.iter().map(|c| &c.wa_id).collect::<Vec<_>>())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("state serialises")
}

#[async_trait]
impl Store for SqliteStore {
    async fn record(
        &self,
        events: &[ReceivedEvent],
        retention_days: u32,
    ) -> Result<Vec<Outcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (done, result) = oneshot::channel();
        let delivery = Delivery {
            events: events.to_vec(),
            retention_days,
            done,
        };
        self.writer
            .send(Job::Record(delivery))
            .map_err(|_| writer_gone())?;
        result.await.map_err(|_| writer_gone())?
    }

    async fn quarter_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        quarters_of: Option<&str>,
    ) -> Result<Vec<DayCounter>, StoreError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        let first_day = day_and_quarter(from_ms).0;
        let quarters_of = quarters_of.map(str::to_owned);
        self.read(move |c| {
            // A day wholly inside the range, of a name whose quarters are not
            // asked for, is read as its total: its quarters are not even copied.
            let mut query = c
                .prepare_cached(
                    "SELECT day, name, total,
                        CASE WHEN day >= ?1 AND day <= ?2 - 86400000
                              AND (?3 IS NULL OR substr(name, 1, length(?3)) <> ?3)
                        THEN NULL ELSE quarters END
                     FROM quarter_counters WHERE day >= ?4 AND day < ?2 ORDER BY day, name",
                )
                .map_err(unavailable)?;
            let mut rows = query
                .query(params![from_ms, to_ms, quarters_of, first_day])
                .map_err(unavailable)?;
            let mut counters = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let day: i64 = row.get(0).map_err(unavailable)?;
                let name = || row.get(1).map_err(unavailable);
                let Some(bytes) = row
                    .get_ref(3)
                    .and_then(|v| Ok(v.as_blob_or_null()?))
                    .map_err(unavailable)?
                else {
                    let total: i64 = row.get(2).map_err(unavailable)?;
                    if total != 0 {
                        counters.push(DayCounter {
                            day,
                            name: name()?,
                            total,
                            quarters: Vec::new(),
                        });
                    }
                    continue;
                };
                // Sized up front: collecting a filter grows the vector step by step.
                let mut quarters = Vec::with_capacity(bytes.len() / 9);
                let whole_day = day >= from_ms && day + DAY_MS <= to_ms;
                for pair in quarter_pairs(bytes)? {
                    let (q, v) = pair?;
                    let slot = day + i64::from(q) * Granularity::Quarter.millis();
                    if v != 0 && (whole_day || (slot >= from_ms && slot < to_ms)) {
                        quarters.push((q, v));
                    }
                }
                if !quarters.is_empty() {
                    counters.push(DayCounter::new(day, name()?, quarters));
                }
            }
            Ok(counters)
        })
        .await
    }

    async fn minute_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        self.read(move |c| {
            let mut query = c
                .prepare_cached(
                    "SELECT slot, name, value FROM counters WHERE granularity = 'M' AND slot >= ?1 AND slot < ?2 ORDER BY slot",
                )
                .map_err(unavailable)?;
            let rows = query
                .query_map(params![from_ms, to_ms], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(unavailable)?;
            let mut slots: Vec<SlotCounters> = Vec::new();
            for row in rows {
                let (slot, name, value) = row.map_err(unavailable)?;
                if slots.last().map(|s| s.slot) != Some(slot) {
                    slots.push(SlotCounters { slot, values: Default::default() });
                }
                slots.last_mut().expect("pushed above").values.insert(name, value);
            }
            Ok(slots)
        })
        .await
    }

    async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let query = query.clone();
        self.read(move |c| {
            let (before_ms, before_id) = match &query.before {
                Some(b) => (b.occurred_ms, Some(IdKey::of(&b.id))),
                None => (i64::MAX, None),
            };
            let mut statement = c
                .prepare_cached(
                    "SELECT data FROM events
                     WHERE (occurred_ms < ?1 OR (occurred_ms = ?1 AND id < ?2))
                       AND (?3 IS NULL OR type = ?3)
                       AND (?4 IS NULL OR instr(search, ?4) > 0)
                     ORDER BY occurred_ms DESC, id DESC LIMIT ?5",
                )
                .map_err(unavailable)?;
            let text = query.text.map(|t| t.to_lowercase());
            let rows = statement
                .query_map(
                    params![
                        before_ms,
                        before_id,
                        query.event_type,
                        text,
                        query.limit as i64 + 1
                    ],
                    |r| r.get::<_, String>(0),
                )
                .map_err(unavailable)?;
            let mut events = Vec::new();
            for row in rows {
                events.push(from_json::<Event>(&row.map_err(unavailable)?)?);
            }
            Ok(EventPage::from_overfetch(events, query.limit))
        })
        .await
    }

    async fn event(&self, id: &str) -> Result<Option<(Event, String)>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let row = c
                .query_row(
                    "SELECT data, raw FROM events WHERE id = ?1",
                    [IdKey::of(&id)],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(data, raw)| Ok((from_json(&data)?, raw)))
                .transpose()
        })
        .await
    }

    async fn contacts(&self, limit: usize) -> Result<Vec<ContactState>, StoreError> {
        let unwritten: Vec<ContactState> = lock(&self.unwritten).values().cloned().collect();
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT data FROM contacts WHERE wa_id NOT IN (SELECT value FROM json_each(?2))
                     ORDER BY activity_ms DESC, wa_id LIMIT ?1",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![limit as i64, wa_ids(&unwritten)], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            let mut contacts = unwritten;
            for row in rows {
                contacts.push(from_json(&row.map_err(unavailable)?)?);
            }
            contacts.sort_by(|a, b| {
                (b.last_activity_ms, &a.wa_id).cmp(&(a.last_activity_ms, &b.wa_id))
            });
            contacts.truncate(limit);
            Ok(contacts)
        })
        .await
    }

    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let since_ms = since.timestamp_millis();
        let unwritten: Vec<ContactState> = lock(&self.unwritten).values().cloned().collect();
        let active = unwritten
            .iter()
            .filter(|c| c.last_inbound_ms.is_some_and(|ms| ms >= since_ms))
            .count() as u64;
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM contacts
                 WHERE inbound_ms >= ?1 AND wa_id NOT IN (SELECT value FROM json_each(?2))",
                params![since_ms, wa_ids(&unwritten)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64 + active)
            .map_err(unavailable)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(writer_gone());
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
            .await
    }
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn add(&self, connection: &LiveConnection) -> Result<(), StoreError> {
        let row = (
            connection.id.clone(),
            connection.connected_at.timestamp_millis(),
            connection.expires_at.timestamp_millis(),
            connection.types.as_ref().map(to_json),
        );
        self.write(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO connections (connection_id, connected_ms, expires_ms, types)
                 VALUES (?1, ?2, ?3, ?4)",
                params![row.0, row.1, row.2, row.3],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM connections WHERE connection_id = ?1", [id])
                .map(drop)
                .map_err(unavailable)
        })
        .await
    }

    async fn subscribe(&self, id: &str, types: &[String]) -> Result<bool, StoreError> {
        let (id, types) = (id.to_owned(), to_json(&types));
        self.write(move |c| {
            c.execute(
                "UPDATE connections SET types = ?2 WHERE connection_id = ?1",
                params![id, types],
            )
            .map(|updated| updated == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn connections(
        &self,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ConnectionPage, StoreError> {
        let (after, now_ms) = (after.unwrap_or_default().to_owned(), now.timestamp_millis());
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT connection_id, connected_ms, expires_ms, types FROM connections
                     WHERE connection_id > ?1 AND expires_ms >= ?2 ORDER BY connection_id LIMIT ?3",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![after, now_ms, limit as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut connections = Vec::new();
            for row in rows {
                let (id, connected_ms, expires_ms, types) = row.map_err(unavailable)?;
                connections.push(LiveConnection {
                    id,
                    connected_at: utc_from_ms(connected_ms),
                    expires_at: utc_from_ms(expires_ms),
                    types: types.map(|t| from_json(&t)).transpose()?,
                });
            }
            let next = (connections.len() == limit)
                .then(|| connections.last().map(|c| c.id.clone()))
                .flatten();
            Ok(ConnectionPage { connections, next })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{names, DAY_MS};
    use crate::event::events_from_body;
    use serde_json::{json, Value};

    const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z, in seconds as WhatsApp sends

    fn delivery(messages: Vec<Value>, statuses: Vec<Value>) -> Delivery {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1"},
                "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
                "messages": messages, "statuses": statuses}}]}]});
        let events = events_from_body(&serde_json::to_vec(&body).unwrap(), Utc::now()).unwrap();
        Delivery {
            events,
            retention_days: 90,
            done: oneshot::channel().0,
        }
    }
    fn text(id: &str, at: i64) -> Value {
        json!({"from": "919876543210", "id": id, "timestamp": at.to_string(), "type": "text", "text": {"body": "hi"}})
    }
    fn status(status: &str, at: i64) -> Value {
        json!({"id": "wamid.out", "status": status, "timestamp": at.to_string(), "recipient_id": "919876543210"})
    }

    /// A file holding what `ddl` creates (as an older version may have left it),
    /// in a folder of its own.
    fn file_with(ddl: &str) -> (tempfile::TempDir, Connection) {
        let folder = tempfile::tempdir().unwrap();
        let c = Connection::open(folder.path().join("pulse.db")).unwrap();
        c.execute_batch(ddl).unwrap();
        (folder, c)
    }

    fn schema() -> (tempfile::TempDir, Connection) {
        file_with(&format!("{EVENTS_TABLE}{SCHEMA}"))
    }

    fn total(c: &Connection, name: &str) -> i64 {
        let mut query = c
            .prepare("SELECT quarters FROM quarter_counters WHERE name = ?1")
            .unwrap();
        let rows = query.query_map([name], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        rows.map(|bytes| {
            decode_quarters(&bytes.unwrap())
                .unwrap()
                .iter()
                .sum::<i64>()
        })
        .sum()
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let (folder, c) = schema();
        (
            folder,
            Writer::open(c, UnwrittenContacts::default()).unwrap(),
        )
    }

    fn contact(c: &Connection) -> Option<ContactState> {
        read_state(
            c,
            "SELECT data FROM contacts WHERE wa_id = ?1",
            "919876543210",
        )
        .unwrap()
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn overlapping_deliveries_in_one_commit_count_each_event_once() {
        let (_folder, mut w) = writer();
        let first = || {
            delivery(
                vec![text("wamid.a", T0), text("wamid.b", T0 + 10)],
                vec![status("sent", T0 + 60)],
            )
        };
        // Overlaps the first, repeats an update within itself, and adds `read`.
        let second = delivery(
            vec![text("wamid.b", T0 + 10)],
            vec![
                status("sent", T0 + 60),
                status("read", T0 + 90),
                status("read", T0 + 90),
            ],
        );
        let group = [first(), second, first()];
        let outcomes = w.write_group(&group).unwrap();
        w.write_state().unwrap(); // as the writer does when it has nothing else to do
        let c = &w.connection;
        use Outcome::{Duplicate as D, Stored as S};
        assert_eq!(outcomes, [vec![S, S, S], vec![D, D, S, D], vec![D, D, D]]);

        assert_eq!(total(c, names::EVENTS), 4);
        assert_eq!(total(c, names::TEXT), 2);
        assert_eq!(total(c, names::OUTBOUND), 1);
        assert_eq!(total(c, names::REACHED), 1);
        assert_eq!(total(c, names::RESPONSE_COUNT), 1);
        assert_eq!(total(c, names::RESPONSE_SUM_MS), 60_000);
        let stored = contact(c).unwrap();
        assert_eq!((stored.inbound, stored.outbound), (2, 1));

        // The next group reads the state the first one wrote.
        let again = w.write_group(&[first()]).unwrap();
        assert_eq!(again, [vec![D, D, D]]);
        assert_eq!(total(&w.connection, names::EVENTS), 4);
    }

    #[test]
    fn a_group_that_fails_writes_nothing_and_leaves_no_state_behind() {
        let (_folder, mut w) = writer();
        w.connection.execute_batch("DROP TABLE counters").unwrap();
        let group = [delivery(vec![text("wamid.a", T0)], vec![])];
        assert!(matches!(
            w.write_group(&group),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(
            (
                count(&w.connection, "events"),
                count(&w.connection, "contacts")
            ),
            (0, 0)
        );
        // The failed group's effects do not carry over into the next one.
        w.connection.execute_batch(SCHEMA).unwrap();
        let next = [delivery(vec![text("wamid.b", T0 + 1)], vec![])];
        w.write_group(&next).unwrap();
        w.write_state().unwrap();
        assert_eq!(contact(&w.connection).unwrap().inbound, 1);
        assert_eq!(total(&w.connection, names::EVENTS), 1);
    }

    #[tokio::test]
    async fn state_kept_in_memory_at_a_crash_is_rebuilt_on_open_without_counting_twice() {
        let (folder, mut w) = writer();
        let group = [delivery(
            vec![text("wamid.a", T0), text("wamid.b", T0 + 10)],
            vec![status("sent", T0 + 60), status("read", T0 + 90)],
        )];
        // State written just now (on open): only events and counters go.
        w.write_group(&group).unwrap();
        assert_eq!(lock(&w.unwritten)["919876543210"].inbound, 2);
        assert_eq!(count(&w.connection, "events"), 4);
        assert_eq!(count(&w.connection, "messages"), 0);
        assert!(contact(&w.connection).is_none());
        drop(w); // a crash: the state in memory is never written

        for _ in 0..2 {
            // The second open finds nothing left to apply.
            let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
            let contacts = store.contacts(10).await.unwrap();
            assert_eq!(contacts.len(), 1);
            assert_eq!((contacts[0].inbound, contacts[0].outbound), (2, 1));
            let c = Connection::open(store.path()).unwrap();
            assert_eq!(count(&c, "messages"), 1);
            assert_eq!(total(&c, names::EVENTS), 4);
            assert_eq!(total(&c, names::RESPONSE_COUNT), 1);
            let mark: i64 = c
                .query_row("SELECT last_event FROM state_mark", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mark, 4);
        }

        // After the rebuild, a late status finds the message it follows.
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let late = delivery(vec![], vec![status("delivered", T0 + 70)]).events;
        assert_eq!(store.record(&late, 90).await.unwrap(), [Outcome::Stored]);
        let c = Connection::open(store.path()).unwrap();
        assert_eq!(total(&c, names::OUTBOUND), 1);
        assert_eq!(total(&c, names::REACHED), 1);
    }

    type Answer = oneshot::Receiver<Result<Vec<Outcome>, StoreError>>;

    /// A group of `n` (empty) deliveries and the receivers of their answers.
    fn waiting(n: usize) -> (Vec<Delivery>, Vec<Answer>) {
        (0..n)
            .map(|_| {
                let (done, answer) = oneshot::channel();
                let delivery = Delivery {
                    events: Vec::new(),
                    retention_days: 90,
                    done,
                };
                (delivery, answer)
            })
            .unzip()
    }

    #[test]
    fn groups_are_answered_after_one_fsync_covers_them() {
        let (first, mut first_answers) = waiting(2);
        let (failed, mut failed_answers) = waiting(1);
        let (to_sync, committed) = std::sync::mpsc::channel();
        let outcomes = vec![vec![Outcome::Stored], vec![Outcome::Duplicate]];
        to_sync
            .send(Committed {
                group: first,
                written: Ok(outcomes),
            })
            .unwrap();
        to_sync
            .send(Committed {
                group: failed,
                written: Err(unavailable("rolled back")),
            })
            .unwrap();
        drop(to_sync);
        let unsynced = Unsynced::default();
        unsynced.add();
        unsynced.add();
        let mut syncs = 0;
        run_syncer(
            || {
                syncs += 1;
                let answered = first_answers.iter_mut().any(|a| a.try_recv().is_ok());
                assert!(!answered, "answered before the fsync");
                Ok(())
            },
            committed,
            &unsynced,
        );
        assert_eq!(syncs, 1, "both groups waited for one fsync");
        assert_eq!(*unsynced.groups.lock().unwrap(), 0);
        assert_eq!(
            first_answers[0].try_recv().unwrap().unwrap(),
            [Outcome::Stored]
        );
        assert_eq!(
            first_answers[1].try_recv().unwrap().unwrap(),
            [Outcome::Duplicate]
        );
        assert!(failed_answers[0].try_recv().unwrap().is_err());
    }

    #[test]
    fn a_failed_fsync_answers_its_groups_with_an_error() {
        let (group, mut answers) = waiting(1);
        let (to_sync, committed) = std::sync::mpsc::channel();
        let written = Ok(vec![vec![Outcome::Stored]]);
        to_sync.send(Committed { group, written }).unwrap();
        drop(to_sync);
        let unsynced = Unsynced::default();
        unsynced.add();
        run_syncer(
            || Err(std::io::Error::other("disk gone")),
            committed,
            &unsynced,
        );
        assert!(matches!(
            answers[0].try_recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn events_after_a_purge_that_emptied_the_table_are_rebuilt_after_a_crash() {
        let (folder, mut w) = writer();
        w.write_group(&[delivery(vec![text("wamid.a", T0)], vec![])])
            .unwrap();
        w.write_state().unwrap();
        // Far past the retention: every event goes, their state stays.
        let later = Utc::now().timestamp_millis() + 400 * DAY_MS;
        assert_eq!(purge(&w.connection, later).unwrap(), 1);
        // The next event takes rowid 1 again; its state stays in memory.
        w.write_group(&[delivery(vec![text("wamid.b", T0 + 1)], vec![])])
            .unwrap();
        drop(w);

        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        assert_eq!(store.contacts(10).await.unwrap()[0].inbound, 2);
    }

    #[tokio::test]
    async fn readers_take_unwritten_contacts_over_their_rows() {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let events = delivery(vec![text("wamid.a", T0)], vec![]).events;
        store.record(&events, 90).await.unwrap();
        // Any other job runs after the state is written.
        store.write(|_| Ok(())).await.unwrap();
        let stored = store.contacts(10).await.unwrap();
        assert_eq!(stored[0].inbound, 1);

        // As the writer leaves them between state writes: a newer state of the
        // stored contact and a contact with no row yet.
        let newer = ContactState {
            inbound: 2,
            last_activity_ms: T0 * 1000 + 5,
            last_inbound_ms: Some(T0 * 1000 + 5),
            ..stored[0].clone()
        };
        let other = ContactState {
            wa_id: "447700900123".into(),
            last_activity_ms: T0 * 1000 + 9,
            ..Default::default()
        };
        lock(&store.unwritten).extend([
            (newer.wa_id.clone(), newer.clone()),
            (other.wa_id.clone(), other.clone()),
        ]);
        let contacts = store.contacts(10).await.unwrap();
        let seen: Vec<_> = contacts
            .iter()
            .map(|c| (c.wa_id.as_str(), c.inbound))
            .collect();
        assert_eq!(seen, [("447700900123", 0), ("919876543210", 2)]);
        assert_eq!(store.contacts(1).await.unwrap()[0].wa_id, "447700900123");
        let since = utc_from_ms(T0 * 1000 + 1);
        assert_eq!(store.active_contacts(since).await.unwrap(), 1);
        assert_eq!(store.active_contacts(utc_from_ms(0)).await.unwrap(), 1);
    }

    #[test]
    fn a_day_row_keeps_each_quarter_and_refuses_broken_bytes() {
        let mut quarters = [0; QUARTERS_PER_DAY];
        quarters[0] = 3;
        quarters[57] = -2;
        quarters[95] = i64::MAX;
        let bytes = encode_quarters(&quarters);
        assert_eq!(bytes.len(), 3 * 9);
        assert_eq!(decode_quarters(&bytes).unwrap(), quarters);
        assert!(decode_quarters(&bytes[..10]).is_err());
        assert!(decode_quarters(&[96, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn quarter_cells_of_an_older_file_move_to_day_rows_on_open() {
        let (folder, c) = schema();
        let quarter = Granularity::Quarter.millis();
        let day = 1_767_225_600_000; // 2026-01-01
        for (slot, name, value) in [
            (day, "events", 2),
            (day + 95 * quarter, "events", 1),
            (day + 96 * quarter, "events", 5), // the next day's first quarter
            (day, "click:X", 1),
        ] {
            c.execute(
                "INSERT INTO counters (granularity, slot, name, value) VALUES ('Q', ?1, ?2, ?3)",
                params![slot, name, value],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO counters (granularity, slot, name, value) VALUES ('M', ?1, 'events', 7)",
            [day],
        )
        .unwrap();
        drop(c);
        for _ in 0..2 {
            // The second open finds nothing left to move and changes nothing.
            let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
            let rows = store
                .quarter_counters(utc_from_ms(day), utc_from_ms(day + 2 * DAY_MS), Some(""))
                .await
                .unwrap();
            let got: Vec<_> = rows
                .iter()
                .map(|r| (r.day, r.name.as_str(), r.quarters.clone()))
                .collect();
            assert_eq!(
                got,
                [
                    (day, "click:X", vec![(0, 1)]),
                    (day, "events", vec![(0, 2), (95, 1)]),
                    (day + DAY_MS, "events", vec![(0, 5)]),
                ]
            );
            let minutes = store
                .minute_counters(utc_from_ms(day), utc_from_ms(day + quarter))
                .await
                .unwrap();
            assert_eq!(minutes[0].get("events"), 7);
        }
    }

    #[tokio::test]
    async fn day_rows_of_an_older_file_get_their_totals_on_open() {
        let (folder, c) = file_with(
            "CREATE TABLE quarter_counters (day INTEGER NOT NULL, name TEXT NOT NULL,
             quarters BLOB NOT NULL, PRIMARY KEY (day, name)) WITHOUT ROWID",
        );
        let day = 1_767_225_600_000; // 2026-01-01
        let mut quarters = [0; QUARTERS_PER_DAY];
        quarters[3] = 4;
        quarters[90] = 5;
        c.execute(
            "INSERT INTO quarter_counters (day, name, quarters) VALUES (?1, 'events', ?2)",
            params![day, encode_quarters(&quarters)],
        )
        .unwrap();
        drop(c);
        for _ in 0..2 {
            // The second open finds the column there and changes nothing.
            let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
            let whole_day = store
                .quarter_counters(utc_from_ms(day), utc_from_ms(day + DAY_MS), None)
                .await
                .unwrap();
            let got: Vec<_> = whole_day
                .iter()
                .map(|r| (r.name.as_str(), r.total))
                .collect();
            assert_eq!(got, [("events", 9)]);
        }
    }

    #[tokio::test]
    async fn events_of_a_file_keyed_by_text_ids_are_rekeyed_on_open_and_still_found_once() {
        let (folder, c) = file_with(
            "CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT NOT NULL,
                 occurred_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
                 expires_ms INTEGER NOT NULL, search TEXT NOT NULL,
                 data TEXT NOT NULL, raw TEXT NOT NULL);
             CREATE INDEX events_newest_first ON events (occurred_ms DESC, id DESC);
             CREATE INDEX events_expiry ON events (expires_ms);",
        );
        let old = delivery(vec![text("wamid.k1", T0), text("wamid.k2", T0)], vec![]).events;
        for (received, rowid) in old.iter().zip([7, 9]) {
            let e = &received.event;
            c.execute(
                "INSERT INTO events (rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rowid,
                    e.id,
                    e.kind.type_name(),
                    e.occurred_at.timestamp_millis(),
                    i64::MAX,
                    e.search_text(),
                    to_json(e),
                    received.raw.get()
                ],
            )
            .unwrap();
        }
        drop(c);
        for _ in 0..2 {
            // The second open finds the table keyed by bytes and changes nothing.
            let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
            let (found, raw) = store.event(&old[0].event.id).await.unwrap().unwrap();
            assert_eq!(found.id, old[0].event.id);
            assert_eq!(raw, old[0].raw.get());
            // Ties at one time still page in the ids' order.
            let mut ids: Vec<_> = old.iter().map(|r| r.event.id.clone()).collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            let first = store
                .events(&EventQuery {
                    limit: 1,
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(first.events[0].id, ids[0]);
            let second = store
                .events(&EventQuery {
                    limit: 1,
                    before: first.next.clone(),
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            assert_eq!(second.events[0].id, ids[1]);
            assert_eq!(
                store.record(&old, 90).await.unwrap(),
                [Outcome::Duplicate, Outcome::Duplicate]
            );
            drop(store);
            let c = Connection::open(folder.path().join("pulse.db")).unwrap();
            let rows: Vec<(i64, String)> = c
                .prepare("SELECT rowid, typeof(id) FROM events ORDER BY rowid")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows, [(7, "blob".into()), (9, "blob".into())]);
        }
    }

    #[tokio::test]
    async fn a_range_keeps_only_its_own_quarters() {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let day = T0 * 1000;
        let texts = (0..4)
            .map(|i| text(&format!("wamid.r{i}"), T0 + i * 3600 * 6))
            .collect();
        let events = delivery(texts, vec![]).events;
        store.record(&events, 90).await.unwrap();
        // 06:00 to 18:00 holds the texts of 06:00 and 12:00 only.
        let rows = store
            .quarter_counters(
                utc_from_ms(day + DAY_MS / 4),
                utc_from_ms(day + 3 * DAY_MS / 4),
                None,
            )
            .await
            .unwrap();
        let texts: Vec<_> = rows.iter().filter(|r| r.name == names::TEXT).collect();
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].quarters, [(24, 1), (48, 1)]);
    }
}
