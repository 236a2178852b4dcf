//! The connections table (`CONNECTIONS_TABLE`): one item per live WebSocket
//! connection, keyed by `connection_id`, expiring through TTL (`expires_at`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{n, s, string_attr, unavailable};
use crate::config::{self, ConfigError, ProcessEnv};
use crate::counters::utc_from_ms;
use crate::store::{Connection, ConnectionPage, ConnectionStore, StoreError};

/// The connections table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoConnections {
    client: Client,
    table: String,
}

impl DynamoConnections {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table a WebSocket or broadcast function uses: `CONNECTIONS_TABLE`, with
    /// the client from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = config::connections_table(&ProcessEnv)?;
        Ok(Self::new(
            super::DynamoStore::client_from_env().await,
            table,
        ))
    }
}

fn connection_key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("connection_id".to_owned(), s(id))])
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Connection, StoreError> {
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| StoreError::corrupt(format!("connection without number {name}")))
    };
    Ok(Connection {
        id: string_attr(item, "connection_id")?.to_owned(),
        connected_at: utc_from_ms(number("connected_ms")?),
        expires_at: utc_from_ms(number("expires_at")? * 1000),
        types: item.get("types").and_then(|v| v.as_ss().ok()).cloned(),
    })
}

#[async_trait]
impl ConnectionStore for DynamoConnections {
    async fn add(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut item = connection_key(&connection.id);
        item.insert(
            "connected_ms".into(),
            n(connection.connected_at.timestamp_millis()),
        );
        item.insert("expires_at".into(), n(connection.expires_at.timestamp()));
        if let Some(types) = connection.types.clone().filter(|t| !t.is_empty()) {
            item.insert("types".into(), AttributeValue::Ss(types));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(id)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, id: &str, types: &[String]) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(connection_key(id)))
            .update_expression("SET types = :types")
            .condition_expression("attribute_exists(connection_id)")
            .expression_attribute_values(":types", AttributeValue::Ss(types.to_vec()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn connections(
        &self,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<ConnectionPage, StoreError> {
        // TTL deletes expired items within days, not at once: skip them here.
        let page = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(after.map(connection_key))
            .filter_expression("expires_at >= :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await
            .map_err(unavailable)?;
        let connections = page
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page
            .last_evaluated_key()
            .and_then(|key| string_attr(key, "connection_id").ok())
            .map(str::to_owned);
        Ok(ConnectionPage { connections, next })
    }
}
