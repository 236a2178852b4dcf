//! Shared helpers of Pulse's integration tests: WhatsApp payload builders, the two
//! stores (SQLite in a temporary folder, DynamoDB on the moto server that
//! `make test` starts), and a local stack driven over real HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use chrono::{DateTime, Utc};
use pulse_local::stack::{LocalStack, Options, StoreKind};
use pulse_shared::config::Source;
use pulse_shared::event::{events_from_body, ReceivedEvent};
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use pulse_shared::store::dynamodb::{create_tables, DynamoConnections, DynamoStore};
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::{AlertLog, ConnectionStore, Store};
use serde_json::{json, Value};

/// A customer's number as the payloads carry it, and as the API must never show it.
pub const CUSTOMER: &str = "919876543210";

// ---------------------------------------------------------------- payloads

/// An inbound text message object.
pub fn text(id: &str, from: &str, at: DateTime<Utc>, body: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": at.timestamp().to_string(), "type": "text", "text": {"body": body}})
}

/// An interactive button click object.
pub fn click(id: &str, from: &str, at: DateTime<Utc>, button: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": at.timestamp().to_string(), "type": "interactive",
           "context": {"from": "15550783881", "id": "wamid.template"},
           "interactive": {"type": "button_reply", "button_reply": {"id": button, "title": format!("{button} title")}}})
}

/// A status object of an outbound message.
pub fn status(id: &str, status: &str, at: DateTime<Utc>, recipient: &str) -> Value {
    json!({"id": id, "status": status, "timestamp": at.timestamp().to_string(), "recipient_id": recipient})
}

/// A click on a button of the message `context`.
pub fn click_on(id: &str, from: &str, at: DateTime<Utc>, button: &str, context: &str) -> Value {
    let mut value = click(id, from, at, button);
    value["context"]["id"] = json!(context);
    value
}

/// A status carrying `pricing.category`, and Meta's error when it is `failed`.
pub fn priced(mut status: Value, category: &str, error: Option<(i64, &str)>) -> Value {
    status["pricing"] = json!({"billable": true, "pricing_model": "PMP", "category": category});
    if let Some((code, title)) = error {
        status["errors"] = json!([{"code": code, "title": title}]);
    }
    status
}

/// Advisors A to D of [`click_to_unlock_scenario`].
pub const ADVISORS: [&str; 4] = [
    "911000000001",
    "911000000002",
    "911000000003",
    "911000000004",
];

/// A Click-to-Unlock history with known figures, one update per delivery, from
/// `base` to two days after it (see `store_contract::funnel_of_a_known_history`):
/// - A reads the day's content (utility), clicks Unlock ten minutes after it was
///   sent, gets the content back a minute later (service, delivered), and clicks
///   Share on it two days later, unanswered;
/// - B reads the content and never clicks, and clicks a message Pulse never saw;
/// - C is sent marketing twice, a day apart, and both fail with 131049;
/// - D's content fails with 131026, with no other status.
pub fn click_to_unlock_scenario(base: DateTime<Utc>) -> Vec<Vec<u8>> {
    let [a, b, c, d] = ADVISORS;
    let m = |minutes: i64| base + chrono::Duration::minutes(minutes);
    let healthy = "This message was not delivered to maintain healthy ecosystem engagement.";
    let statuses = [
        priced(status("wamid.mA", "sent", m(0), a), "utility", None),
        priced(status("wamid.mA", "delivered", m(1), a), "utility", None),
        priced(status("wamid.mA", "read", m(5), a), "utility", None),
        priced(status("wamid.rA", "sent", m(11), a), "service", None),
        priced(status("wamid.rA", "delivered", m(12), a), "service", None),
        priced(status("wamid.mB", "sent", m(0), b), "utility", None),
        priced(status("wamid.mB", "delivered", m(1), b), "utility", None),
        priced(status("wamid.mB", "read", m(30), b), "utility", None),
        priced(status("wamid.mC", "sent", m(0), c), "marketing", None),
        priced(
            status("wamid.mC", "failed", m(1), c),
            "marketing",
            Some((131_049, healthy)),
        ),
        priced(
            status("wamid.mC2", "sent", m(24 * 60), c),
            "marketing",
            None,
        ),
        priced(
            status("wamid.mC2", "failed", m(24 * 60 + 1), c),
            "marketing",
            Some((131_049, healthy)),
        ),
        priced(
            status("wamid.mD", "failed", m(0), d),
            "utility",
            Some((131_026, "Message undeliverable")),
        ),
    ];
    let clicks = [
        click_on("wamid.cA1", a, m(10), "UNLOCK_CONTENT", "wamid.mA"),
        click_on(
            "wamid.cA2",
            a,
            m(2 * 24 * 60),
            "SHARE_WITH_CLIENTS",
            "wamid.mA",
        ),
        click_on("wamid.cB", b, m(20), "UNLOCK_CONTENT", "wamid.unknown"),
    ];
    statuses
        .into_iter()
        .map(|s| envelope(vec![], vec![s]))
        .chain(clicks.into_iter().map(|c| envelope(vec![c], vec![])))
        .collect()
}

