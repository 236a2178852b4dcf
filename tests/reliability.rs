//! Pulse under faults, end to end: the `pulse` binary killed with SIGKILL while
//! webhooks pour in. What it acknowledged must be there after a restart, nothing
//! may count twice, and Meta's retries of everything must complete the rest.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use pulse_shared::mask::mask_message_id;
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use pulse_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One webhook: its body and the message ids of its clicks.
#[derive(Clone)]
struct Delivery {
    body: Arc<Vec<u8>>,
    ids: Vec<String>,
}

/// `count` deliveries of 1–5 clicks each; a fifth of them re-send an earlier one.
fn deliveries(rng: &mut StdRng, count: usize, round: usize) -> Vec<Delivery> {
    let buttons = ["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"];
    let mut made: Vec<Delivery> = Vec::with_capacity(count);
    for n in 0..count {
        if n > 0 && rng.random_bool(0.2) {
            let again = made[rng.random_range(0..made.len())].clone();
            made.push(again);
            continue;
        }
        let ids: Vec<String> = (0..rng.random_range(1..=5))
            .map(|k| format!("wamid.CRASH{round}x{n}x{k}"))
            .collect();
        let clicks = ids
            .iter()
            .map(|id| click(id, CUSTOMER, Utc::now(), buttons[rng.random_range(0..3)]))
            .collect();
        made.push(Delivery {
            body: Arc::new(envelope(clicks, vec![])),
            ids,
        });
    }
    made
}

/// Posts the deliveries from `concurrency` senders until all are sent or the
/// server stops answering; returns the message ids of every acknowledged one.
async fn send_all(
    port: u16,
    secret: &str,
    deliveries: &[Delivery],
    concurrency: usize,
) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let deliveries = Arc::new(deliveries.to_vec());
    let senders = (0..concurrency).map(|_| {
        let (client, next, acknowledged, deliveries) = (
            client.clone(),
            Arc::clone(&next),
            Arc::clone(&acknowledged),
            Arc::clone(&deliveries),
        );
        let secret = secret.to_owned();
        tokio::spawn(async move {
            loop {
                let Some(delivery) = deliveries.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let answer = client
                    .post(format!("http://127.0.0.1:{port}/webhook"))
                    .header(SIGNATURE_HEADER, sign(secret.as_bytes(), &delivery.body))
                    .body(delivery.body.to_vec())
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status() == 200 => acknowledged
                        .lock()
                        .unwrap()
                        .extend(delivery.ids.iter().cloned()),
                    Ok(response) => panic!("a webhook was answered {}", response.status()),
                    // Killed: whatever was in flight is not acknowledged.
                    Err(_) => return,
                }
            }
        })
    });
    for sender in senders.collect::<Vec<_>>() {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    acknowledged
}

/// The masked message ids of every stored click, through `events/recent`'s pages.
async fn stored_clicks(port: u16, token: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut url = format!(
            "http://127.0.0.1:{port}/api/webhook/events/recent?type=button_click&limit=200"
        );
        if let Some(cursor) = &before {
            url.push_str(&format!("&before={cursor}"));
        }
        let page = json_of(client.get(url).bearer_auth(token)).await;
        for event in page["data"]["events"].as_array().unwrap() {
            ids.push(event["message_id"].as_str().unwrap().to_owned());
        }
        match page["data"]["next"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => return ids,
        }
    }
}

async fn clicks_counted(port: u16, token: &str) -> i64 {
    let url = format!("http://127.0.0.1:{port}/api/webhook/metrics?days=7");
    let metrics = json_of(reqwest::Client::new().get(url).bearer_auth(token)).await;
    metrics["data"]["button_clicks"]["total"].as_i64().unwrap()
}

fn kill(mut pulse: std::process::Child) {
    pulse.kill().unwrap(); // SIGKILL: no shutdown path runs.
    pulse.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_webhook_and_counts_nothing_twice() {
    let seed: u64 = std::env::var("PULSE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (PULSE_TEST_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let data_dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    let mut acknowledged = Vec::new();
    let (mut secret, mut token) = (String::new(), String::new());

    for round in 0..4 {
        let port = free_port();
        let pulse = spawn_pulse(data_dir.path(), port, free_port()).await;
        let settings = pulse_local::stack::read_env_file(&data_dir.path().join("local.env"));
        (secret, token) = (
            settings["WHATSAPP_APP_SECRET"].clone(),
            settings["DASHBOARD_TOKEN"].clone(),
        );
        let batch = deliveries(&mut rng, 1_000, round);
        all.extend(batch.iter().cloned());
        let after = Duration::from_millis(rng.random_range(150..600));
        let sending = tokio::spawn({
            let secret = secret.clone();
            async move { send_all(port, &secret, &batch, 16).await }
        });
        tokio::time::sleep(after).await;
        kill(pulse);
        let acked = sending.await.unwrap();
        println!(
            "round {round}: killed after {after:?}, {} clicks acknowledged",
            acked.len()
        );
        assert!(
            !acked.is_empty(),
            "the kill came after some webhooks were answered"
        );
        acknowledged.extend(acked);
    }

    let port = free_port();
    let pulse = spawn_pulse(data_dir.path(), port, free_port()).await;
    let stored = stored_clicks(port, &token).await;
    let stored_set: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), stored_set.len(), "no click is stored twice");
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored_set.contains(&mask_message_id(id)))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after SIGKILL: {lost:?}"
    );
    assert_eq!(
        clicks_counted(port, &token).await,
        stored.len() as i64,
        "the counters hold each stored click once"
    );

    // Meta retries what was not acknowledged; here, everything, twice.
    let unique: BTreeSet<String> = all.iter().flat_map(|d| d.ids.iter().cloned()).collect();
    for _ in 0..2 {
        let acked = send_all(port, &secret, &all, 16).await;
        assert_eq!(
            acked.len(),
            all.iter().map(|d| d.ids.len()).sum::<usize>(),
            "every retry is answered 200"
        );
        assert_eq!(clicks_counted(port, &token).await, unique.len() as i64);
    }
    let stored: BTreeSet<String> = stored_clicks(port, &token).await.into_iter().collect();
    let expected: BTreeSet<String> = unique.iter().map(|id| mask_message_id(id)).collect();
    assert_eq!(
        stored, expected,
        "after the retries, every click is stored once"
    );
    kill(pulse);
}
