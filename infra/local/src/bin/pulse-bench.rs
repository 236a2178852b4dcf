//! `pulse-bench`: what a 30-day metrics query costs as the number of stored events
//! grows, on the SQLite store and (with `--dynamodb-endpoint`) on DynamoDB.
//!
//! It records `--events` synthetic events through the real path (`record_all`, in
//! deliveries of 500), spread evenly over the last 30 days, clicks, texts and
//! statuses mixed; then, after two seconds of untimed ones, runs the 30-day
//! metrics query `--runs` times in each of `--timezones` and prints the median and
//! worst time and how many counter rows (SQLite) or items (DynamoDB) one query read.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use clap::Parser;
use pulse_shared::event::events_from_body;
use pulse_shared::metrics::webhook_metrics;
use pulse_shared::store::dynamodb::{create_tables, DynamoStore};
use pulse_shared::store::record_all;
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::Store;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// How many events to store (each run starts from an empty store).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    events: Vec<usize>,
    /// Timed metrics queries per size.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Time zones the query is timed in, each on the same store (IANA names; a
    /// half-hour offset such as Asia/Kolkata splits UTC days between local ones).
    #[arg(long, value_delimiter = ',', default_value = "UTC,Asia/Kolkata")]
    timezones: Vec<chrono_tz::Tz>,
    /// Also measure DynamoDB at this endpoint (moto, DynamoDB Local or AWS).
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
}

const BUTTONS: [&str; 4] = [
    "RETRIEVE_CONTENT",
    "UNLOCK_CONTENT",
    "SHARE_WITH_CLIENTS",
    "OTHER_CTA",
];

/// One delivery of `count` updates, the `first`-th to the (first+count)-th of `total`.
fn delivery(first: usize, count: usize, total: usize) -> Vec<u8> {
    let now = Utc::now();
    let span = Duration::days(30).num_seconds() as usize;
    let mut messages = Vec::new();
    let mut statuses = Vec::new();
    for i in first..first + count {
        let at = (now - Duration::seconds((i * span / total.max(1)) as i64))
            .timestamp()
            .to_string();
        let from = format!("9190{:08}", i % 5000);
        match i % 3 {
            0 => messages.push(json!({"from": from, "id": format!("wamid.c{i}"), "timestamp": at, "type": "interactive",
                  "interactive": {"type": "button_reply", "button_reply": {"id": BUTTONS[i % 4], "title": "t"}}})),
            1 => messages.push(json!({"from": from, "id": format!("wamid.t{i}"), "timestamp": at, "type": "text", "text": {"body": "hello"}})),
            _ => statuses.push(json!({"id": format!("wamid.o{i}"), "status": "delivered", "timestamp": at, "recipient_id": from})),
        }
    }
    serde_json::to_vec(
        &json!({"entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messages": messages, "statuses": statuses}}]}]}),
    )
    .unwrap()
}

async fn fill(store: &dyn Store, total: usize) -> StdDuration {
    let started = Instant::now();
    let mut done = 0;
    while done < total {
        let count = 500.min(total - done);
        let events = events_from_body(&delivery(done, count, total), Utc::now()).unwrap();
        record_all(store, &events, 90).await.unwrap();
        done += count;
        if done % 50_000 == 0 {
            eprintln!(
                "  stored {done}/{total} ({:.0} events/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    started.elapsed()
}

/// Times the 30-day query; returns (median, worst) in ms.
async fn time_queries(store: &dyn Store, tz: chrono_tz::Tz, runs: usize) -> (f64, f64) {
    // Two seconds of untimed queries first: right after a fill the checkpointer
    // is still copying it out of SQLite's WAL, and whichever zone came first paid.
    let warm = Instant::now();
    while warm.elapsed() < StdDuration::from_secs(2) {
        webhook_metrics(store, tz, 30, Utc::now()).await.unwrap();
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let metrics = webhook_metrics(store, tz, 30, Utc::now()).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(metrics);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], *times.last().unwrap())
}

fn report(
    store: &str,
    tz: chrono_tz::Tz,
    events: usize,
    fill: StdDuration,
    (median, worst): (f64, f64),
    read: u64,
) {
    println!(
        "| {store} | {tz} | {events} | {:.0} | {median:.3} | {worst:.2} | {read} |",
        events as f64 / fill.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!("| store | time zone | events stored | fill rate (events/s) | 30-day query median (ms) | worst (ms) | counter rows/items read per query |");
    println!("|---|---|---|---|---|---|---|");
    for &events in &args.events {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(folder.path().join("bench.db")).unwrap();
        let fill_time = fill(&store, events).await;
        let now = Utc::now();
        let rows = store
            .quarter_counters(now - Duration::days(31), now + Duration::days(1), None)
            .await
            .unwrap()
            .len();
        for &tz in &args.timezones {
            let timing = time_queries(&store, tz, args.runs).await;
            report("SQLite", tz, events, fill_time, timing, rows as u64);
        }

        if let Some(endpoint) = &args.dynamodb_endpoint {
            let config = aws_config::from_env().endpoint_url(endpoint).load().await;
            let client = aws_sdk_dynamodb::Client::new(&config);
            let table = format!("bench-{:x}", rand::random::<u32>());
            create_tables(&client, &table, &format!("{table}-connections"))
                .await
                .unwrap();
            let store = Arc::new(DynamoStore::new(client, &table, 90));
            let fill_time = fill(store.as_ref(), events).await;
            for &tz in &args.timezones {
                let before = store.counter_items_read();
                let timing = time_queries(store.as_ref(), tz, args.runs).await;
                let per_query = (store.counter_items_read() - before) / args.runs as u64;
                report("DynamoDB (moto)", tz, events, fill_time, timing, per_query);
            }
        }
    }
}