/// A webhook body with one `messages` change holding these messages and statuses.
pub fn envelope(messages: Vec<Value>, statuses: Vec<Value>) -> Vec<u8> {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Asha Mehta"}, "wa_id": CUSTOMER}],
    });
    if !messages.is_empty() {
        value["messages"] = json!(messages);
    }
    if !statuses.is_empty() {
        value["statuses"] = json!(statuses);
    }
    serde_json::to_vec(&json!({"object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}))
    .unwrap()
}

/// The events a body yields, received now.
pub fn events(body: &[u8]) -> Vec<ReceivedEvent> {
    events_from_body(body, Utc::now()).expect("test payloads are webhooks")
}

/// Every payload of the conformance corpus (`../shared/whatsapp-payloads`), as
/// (name, bytes); files that hold several named payloads are split into them.
/// Files that are not JSON are returned whole, to be refused.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = std::env::var("PULSE_PAYLOAD_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/whatsapp-payloads")
        });
    assert!(
        root.is_dir(),
        "the payload corpus is not at {} (set PULSE_PAYLOAD_CORPUS)",
        root.display()
    );
    let mut files = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut payloads = Vec::new();
    for path in files {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map))
                if !map.contains_key("entry") && map.values().all(|v| v.get("entry").is_some()) =>
            {
                for (key, payload) in map {
                    payloads.push((
                        format!("{name}#{key}"),
                        serde_json::to_vec(&payload).unwrap(),
                    ));
                }
            }
            _ => payloads.push((name, bytes)),
        }
    }
    payloads
}

/// The app secret the sample events of `events/` are signed with (the README's).
pub const SAMPLE_APP_SECRET: &str = "sample-app-secret";

/// A sample Lambda event, `events/<path>`, as bytes. A signed webhook delivery
/// comes with its WhatsApp times moved to now (as `pulse send` moves them) and
/// signed again, so that reading it back through the time-bounded paths (the
/// event feed, the metrics windows) works on any date the tests run.
pub fn sample_event(path: &str) -> Vec<u8> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(path);
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut event: Value = serde_json::from_slice(&bytes).unwrap();
    let signed = event["headers"]
        .get(SIGNATURE_HEADER)
        .and_then(Value::as_str)
        .is_some_and(|signature| {
            let body = event["body"].as_str().unwrap_or_default().as_bytes();
            signature == sign(SAMPLE_APP_SECRET.as_bytes(), body)
        });
    if !signed {
        return bytes;
    }
    let body = event["body"].as_str().unwrap().as_bytes();
    let body = pulse_local::send::shift_to_now(body, Utc::now().timestamp())
        .expect("a signed sample is a webhook with times");
    event["headers"][SIGNATURE_HEADER] = json!(sign(SAMPLE_APP_SECRET.as_bytes(), &body));
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(String::from_utf8(body).unwrap());
    serde_json::to_vec(&event).unwrap()
}

/// The paths of the data routes: every operation behind the dashboard token.
pub fn data_paths() -> Vec<&'static str> {
    pulse_shared::routes::Operation::ALL
        .into_iter()
        .map(|operation| operation.spec())
        .filter(|spec| spec.token)
        .map(|spec| spec.path)
        .collect()
}

