//! The embedded store of the local stack: one SQLite file.
//!
//! Each commit is one SQLite transaction in WAL mode with `synchronous=FULL`, so a
//! commit that returned is on disk and survives a crash or Ctrl-C. Calls run on
//! Tokio's blocking pool; one connection serialises them, which SQLite would do
//! for writers anyway.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    Commit, Committed, Connection as LiveConnection, ConnectionPage, ConnectionStore, EventPage,
    EventQuery, Snapshot, Store, StoreError, Versioned,
};
use crate::counters::{utc_from_ms, Granularity, SlotCounters};
use crate::event::Event;
use crate::ingest::{ContactState, StateKeys};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    search      TEXT NOT NULL,
    data        TEXT NOT NULL,
    raw         TEXT NOT NULL
);
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
CREATE TABLE IF NOT EXISTS counters (
    granularity TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (granularity, slot, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS connections (
    connection_id TEXT PRIMARY KEY,
    connected_ms  INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    types         TEXT
);
";

/// Minute counters serve only the last hour; they are purged after this long.
const MINUTE_COUNTERS_KEPT_MS: i64 = 2 * 86_400_000;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(unavailable)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
            )
            .map_err(unavailable)?;
        connection.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| unavailable("a previous store call panicked"))?;
            work(&mut guard)
        })
        .await
        .map_err(unavailable)?
    }

    /// Deletes raw events past their retention, minute counters past use and
    /// connections past their lifetime, as DynamoDB's TTL does in AWS. Returns
    /// how many events went.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now_ms = now.timestamp_millis();
        self.with(move |c| {
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
            Ok(events)
        })
        .await
    }
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(corrupt)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("state serialises")
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self, event_id: &str, keys: &StateKeys) -> Result<Snapshot, StoreError> {
        let (event_id, keys) = (event_id.to_owned(), keys.clone());
        self.with(move |c| {
            let already_stored = c
                .query_row(
                    "SELECT 1 FROM events WHERE id = ?1",
                    [&event_id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(unavailable)?
                .is_some();
            let mut snapshot = Snapshot {
                already_stored,
                ..Default::default()
            };
            if let Some(wa_id) = &keys.contact {
                snapshot.contact = read_versioned(
                    c,
                    "SELECT version, data FROM contacts WHERE wa_id = ?1",
                    wa_id,
                )?;
            }
            if let Some(id) = &keys.message {
                snapshot.message =
                    read_versioned(c, "SELECT version, data FROM messages WHERE id = ?1", id)?;
            }
            Ok(snapshot)
        })
        .await
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        let event = &commit.event.event;
        let row = (
            event.id.clone(),
            event.kind.type_name(),
            event.occurred_at.timestamp_millis(),
            event.received_at.timestamp_millis(),
            commit.expires_at.timestamp_millis(),
            event.search_text(),
            to_json(event),
            commit.event.raw.get().to_owned(),
        );
        let contact = commit.contact.as_ref().and_then(|v| {
            let state = v.value?;
            Some((
                v.version,
                state.wa_id.clone(),
                state.last_activity_ms,
                state.last_inbound_ms,
                to_json(state),
            ))
        });
        let message = commit
            .message
            .as_ref()
            .and_then(|v| Some((v.version, event_message_id(event)?, to_json(v.value?))));
        let deltas: Vec<(&'static str, i64, String, i64)> = commit
            .deltas
            .iter()
            .map(|(k, v)| (k.granularity.code(), k.slot, k.name.clone(), v))
            .collect();

        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
            let inserted = tx
                .execute(
                    "INSERT INTO events (id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                    params![row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7],
                )
                .map_err(unavailable)?;
            if inserted == 0 {
                return Ok(Committed::Duplicate);
            }
            if let Some((version, wa_id, activity_ms, inbound_ms, data)) = contact {
                let written = tx
                    .execute(
                        "INSERT INTO contacts (wa_id, version, activity_ms, inbound_ms, data) VALUES (?1, ?2 + 1, ?3, ?4, ?5)
                         ON CONFLICT (wa_id) DO UPDATE SET version = excluded.version, activity_ms = excluded.activity_ms,
                           inbound_ms = excluded.inbound_ms, data = excluded.data
                         WHERE contacts.version = ?2",
                        params![wa_id, version as i64, activity_ms, inbound_ms, data],
                    )
                    .map_err(unavailable)?;
                if written == 0 {
                    return Ok(Committed::Conflict);
                }
            }
            if let Some((version, id, data)) = message {
                let written = tx
                    .execute(
                        "INSERT INTO messages (id, version, data) VALUES (?1, ?2 + 1, ?3)
                         ON CONFLICT (id) DO UPDATE SET version = excluded.version, data = excluded.data
                         WHERE messages.version = ?2",
                        params![id, version as i64, data],
                    )
                    .map_err(unavailable)?;
                if written == 0 {
                    return Ok(Committed::Conflict);
                }
            }
            {
                let mut add = tx
                    .prepare_cached(
                        "INSERT INTO counters (granularity, slot, name, value) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (granularity, slot, name) DO UPDATE SET value = value + excluded.value",
                    )
                    .map_err(unavailable)?;
                for (granularity, slot, name, value) in &deltas {
                    add.execute(params![granularity, slot, name, value]).map_err(unavailable)?;
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(Committed::Stored)
        })
        .await
    }

    async fn counters(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        self.with(move |c| {
            let mut query = c
                .prepare_cached(
                    "SELECT slot, name, value FROM counters WHERE granularity = ?1 AND slot >= ?2 AND slot < ?3 ORDER BY slot",
                )
                .map_err(unavailable)?;
            let rows = query
                .query_map(params![granularity.code(), from_ms, to_ms], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
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
        self.with(move |c| {
            let (before_ms, before_id) = query
                .before
                .map(|b| (b.occurred_ms, b.id))
                .unwrap_or((i64::MAX, String::new()));
            let mut statement = c
                .prepare_cached(
                    "SELECT data FROM events
                     WHERE (occurred_ms < ?1 OR (occurred_ms = ?1 AND id < ?2 AND ?2 != ''))
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
        self.with(move |c| {
            let row = c
                .query_row("SELECT data, raw FROM events WHERE id = ?1", [&id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(unavailable)?;
            row.map(|(data, raw)| Ok((from_json(&data)?, raw)))
                .transpose()
        })
        .await
    }

    async fn contacts(&self, limit: usize) -> Result<Vec<ContactState>, StoreError> {
        self.with(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT data FROM contacts ORDER BY activity_ms DESC, wa_id LIMIT ?1",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map([limit as i64], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|row| from_json(&row.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let since_ms = since.timestamp_millis();
        self.with(move |c| {
            c.query_row(
                "SELECT count(*) FROM contacts WHERE inbound_ms >= ?1",
                [since_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(unavailable)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
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
        self.with(move |c| {
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
        self.with(move |c| {
            c.execute("DELETE FROM connections WHERE connection_id = ?1", [id])
                .map(drop)
                .map_err(unavailable)
        })
        .await
    }

    async fn subscribe(&self, id: &str, types: &[String]) -> Result<bool, StoreError> {
        let (id, types) = (id.to_owned(), to_json(&types));
        self.with(move |c| {
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
        self.with(move |c| {
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

fn event_message_id(event: &Event) -> Option<String> {
    StateKeys::of(event).message
}

fn read_versioned<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    key: &str,
) -> Result<Versioned<T>, StoreError> {
    let row = c
        .query_row(sql, [key], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
        .map_err(unavailable)?;
    match row {
        None => Ok(Versioned::default()),
        Some((version, data)) => Ok(Versioned {
            value: Some(from_json(&data)?),
            version: version as u64,
        }),
    }
}
