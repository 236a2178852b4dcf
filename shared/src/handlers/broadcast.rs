//! The broadcast function: each event newly stored in the events table, read from
//! the table's DynamoDB stream, goes to every live connection subscribed to its
//! type, in the same masked JSON as `GET /api/webhook/events/recent`.
//!
//! A stream batch goes out as few messages per connection as fit under API
//! Gateway's 128 KB limit: `{"type":"events","events":[…]}`. Connections are read
//! page by page and posted to concurrently, with a bound. A connection API Gateway
//! says is gone (410) is deleted; a failed post is tried again, twice; one that
//! hangs is given up after [`POST_TIMEOUT`]; either is logged and delivery to the
//! rest goes on. Records that cannot be broadcast at all are returned as batch
//! item failures, so that Lambda retries just those.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use futures::StreamExt;
use serde_json::value::RawValue;

use crate::event::Event;
use crate::mask::public_event;
use crate::store::dynamodb::event_from_item;
use crate::store::{Connection, ConnectionStore};
use crate::telemetry::Chain;

/// API Gateway's limit on one message to a WebSocket client.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Connections read from the table at a time.
pub const CONNECTIONS_PER_PAGE: usize = 200;
/// Posts in flight at once.
pub const CONCURRENT_POSTS: usize = 32;
/// A post not answered within this is given up (counted failed): a client or an
/// API that hangs must not hold a slot, and with enough of them the batch, for
/// the function's whole timeout.
pub const POST_TIMEOUT: Duration = Duration::from_secs(2);
/// A post that fails otherwise (API Gateway throttles, or a 5xx) is tried this
/// many times in all, with a short backoff.
pub const POST_ATTEMPTS: u32 = 3;

/// Why a post to a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The client is no longer connected (API Gateway's 410 GoneException).
    #[error("the connection is gone")]
    Gone,
    #[error("posting failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Sends a message to one connection: API Gateway's `PostToConnection`.
#[async_trait]
pub trait Push: Send + Sync {
    async fn post(&self, connection_id: &str, message: Vec<u8>) -> Result<(), PostError>;
}

/// The API Gateway Management API, through the AWS SDK.
pub struct ManagementApi(aws_sdk_apigatewaymanagement::Client);

impl ManagementApi {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self(client)
    }

    /// A client of the API at `endpoint` (`WEBSOCKET_ENDPOINT`), with credentials
    /// and region from the environment.
    pub async fn from_env(endpoint: &str) -> Self {
        let config = aws_config::load_from_env().await;
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .build();
        Self(aws_sdk_apigatewaymanagement::Client::from_conf(config))
    }
}

#[async_trait]
impl Push for ManagementApi {
    async fn post(&self, connection_id: &str, message: Vec<u8>) -> Result<(), PostError> {
        match self
            .0
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_gone_exception()) =>
            {
                Err(PostError::Gone)
            }
            Err(error) => Err(PostError::Failed(error.into())),
        }
    }
}

/// What one stream batch did, for the log and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// New events in the batch.
    pub events: usize,
    /// Live connections seen.
    pub connections: usize,
    /// Messages posted.
    pub posted: usize,
    /// Connections deleted because API Gateway said they were gone.
    pub gone: usize,
    /// Posts that failed otherwise.
    pub failed: usize,
    /// The connections could not be read, so nothing was sent.
    pub connections_unreadable: bool,
    /// Sequence numbers of the records to retry.
    pub retry: Vec<String>,
}

/// The broadcast function's handler.
pub struct Broadcaster {
    connections: Arc<dyn ConnectionStore>,
    push: Arc<dyn Push>,
}

/// An event ready to send: its type, and its masked JSON.
struct Outgoing {
    event_type: &'static str,
    json: Box<RawValue>,
}

impl Broadcaster {
    pub fn new(connections: Arc<dyn ConnectionStore>, push: Arc<dyn Push>) -> Self {
        Self { connections, push }
    }