// ---------------------------------------------------------------- stores

/// A fresh SQLite file in its own temporary folder (kept alive by the guard).
fn fresh_sqlite() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    (Arc::new(store), folder)
}

/// A fresh SQLite store (kept alive by the guard).
pub fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let (store, folder) = fresh_sqlite();
    (store, folder)
}

/// The WebSocket connection of `events/ws-connect/connect.json`.
pub const SAMPLE_CONNECTION: &str = "Jmx9YcdOPHcCEPg=";

/// What moto's stand-in for the Management API holds for a connection: every
/// post to it, one JSON value after another.
pub async fn posts_to(connection_id: &str) -> String {
    reqwest::get(format!("{}/_pulse/posts/{connection_id}", moto_endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The last of a run of posts (see [`posts_to`]).
pub fn last_post(posts: &str) -> Value {
    serde_json::Deserializer::from_str(posts)
        .into_iter::<Value>()
        .last()
        .unwrap_or_else(|| panic!("nothing posted: {posts:?}"))
        .unwrap()
}

/// The JSON body of a Lambda function's HTTP answer (`Value::Null` if none).
pub fn answer_body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// A variable the test command sets for what it started (`started`, e.g.
/// "starts moto"). Never skipped: without it the test fails, saying why.
pub fn from_test_command(name: &str, started: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which {started}")
    })
}

/// The moto server `make test` started.
pub fn moto_endpoint() -> String {
    from_test_command("PULSE_TEST_DYNAMODB_ENDPOINT", "starts moto")
}

pub fn moto_client() -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A unique table name, so tests sharing one moto never see each other's data.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A fresh events table on moto, with its own connections table.
async fn fresh_dynamodb() -> Arc<DynamoStore> {
    let client = moto_client();
    let table = unique_name("events");
    create_tables(&client, &table, &unique_name("connections"))
        .await
        .unwrap();
    Arc::new(DynamoStore::new(client, table, 90))
}

/// A fresh DynamoDB store on moto, with its own tables.
pub async fn dynamodb_store() -> Arc<dyn Store> {
    fresh_dynamodb().await
}

/// A fresh connections table in SQLite (kept alive by the guard).
pub fn sqlite_connections() -> (Arc<dyn ConnectionStore>, tempfile::TempDir) {
    let (store, folder) = fresh_sqlite();
    (store, folder)
}

/// A fresh connections table on moto.
pub async fn dynamodb_connections() -> Arc<dyn ConnectionStore> {
    let client = moto_client();
    let connections = unique_name("connections");
    create_tables(&client, &unique_name("events"), &connections)
        .await
        .unwrap();
    Arc::new(DynamoConnections::new(client, connections))
}

/// A fresh alert log in SQLite (kept alive by the guard).
/// An alert source with no alert, for the handler tests that are about
/// something else (the alerts' own tests use a store's log).
pub fn no_alerts() -> Arc<dyn pulse_shared::alerts::AlertSource> {
    struct NoAlerts;
    #[async_trait::async_trait]
    impl pulse_shared::alerts::AlertSource for NoAlerts {
        async fn alerts(
            &self,
        ) -> Result<pulse_shared::alerts::Alerts, pulse_shared::store::StoreError> {
            Ok(Default::default())
        }
    }
    Arc::new(NoAlerts)
}

pub fn sqlite_alerts() -> (Arc<dyn AlertLog>, tempfile::TempDir) {
    let (store, folder) = fresh_sqlite();
    (store, folder)
}

/// A fresh alert log on moto.
pub async fn dynamodb_alerts() -> Arc<dyn AlertLog> {
    fresh_dynamodb().await
}

// ---------------------------------------------------------------- local stack

/// A local stack on a free port with its own data folder, and an HTTP client.
pub struct Stack {
    pub stack: LocalStack,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), StoreKind::Sqlite).await
    }

    pub async fn start_in(data_dir: tempfile::TempDir, store: StoreKind) -> Self {
        let options = Options {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            ws_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            store,
            create_tables: true,
        };
        let stack = LocalStack::start(options)
            .await
            .expect("the local stack starts");
        Self {
            stack,
            data_dir,
            http: reqwest::Client::new(),
        }
    }

    /// A stack in `--store dynamodb` mode on moto, with tables of its own.
    pub async fn start_on_moto() -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let settings = format!(
            "AWS_ENDPOINT_URL={}\nEVENTS_TABLE={}\nCONNECTIONS_TABLE={}\n",
            moto_endpoint(),
            unique_name("events"),
            unique_name("connections")
        );
        std::fs::write(data_dir.path().join("local.env"), settings).unwrap();
        Self::start_in(data_dir, StoreKind::Dynamodb).await
    }

    /// A stack on the embedded store with these lines in its `local.env`
    /// (settings such as `ALERT_CHECK_SECONDS=1`).
    pub async fn start_with(settings: &str) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        std::fs::write(data_dir.path().join("local.env"), settings).unwrap();
        Self::start_in(data_dir, StoreKind::Sqlite).await
    }

    /// Stops the stack and hands back its data folder, for a restart.
    pub async fn stop(self) -> tempfile::TempDir {
        self.stack.stop().await.unwrap();
        self.data_dir
    }

    pub fn setting(&self, name: &str) -> String {
        self.stack.settings.get(name).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.stack.url(path)
    }

    /// The WebSocket URL with the dashboard token, or with `token` instead.
    pub fn ws_url(&self, token: Option<&str>) -> String {
        let token = token.map_or_else(|| self.setting("DASHBOARD_TOKEN"), str::to_owned);
        format!("{}?token={token}", self.stack.ws_url())
    }

    /// POSTs a body signed with the stack's app secret.
    pub async fn deliver(&self, body: &[u8]) -> (u16, Value) {
        let signature = sign(self.setting("WHATSAPP_APP_SECRET").as_bytes(), body);
        self.post_webhook(body.to_vec(), Some(&signature)).await
    }

    pub async fn post_webhook(&self, body: Vec<u8>, signature: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs a metrics route with the dashboard token; returns status and body.
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path_and_query))
            .bearer_auth(self.setting("DASHBOARD_TOKEN"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `data` of a metrics route that must succeed.
    pub async fn data(&self, path_and_query: &str) -> Value {
        let (status, body) = self.get(path_and_query).await;
        assert_eq!(status, 200, "{path_and_query}: {body}");
        assert_eq!(body["success"], true);
        body["data"].clone()
    }
}

// ---------------------------------------------------------------- alert receivers

/// An incoming webhook on loopback, as Slack's would be: it keeps every JSON
/// body posted to it.
pub struct Receiver {
    pub url: String,
    received: Arc<std::sync::Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver on a free port.
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// A receiver at `addr` (a port a receiver had before: "down, then up").
    pub async fn start_at(addr: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let kept = Arc::clone(&kept);
                async move {
                    kept.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            received,
            server,
        }
    }

    /// A free loopback address with nothing listening on it (yet).
    pub fn free_addr() -> std::net::SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to `seconds` for `count` bodies; returns what came.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<Value> {
        for _ in 0..seconds * 10 {
            if self.received().len() >= count {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ---------------------------------------------------------------- WebSocket clients

pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
pub use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

pub async fn ws_connect(url: &str) -> Result<WsClient, WsError> {
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
}

/// The HTTP status of a refused WebSocket handshake.
pub fn refusal_status(error: &WsError) -> Option<u16> {
    match error {
        WsError::Http(response) => Some(response.status().as_u16()),
        _ => None,
    }
}

/// Sends a JSON message and returns the next reply that is not a broadcast.
pub async fn ws_request(client: &mut WsClient, message: &str) -> Value {
    use futures::{SinkExt, StreamExt};
    client.send(WsMessage::text(message)).await.unwrap();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), client.next())
            .await
            .expect("a reply within 5 s")
            .expect("the connection stays open")
            .unwrap();
        if let WsMessage::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "events" {
                return value;
            }
        }
    }
}

/// Whether the server closes the connection within 5 s.
pub async fn closed(client: &mut WsClient) -> bool {
    use futures::StreamExt;
    let ends = async {
        loop {
            match client.next().await {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), ends)
        .await
        .is_ok()
}

/// A dashboard reading live events in the background.
pub struct Dashboard {
    /// Every event received, in order of receipt.
    pub events: Arc<std::sync::Mutex<Vec<Value>>>,
    /// Messages that were not `{"type":"events"}` or not JSON.
    pub other: Arc<std::sync::Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Dashboard {
    pub fn listen(client: WsClient) -> Self {
        use futures::StreamExt;
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let other = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (events_seen, other_seen) = (Arc::clone(&events), Arc::clone(&other));
        let reader = tokio::spawn(async move {
            let mut client = client;
            while let Some(Ok(frame)) = client.next().await {
                let WsMessage::Text(text) = frame else {
                    continue;
                };
                match serde_json::from_str::<Value>(&text) {
                    Ok(value) if value["type"] == "events" => events_seen
                        .lock()
                        .unwrap()
                        .extend(value["events"].as_array().cloned().unwrap_or_default()),
                    _ => other_seen.lock().unwrap().push(text.to_string()),
                }
            }
        });
        Self {
            events,
            other,
            reader,
        }
    }

    /// Ids of the events received so far, in order.
    pub fn ids(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `count` events have arrived (or 10 s went by).
    pub async fn wait_for(&self, count: usize) {
        for _ in 0..500 {
            if self.events.lock().unwrap().len() >= count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Drops the connection without a close handshake, as a vanishing client does.
    pub fn vanish(self) {
        self.reader.abort();
    }
}

/// The JSON answer of a request (whatever its status).
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

// ---------------------------------------------------------------- handlers, without a server

/// The settings of tests that drive the handlers directly.
pub const HANDLER_SECRET: &str = "handler-test-app-secret";
pub const HANDLER_TOKEN: &str = "handler-test-dashboard-token";
pub const HANDLER_SETTINGS: [(&str, &str); 4] = [
    ("WHATSAPP_APP_SECRET", HANDLER_SECRET),
    ("WHATSAPP_VERIFY_TOKEN", "handler-test-verify-token"),
    ("DASHBOARD_TOKEN", HANDLER_TOKEN),
    (
        "CONTACT_KEY_SECRET",
        "handler-test-contact-key-secret-0123456789",
    ),
];

/// A webhook POST signed with [`HANDLER_SECRET`], as the webhook function gets it.
pub fn signed_post(body: &[u8]) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("https://pulse.example.com/webhook")
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(HANDLER_SECRET.as_bytes(), body))
        .body(lambda_http::Body::Binary(body.to_vec()))
        .unwrap()
}

/// A GET with [`HANDLER_TOKEN`] and these query parameters.
pub fn authorized_get(path: &str, query: &[(&str, &str)]) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let query: std::collections::HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    http::Request::builder()
        .uri(format!("https://pulse.example.com{path}"))
        .header("authorization", format!("Bearer {HANDLER_TOKEN}"))
        .body(lambda_http::Body::Empty)
        .unwrap()
        .with_query_string_parameters(query)
}

/// A handler's JSON answer (`null` when there is none).
pub fn answer_json(response: &lambda_http::Response<lambda_http::Body>) -> Value {
    match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// The seed of a randomised test: `PULSE_TEST_SEED`, or a new one; printed, so
/// that a failure can be replayed.
pub fn test_seed() -> u64 {
    let seed = std::env::var("PULSE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (PULSE_TEST_SEED={seed} replays it)");
    seed
}

// ---------------------------------------------------------------- the binary

/// The `pulse` binary, built beside this test by `cargo build --workspace --bins`
/// (which `make test` runs first).
pub fn pulse_binary() -> PathBuf {
    workspace_binary("pulse")
}

/// A binary of the workspace, built beside this test like [`pulse_binary`].
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `make test`, or `cargo build --workspace --bins` first",
        binary.display()
    );
    binary
}

pub fn free_port() -> u16 {
    pulse_local::bench::free_port().expect("a free loopback port")
}

pub async fn spawn_pulse(
    data_dir: &std::path::Path,
    port: u16,
    ws_port: u16,
) -> std::process::Child {
    let child = std::process::Command::new(pulse_binary())
        .args(["serve", "--http-port", &port.to_string()])
        .args(["--ws-port", &ws_port.to_string(), "--data-dir"])
        .arg(data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("pulse did not start on port {port}");
}
