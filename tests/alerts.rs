//! Alerts end to end on the local stack, with short windows: each rule fires
//! once and resolves once, the transition reaches a receiver on loopback
//! (later, when it was down), survives a restart without a second
//! notification, and intake never waits for it.

use std::time::Duration;

use chrono::Utc;
use pulse_local::stack::StoreKind;
use pulse_tests::*;
use serde_json::Value;

/// A valid delivery: one text message, new each time.
fn a_message() -> Vec<u8> {
    let id = format!("wamid.alert-{}", rand::random::<u64>());
    envelope(vec![text(&id, CUSTOMER, Utc::now(), "hello")], vec![])
}

/// POSTs `count` deliveries with a wrong signature, each refused.
async fn refuse(stack: &Stack, count: usize) {
    for _ in 0..count {
        let (status, body) = stack.post_webhook(a_message(), Some("sha256=0000")).await;
        assert_eq!(status, 401, "{body}");
    }
}

/// Polls `/api/webhook/alerts` until `done` holds (up to `seconds`); its data.
async fn alerts_until(stack: &Stack, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
    let mut alerts = Value::Null;
    for _ in 0..seconds * 10 {
        alerts = stack.data("/api/webhook/alerts").await;
        if done(&alerts) {
            return alerts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the alerts never got there: {alerts:#}");
}

fn active_rules(alerts: &Value) -> Vec<&str> {
    alerts["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect()
}

fn notification_state(transition: &Value) -> &str {
    transition["notification"]["state"]
        .as_str()
        .unwrap_or("none")
}

#[tokio::test]
async fn refusals_notify_once_survive_a_restart_and_a_valid_delivery_resolves_them() {
    let receiver = Receiver::start().await;
    let settings = format!(
        "ALERT_CHECK_SECONDS=1\nALERT_REFUSED_COUNT=3\nALERT_WEBHOOK_URL={}\n",
        receiver.url
    );
    let stack = Stack::start_with(&settings).await;
    refuse(&stack, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        receiver.received().is_empty(),
        "2 refusals are under the threshold"
    );
    refuse(&stack, 1).await;

    let got = receiver.wait_for(1, 10).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let fired = &got[0];
    assert_eq!(
        (fired["rule"].as_str(), fired["state"].as_str()),
        (Some("refused"), Some("firing"))
    );
    assert_eq!(fired["figures"]["refused"], 3);
    let text = fired["text"].as_str().unwrap();
    assert!(
        text.contains("refused") && text.contains("WHATSAPP_APP_SECRET"),
        "{text}"
    );

    let alerts = alerts_until(&stack, 10, |a| {
        a["active"][0]["notification"]["state"] == "sent"
    })
    .await;
    assert_eq!(active_rules(&alerts), ["refused"]);
    assert_eq!(alerts["recent"].as_array().unwrap().len(), 1);
    let (status, health) = stack.get("/health").await;
    assert_eq!(status, 200, "an alert is news, not an outage");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["alerts"], serde_json::json!(["refused"]));

    // Restarted while it fires, with Meta still refused: nothing new.
    let stack = Stack::start_in(stack.stop().await, StoreKind::Sqlite).await;
    refuse(&stack, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "a restart notifies nothing twice"
    );
    assert_eq!(
        active_rules(&stack.data("/api/webhook/alerts").await),
        ["refused"]
    );

    // The secret works again: one resolve, which keeps when it fired.
    let (status, body) = stack.deliver(&a_message()).await;
    assert_eq!(status, 200, "{body}");
    let got = receiver.wait_for(2, 10).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        (got[1]["rule"].as_str(), got[1]["state"].as_str()),
        (Some("refused"), Some("resolved"))
    );
    assert_eq!(got[1]["since"], fired["since"]);
    let alerts = alerts_until(&stack, 10, |a| {
        a["recent"][0]["state"] == "resolved" && notification_state(&a["recent"][0]) == "sent"
    })
    .await;
    assert!(active_rules(&alerts).is_empty());
    let (_, health) = stack.get("/health").await;
    assert_eq!(health["status"], "healthy");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 2, "it resolves once");
}

#[tokio::test]
async fn silence_fires_once_a_webhook_has_come_and_none_since() {
    let stack = Stack::start_with("ALERT_CHECK_SECONDS=1\nALERT_SILENCE_MINUTES=1\n").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        active_rules(&stack.data("/api/webhook/alerts").await).is_empty(),
        "a new install is not an outage"
    );
    let (status, body) = stack.deliver(&a_message()).await;
    assert_eq!(status, 200, "{body}");
    let alerts = alerts_until(&stack, 75, |a| !active_rules(a).is_empty()).await;
    assert_eq!(active_rules(&alerts), ["silence"]);
    let message = alerts["active"][0]["message"].as_str().unwrap();
    assert!(message.contains("callback URL"), "{message}");
    assert_eq!(
        notification_state(&alerts["active"][0]),
        "none",
        "no URL, no notification"
    );
    let (status, _) = stack.deliver(&a_message()).await;
    assert_eq!(status, 200);
    let alerts = alerts_until(&stack, 10, |a| active_rules(a).is_empty()).await;
    assert_eq!(alerts["recent"][0]["state"], "resolved");
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_notification_once_it_is_up() {
    let addr = Receiver::free_addr();
    let settings = format!(
        "ALERT_CHECK_SECONDS=1\nALERT_REFUSED_COUNT=1\nALERT_WEBHOOK_URL=http://{addr}/hook\n"
    );
    let stack = Stack::start_with(&settings).await;
    refuse(&stack, 1).await;
    let alerts = alerts_until(&stack, 10, |a| {
        a["active"][0]["notification"]["attempts"].as_u64() >= Some(1)
    })
    .await;
    let notification = &alerts["active"][0]["notification"];
    assert_eq!(notification["state"], "pending", "{notification}");
    assert!(
        notification["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{notification}"
    );

    let receiver = Receiver::start_at(addr).await;
    // The retries wait 5 s, then 10 s.
    let got = receiver.wait_for(1, 20).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["rule"], "refused");
    alerts_until(&stack, 10, |a| {
        notification_state(&a["active"][0]) == "sent"
    })
    .await;
}

#[tokio::test]
async fn intake_never_waits_for_a_notification() {
    // A receiver that takes the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            connections.push(socket);
        }
    });
    let settings = format!(
        "ALERT_CHECK_SECONDS=1\nALERT_REFUSED_COUNT=1\nALERT_WEBHOOK_URL=http://{addr}/hook\n"
    );
    let stack = Stack::start_with(&settings).await;
    refuse(&stack, 1).await;
    alerts_until(&stack, 10, |a| !active_rules(a).is_empty()).await;
    // The notification hangs now; deliveries are answered all the same.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..10 {
        let body = a_message();
        let signature =
            pulse_shared::signature::sign(stack.setting("WHATSAPP_APP_SECRET").as_bytes(), &body);
        let response = client
            .post(stack.url("/webhook"))
            .header("content-type", "application/json")
            .header(pulse_shared::signature::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .expect("answered while the notification hangs");
        assert_eq!(response.status(), 200);
    }
    held.abort();
}