    /// Handles one stream batch, answering with the records Lambda should retry.
    pub async fn handle(&self, batch: dynamodb::Event) -> DynamoDbEventResponse {
        let report = self.broadcast(batch).await;
        tracing::info!(
            events = report.events,
            connections = report.connections,
            posted = report.posted,
            gone = report.gone,
            failed = report.failed,
            retried = report.retry.len(),
            "broadcast"
        );
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = report
            .retry
            .into_iter()
            .map(|sequence_number| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number);
                failure
            })
            .collect();
        response
    }

    /// Sends the new events of a stream batch to every live connection.
    pub async fn broadcast(&self, batch: dynamodb::Event) -> Report {
        let mut events = Vec::new();
        let mut sequence_numbers = Vec::new();
        let mut unreadable = Vec::new();
        for record in batch.records {
            // Only new items: not counter and state updates, nor TTL deletions.
            if record.event_name != "INSERT" {
                continue;
            }
            let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
            let item: HashMap<String, AttributeValue> = record.change.new_image.into();
            match event_from_item(&item) {
                None => {}
                Some(Ok(event)) => {
                    events.push(event);
                    sequence_numbers.push(sequence_number);
                }
                Some(Err(error)) => {
                    tracing::error!(error = %Chain(&error), sequence_number, "stream record holds no readable event");
                    unreadable.push(sequence_number);
                }
            }
        }
        let mut report = self.send(events).await;
        if report.connections_unreadable {
            // Nothing went out without the connections: retry the batch.
            report.retry.extend(sequence_numbers);
        }
        report.retry.extend(unreadable);
        report
    }

    /// Sends newly stored events to every live connection that subscribed to
    /// their types, in order, in as few messages as fit.
    pub async fn send(&self, events: Vec<Event>) -> Report {
        let mut report = Report {
            events: events.len(),
            ..Report::default()
        };
        if events.is_empty() {
            return report;
        }
        let outgoing: Vec<Outgoing> = events.into_iter().map(outgoing_event).collect();
        let now = Utc::now();
        let mut after: Option<String> = None;
        loop {
            let page = match self
                .connections
                .connections(after.as_deref(), CONNECTIONS_PER_PAGE, now)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(error = %Chain(&error), "reading the connections failed");
                    report.connections_unreadable = true;
                    return report;
                }
            };
            report.connections += page.connections.len();
            let outcomes: Vec<Delivery> = futures::stream::iter(page.connections)
                .map(|connection| self.deliver(connection, &outgoing))
                .buffer_unordered(CONCURRENT_POSTS)
                .collect()
                .await;
            for outcome in outcomes {
                report.posted += outcome.posted;
                report.failed += outcome.failed;
                report.gone += usize::from(outcome.gone);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        report
    }

    /// One message to one connection: retried while it fails, given up when it
    /// hangs or the connection is gone.
    async fn post(&self, connection_id: &str, message: Vec<u8>) -> Result<(), PostError> {
        let mut attempt = 1;
        loop {
            let posted =
                tokio::time::timeout(POST_TIMEOUT, self.push.post(connection_id, message.clone()))
                    .await;
            match posted {
                Err(_) => {
                    return Err(PostError::Failed(
                        format!("no answer within {POST_TIMEOUT:?}").into(),
                    ))
                }
                Ok(Err(PostError::Failed(_))) if attempt < POST_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    attempt += 1;
                }
                Ok(result) => return result,
            }
        }
    }

    /// Sends one connection the events it subscribed to.
    async fn deliver(&self, connection: Connection, events: &[Outgoing]) -> Delivery {
        let mut delivery = Delivery::default();
        let wanted = events.iter().filter(|e| {
            connection
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t == e.event_type))
        });
        for message in messages(wanted) {
            match self.post(&connection.id, message).await {
                Ok(()) => delivery.posted += 1,
                Err(PostError::Gone) => {
                    delivery.gone = true;
                    if let Err(error) = self.connections.remove(&connection.id).await {
                        tracing::warn!(error = %Chain(&error), connection_id = connection.id, "deleting a gone connection failed");
                    }
                    break;
                }
                Err(error) => {
                    delivery.failed += 1;
                    tracing::warn!(error = %Chain(&error), connection_id = connection.id, "post to a connection failed");
                }
            }
        }
        delivery
    }
}

#[derive(Default)]
struct Delivery {
    posted: usize,
    failed: usize,
    gone: bool,
}

