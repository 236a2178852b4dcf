//! The [`ConnectionStore`] trait on the `connections` table: writes go to the
//! writer thread between groups, reads to the pool.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{from_json, to_json, unavailable, SqliteStore};
use crate::counters::utc_from_ms;
use crate::store::{Connection as LiveConnection, ConnectionPage, ConnectionStore, StoreError};

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
