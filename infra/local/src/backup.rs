//! `pulse export` and `pulse import`: every stored raw update as NDJSON, and back.
//!
//! Meta cannot send a webhook again, so the raw updates are the only copy of what
//! happened. Each line holds one update as a webhook of its own, exactly as Pulse
//! would have received it alone, with the time it was received:
//! `{"received_at": "…", "webhook": {"object": "whatsapp_business_account", …}}`.
//! Import parses each line like the webhook function and records it through the
//! same exactly-once path, so importing into an empty store gives the figures of
//! the original, and importing twice changes nothing.

use anyhow::Context;
use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulse_shared::event::{events_from_body, Event, EventKind, ReceivedEvent};
use pulse_shared::ingest::Outcome;
use pulse_shared::store::{EventQuery, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub received_at: DateTime<Utc>,
    pub webhook: Value,
}

/// The webhook that carries exactly this stored update.
pub fn webhook_of(event: &Event, raw: &str) -> Result<Value, serde_json::Error> {
    let update: Value = serde_json::from_str(raw)?;
    let mut value = json!({"messaging_product": "whatsapp"});
    if let Some(id) = &event.phone_number_id {
        value["metadata"] = json!({"phone_number_id": id});
    }
    let (field, value) = match &event.kind {
        EventKind::StatusUpdate { .. } => {
            value["statuses"] = json!([update]);
            ("messages", value)
        }
        EventKind::OtherUpdate { field } if field == "messages.errors" => {
            value["errors"] = json!([update]);
            ("messages", value)
        }
        // Any other update is stored as the change's whole value.
        EventKind::OtherUpdate { field } => (field.as_str(), update),
        _ => {
            if let Some(contact) = &event.contact {
                value["contacts"] =
                    json!([{"profile": {"name": contact.name}, "wa_id": contact.wa_id}]);
            }
            value["messages"] = json!([update]);
            ("messages", value)
        }
    };
    let mut entry = json!({"id": "", "changes": [{"field": field, "value": value}]});
    // An update without a time of its own took its entry's; give it back.
    let entry_time = event.implausible_timestamp.or_else(|| {
        (event.occurred_at != event.received_at).then(|| event.occurred_at.timestamp())
    });
    if let Some(time) = entry_time {
        entry["time"] = json!(time);
    }
    Ok(json!({"object": "whatsapp_business_account", "entry": [entry]}))
}

fn progress(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {pos} {msg} ({per_sec})")
            .expect("a valid template"),
    );
    bar.set_message(message);
    bar
}

/// Writes every stored update, newest first; returns how many.
pub async fn export(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<u64> {
    let bar = progress("updates exported");
    let mut count = 0;
    let mut before = None;
    loop {
        let page = store
            .events(&EventQuery {
                before,
                limit: 200,
                ..Default::default()
            })
            .await
            .context("reading the events")?;
        for listed in page.events {
            let Some((event, raw)) = store
                .event(&listed.id)
                .await
                .with_context(|| format!("reading event {}", listed.id))?
            else {
                continue; // expired since it was listed
            };
            let webhook = webhook_of(&event, &raw)
                .with_context(|| format!("event {}: its raw update is not JSON", event.id))?;
            let line = Line {
                received_at: event.received_at,
                webhook,
            };
            serde_json::to_writer(&mut *out, &line).context("writing")?;
            out.write_all(b"\n").context("writing")?;
            count += 1;
            bar.inc(1);
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    out.flush().context("writing")?;
    bar.finish_and_clear();
    Ok(count)
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub lines: u64,
    pub stored: u64,
    pub duplicates: u64,
    /// Lines that could not be read, with their number and why; none of them
    /// changed anything.
    pub skipped: Vec<(u64, String)>,
}

/// Updates recorded together (one transaction on the embedded store).
const BATCH: usize = 500;

/// Records every line's updates exactly once. A line that cannot be read is
/// skipped whole and reported; a store failure stops the import (what was
/// recorded stays, and importing the file again completes it).
pub async fn import(
    store: &dyn Store,
    input: impl BufRead,
    retention_days: u32,
) -> anyhow::Result<Imported> {
    let bar = progress("lines imported");
    let mut imported = Imported::default();
    let mut batch: Vec<ReceivedEvent> = Vec::with_capacity(BATCH);
    for (index, line) in input.lines().enumerate() {
        let number = index as u64 + 1;
        imported.lines = number;
        bar.inc(1);
        let line = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => line,
            Err(error) => {
                imported
                    .skipped
                    .push((number, format!("unreadable: {error}")));
                continue;
            }
        };
        let events = serde_json::from_str::<Line>(&line)
            .map_err(|e| e.to_string())
            .and_then(|line| {
                let body = serde_json::to_vec(&line.webhook).map_err(|e| e.to_string())?;
                events_from_body(&body, line.received_at).map_err(|e| e.to_string())
            });
        match events {
            Ok(events) => batch.extend(events),
            Err(error) => imported.skipped.push((number, error)),
        }
        if batch.len() >= BATCH {
            record(store, &mut batch, retention_days, &mut imported).await?;
        }
    }
    record(store, &mut batch, retention_days, &mut imported).await?;
    bar.finish_and_clear();
    Ok(imported)
}

async fn record(
    store: &dyn Store,
    batch: &mut Vec<ReceivedEvent>,
    retention_days: u32,
    imported: &mut Imported,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = store.record(batch, retention_days).await.context(
        "recording failed (what was imported stays; import the file again to complete it)",
    )?;
    for outcome in outcomes {
        match outcome {
            Outcome::Stored => imported.stored += 1,
            Outcome::Duplicate => imported.duplicates += 1,
        }
    }
    batch.clear();
    Ok(())
}
