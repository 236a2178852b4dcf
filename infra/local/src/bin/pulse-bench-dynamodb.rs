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
//! 5 % media, 35 % statuses of earlier replies, out of order; `pulse_local::load`),
//! 5 000 contacts; then every delivery again.

use std::time::Instant;

use chrono::Utc;
use clap::Parser;
use pulse_local::load::Mix;
use pulse_shared::event::events_from_body;
use pulse_shared::store::dynamodb::{create_tables, DynamoStore, UsageFigures};
use pulse_shared::store::record_all;

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
        let mut mix = Mix::new(7);
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
