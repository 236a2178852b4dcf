//! `pulse bench live`: how long an event takes from the webhook POST to a
//! dashboard's screen, with 1, 100 and 1 000 connected WebSocket clients.
//!
//! It starts the local stack in this process (SQLite store, free ports), connects
//! `--clients` WebSocket clients, then posts `--events` signed webhooks one at a
//! time, each a single text message; after each it waits until every client has
//! the event. A sample is the time from just before the POST to one client's
//! receipt of the event. Printed per client count: the percentiles over all
//! (client, event) samples, and those of the webhook's own answer time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use chrono::Utc;
use futures::StreamExt;
use pulse_shared::config::Source;
use pulse_shared::mask::mask_message_id;
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{ms_since, progress, Case, Percentiles, Report};
use crate::stack::{LocalStack, Options, StoreKind};

/// `pulse bench live`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Numbers of connected clients to measure with.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    clients: Vec<usize>,
    /// Webhooks posted per client count.
    #[arg(long, default_value_t = 100)]
    events: usize,
}

/// When each event's POST started, by message id as clients see it (masked).
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// Runs `pulse bench live`; fails if a client misses an event.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut report = Report::new(
        "live",
        format!(
            "webhook POST to each connected WebSocket client's receipt of the event, \
             local stack in this process (SQLite store), {} one-message webhooks \
             per client count, one at a time",
            args.events
        ),
    );
    report.print_header();
    for &clients in &args.clients {
        progress("live", format_args!("{clients} client(s)…"));
        let case = measure(clients, args.events).await?;
        report.print(case);
    }
    Ok(())
}

async fn measure(clients: usize, events: usize) -> anyhow::Result<Case> {
    let folder = tempfile::tempdir().context("no temporary folder")?;
    let any_port: SocketAddr = "127.0.0.1:0".parse()?;
    let stack = LocalStack::start(Options {
        http_addr: any_port,
        ws_addr: any_port,
        data_dir: folder.path().to_path_buf(),
        store: StoreKind::Sqlite,
        create_tables: false,
    })
    .await
    .context("the local stack did not start")?;
    let token = stack
        .settings
        .get("DASHBOARD_TOKEN")
        .context("no DASHBOARD_TOKEN")?;
    let secret = stack
        .settings
        .get("WHATSAPP_APP_SECRET")
        .context("no WHATSAPP_APP_SECRET")?;

    let sent: Sent = Arc::default();
    let samples = Arc::new(Mutex::new(Vec::with_capacity(clients * events)));
    let received = Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..clients {
        let url = format!("{}?token={token}", stack.ws_url());
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .context("a client could not connect")?;
        let (sent, samples, received) = (sent.clone(), samples.clone(), received.clone());
        tokio::spawn(async move {
            let (_, mut frames) = socket.split();
            while let Some(Ok(Message::Text(text))) = frames.next().await {
                let at = Instant::now();
                let message: Value = serde_json::from_str(&text).unwrap_or_default();
                for event in message["events"].as_array().into_iter().flatten() {
                    let id = event["message_id"].as_str().unwrap_or_default();
                    if let Some(started) = sent.lock().unwrap().get(id) {
                        samples
                            .lock()
                            .unwrap()
                            .push((at - *started).as_secs_f64() * 1e3);
                        received.add_permits(1);
                    }
                }
            }
        });
    }
    while stack.websocket_clients() < clients {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let http = reqwest::Client::new();
    let mut answers = Vec::with_capacity(events);
    for i in 0..events {
        let message_id = format!("wamid.bench{clients}x{i}");
        let body = serde_json::to_vec(
            &json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": "1"},
            "messages": [{"from": "919876543210", "id": message_id, "timestamp": Utc::now().timestamp().to_string(),
                          "type": "text", "text": {"body": "benchmark"}}]}}]}]}),
        )?;
        let started = Instant::now();
        // Clients see message ids masked, as every shown event has them.
        sent.lock()
            .unwrap()
            .insert(mask_message_id(&message_id), started);
        let response = http
            .post(stack.url("/webhook"))
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), &body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .context("the webhook did not answer")?;
        ensure!(
            response.status().is_success(),
            "the webhook answered {}",
            response.status()
        );
        answers.push(ms_since(started));
        let all = tokio::time::timeout(
            Duration::from_secs(30),
            received.acquire_many(clients as u32),
        )
        .await
        .context("not every client got the event within 30 s")??;
        all.forget();
    }

    let samples = samples.lock().unwrap().clone();
    let count = samples.len();
    let plural = if clients == 1 { "" } else { "s" };
    stack.stop().await.context("the local stack did not stop")?;
    Ok(Case::new(format!("{clients} client{plural}"))
        .figure(
            "events",
            format!("{events} posted, {count} samples (client × event)"),
        )
        .figure("delivery", Percentiles::of(samples).ms(1))
        .figure(
            "webhook",
            format!("answer {}", Percentiles::of(answers).ms(1)),
        ))
}
