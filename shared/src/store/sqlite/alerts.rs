//! The [`AlertLog`] trait on the `alerts` table: a row per transition, keyed
//! by [`Transition::id`] (time first), so that recording one again keeps one.

use async_trait::async_trait;
use rusqlite::params;

use super::{from_json, to_json, unavailable, SqliteStore};
use crate::alerts::{Rule, Transition};
use crate::store::{AlertLog, StoreError};

#[async_trait]
impl AlertLog for SqliteStore {
    async fn record_transitions(&self, transitions: &[Transition]) -> Result<(), StoreError> {
        let rows: Vec<(String, String)> =
            transitions.iter().map(|t| (t.id(), to_json(t))).collect();
        self.write(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            for (id, data) in &rows {
                tx.execute(
                    "INSERT INTO alerts (id, data) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    params![id, data],
                )
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn transitions(&self, limit: usize) -> Result<Vec<Transition>, StoreError> {
        self.read(move |c| {
            let mut statement = c
                .prepare_cached("SELECT data FROM alerts ORDER BY id DESC LIMIT ?1")
                .map_err(unavailable)?;
            let rows = statement
                .query_map([limit as i64], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            rows.map(|row| from_json(&row.map_err(unavailable)?))
                .collect()
        })
        .await
    }

    async fn latest_transitions(&self) -> Result<Vec<Transition>, StoreError> {
        self.read(move |c| {
            // The table holds a few rows a day: a scan per rule is nothing.
            let mut statement = c
                .prepare_cached("SELECT data FROM alerts WHERE id GLOB ?1 ORDER BY id DESC LIMIT 1")
                .map_err(unavailable)?;
            let mut latest = Vec::new();
            for rule in Rule::ALL {
                let mut rows = statement
                    .query([format!("*#{}#*", rule.name())])
                    .map_err(unavailable)?;
                if let Some(row) = rows.next().map_err(unavailable)? {
                    latest.push(from_json(&row.get::<_, String>(0).map_err(unavailable)?)?);
                }
            }
            Ok(latest)
        })
        .await
    }
}
