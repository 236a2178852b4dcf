//! The [`AlertLog`] trait on the `alerts` table: a row per transition, keyed
//! by [`Transition::id`], so that recording one again keeps one.

use async_trait::async_trait;
use rusqlite::params;

use super::{from_json, to_json, unavailable, SqliteStore};
use crate::alerts::Transition;
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
                    "INSERT OR IGNORE INTO alerts (id, data) VALUES (?1, ?2)",
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
            let mut transitions = Vec::new();
            for row in rows {
                transitions.push(from_json(&row.map_err(unavailable)?)?);
            }
            Ok(transitions)
        })
        .await
    }
}