#[tokio::test]
async fn pulse_alert_test_posts_a_test_notification_and_says_what_came_back() {
    let receiver = Receiver::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let run = |data_dir: &std::path::Path| {
        std::process::Command::new(pulse_binary())
            .args(["alert", "test", "--data-dir"])
            .arg(data_dir)
            .env_remove("ALERT_WEBHOOK_URL")
            .output()
            .unwrap()
    };
    let unset = run(data_dir.path());
    assert!(!unset.status.success());
    assert!(String::from_utf8_lossy(&unset.stderr).contains("ALERT_WEBHOOK_URL is not set"));

    std::fs::write(
        data_dir.path().join("local.env"),
        format!("ALERT_WEBHOOK_URL={}\n", receiver.url),
    )
    .unwrap();
    let output = tokio::task::spawn_blocking({
        let path = data_dir.path().to_owned();
        move || run(&path)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Sent") && stdout.contains("HTTP 200"),
        "{stdout}"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["test"], true);
    assert!(got[0]["text"]
        .as_str()
        .unwrap()
        .contains("test notification"));

    // A receiver that is not there: a clear failure, and no path of the URL shown.
    let addr = Receiver::free_addr();
    std::fs::write(
        data_dir.path().join("local.env"),
        format!("ALERT_WEBHOOK_URL=http://{addr}/services/T0/secret-path\n"),
    )
    .unwrap();
    let down = run(data_dir.path());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(!down.status.success());
    assert!(stderr.contains("could not be reached"), "{stderr}");
    assert!(!stderr.contains("secret-path"), "{stderr}");
}

#[tokio::test]
async fn failing_sends_fire_with_their_top_codes_and_need_ten_outbound() {
    let stack = Stack::start_with("ALERT_CHECK_SECONDS=1\nALERT_FAILURE_RATE=0.3\n").await;
    let now = Utc::now();
    let send = |n: usize, state: &str, error: Option<(i64, &str)>| {
        let statuses = (0..n)
            .map(|i| {
                let id = format!("wamid.{state}-{i}-{}", rand::random::<u32>());
                priced(
                    status(&id, state, now, &format!("9110000{i:05}")),
                    "marketing",
                    error,
                )
            })
            .collect();
        envelope(vec![], statuses)
    };
    // 3 of 6 failed: a half, but under 10 outbound messages.
    for body in [
        send(3, "sent", None),
        send(3, "failed", Some((131_049, "Message failed to send"))),
    ] {
        let (status, answer) = stack.deliver(&body).await;
        assert_eq!(status, 200, "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(active_rules(&stack.data("/api/webhook/alerts").await).is_empty());
    // 4 more sent, 1 more failed with another code: 4 of 11.
    for body in [
        send(4, "sent", None),
        send(1, "failed", Some((131_026, "Message undeliverable"))),
    ] {
        let (status, answer) = stack.deliver(&body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let alerts = alerts_until(&stack, 10, |a| !active_rules(a).is_empty()).await;
    assert_eq!(active_rules(&alerts), ["failures"]);
    let fired = &alerts["active"][0];
    assert_eq!(
        (
            fired["figures"]["outbound"].as_i64(),
            fired["figures"]["failed"].as_i64()
        ),
        (Some(11), Some(4))
    );
    let message = fired["message"].as_str().unwrap();
    assert!(message.contains("131049 (3), 131026 (1)"), "{message}");
}
