//! `pulse bench metrics`: what the 30-day metrics, funnel and failures queries
//! cost as the number of stored events grows, on the SQLite store and (with
//! `--dynamodb-endpoint`) on DynamoDB.
//!
//! It records `--events` synthetic events through the real path (`record_all`, in
//! deliveries of 500), spread evenly over the last 30 days: a third each clicks
//! (on the message before them), texts and statuses (utility and marketing, one
//! in twenty failed); then, after two seconds of untimed ones, runs each query
//! `--runs` times in each of `--timezones` and prints the fill rate, the queries'
//! percentiles and how many counter rows (SQLite) or items (DynamoDB) one read.

use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use chrono::{Duration, Utc};
use pulse_shared::event::events_from_body;
use pulse_shared::metrics::{failures, funnel, webhook_metrics};
use pulse_shared::store::dynamodb::DynamoStore;
use pulse_shared::store::record_all;
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::Store;
use serde_json::json;

use super::{dynamodb_client, fresh_tables, progress, time_runs, Case, Percentiles, Report};

/// `pulse bench metrics`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
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
                  "context": {"id": format!("wamid.o{}", i.saturating_sub(1))},
                  "interactive": {"type": "button_reply", "button_reply": {"id": BUTTONS[i % 4], "title": "t"}}})),
            1 => messages.push(json!({"from": from, "id": format!("wamid.t{i}"), "timestamp": at, "type": "text", "text": {"body": "hello"}})),
            _ => {
                let category = ["utility", "marketing"][i % 2];
                let mut status = json!({"id": format!("wamid.o{i}"), "status": "delivered", "timestamp": at, "recipient_id": from,
                    "pricing": {"category": category}});
                if i % 20 == 2 {
                    status["status"] = json!("failed");
                    let code = [131_026, 131_049, 131_047][i % 3];
                    status["errors"] = json!([{"code": code, "title": "t"}]);
                }
                statuses.push(status);
            }
        }
    }
    serde_json::to_vec(
        &json!({"entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messages": messages, "statuses": statuses}}]}]}),
    )
    .expect("a JSON value serialises")
}

/// Records `total` events; returns how long it took.
async fn fill(store: &dyn Store, total: usize) -> anyhow::Result<StdDuration> {
    let started = Instant::now();
    let mut done = 0;
    while done < total {
        let count = 500.min(total - done);
        let events = events_from_body(&delivery(done, count, total), Utc::now())
            .context("a synthetic delivery does not parse")?;
        record_all(store, &events, 90)
            .await
            .context("cannot record the events")?;
        done += count;
        if done % 50_000 == 0 {
            progress(
                "metrics",
                format_args!(
                    "stored {done}/{total} ({:.0} events/s)",
                    done as f64 / started.elapsed().as_secs_f64()
                ),
            );
        }
    }
    Ok(started.elapsed())
}

/// The queries timed, each over 30 days.
const QUERIES: [&str; 3] = ["metrics", "funnel", "failures"];

async fn query(store: &dyn Store, tz: chrono_tz::Tz, which: &str) -> anyhow::Result<()> {
    let now = Utc::now();
    match which {
        "metrics" => drop(webhook_metrics(store, tz, 30, now).await?),
        "funnel" => drop(funnel(store, tz, 30, now).await?),
        _ => drop(failures(store, tz, 30, now).await?),
    }
    Ok(())
}

/// Times a 30-day query `runs` times, in ms.
async fn time_queries(
    store: &dyn Store,
    tz: chrono_tz::Tz,
    runs: usize,
    which: &str,
) -> anyhow::Result<Percentiles> {
    // Two seconds of untimed queries first: right after a fill the checkpointer
    // is still copying it out of SQLite's WAL, and whichever zone came first paid.
    let warm = Instant::now();
    while warm.elapsed() < StdDuration::from_secs(2) {
        query(store, tz, which).await?;
    }
    let times = time_runs(runs, || query(store, tz, which))
        .await
        .with_context(|| format!("the {which} query failed"))?;
    Ok(Percentiles::of(times))
}

fn case(
    store: &str,
    tz: chrono_tz::Tz,
    events: usize,
    fill: StdDuration,
    queries: Vec<(&str, Percentiles)>,
    read: String,
) -> Case {
    let mut case = Case::new(format!("{store}, {events} events stored, {tz}")).figure(
        "fill",
        format!(
            "{:.0} events/s (deliveries of 500)",
            events as f64 / fill.as_secs_f64()
        ),
    );
    for (which, timing) in queries {
        case = case.figure(which, timing.ms(3));
    }
    case.figure("read", read)
}

/// Times every query in `tz`.
async fn time_all(
    store: &dyn Store,
    tz: chrono_tz::Tz,
    runs: usize,
) -> anyhow::Result<Vec<(&'static str, Percentiles)>> {
    let mut timed = Vec::new();
    for which in QUERIES {
        timed.push((which, time_queries(store, tz, runs, which).await?));
    }
    Ok(timed)
}

/// Runs `pulse bench metrics`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::new(
        "metrics",
        format!(
            "the 30-day metrics, funnel and failures queries on a store filled \
             through the real path (a third each clicks, texts, statuses over 30 \
             days), {} timed queries each per size and time zone",
            args.runs
        ),
    );
    report.print_header();
    for &events in &args.events {
        let folder = tempfile::tempdir().context("no temporary folder")?;
        let store = SqliteStore::open(folder.path().join("bench.db"))
            .context("cannot open the SQLite store")?;
        progress("metrics", format_args!("SQLite: storing {events} events…"));
        let fill_time = fill(&store, events).await?;
        let now = Utc::now();
        let rows = store
            .quarter_counters(now - Duration::days(31), now + Duration::days(1), None)
            .await?
            .len();
        for &tz in &args.timezones {
            let timing = time_all(&store, tz, args.runs).await?;
            let read = format!("{rows} counter rows per query");
            report.print(case("SQLite", tz, events, fill_time, timing, read));
        }

        if let Some(endpoint) = &args.dynamodb_endpoint {
            let client = dynamodb_client(endpoint).await;
            let table = fresh_tables(&client).await?;
            let store = DynamoStore::new(client, &table, 90);
            progress(
                "metrics",
                format_args!("DynamoDB: storing {events} events…"),
            );
            let fill_time = fill(&store, events).await?;
            for &tz in &args.timezones {
                let before = store.counter_items_read();
                let timing = time_all(&store, tz, args.runs).await?;
                let per_query = (store.counter_items_read() - before)
                    / (args.runs * QUERIES.len()).max(1) as u64;
                let read = format!("{per_query} counter items per query");
                report.print(case("DynamoDB (moto)", tz, events, fill_time, timing, read));
            }
        }
    }
    Ok(())
}
