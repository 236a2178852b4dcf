//! Pulse under faults, end to end: the `pulse` binary killed with SIGKILL while
//! webhooks pour in (what it acknowledged must be there after a restart, nothing
//! may count twice, and Meta's retries of everything must complete the rest), and
//! a backup taken with `pulse export` restored with `pulse import`.

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

/// The customer's inbound messages as the conversations route shows them (from
/// contact state, which the embedded store may hold in memory at a kill).
async fn messages_in(port: u16, token: &str) -> u64 {
    let url =
        format!("http://127.0.0.1:{port}/api/webhook/conversations?limit=10&active_minutes=10080");
    let page = json_of(reqwest::Client::new().get(url).bearer_auth(token)).await;
    let conversations = page["data"]["conversations"].as_array().unwrap();
    assert_eq!(
        conversations.len(),
        1,
        "every click comes from one customer"
    );
    conversations[0]["messages_in"].as_u64().unwrap()
}

fn kill(mut pulse: std::process::Child) {
    pulse.kill().unwrap(); // SIGKILL: no shutdown path runs.
    pulse.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_webhook_and_counts_nothing_twice() {
    let seed = test_seed();
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
    assert_eq!(
        messages_in(port, &token).await,
        stored.len() as u64,
        "the contact's state holds each stored click once"
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
        assert_eq!(messages_in(port, &token).await, unique.len() as u64);
    }
    let stored: BTreeSet<String> = stored_clicks(port, &token).await.into_iter().collect();
    let expected: BTreeSet<String> = unique.iter().map(|id| mask_message_id(id)).collect();
    assert_eq!(
        stored, expected,
        "after the retries, every click is stored once"
    );
    kill(pulse);
}

/// Every route's answer that a restore must give back (realtime depends on the
/// clock, the rest only on the stored updates).
async fn all_figures(stack: &Stack) -> serde_json::Value {
    let mut pages = Vec::new();
    let mut before = String::new();
    loop {
        let page = stack
            .data(&format!("/api/webhook/events/recent?limit=200{before}"))
            .await;
        pages.push(page["events"].clone());
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => break,
        }
    }
    // Keys are the stack's own (its CONTACT_KEY_SECRET): the rest must match.
    let mut contacts = stack.data("/api/webhook/contacts?days=90&limit=200").await;
    assert!(contacts["next"].is_null(), "one page holds them all");
    for contact in contacts["contacts"].as_array_mut().unwrap() {
        contact.as_object_mut().unwrap().remove("key");
    }
    serde_json::json!({
        "contacts": contacts["contacts"],
        "metrics": stack.data("/api/webhook/metrics?days=90").await,
        "conversations": stack.data("/api/webhook/conversations?limit=200&active_minutes=10080").await,
        "funnel": stack.data("/api/webhook/funnel?days=90").await,
        "failures": stack.data("/api/webhook/failures?days=90").await,
        "events": pages,
    })
}

/// Runs `pulse ARGS --data-dir DIR`.
fn pulse(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(pulse_binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_imported_into_an_empty_store_gives_every_route_back_and_twice_changes_nothing() {
    let stack = Stack::start().await;
    let mut traffic = pulse_local::simulate::Traffic::new(7, 30, 0.2);
    for _ in 0..400 {
        let delivery = traffic.next(Utc::now());
        assert_eq!(stack.deliver(&delivery.body).await.0, 200);
    }
    let original = all_figures(&stack).await;
    let export = stack.data_dir.path().join("export.ndjson");
    let exported = pulse(
        &["export", "-o", export.to_str().unwrap()],
        stack.data_dir.path(),
    );
    assert!(exported.status.success(), "{exported:?}");
    let lines = std::fs::read_to_string(&export).unwrap().lines().count();
    let stored = original["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(lines, stored, "one line an update");

    // A truncated line and a corrupt one in the middle: reported by number, skipped whole.
    let text = std::fs::read_to_string(&export).unwrap();
    let mut damaged: Vec<&str> = text.lines().collect();
    let truncated = &damaged[10][..damaged[10].len() / 2].to_owned();
    damaged.insert(20, truncated);
    damaged.insert(30, "{\"received_at\": \"yesterday\", \"webhook\": {}}");
    let damaged_file = stack.data_dir.path().join("damaged.ndjson");
    std::fs::write(&damaged_file, damaged.join("\n")).unwrap();

    let restored = tempfile::tempdir().unwrap();
    let imported = pulse(&["import", damaged_file.to_str().unwrap()], restored.path());
    let report = String::from_utf8_lossy(&imported.stderr);
    assert!(
        !imported.status.success(),
        "skipped lines make it say so: {report}"
    );
    assert!(report.contains("damaged.ndjson:21: skipped"), "{report}");
    assert!(report.contains("damaged.ndjson:31: skipped"), "{report}");
    assert!(
        report.contains(&format!(
            "{stored} updates stored, 0 already there, 2 lines skipped"
        )),
        "{report}"
    );
    let again = pulse(&["import", export.to_str().unwrap()], restored.path());
    let report = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{report}");
    assert!(
        report.contains(&format!("0 updates stored, {stored} already there")),
        "{report}"
    );

    stack.stop().await;
    let stack = Stack::start_in(restored, pulse_local::stack::StoreKind::Sqlite).await;
    assert_eq!(
        all_figures(&stack).await,
        original,
        "the restored store answers every route as the original"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_and_import_work_on_dynamodb_too() {
    let stack = Stack::start().await;
    let mut traffic = pulse_local::simulate::Traffic::new(5, 10, 0.2);
    for _ in 0..40 {
        assert_eq!(stack.deliver(&traffic.next(Utc::now()).body).await.0, 200);
    }
    let folder = stack.data_dir.path();
    let from_sqlite = folder.join("sqlite.ndjson");
    assert!(
        pulse(&["export", "-o", from_sqlite.to_str().unwrap()], folder)
            .status
            .success()
    );

    // Into a fresh table on moto, and out of it again: the same lines.
    let table = unique_name("events");
    pulse_shared::store::dynamodb::create_tables(
        &moto_client(),
        &table,
        &unique_name("connections"),
    )
    .await
    .unwrap();
    let on_moto = |args: &[&str]| {
        std::process::Command::new(pulse_binary())
            .args(args)
            .args(["--store", "dynamodb", "--data-dir"])
            .arg(folder)
            .env("EVENTS_TABLE", &table)
            .env("AWS_ENDPOINT_URL", moto_endpoint())
            .output()
            .unwrap()
    };
    let imported = on_moto(&["import", from_sqlite.to_str().unwrap()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let from_dynamodb = folder.join("dynamodb.ndjson");
    let exported = on_moto(&["export", "-o", from_dynamodb.to_str().unwrap()]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let lines = |path: &std::path::Path| {
        let mut lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let sqlite_lines = lines(&from_sqlite);
    assert!(sqlite_lines.len() > 20, "{}", sqlite_lines.len());
    assert_eq!(
        lines(&from_dynamodb),
        sqlite_lines,
        "DynamoDB gives back what it was given"
    );
    // An import is how a DynamoDB table gets the funnel of what it held
    // (docs/funnel.md): the new table's funnel is the original's.
    let imported = pulse_shared::store::dynamodb::DynamoStore::new(moto_client(), &table, 90);
    let funnel = pulse_shared::metrics::funnel(&imported, chrono_tz::UTC, 90, Utc::now())
        .await
        .unwrap();
    assert!(funnel.stages.sent > 0);
    assert_eq!(
        serde_json::to_value(&funnel).unwrap(),
        stack.data("/api/webhook/funnel?days=90").await
    );
    stack.stop().await;
}
