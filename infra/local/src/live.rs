//! The live path of the local stack on the embedded store: each event the store
//! records goes straight to the broadcaster's fan-out, and from there into the
//! sockets of the WebSocket gateway, in process. (With `--store dynamodb` the path
//! is AWS's instead: the table's stream, the broadcast function, the Management
//! API; see [`crate::stream`].) Why in process: docs/performance.md, "Why the
//! live path is in process locally".

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pulse_shared::counters::{DayCounter, SlotCounters};
use pulse_shared::event::{Event, ReceivedEvent};
use pulse_shared::handlers::broadcast::Broadcaster;
use pulse_shared::ingest::{ContactState, Outcome};
use pulse_shared::store::{ContactPosition, EventPage, EventQuery, Store, StoreError};
use tokio::sync::mpsc;

use crate::websocket::WebSocketGateway;

/// Events sent to the sockets at a time: what arrived since the last send, up to this.
const BATCH: usize = 100;

/// A store that announces every event it stores, once, after it is durable.
pub struct AnnouncingStore {
    inner: Arc<dyn Store>,
    stored: mpsc::UnboundedSender<Event>,
}

impl AnnouncingStore {
    pub fn new(inner: Arc<dyn Store>, stored: mpsc::UnboundedSender<Event>) -> Self {
        Self { inner, stored }
    }
}

#[async_trait]
impl Store for AnnouncingStore {
    async fn record(
        &self,
        events: &[ReceivedEvent],
        retention_days: u32,
    ) -> Result<Vec<Outcome>, StoreError> {
        let outcomes = self.inner.record(events, retention_days).await?;
        for (received, _) in events
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| **outcome == Outcome::Stored)
        {
            // No listener means the stack is stopping; nothing to tell.
            let _ = self.stored.send(received.event.clone());
        }
        Ok(outcomes)
    }

    async fn quarter_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        quarters_of: Option<&str>,
    ) -> Result<Vec<DayCounter>, StoreError> {
        self.inner.quarter_counters(from, to, quarters_of).await
    }

    async fn minute_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        self.inner.minute_counters(from, to).await
    }

    async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        self.inner.events(query).await
    }

    async fn event(&self, id: &str) -> Result<Option<(Event, String)>, StoreError> {
        self.inner.event(id).await
    }

    async fn contacts(
        &self,
        limit: usize,
        after: Option<&ContactPosition>,
    ) -> Result<Vec<ContactState>, StoreError> {
        self.inner.contacts(limit, after).await
    }

    async fn contact(&self, wa_id: &str) -> Result<Option<ContactState>, StoreError> {
        self.inner.contact(wa_id).await
    }

    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.active_contacts(since).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// Sends the announced events to the connected sockets, batch by batch, in order,
/// until the store is gone. With no socket connected there is no one to tell, and
/// the events are dropped without reading the connections.
pub async fn feed_sockets(
    broadcaster: Arc<Broadcaster>,
    gateway: Arc<WebSocketGateway>,
    mut stored: mpsc::UnboundedReceiver<Event>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while stored.recv_many(&mut batch, BATCH).await > 0 {
        let events = std::mem::take(&mut batch);
        if gateway.connected() == 0 {
            continue;
        }
        let report = broadcaster.send(events).await;
        tracing::debug!(
            events = report.events,
            connections = report.connections,
            posted = report.posted,
            gone = report.gone,
            failed = report.failed,
            "live events sent"
        );
    }
}
