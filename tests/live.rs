//! Live updates end to end: real WebSocket clients against the local stack while
//! signed webhooks are posted, on both stores; and the broadcast function through
//! the AWS SDK against moto's Management API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use pulse_local::stream::new_item_record;
use pulse_shared::handlers::broadcast::{Broadcaster, ManagementApi};
use pulse_shared::store::dynamodb::{event_item, DynamoConnections};
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::{Connection, ConnectionStore};
use pulse_tests::*;
use serde_json::{json, Value};

/// How often each id occurs.
fn tally(ids: Vec<String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Ids of the events the stack stored, by type, from the events API.
async fn stored_ids(stack: &Stack, event_type: Option<&str>) -> Vec<String> {
    let filter = event_type.map(|t| format!("&type={t}")).unwrap_or_default();
    let recent = stack
        .data(&format!("/api/webhook/events/recent?limit=200{filter}"))
        .await;
    recent["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn connect_all(stack: &Stack, count: usize) -> Vec<WsClient> {
    let mut clients = Vec::new();
    for _ in 0..count {
        clients.push(ws_connect(&stack.ws_url(None)).await.expect("connects"));
    }
    clients
}

async fn subscribe(client: &mut WsClient, types: &[&str]) {
    let reply = ws_request(
        client,
        &json!({"type": "subscribe", "types": types}).to_string(),
    )
    .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
}

/// Polls until `done` holds (or 10 s went by); returns whether it did.
async fn eventually(mut done: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscribed_client_gets_every_new_event_exactly_once() {
    let stack = Stack::start().await;

    // Refused: no token, a wrong one, an almost right one.
    let token = stack.setting("DASHBOARD_TOKEN");
    let without = stack.ws_url(None).split('?').next().unwrap().to_owned();
    for url in [
        without,
        stack.ws_url(Some("wrong")),
        stack.ws_url(Some(&token[..token.len() - 1])),
    ] {
        let error = ws_connect(&url).await.expect_err("refused");
        assert_eq!(refusal_status(&error), Some(401), "{url}");
    }

    let mut everything = connect_all(&stack, 3).await;
    let mut clicks_only = connect_all(&stack, 2).await;
    let vanishing = connect_all(&stack, 2).await;
    assert_eq!(
        ws_request(&mut everything[0], r#"{"type":"ping"}"#).await,
        json!({"type": "pong"})
    );
    let error = ws_request(&mut everything[0], "hello?").await;
    assert_eq!(error["type"], "error");
    for client in &mut clicks_only {
        subscribe(client, &["button_click"]).await;
    }
    let everything: Vec<Dashboard> = everything.into_iter().map(Dashboard::listen).collect();
    let clicks_only: Vec<Dashboard> = clicks_only.into_iter().map(Dashboard::listen).collect();
    let vanishing: Vec<Dashboard> = vanishing.into_iter().map(Dashboard::listen).collect();
    assert_eq!(stack.stack.websocket_clients(), 7);

    let now = Utc::now();
    let first = envelope(
        vec![
            click("wamid.l1", CUSTOMER, now, "RETRIEVE_CONTENT"),
            click("wamid.l2", "447700900123", now, "UNLOCK_CONTENT"),
            text("wamid.l3", CUSTOMER, now, "hello"),
        ],
        vec![status("wamid.l4", "delivered", now, CUSTOMER)],
    );
    assert_eq!(stack.deliver(&first).await.0, 200);
    for dashboard in &everything {
        dashboard.wait_for(4).await;
    }

    // Two clients vanish without a goodbye; the gateway notices and disconnects them.
    for dashboard in vanishing {
        dashboard.vanish();
    }
    assert!(
        eventually(async || stack.stack.websocket_clients() == 5).await,
        "vanished clients are cleaned up"
    );

    let second = envelope(
        vec![
            click("wamid.l5", CUSTOMER, now, "SHARE_WITH_CLIENTS"),
            text("wamid.l6", "447700900123", now, "thanks"),
        ],
        vec![],
    );
    // Four deliveries of it race each other: each event is broadcast once.
    let racing = futures::future::join_all((0..4).map(|_| stack.deliver(&second))).await;
    assert!(
        racing.iter().all(|(status, _)| *status == 200),
        "{racing:?}"
    );
    // Meta delivers again: stored once already, so nothing is broadcast.
    assert_eq!(stack.deliver(&first).await.1["data"]["duplicates"], 4);
    assert_eq!(stack.deliver(&second).await.1["data"]["duplicates"], 2);
    for dashboard in &everything {
        dashboard.wait_for(6).await;
    }
    for dashboard in &clicks_only {
        dashboard.wait_for(3).await;
    }
    // Give a wrongly repeated broadcast time to show up.
    tokio::time::sleep(StdDuration::from_millis(500)).await;

    let all = stored_ids(&stack, None).await;
    let clicks = stored_ids(&stack, Some("button_click")).await;
    assert_eq!((all.len(), clicks.len()), (6, 3));
    for dashboard in &everything {
        let counts = tally(dashboard.ids());
        assert_eq!(counts.len(), 6, "{counts:?}");
        assert!(
            all.iter().all(|id| counts.get(id) == Some(&1)),
            "{counts:?}"
        );
        assert!(dashboard.other.lock().unwrap().is_empty());
    }
    for dashboard in &clicks_only {
        let counts = tally(dashboard.ids());
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(
            clicks.iter().all(|id| counts.get(id) == Some(&1)),
            "{counts:?}"
        );
    }

    // What arrives is what the events API shows: the same masked JSON.
    let recent = stack.data("/api/webhook/events/recent?limit=200").await;
    let received = everything[0].events.lock().unwrap().clone();
    for event in &received {
        let listed = recent["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == event["id"])
            .unwrap();
        assert_eq!(listed, event);
    }
    let shown = serde_json::to_string(&received).unwrap();
    assert!(!shown.contains(CUSTOMER), "numbers are masked: {shown}");
    assert!(shown.contains("91•••••3210"), "{shown}");

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_that_is_gone_is_deleted_and_no_other() {
    let stack = Stack::start().await;
    let table = SqliteStore::open(stack.data_dir.path().join("pulse.db")).unwrap();
    let live = Dashboard::listen(ws_connect(&stack.ws_url(None)).await.unwrap());
    // A connection the table still lists but API Gateway no longer has: its
    // $disconnect was lost. Posting to it gets 410.
    let now = Utc::now();
    table
        .add(&Connection {
            id: "ghost0000000000=".into(),
            connected_at: now,
            expires_at: now + Duration::hours(2),
            types: None,
        })
        .await
        .unwrap();
    let listed = || async {
        let page = table.connections(None, 100, Utc::now()).await.unwrap();
        page.connections
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(listed().await.len(), 2);

    let body = envelope(vec![text("wamid.g1", CUSTOMER, now, "hi")], vec![]);
    assert_eq!(stack.deliver(&body).await.0, 200);
    live.wait_for(1).await;
    assert_eq!(live.ids().len(), 1);
    assert!(
        eventually(async || !listed().await.iter().any(|id| id.starts_with("ghost"))).await,
        "the gone connection is deleted"
    );
    assert_eq!(listed().await.len(), 1, "the live one stays");

    // The live connection keeps receiving.
    let body = envelope(vec![text("wamid.g2", CUSTOMER, now, "again")], vec![]);
    assert_eq!(stack.deliver(&body).await.0, 200);
    live.wait_for(2).await;
    assert_eq!(live.ids().len(), 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dynamodb_mode_broadcasts_from_the_table_stream() {
    let stack = Stack::start_on_moto().await;
    let everything = Dashboard::listen(ws_connect(&stack.ws_url(None)).await.unwrap());
    let mut statuses = ws_connect(&stack.ws_url(None)).await.unwrap();
    subscribe(&mut statuses, &["status_update"]).await;
    let statuses = Dashboard::listen(statuses);
    // The stream is read from its latest position: let the reader start.
    tokio::time::sleep(StdDuration::from_millis(600)).await;

    let now = Utc::now();
    let body = envelope(
        vec![click("wamid.dl1", CUSTOMER, now, "UNLOCK_CONTENT")],
        vec![
            status("wamid.dl2", "sent", now, CUSTOMER),
            status("wamid.dl2", "read", now, CUSTOMER),
        ],
    );
    assert_eq!(stack.deliver(&body).await.1["data"]["stored"], 3);
    assert_eq!(stack.deliver(&body).await.1["data"]["duplicates"], 3);
    everything.wait_for(3).await;
    statuses.wait_for(2).await;
    tokio::time::sleep(StdDuration::from_millis(800)).await;

    let counts = tally(everything.ids());
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let received = statuses.events.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(received.iter().all(|e| e["type"] == "status_update"));
    stack.stop().await;
}

/// The broadcast function through the real SDK against moto's Management API
/// (served at its root, no stage; moto keeps what was posted, which
/// `moto_serial.py` shows at `/_pulse/posts/{connection id}`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_posts_through_the_sdk_to_moto() {
    let client = moto_client();
    let table = unique_name("connections");
    pulse_shared::store::dynamodb::create_tables(&client, &unique_name("events"), &table)
        .await
        .unwrap();
    let connections = Arc::new(DynamoConnections::new(client, table));
    let now = Utc::now();
    let ids = [unique_name("all"), unique_name("clicks")];
    for (id, types) in ids
        .iter()
        .zip([None, Some(vec!["button_click".to_owned()])])
    {
        connections
            .add(&Connection {
                id: id.clone(),
                connected_at: now,
                expires_at: now + Duration::hours(2),
                types,
            })
            .await
            .unwrap();
    }
    let management = {
        use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_apigatewaymanagement::Client::from_conf(
            aws_sdk_apigatewaymanagement::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(moto_endpoint())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
                .build(),
        )
    };
    let broadcaster = Broadcaster::new(connections, Arc::new(ManagementApi::new(management)));

    let body = envelope(
        vec![
            click("wamid.m1", CUSTOMER, now, "RETRIEVE_CONTENT"),
            text("wamid.m2", CUSTOMER, now, "hi"),
        ],
        vec![],
    );
    let records: Vec<Value> = events(&body)
        .iter()
        .enumerate()
        .map(|(i, event)| {
            new_item_record(
                event_item(event, now + Duration::days(90)),
                &format!("{i:021}"),
            )
        })
        .collect();
    let batch = serde_json::from_value(json!({ "Records": records })).unwrap();
    let report = broadcaster.broadcast(batch).await;
    assert_eq!(
        (
            report.events,
            report.connections,
            report.posted,
            report.failed
        ),
        (2, 2, 2, 0),
        "{report:?}"
    );
    assert!(report.retry.is_empty());

    let posted = |id: &str| {
        let url = format!("{}/_pulse/posts/{id}", moto_endpoint());
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let to_all: Value = serde_json::from_str(&posted(&ids[0]).await).unwrap();
    let to_clicks: Value = serde_json::from_str(&posted(&ids[1]).await).unwrap();
    assert_eq!(to_all["type"], "events");
    assert_eq!(to_all["events"].as_array().unwrap().len(), 2);
    assert_eq!(to_clicks["events"].as_array().unwrap().len(), 1);
    assert_eq!(to_clicks["events"][0]["type"], "button_click");
    assert_eq!(to_clicks["events"][0]["contact"]["wa_id"], "91•••••3210");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_disconnected_and_the_others_get_everything() {
    let stack = Stack::start().await;
    let table = SqliteStore::open(stack.data_dir.path().join("pulse.db")).unwrap();
    let live = Dashboard::listen(ws_connect(&stack.ws_url(None)).await.unwrap());
    // Connected, then never read from: its socket buffers fill, then its queue.
    let stalled = ws_connect(&stack.ws_url(None)).await.unwrap();
    assert!(eventually(async || stack.stack.websocket_clients() == 2).await);

    let now = Utc::now();
    let big = "x".repeat(60_000);
    let mut sent = 0;
    while stack.stack.websocket_clients() == 2 && sent < 2_000 {
        let id = format!("wamid.slow{sent}");
        let body = envelope(vec![text(&id, CUSTOMER, now, &big)], vec![]);
        assert_eq!(stack.deliver(&body).await.0, 200);
        sent += 1;
    }
    assert_eq!(
        stack.stack.websocket_clients(),
        1,
        "the client that does not read is disconnected after {sent} events"
    );
    // `$disconnect` runs after the socket is dropped, so the row goes a moment later.
    assert!(
        eventually(async || {
            let listed = table.connections(None, 10, Utc::now()).await.unwrap();
            listed.connections.len() == 1
        })
        .await,
        "and its connection is forgotten"
    );
    live.wait_for(sent).await;
    assert_eq!(live.ids().len(), sent, "the reading client got every event");
    drop(stalled);
    stack.stop().await;
}
