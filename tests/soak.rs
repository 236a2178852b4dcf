//! A minute of steady traffic on the `pulse` binary with dashboards connected:
//! no errors, every dashboard gets every new event, and memory stays flat.
//! Latency and memory are printed every 10 s (figures, not assertions on time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use pulse_local::simulate::Traffic;
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use pulse_tests::*;
use serde_json::Value;

/// Webhooks a second, and for how long.
const RATE: u64 = 100;
const DURATION: Duration = Duration::from_secs(60);

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minute_of_steady_traffic_with_dashboards_connected() {
    let data_dir = tempfile::tempdir().unwrap();
    let (port, ws_port) = (free_port(), free_port());
    let mut pulse = spawn_pulse(data_dir.path(), port, ws_port).await;
    let settings = pulse_local::stack::read_env_file(&data_dir.path().join("local.env"));
    let (secret, token) = (
        settings["WHATSAPP_APP_SECRET"].clone(),
        settings["DASHBOARD_TOKEN"].clone(),
    );

    // Three dashboards that read everything, counting the events they get.
    let received = Arc::new(AtomicU64::new(0));
    let mut dashboards = Vec::new();
    for _ in 0..3 {
        let mut client = ws_connect(&format!("ws://127.0.0.1:{ws_port}/local?token={token}"))
            .await
            .unwrap();
        let received = Arc::clone(&received);
        dashboards.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = client.next().await {
                if let WsMessage::Text(text) = frame {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    received.fetch_add(
                        message["events"].as_array().map_or(0, |e| e.len() as u64),
                        Ordering::Relaxed,
                    );
                }
            }
        }));
    }

    let client = reqwest::Client::new();
    let mut traffic = Traffic::new(11, 50, 0.1);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (stored, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut window_start = 0;
    let mut memory = Vec::new();
    let mut requests = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / RATE));
    for n in 0..RATE * DURATION.as_secs() {
        ticker.tick().await;
        let delivery = traffic.next(Utc::now());
        let (client, timings, stored, errors) = (
            client.clone(),
            Arc::clone(&latencies),
            Arc::clone(&stored),
            Arc::clone(&errors),
        );
        let signature = sign(secret.as_bytes(), &delivery.body);
        requests.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = client
                .post(format!("http://127.0.0.1:{port}/webhook"))
                .header(SIGNATURE_HEADER, signature)
                .body(delivery.body.to_vec())
                .send()
                .await;
            let took = sent.elapsed();
            match answer {
                Ok(response) if response.status() == 200 => {
                    let answer: Value = response.json().await.unwrap();
                    stored.fetch_add(
                        answer["data"]["stored"].as_u64().unwrap(),
                        Ordering::Relaxed,
                    );
                    timings.lock().unwrap().push((n, took));
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if (n + 1) % (RATE * 10) == 0 {
            let rss = resident_kib(pulse.id());
            memory.push(rss);
            let mut window: Vec<Duration> = latencies
                .lock()
                .unwrap()
                .iter()
                .filter(|(i, _)| *i >= window_start)
                .map(|(_, t)| *t)
                .collect();
            window.sort();
            window_start = n + 1;
            if !window.is_empty() {
                println!(
                    "{:>3.0} s: {} webhooks, p50 {:?}, p99 {:?}, max {:?}; pulse RSS {} MiB; dashboards got {} events",
                    started.elapsed().as_secs_f64(),
                    window.len(),
                    percentile(&window, 0.5),
                    percentile(&window, 0.99),
                    window.last().unwrap(),
                    rss / 1024,
                    received.load(Ordering::Relaxed)
                );
            }
        }
    }
    for request in requests {
        request.await.unwrap();
    }
    let stored = stored.load(Ordering::Relaxed);
    assert_eq!(errors.load(Ordering::Relaxed), 0, "no webhook failed");
    // Every dashboard gets every newly stored event (duplicates are not sent).
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < 3 * stored && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        received.load(Ordering::Relaxed),
        3 * stored,
        "each of 3 dashboards got each of {stored} events"
    );
    // Flat: after the first 10 s (caches and pools warm), memory does not keep growing.
    let (first, last) = (memory[0], *memory.last().unwrap());
    println!(
        "memory: {:?} MiB",
        memory.iter().map(|k| k / 1024).collect::<Vec<_>>()
    );
    assert!(
        last <= first + first / 2 + 16 * 1024,
        "memory grew from {first} KiB to {last} KiB"
    );
    let _ = pulse.kill();
    let _ = pulse.wait();
    for dashboard in dashboards {
        dashboard.abort();
    }
}
