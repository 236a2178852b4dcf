//! Pulse when what it depends on fails: a wrapper that fails a share of the
//! store's calls at random (before a write, after it, or half way through a
//! delivery), DynamoDB made unreachable or stalled behind a loopback proxy, and a
//! Management API whose posts fail, hang or find the connection gone. Every
//! webhook is answered 2xx with all of its events stored, or 5xx; once the sender
//! has retried every 5xx, the figures are exactly those of a run without faults.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use pulse_shared::config::{MetricsConfig, WebhookConfig};
use pulse_shared::counters::{DayCounter, SlotCounters};
use pulse_shared::event::{Event, ReceivedEvent};
use pulse_shared::handlers::broadcast::{Broadcaster, PostError, Push, POST_TIMEOUT};
use pulse_shared::handlers::{MetricsHandler, WebhookHandler};
use pulse_shared::ingest::{ContactState, Outcome};
use pulse_shared::store::dynamodb::{create_tables, timeouts, DynamoStore};
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::{
    Connection, ConnectionStore, ContactPosition, EventPage, EventQuery, Store, StoreError,
};
use pulse_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

// ---------------------------------------------------------------- a failing store

/// Fails a share of the calls: reads before they run; a delivery before it is
/// written, after all of it is (the answer is lost), or after only its first part.
struct FaultyStore {
    inner: Arc<dyn Store>,
    share: f64,
    rng: Mutex<StdRng>,
    injected: Mutex<HashMap<&'static str, u64>>,
}

impl FaultyStore {
    fn new(inner: Arc<dyn Store>, share: f64, seed: u64) -> Self {
        Self {
            inner,
            share,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            injected: Mutex::default(),
        }
    }

    /// `Some(kind)` when this call fails. Each kind fails once before any is left
    /// to chance, so that a short run still meets every kind.
    fn roll(&self, kinds: &[&'static str]) -> Option<&'static str> {
        let mut rng = self.rng.lock().unwrap();
        let mut injected = self.injected.lock().unwrap();
        let kind = match kinds.iter().find(|k| !injected.contains_key(*k)) {
            Some(&untried) => untried,
            None if rng.random_bool(self.share) => kinds[rng.random_range(0..kinds.len())],
            None => return None,
        };
        *injected.entry(kind).or_default() += 1;
        Some(kind)
    }

    fn injected(&self, kind: &str) -> u64 {
        self.injected
            .lock()
            .unwrap()
            .get(kind)
            .copied()
            .unwrap_or(0)
    }
}

fn injected(kind: &str) -> StoreError {
    StoreError::unavailable(format!("injected fault: {kind}"))
}

#[async_trait]
impl Store for FaultyStore {
    async fn record(
        &self,
        events: &[ReceivedEvent],
        retention: u32,
    ) -> Result<Vec<Outcome>, StoreError> {
        match self.roll(&["before the write", "after the write", "half way"]) {
            None => self.inner.record(events, retention).await,
            Some("before the write") => Err(injected("before the write")),
            Some("after the write") => {
                self.inner.record(events, retention).await?;
                Err(injected("after the write"))
            }
            Some(kind) => {
                self.inner
                    .record(&events[..events.len() / 2], retention)
                    .await?;
                Err(injected(kind))
            }
        }
    }

    async fn quarter_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        quarters_of: Option<&str>,
    ) -> Result<Vec<DayCounter>, StoreError> {
        match self.roll(&["read"]) {
            Some(kind) => Err(injected(kind)),
            None => self.inner.quarter_counters(from, to, quarters_of).await,
        }
    }

    async fn minute_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        match self.roll(&["read"]) {
            Some(kind) => Err(injected(kind)),
            None => self.inner.minute_counters(from, to).await,
        }
    }

