//! The events table's stream, emulated: what Lambda's event source mapping does
//! for the broadcast function in AWS.
//!
//! With `--store dynamodb`, records come from the table's real stream
//! ([`poll_dynamodb_stream`]) and reach the broadcast function as the DynamoDB
//! stream event Lambda builds, through `aws_lambda_events`' deserialiser, in
//! batches of what has arrived; records the function reports as failed are
//! retried a few times, then dropped with an error in the log (an on-failure
//! destination in AWS). (The embedded store skips all of this: see
//! [`crate::live`].)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use pulse_shared::handlers::broadcast::Broadcaster;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Records one invocation of the broadcast function gets at most (the template's
/// batch size).
pub const BATCH_SIZE: usize = 100;
/// Times a failed record is retried before it is given up.
const RETRIES: usize = 3;
/// How often the DynamoDB stream is read: Lambda polls a shard four times a second.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A stream record, in the JSON shape Lambda delivers it.
pub type StreamRecord = Value;

/// The JSON record of a new item, as Lambda's DynamoDB event holds it.
pub fn insert_record(
    keys: serde_dynamo::Item,
    new_image: serde_dynamo::Item,
    sequence_number: &str,
    created: DateTime<Utc>,
    size_bytes: i64,
) -> StreamRecord {
    json!({
        "eventID": format!("{:032x}", rand::random::<u128>()),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "local",
        "dynamodb": {
            "ApproximateCreationDateTime": created.timestamp(),
            "Keys": keys,
            "NewImage": new_image,
            "SequenceNumber": sequence_number,
            "SizeBytes": size_bytes,
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": "arn:aws:dynamodb:local:000000000000:table/pulse-events/stream/local",
    })
}

/// The stream record of a newly written events-table item.
pub fn new_item_record(
    item: HashMap<String, AttributeValue>,
    sequence_number: &str,
) -> StreamRecord {
    let keys: HashMap<String, AttributeValue> = item
        .iter()
        .filter(|(name, _)| *name == "pk" || *name == "sk")
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let size = item
        .iter()
        .map(|(name, value)| name.len() + value.as_s().map_or(8, String::len))
        .sum::<usize>();
    insert_record(
        keys.into(),
        item.into(),
        sequence_number,
        Utc::now(),
        size as i64,
    )
}

/// Invokes the broadcast function with what the stream holds, batch by batch, in
/// order, until the stream's sender is gone.
pub async fn feed_broadcast(
    broadcaster: Arc<Broadcaster>,
    mut records: mpsc::UnboundedReceiver<StreamRecord>,
) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while records.recv_many(&mut batch, BATCH_SIZE).await > 0 {
        let mut pending = std::mem::take(&mut batch);
        for attempt in 0..=RETRIES {
            let event = match serde_json::from_value(json!({ "Records": &pending })) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(%error, "a stream batch did not deserialise");
                    break;
                }
            };
            let response = broadcaster.handle(event).await;
            let failed: Vec<String> = response
                .batch_item_failures
                .into_iter()
                .filter_map(|f| f.item_identifier)
                .collect();
            if failed.is_empty() {
                break;
            }
            pending.retain(|record| {
                record["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .is_some_and(|s| failed.iter().any(|f| f == s))
            });
            if attempt == RETRIES {
                tracing::error!(
                    records = pending.len(),
                    "stream records given up after retries"
                );
            } else {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
}

/// Reads the events table's DynamoDB stream from its latest position, as Lambda's
/// event source mapping does (starting position LATEST), and sends its records on.
pub async fn poll_dynamodb_stream(
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    records: mpsc::UnboundedSender<StreamRecord>,
) {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;

    let stream_arn = match dynamodb.describe_table().table_name(&table).send().await {
        Ok(description) => description
            .table()
            .and_then(|t| t.latest_stream_arn().map(str::to_owned)),
        Err(error) => {
            tracing::error!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(error), "cannot describe the events table; live updates are off");
            return;
        }
    };
    let Some(stream_arn) = stream_arn else {
        tracing::error!(
            table,
            "the events table has no stream; live updates are off"
        );
        return;
    };
    // Shard id → iterator. New shards appear over time in AWS; moto keeps one.
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tick.tick().await;
        if records.is_closed() {
            return;
        }
        match streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
        {
            Ok(description) => {
                // Shards found after the start are read from their beginning.
                let starting = iterators.is_empty();
                for shard in description
                    .stream_description()
                    .map(|d| d.shards())
                    .unwrap_or_default()
                {
                    let Some(shard_id) = shard.shard_id() else {
                        continue;
                    };
                    if iterators.contains_key(shard_id) {
                        continue;
                    }
                    let position = if starting {
                        ShardIteratorType::Latest
                    } else {
                        ShardIteratorType::TrimHorizon
                    };
                    let iterator = streams
                        .get_shard_iterator()
                        .stream_arn(&stream_arn)
                        .shard_id(shard_id)
                        .shard_iterator_type(position)
                        .send()
                        .await
                        .ok()
                        .and_then(|r| r.shard_iterator);
                    iterators.insert(shard_id.to_owned(), iterator);
                }
            }
            Err(error) => {
                tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(error), "describing the stream failed");
                continue;
            }
        }
        for iterator in iterators.values_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            match streams
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
            {
                Ok(output) => {
                    for record in output.records() {
                        if let Some(record) = lambda_record(record) {
                            let _ = records.send(record);
                        }
                    }
                    *iterator = output.next_shard_iterator;
                }
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(error), "reading the stream failed");
                }
            }
        }
    }
}

/// A stream record from the DynamoDB Streams API, as Lambda would deliver it.
fn lambda_record(record: &aws_sdk_dynamodbstreams::types::Record) -> Option<StreamRecord> {
    use aws_sdk_dynamodbstreams::types::OperationType;

    let change = record.dynamodb()?;
    if record.event_name() != Some(&OperationType::Insert) {
        return None;
    }
    let created = change
        .approximate_creation_date_time()
        .and_then(|t| DateTime::from_timestamp(t.secs(), 0))
        .unwrap_or_else(Utc::now);
    Some(insert_record(
        change.keys().cloned().unwrap_or_default().into(),
        change.new_image().cloned().unwrap_or_default().into(),
        change.sequence_number().unwrap_or_default(),
        created,
        change.size_bytes().unwrap_or_default(),
    ))
}