fn outgoing_event(event: Event) -> Outgoing {
    let event_type = event.kind.type_name();
    let (id, occurred_at, received_at) = (event.id.clone(), event.occurred_at, event.received_at);
    let mut json = serde_json::value::to_raw_value(&public_event(event)).expect("events serialise");
    if json.get().len() > MAX_EVENT_BYTES {
        // No message can carry it (API Gateway's limit): tell which event it is,
        // for the client to fetch it from events/recent.
        let notice = serde_json::json!({
            "id": id,
            "type": event_type,
            "occurred_at": occurred_at,
            "received_at": received_at,
            "too_large": true,
            "bytes": json.get().len(),
        });
        json = serde_json::value::to_raw_value(&notice).expect("notices serialise");
    }
    Outgoing { event_type, json }
}

const MESSAGE_START: &str = r#"{"type":"events","events":["#;
const MESSAGE_END: &str = "]}";
/// The largest event that fits in a message on its own.
const MAX_EVENT_BYTES: usize = MAX_MESSAGE_BYTES - MESSAGE_START.len() - MESSAGE_END.len();

/// `{"type":"events","events":[…]}` messages holding the events in order, each
/// under [`MAX_MESSAGE_BYTES`] (an event too big for one arrives as a notice; see
/// [`outgoing_event`]).
fn messages<'a>(events: impl Iterator<Item = &'a Outgoing>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current = String::new();
    for event in events {
        let json = event.json.get();
        let fits = current.len() + 1 + json.len() + MESSAGE_END.len() <= MAX_MESSAGE_BYTES;
        if !current.is_empty() && !fits {
            current.push_str(MESSAGE_END);
            messages.push(std::mem::take(&mut current).into_bytes());
        }
        if current.is_empty() {
            current.push_str(MESSAGE_START);
        } else {
            current.push(',');
        }
        current.push_str(json);
    }
    if !current.is_empty() {
        current.push_str(MESSAGE_END);
        messages.push(current.into_bytes());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(body: &str) -> Outgoing {
        Outgoing {
            event_type: "text_message",
            json: serde_json::value::to_raw_value(&serde_json::json!({"body": body})).unwrap(),
        }
    }

    #[test]
    fn messages_stay_under_the_limit_and_keep_every_event_in_order() {
        let events: Vec<Outgoing> = (0..40)
            .map(|i| outgoing(&format!("{i}:{}", "x".repeat(10_000))))
            .collect();
        let sent = messages(events.iter());
        assert!(sent.len() > 1);
        let mut seen = Vec::new();
        for message in &sent {
            assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
            let value: serde_json::Value = serde_json::from_slice(message).unwrap();
            assert_eq!(value["type"], "events");
            for event in value["events"].as_array().unwrap() {
                seen.push(
                    event["body"]
                        .as_str()
                        .unwrap()
                        .split(':')
                        .next()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        let expected: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        assert_eq!(seen, expected);

        assert!(messages([].iter()).is_empty());
        let huge = [outgoing(&"y".repeat(MAX_MESSAGE_BYTES))];
        assert_eq!(
            messages(huge.iter()).len(),
            1,
            "an oversized event still goes, alone"
        );
    }

    #[test]
    fn an_event_too_big_for_a_message_arrives_as_a_notice() {
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"changes": [{
            "field": "messages", "value": {"messages": [{"from": "919876543210", "id": "wamid.big",
            "timestamp": "1767225600", "type": "text", "text": {"body": "x".repeat(200_000)}}]}}]}]});
        let event = crate::event::events_from_body(&serde_json::to_vec(&body).unwrap(), Utc::now())
            .unwrap()
            .remove(0)
            .event;
        let id = event.id.clone();
        let small = outgoing_event(event.clone());
        let sent = messages(std::iter::once(&small));
        assert_eq!(sent.len(), 1);
        assert!(sent[0].len() <= MAX_MESSAGE_BYTES, "{}", sent[0].len());
        let message: serde_json::Value = serde_json::from_slice(&sent[0]).unwrap();
        let notice = &message["events"][0];
        assert_eq!(notice["id"], id.as_str());
        assert_eq!(notice["type"], "text_message");
        assert_eq!(notice["too_large"], true);
        assert!(notice["bytes"].as_u64().unwrap() > 200_000);
        assert!(notice.get("body").is_none());

        // One that fits is sent whole.
        let mut fits = event;
        if let crate::event::EventKind::TextMessage { body, .. } = &mut fits.kind {
            *body = "x".repeat(100_000);
        }
        let whole = outgoing_event(fits);
        assert!(whole.json.get().contains(&"x".repeat(100_000)));
    }
}