    async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        match self.roll(&["read"]) {
            Some(kind) => Err(injected(kind)),
            None => self.inner.events(query).await,
        }
    }

    async fn event(&self, id: &str) -> Result<Option<(Event, String)>, StoreError> {
        self.inner.event(id).await
    }

    async fn contacts(
        &self,
        limit: usize,
        after: Option<&ContactPosition>,
    ) -> Result<Vec<ContactState>, StoreError> {
        match self.roll(&["read"]) {
            Some(kind) => Err(injected(kind)),
            None => self.inner.contacts(limit, after).await,
        }
    }

    async fn contact(&self, wa_id: &str) -> Result<Option<ContactState>, StoreError> {
        match self.roll(&["read"]) {
            Some(kind) => Err(injected(kind)),
            None => self.inner.contact(wa_id).await,
        }
    }

    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        match self.roll(&["read"]) {
            Some(kind) => Err(injected(kind)),
            None => self.inner.active_contacts(since).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

// ---------------------------------------------------------------- traffic

/// Deliveries of 1–8 updates: clicks, texts from several contacts, and statuses of
/// the business's replies in shuffled order; a fifth are re-sent.
fn traffic(rng: &mut StdRng, count: usize) -> Vec<Arc<Vec<u8>>> {
    let now = Utc::now();
    // Enough contacts that none passes the 64 entries of its response-time
    // timeline: beyond them, an update older than the kept window is not timed
    // (docs/reliability.md), so arrival order would matter.
    let contacts: Vec<String> = (0..40).map(|n| format!("9198000000{n:02}")).collect();
    let mut made: Vec<Arc<Vec<u8>>> = Vec::new();
    for n in 0..count {
        if n > 0 && rng.random_bool(0.2) {
            made.push(Arc::clone(&made[rng.random_range(0..made.len())]));
            continue;
        }
        let from = contacts[rng.random_range(0..contacts.len())].as_str();
        let mut messages = Vec::new();
        let mut statuses = Vec::new();
        for k in 0..rng.random_range(1..=8) {
            let id = format!("wamid.F{n}x{k}");
            let at = now - chrono::Duration::seconds(rng.random_range(0..3_600));
            match rng.random_range(0..3) {
                0 => messages.push(click(
                    &id,
                    from,
                    at,
                    ["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"][k % 3],
                )),
                1 => messages.push(text(&id, from, at, "hello")),
                _ => {
                    // A reply goes to one contact, and a status of it is one
                    // moment: Meta re-sends it as it was, never with another time.
                    let reply: i64 = rng.random_range(0..10);
                    let outbound = format!("wamid.OUT{from}x{reply}");
                    let step = rng.random_range(0..4);
                    let state = ["sent", "delivered", "read", "failed"][step];
                    let at = now - chrono::Duration::seconds(300 * reply + 10 * step as i64);
                    statuses.push(status(&outbound, state, at, from));
                }
            }
        }
        made.push(Arc::new(envelope(messages, statuses)));
    }
    made
}

/// Posts every delivery, 8 at a time, retrying each 5xx as Meta does; every answer
/// must be 200 (with every update received) or 5xx. Returns how many 5xx there were.
async fn deliver_with_retries(webhook: &WebhookHandler, deliveries: &[Arc<Vec<u8>>]) -> u64 {
    let failures = AtomicU64::new(0);
    for chunk in deliveries.chunks(8) {
        join_all(chunk.iter().map(|body| async {
            for _ in 0..100 {
                let response = webhook.handle(signed_post(body)).await;
                let status = response.status().as_u16();
                let answer = answer_json(&response);
                if status == 200 {
                    let data = &answer["data"];
                    let (received, stored, duplicates) = (
                        data["received"].as_u64(),
                        data["stored"].as_u64(),
                        data["duplicates"].as_u64(),
                    );
                    assert_eq!(
                        Some(received.unwrap()),
                        stored.zip(duplicates).map(|(s, d)| s + d),
                        "{answer}"
                    );
                    return;
                }
                assert!(
                    status >= 500,
                    "a store failure is a 5xx, got {status}: {answer}"
                );
                failures.fetch_add(1, Ordering::Relaxed);
            }
            panic!("a delivery kept failing");
        }))
        .await;
    }
    failures.into_inner()
}

/// What the dashboard's routes say (without the request's own timestamps).
async fn figures(metrics: &MetricsHandler) -> Value {
    let mut all = serde_json::Map::new();
    for (name, path, query) in [
        ("metrics", "/api/webhook/metrics", vec![("days", "7")]),
        (
            "conversations",
            "/api/webhook/conversations",
            vec![("limit", "200")],
        ),
        (
            "recent",
            "/api/webhook/events/recent",
            vec![("limit", "200")],
        ),
    ] {
        let response = metrics.handle(authorized_get(path, &query)).await;
        assert_eq!(response.status(), 200, "{path}: {}", answer_json(&response));
        let mut data = answer_json(&response)["data"].take();
        // When Pulse received each event differs between two runs; all else is the same.
        for event in data["events"].as_array_mut().into_iter().flatten() {
            event.as_object_mut().unwrap().remove("received_at");
        }
        all.insert(name.into(), data);
    }
    Value::Object(all)
}

/// Every stored event's id, through the store's pages.
async fn all_event_ids(store: &dyn Store) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    let mut before = None;
    loop {
        let page = store
            .events(&EventQuery {
                before,
                limit: 200,
                ..Default::default()
            })
            .await
            .unwrap();
        ids.extend(page.events.into_iter().map(|e| e.id));
        match page.next {
            Some(next) => before = Some(next),
            None => return ids,
        }
    }
}

