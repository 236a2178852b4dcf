//! `pulse-bench-live`: how long an event takes from the webhook POST to a
//! dashboard's screen, with 1, 100 and 1 000 connected WebSocket clients.
//!
//! It starts the local stack in this process (SQLite store, free ports), connects
//! `--clients` WebSocket clients, then posts `--events` signed webhooks one at a
//! time, each a single text message; after each it waits until every client has
//! the event. A sample is the time from just before the POST to one client's
//! receipt of the event. Printed per client count: p50, p99 and worst over all
//! (client, event) samples, and the webhook's own answer time (p50).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use futures::StreamExt;
use pulse_local::stack::{LocalStack, Options, StoreKind};
use pulse_shared::config::Source;
use pulse_shared::mask::mask_message_id;
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// Numbers of connected clients to measure with.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    clients: Vec<usize>,
    /// Webhooks posted per client count.
    #[arg(long, default_value_t = 100)]
    events: usize,
}

/// When each event's POST started, by message id as clients see it (masked).
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "| connected clients | events | samples | p50 (ms) | p99 (ms) | worst (ms) | webhook answer p50 (ms) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &clients in &args.clients {
        measure(clients, args.events).await;
    }
}

async fn measure(clients: usize, events: usize) {
    let folder = tempfile::tempdir().unwrap();
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let stack = LocalStack::start(Options {
        http_addr: any_port,
        ws_addr: any_port,
        data_dir: folder.path().to_path_buf(),
        store: StoreKind::Sqlite,
        create_tables: false,
    })
    .await
    .expect("the local stack starts");
    let token = stack.settings.get("DASHBOARD_TOKEN").unwrap();
    let secret = stack.settings.get("WHATSAPP_APP_SECRET").unwrap();

    let sent: Sent = Arc::default();
    let samples = Arc::new(Mutex::new(Vec::with_capacity(clients * events)));
    let received = Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..clients {
        let url = format!("{}?token={token}", stack.ws_url());
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("a client connects");
        let (sent, samples, received) = (sent.clone(), samples.clone(), received.clone());
        tokio::spawn(async move {
            let (_, mut frames) = socket.split();
            while let Some(Ok(Message::Text(text))) = frames.next().await {
                let at = Instant::now();
                let message: Value = serde_json::from_str(&text).unwrap_or_default();
                for event in message["events"].as_array().into_iter().flatten() {
                    let id = event["message_id"].as_str().unwrap_or_default();
                    if let Some(started) = sent.lock().unwrap().get(id) {
                        samples.lock().unwrap().push(at - *started);
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
        let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": "1"},
            "messages": [{"from": "919876543210", "id": message_id, "timestamp": Utc::now().timestamp().to_string(),
                          "type": "text", "text": {"body": "benchmark"}}]}}]}]}))
        .unwrap();
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
            .expect("the webhook answers");
        assert!(response.status().is_success(), "{}", response.status());
        answers.push(started.elapsed());
        let all = tokio::time::timeout(
            Duration::from_secs(30),
            received.acquire_many(clients as u32),
        )
        .await
        .expect("every client gets the event within 30 s")
        .unwrap();
        all.forget();
    }

    let mut samples = samples.lock().unwrap().clone();
    samples.sort();
    answers.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    println!(
        "| {clients} | {events} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        samples.len(),
        at(0.50),
        at(0.99),
        ms(*samples.last().unwrap()),
        ms(answers[answers.len() / 2]),
    );
    stack.stop().await.unwrap();
}
