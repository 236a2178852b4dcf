//! `pulse bench dynamodb`: what recording a delivery costs on DynamoDB, for
//! deliveries of `--updates` updates: requests per delivery, and write and read
//! capacity units per event by DynamoDB's sizing rules (computed from the items
//! sent; see `pulse_shared::store::dynamodb` `capacity`), first delivery and
//! redelivery. These figures are the bill: they do not depend on the server, so
//! moto gives the same as AWS. The time per delivery is the server's (moto's is
//! no guide to DynamoDB's).
//!
//! Each size starts on a new table and records about `--events` events in
//! deliveries of that size, the mix of the load harness (30 % clicks, 30 % texts,
//! 5 % media, 35 % statuses of earlier replies, out of order; [`crate::load`]),
//! 5 000 contacts; then every delivery again.

use std::time::Instant;

use anyhow::{ensure, Context};
use chrono::Utc;
use pulse_shared::event::events_from_body;
use pulse_shared::store::dynamodb::{DynamoStore, UsageFigures};
use pulse_shared::store::record_all;

use super::{dynamodb_client, fresh_tables, ms_since, progress, Case, Percentiles, Report};
use crate::load::Mix;

/// `pulse bench dynamodb`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
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

/// Runs `pulse bench dynamodb`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = dynamodb_client(&args.dynamodb_endpoint).await;
    let mut report = Report::new(
        "dynamodb",
        format!(
            "DynamoDB requests and capacity units (by DynamoDB's sizing rules) of \
             recording about {} events of the load mix, then every delivery again, \
             a new table per size, at {}",
            args.events, args.dynamodb_endpoint
        ),
    );
    report.print_header();
    for &updates in &args.updates {
        let table = fresh_tables(&client).await?;
        let store = DynamoStore::new(client.clone(), &table, 90);
        let mut mix = Mix::new(7);
        let count = (args.events / updates.max(1)).max(3);
        progress(
            "dynamodb",
            format_args!("{count} deliveries of {updates} update(s)…"),
        );
        let bodies: Vec<Vec<u8>> = (0..count).map(|_| mix.delivery(updates)).collect();
        let mut times = Vec::with_capacity(count);
        let mut events = 0;
        let mut duplicates = 0;
        let start = store.usage();
        for body in &bodies {
            let received = events_from_body(body, Utc::now()).context("not a webhook")?;
            let began = Instant::now();
            let summary = record_all(&store, &received, 90)
                .await
                .context("cannot record a delivery")?;
            times.push(ms_since(began));
            events += summary.stored;
            duplicates += summary.duplicates;
        }
        ensure!(
            duplicates == 0,
            "the mix sends every update once, yet {duplicates} were duplicates"
        );
        let first = difference(store.usage(), start);
        let start = store.usage();
        for body in &bodies {
            let received = events_from_body(body, Utc::now()).context("not a webhook")?;
            let summary = record_all(&store, &received, 90)
                .await
                .context("cannot record a redelivery")?;
            ensure!(summary.stored == 0, "a redelivery stored events");
        }
        let again = difference(store.usage(), start);
        report.print(
            Case::new(format!(
                "{updates} update(s) per delivery, {count} deliveries, {events} events"
            ))
            .figure(
                "requests",
                format!(
                    "{:.1} per delivery ({:.1} reads + {:.1} writes)",
                    per(first.read_requests + first.write_requests, count),
                    per(first.read_requests, count),
                    per(first.write_requests, count),
                ),
            )
            .figure(
                "capacity",
                format!(
                    "{:.2} WRU, {:.2} RRU per event",
                    per(first.write_units, events),
                    per(first.read_units, events),
                ),
            )
            .figure(
                "redelivery",
                format!(
                    "{:.1} requests per delivery, {:.2} RRU per event",
                    per(again.read_requests + again.write_requests, count),
                    per(again.read_units, events),
                ),
            )
            .figure(
                "time",
                format!("per delivery {}", Percentiles::of(times).ms(1)),
            ),
        );
    }
    Ok(())
}