async fn figures_after_faults(
    store: Arc<dyn Store>,
    control: Arc<dyn Store>,
    deliveries: usize,
    seed: u64,
) {
    let traffic = traffic(&mut StdRng::seed_from_u64(seed), deliveries);
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&store), 0.3, seed));
    let webhook = WebhookHandler::new(
        WebhookConfig::from_source(&HANDLER_SETTINGS).unwrap(),
        faulty.clone(),
        90,
    );
    let failures = deliver_with_retries(&webhook, &traffic).await;
    for kind in ["before the write", "after the write", "half way"] {
        assert!(faulty.injected(kind) > 0, "faults injected {kind}");
    }
    println!("{failures} answers were 5xx and retried");

    let clean = WebhookHandler::new(
        WebhookConfig::from_source(&HANDLER_SETTINGS).unwrap(),
        Arc::clone(&control),
        90,
    );
    assert_eq!(deliver_with_retries(&clean, &traffic).await, 0);
    let config = || MetricsConfig::from_source(&HANDLER_SETTINGS).unwrap();
    let expected = figures(&MetricsHandler::new(
        config(),
        Arc::clone(&control),
        no_alerts(),
    ))
    .await;
    assert!(
        expected["metrics"]["button_clicks"]["total"]
            .as_i64()
            .unwrap()
            > 0
    );
    let (stored, control_stored) = (all_event_ids(&*store).await, all_event_ids(&*control).await);
    assert_eq!(
        stored
            .symmetric_difference(&control_stored)
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the same events as without faults ({} and {})",
        stored.len(),
        control_stored.len()
    );
    let got = figures(&MetricsHandler::new(config(), store, no_alerts())).await;
    for route in ["metrics", "conversations", "recent"] {
        assert!(
            got[route] == expected[route],
            "{route}: not the figures of a run without faults:\n{}\n{}",
            got[route],
            expected[route]
        );
    }

    // Reads that fail are 503, never other figures.
    let flaky = MetricsHandler::new(config(), faulty.clone(), no_alerts());
    let mut failed = 0;
    for _ in 0..200 {
        if failed == 3 {
            break;
        }
        let response = flaky
            .handle(authorized_get("/api/webhook/metrics", &[("days", "7")]))
            .await;
        match response.status().as_u16() {
            200 => {
                let data = answer_json(&response)["data"].take();
                for (key, value) in data.as_object().unwrap() {
                    assert_eq!(value, &expected["metrics"][key], "{key}");
                }
            }
            503 => failed += 1,
            other => panic!("a failed read answered {other}"),
        }
    }
    assert!(
        failed > 0 && faulty.injected("read") > 0,
        "no read failed: {failed} answered 503, {} reads failed",
        faulty.injected("read")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_faults_on_sqlite_end_exact_once_every_5xx_is_retried() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(folder.path().join("faulty.db")).unwrap());
    let control = Arc::new(SqliteStore::open(folder.path().join("control.db")).unwrap());
    figures_after_faults(store, control, 400, test_seed()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_faults_on_dynamodb_end_exact_once_every_5xx_is_retried() {
    // moto serves every request one at a time: fewer deliveries, the same mix.
    figures_after_faults(
        dynamodb_store().await,
        dynamodb_store().await,
        60,
        test_seed(),
    )
    .await;
}

// ---------------------------------------------------------------- DynamoDB unreachable

const PASS: u8 = 0;
const REFUSE: u8 = 1;
const STALL: u8 = 2;

/// A TCP proxy on loopback in front of moto that passes, refuses (accepts and
/// drops) or stalls (accepts and never answers) connections; switching cuts the
/// connections it holds, as a network failure would.
struct Proxy {
    url: String,
    mode: Arc<AtomicU8>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(PASS));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (accept_mode, accept_open) = (Arc::clone(&mode), Arc::clone(&open));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mode = accept_mode.load(Ordering::SeqCst);
                let target = target.clone();
                let task = tokio::spawn(async move {
                    match mode {
                        PASS => {
                            if let Ok(mut upstream) = TcpStream::connect(&target).await {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            }
                        }
                        REFUSE => drop(client),
                        _ => {
                            tokio::time::sleep(Duration::from_secs(3_600)).await;
                            drop(client);
                        }
                    }
                });
                accept_open.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { url, mode, open }
    }

    fn switch(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_unreachable_or_stalled_is_503_and_degraded_then_recovers_by_itself() {
    let moto = moto_endpoint();
    let proxy = Proxy::start(moto.trim_start_matches("http://").to_owned()).await;
    let (table, connections) = (unique_name("events"), unique_name("connections"));
    create_tables(&moto_client(), &table, &connections)
        .await
        .unwrap();
    // The client the functions build (`DynamoStore::client_from_env`), through the proxy.
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&proxy.url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .timeout_config(timeouts())
        .build();
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        table,
        90,
    ));
    let webhook = WebhookHandler::new(
        WebhookConfig::from_source(&HANDLER_SETTINGS).unwrap(),
        Arc::clone(&store),
        90,
    );
    let metrics = MetricsHandler::new(
        MetricsConfig::from_source(&HANDLER_SETTINGS).unwrap(),
        Arc::clone(&store),
        no_alerts(),
    );
    let health = || async { metrics.handle(authorized_get("/health", &[])).await };
    let body = envelope(
        vec![click(
            "wamid.outage",
            CUSTOMER,
            Utc::now(),
            "UNLOCK_CONTENT",
        )],
        vec![],
    );

    assert_eq!(answer_json(&health().await)["status"], "healthy");
    for (mode, name) in [(REFUSE, "refused"), (STALL, "stalled")] {
        proxy.switch(mode);
        let started = Instant::now();
        let response = health().await;
        assert_eq!(response.status(), 503, "{name}: {}", answer_json(&response));
        assert_eq!(answer_json(&response)["status"], "degraded");
        assert_eq!(
            webhook.handle(signed_post(&body)).await.status(),
            503,
            "{name}: the webhook says so, Meta retries"
        );
        let took = started.elapsed();
        println!("DynamoDB {name}: health and webhook answered 503 in {took:?}");
        assert!(
            took < Duration::from_secs(20),
            "{name}: answers come within the timeouts, not the Lambda's"
        );
    }
    proxy.switch(PASS);
    let response = health().await;
    assert_eq!(
        answer_json(&response)["status"],
        "healthy",
        "recovers by itself"
    );
    let response = webhook.handle(signed_post(&body)).await;
    assert_eq!(response.status(), 200, "{}", answer_json(&response));
    assert_eq!(
        answer_json(&response)["data"]["stored"],
        1,
        "the retry stores what the outage refused"
    );
    assert_eq!(
        answer_json(&webhook.handle(signed_post(&body)).await)["data"]["duplicates"],
        1
    );
}

