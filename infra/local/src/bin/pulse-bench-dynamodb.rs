//! `pulse-bench-dynamodb`: what recording a delivery costs on DynamoDB, for
//! deliveries of `--updates` updates: requests per delivery, and write and read
//! capacity units per event by DynamoDB's sizing rules (computed from the items
//! sent; see `pulse_shared::store::dynamodb` `capacity`), first delivery and
//! redelivery. These figures are the bill: they do not depend on the server, so
//! moto gives the same as AWS. The time per delivery is the server's (moto's is
//! no guide to DynamoDB's).
//!
//! Each size starts on a new table and records about `--events` events in
//! deliveries of that size, the mix of the load harness (30 % clicks, 30 % texts,
//! 5 % media, 35 % statuses of earlier replies, out of order), 5 000 contacts,
//! WhatsApp times over the last hour; then every delivery again.

use std::time::Instant;

use chrono::{Duration, Utc};
use clap::Parser;
use pulse_shared::event::events_from_body;
use pulse_shared::store::dynamodb::{create_tables, DynamoStore, UsageFigures};
use pulse_shared::store::record_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// The DynamoDB endpoint (moto, DynamoDB Local or AWS).
    #[arg(long)]
    dynamodb_endpoint: String,
    /// Updates per delivery, one run per size.
    #[arg(long, value_delimiter = ',', default_value = "1,50,1000")]
    updates: Vec<usize>,
    /// Events recorded per size (at least three deliveries). moto keeps memory per
    /// transaction (about 2 MB each here): a thousand is plenty for the figures.
    #[arg(long, default_value_t = 1000)]
    events: usize,
}

const BUTTONS: [&str; 4] = [
    "RETRIEVE_CONTENT",
    "UNLOCK_CONTENT",
    "SHARE_WITH_CLIENTS",
    "OTHER_CTA",
];
const STATUSES: [&str; 3] = ["sent", "delivered", "read"];

/// Makes deliveries of the harness's mix.
struct Mix {
    rng: StdRng,
    next_id: usize,
    /// Replies sent, with the statuses they have had.
    replies: Vec<(String, String, usize)>,
}

impl Mix {
    fn delivery(&mut self, updates: usize) -> Vec<u8> {
        let now = Utc::now();
        let (mut messages, mut statuses) = (Vec::new(), Vec::new());
        for _ in 0..updates {
            self.next_id += 1;
            let id = self.next_id;
            let from = format!("4477{:08}", self.rng.random_range(0..5000));
            let at = (now - Duration::seconds(self.rng.random_range(0..3600)))
                .timestamp()
                .to_string();
            let roll = self.rng.random_range(0..100);
            let replied = !self.replies.is_empty();
            if roll < 35 && replied {
                // Each reply gets sent, delivered and read once each, in any order
                // across deliveries: no update of the mix is a duplicate.
                let pick = self.rng.random_range(0..self.replies.len());
                let (message, recipient, sent) = &mut self.replies[pick];
                let status = STATUSES[*sent];
                *sent += 1;
                statuses.push(json!({"id": message, "status": status, "timestamp": at, "recipient_id": recipient}));
                if *sent == STATUSES.len() {
                    self.replies.swap_remove(pick);
                }
                continue;
            }
            if roll < 35 {
                self.replies
                    .push((format!("wamid.out{id}"), from.clone(), 0));
            }
            let message: Value = match roll {
                0..65 => {
                    json!({"from": from, "id": format!("wamid.c{id}"), "timestamp": at, "type": "interactive",
                    "interactive": {"type": "button_reply", "button_reply": {"id": BUTTONS[id % 4], "title": "Unlock"}}})
                }
                65..95 => {
                    json!({"from": from, "id": format!("wamid.t{id}"), "timestamp": at, "type": "text",
                    "text": {"body": "Could you send me the factsheet for the fund?"}})
                }
                _ => {
                    json!({"from": from, "id": format!("wamid.m{id}"), "timestamp": at, "type": "image",
                    "image": {"id": format!("media{id}"), "mime_type": "image/jpeg"}})
                }
            };
            messages.push(message);
        }
        serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "messages": messages, "statuses": statuses}}]}]}))
        .expect("JSON")
    }
}

fn per(total: u64, count: usize) -> f64 {
    total as f64 / count.max(1) as f64
}

fn difference(after: UsageFigures, before: UsageFigures) -> UsageFigures {
    UsageFigures {
        read_requests: after.read_requests - before.read_requests,
        write_requests: after.write_requests - before.write_requests,
        read_units: after.read_units - before.read_units,
        write_units: after.write_units - before.write_units,
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = aws_config::from_env()
        .endpoint_url(&args.dynamodb_endpoint)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    println!("| updates per delivery | deliveries | requests per delivery (reads + writes) | WRU per event | RRU per event | redelivery: requests, RRU per event | time per delivery, median (ms) |");
    println!("|---|---|---|---|---|---|---|");
    for &updates in &args.updates {
        let table = format!("bench-{:x}", rand::random::<u32>());
        create_tables(&client, &table, &format!("{table}-connections"))
            .await
            .expect("tables");
        let store = DynamoStore::new(client.clone(), &table, 90);
        let mut mix = Mix {
            rng: StdRng::seed_from_u64(7),
            next_id: 0,
            replies: Vec::new(),
        };
        let count = (args.events / updates).max(3);
        let bodies: Vec<Vec<u8>> = (0..count).map(|_| mix.delivery(updates)).collect();
        let mut times = Vec::with_capacity(count);
        let mut events = 0;
        let mut duplicates = 0;
        let start = store.usage();
        for body in &bodies {
            let received = events_from_body(body, Utc::now()).expect("a webhook");
            let began = Instant::now();
            let summary = record_all(&store, &received, 90).await.expect("recorded");
            times.push(began.elapsed().as_secs_f64() * 1000.0);
            events += summary.stored;
            duplicates += summary.duplicates;
        }
        assert_eq!(duplicates, 0, "the mix sends every update once");
        let first = difference(store.usage(), start);
        let start = store.usage();
        for body in &bodies {
            let received = events_from_body(body, Utc::now()).expect("a webhook");
            let summary = record_all(&store, &received, 90).await.expect("recorded");
            assert_eq!(summary.stored, 0, "a redelivery stores nothing");
        }
        let again = difference(store.usage(), start);
        times.sort_by(f64::total_cmp);
        println!(
            "| {updates} | {count} | {:.1} ({:.1} + {:.1}) | {:.2} | {:.2} | {:.1}, {:.2} | {:.1} |",
            per(first.read_requests + first.write_requests, count),
            per(first.read_requests, count),
            per(first.write_requests, count),
            per(first.write_units, events),
            per(first.read_units, events),
            per(again.read_requests + again.write_requests, count),
            per(again.read_units, events),
            times[times.len() / 2],
        );
    }
}