// ---------------------------------------------------------------- broadcast faults

/// A Management API whose connections behave as told by their id: `ok-…` take
/// every post, `flaky-…` fail each message's first two attempts (throttling),
/// `broken-…` always fail, `hung-…` never answer, `gone-…` are gone (410).
#[derive(Default)]
struct FickleApi {
    received: Mutex<HashMap<String, Vec<String>>>,
    attempts: Mutex<HashMap<(String, Vec<u8>), u32>>,
}

#[async_trait]
impl Push for FickleApi {
    async fn post(&self, connection_id: &str, message: Vec<u8>) -> Result<(), PostError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let count = attempts
                .entry((connection_id.to_owned(), message.clone()))
                .or_default();
            *count += 1;
            *count
        };
        let kind = connection_id.split('-').next().unwrap();
        match kind {
            "hung" => std::future::pending().await,
            "gone" => Err(PostError::Gone),
            "broken" => Err(PostError::Failed("500 Internal Server Error".into())),
            "flaky" if attempt <= 2 => Err(PostError::Failed("429 Too Many Requests".into())),
            _ => {
                let message: Value = serde_json::from_slice(&message).unwrap();
                let ids = message["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_owned());
                self.received
                    .lock()
                    .unwrap()
                    .entry(connection_id.to_owned())
                    .or_default()
                    .extend(ids);
                Ok(())
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broadcast_survives_failing_hanging_and_gone_connections() {
    let folder = tempfile::tempdir().unwrap();
    let connections = Arc::new(SqliteStore::open(folder.path().join("pulse.db")).unwrap());
    let now = Utc::now();
    let kinds = [
        ("ok", 60),
        ("flaky", 30),
        ("broken", 5),
        ("hung", 40),
        ("gone", 10),
    ];
    for (kind, count) in kinds {
        for n in 0..count {
            let connection = Connection {
                id: format!("{kind}-{n}"),
                connected_at: now,
                expires_at: now + chrono::Duration::hours(2),
                types: None,
            };
            connections.add(&connection).await.unwrap();
        }
    }
    let api = Arc::new(FickleApi::default());
    let broadcaster = Broadcaster::new(connections.clone(), api.clone());
    let body = envelope(
        (0..5)
            .map(|n| text(&format!("wamid.b{n}"), CUSTOMER, now, "hello"))
            .collect(),
        vec![],
    );
    let sent: Vec<String> = events(&body).into_iter().map(|e| e.event.id).collect();

    let started = Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        broadcaster.send(events(&body).into_iter().map(|e| e.event).collect()),
    )
    .await
    .expect("hanging posts do not hang the broadcast");
    let took = started.elapsed();
    println!("broadcast to 145 connections, 40 of them hanging: {took:?}, {report:?}");
    // 40 hanging connections hold 32 slots for one timeout each, then the rest.
    assert!(
        took < POST_TIMEOUT * 4,
        "hanging posts are given up: {took:?}"
    );
    assert_eq!((report.gone, report.failed), (10, 45), "{report:?}");

    let received = api.received.lock().unwrap().clone();
    for (kind, count) in [("ok", 60), ("flaky", 30)] {
        for n in 0..count {
            let id = format!("{kind}-{n}");
            assert_eq!(
                received.get(&id),
                Some(&sent),
                "{id} got every event, once, in order"
            );
        }
    }
    let left = connections
        .connections(None, 500, Utc::now())
        .await
        .unwrap()
        .connections;
    assert_eq!(left.len(), 135, "the gone ones are deleted, and only those");
    assert!(left.iter().all(|c| !c.id.starts_with("gone-")));
}

/// The alerts, unreadable (the store down, or CloudWatch refusing): the route
/// says so, and `/health` still answers with the store's state.
#[tokio::test]
async fn unreadable_alerts_are_a_503_that_says_so_and_health_still_answers() {
    struct Unreadable;
    #[async_trait]
    impl pulse_shared::alerts::AlertSource for Unreadable {
        async fn alerts(&self) -> Result<pulse_shared::alerts::Alerts, StoreError> {
            Err(StoreError::Unavailable(Arc::new(std::io::Error::other(
                "AccessDenied: cloudwatch:DescribeAlarms",
            ))))
        }
    }
    let (store, _folder) = sqlite_store();
    let metrics = MetricsHandler::new(
        MetricsConfig::from_source(&HANDLER_SETTINGS).unwrap(),
        store,
        Arc::new(Unreadable),
    );
    let response = metrics
        .handle(authorized_get("/api/webhook/alerts", &[]))
        .await;
    assert_eq!(response.status(), 503);
    let body = answer_json(&response);
    assert_eq!(body["error"]["code"], "alerts_unavailable", "{body}");
    let health = metrics.handle(authorized_get("/health", &[])).await;
    assert_eq!(health.status(), 200);
    let health = answer_json(&health);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["alerts"], serde_json::json!([]));
}
