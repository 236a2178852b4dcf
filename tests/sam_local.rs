//! The template under SAM's own emulator, as infra/test/sam_local.sh sets it up
//! (`make test` runs it; never skipped: without it the test fails). The
//! functions run as `template.yaml` declares them: `bootstrap` on
//! provided.al2023, arm64 (under qemu on an x86_64 machine), with only the
//! variables the template declares, set from `events/sam-local.env.json`.
//!
//! `sam local start-api` must give the answers `pulse serve` gives, on the
//! same requests, each against tables of its own on moto; the WebSocket and
//! stream functions, which `sam local start-api` cannot serve, answer their
//! sample events under `sam local invoke`.

use std::process::Command;

use chrono::{Duration, Utc};
use pulse_local::stack::StoreKind;
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use pulse_shared::store::dynamodb::create_tables;
use pulse_tests::*;
use serde_json::Value;

const VERIFY_TOKEN: &str = "sample-verify-token";
const DASHBOARD_TOKEN: &str = "sample-dashboard-token-0123456789";
const CONTACT_KEY_SECRET: &str = "sample-contact-key-secret-0123456789abcdef";

/// What infra/test/sam_local.sh set up.
fn setting(name: &str) -> String {
    from_test_command(name, "starts `sam local` (infra/test/sam_local.sh)")
}

/// One of the two APIs under comparison.
struct Api {
    base: String,
    http: reqwest::Client,
}

/// An answer: status, content type and body, with what differs from one
/// request to the next taken out.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    content_type: String,
    body: Body,
}

#[derive(Debug, PartialEq)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.bytes().await.unwrap().to_vec();
        let body = match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut json) if content_type.starts_with("application/json") => {
                steady(&mut json);
                Body::Json(json)
            }
            _ => Body::Bytes(bytes),
        };
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn answer(&self, request: &Request<'_>) -> Answer {
        let request = match *request {
            Request::Get(path, token) => {
                let get = self.http.get(format!("{}{path}", self.base));
                match token {
                    true => get.bearer_auth(DASHBOARD_TOKEN),
                    false => get,
                }
            }
            Request::Deliver(body, secret) => self
                .http
                .post(format!("{}/webhook", self.base))
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, sign(secret, body))
                .body(body.to_vec()),
        };
        self.send(request).await
    }
}

/// A request both APIs are sent.
enum Request<'a> {
    /// A path, with the dashboard token or without.
    Get(&'a str, bool),
    /// A webhook body, signed with this secret.
    Deliver(&'a [u8], &'a [u8]),
}

/// Takes out the fields that differ between two answers to the same request:
/// the time of the answer, when an event was received, how long the store took.
fn steady(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for volatile in ["timestamp", "generated_at", "latency_ms", "received_at"] {
                map.remove(volatile);
            }
            map.values_mut().for_each(steady);
        }
        Value::Array(items) => items.iter_mut().for_each(steady),
        _ => {}
    }
}

/// `pulse serve` on moto, with the sample secrets SAM's functions get.
async fn pulse_serve() -> Stack {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = format!(
        "AWS_ENDPOINT_URL={}\nEVENTS_TABLE={}\nCONNECTIONS_TABLE={}\n\
         WHATSAPP_APP_SECRET={SAMPLE_APP_SECRET}\nWHATSAPP_VERIFY_TOKEN={VERIFY_TOKEN}\n\
         DASHBOARD_TOKEN={DASHBOARD_TOKEN}\nCONTACT_KEY_SECRET={CONTACT_KEY_SECRET}\n",
        moto_endpoint(),
        unique_name("events"),
        unique_name("connections")
    );
    std::fs::write(data_dir.path().join("local.env"), settings).unwrap();
    Stack::start_in(data_dir, StoreKind::Dynamodb).await
}

#[tokio::test]
async fn sam_local_runs_the_template_as_pulse_serve_does() {
    create_tables(
        &moto_client(),
        &setting("PULSE_TEST_SAM_EVENTS_TABLE"),
        &setting("PULSE_TEST_SAM_CONNECTIONS_TABLE"),
    )
    .await
    .unwrap();
    the_http_api_answers_as_pulse_serve_does().await;
    the_websocket_and_stream_functions_answer().await;
}

/// `sam local start-api` against `pulse serve`, request by request.
async fn the_http_api_answers_as_pulse_serve_does() {
    let stack = pulse_serve().await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let sam = Api {
        base: setting("PULSE_TEST_SAM_API"),
        http: http.clone(),
    };
    let local = Api {
        base: stack.url(""),
        http,
    };

    // A click on a message we sent, its statuses, and a status of the next one.
    let now = Utc::now() - Duration::minutes(5);
    let body = envelope(
        vec![click_on(
            "wamid.SAM1",
            CUSTOMER,
            now,
            "UNLOCK_CONTENT",
            "wamid.OUT1",
        )],
        vec![
            priced(
                status("wamid.OUT1", "read", now - Duration::minutes(2), CUSTOMER),
                "marketing",
                None,
            ),
            priced(
                status(
                    "wamid.OUT2",
                    "delivered",
                    now + Duration::seconds(30),
                    CUSTOMER,
                ),
                "marketing",
                None,
            ),
        ],
    );
    let handshake = format!(
        "/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    );
    let requests = [
        ("the handshake", Request::Get(&handshake, false)),
        (
            "a handshake with the wrong token",
            Request::Get(
                "/webhook?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
                false,
            ),
        ),
        (
            "a signed webhook",
            Request::Deliver(&body, SAMPLE_APP_SECRET.as_bytes()),
        ),
        (
            "its duplicate",
            Request::Deliver(&body, SAMPLE_APP_SECRET.as_bytes()),
        ),
        (
            "a webhook with a bad signature",
            Request::Deliver(&body, b"another secret"),
        ),
        (
            "the metrics",
            Request::Get("/api/webhook/metrics?days=7", true),
        ),
        (
            "the funnel",
            Request::Get("/api/webhook/funnel?days=7", true),
        ),
        (
            "the recent events",
            Request::Get("/api/webhook/events/recent", true),
        ),
        (
            "the conversations",
            Request::Get("/api/webhook/conversations", true),
        ),
        (
            "the metrics without the token",
            Request::Get("/api/webhook/metrics?days=7", false),
        ),
        ("the dashboard page", Request::Get("/", false)),
    ];
    for (what, request) in &requests {
        let from_sam = sam.answer(request).await;
        let from_pulse_serve = local.answer(request).await;
        assert_eq!(
            from_sam, from_pulse_serve,
            "{what}: sam local, then pulse serve"
        );
    }

    // Not only the same, but right: what was stored is there.
    let data = stack.data("/api/webhook/metrics?days=7").await;
    assert_eq!(data["button_clicks"]["total"], 1, "{data}");
    let (_, events) = stack.get("/api/webhook/events/recent").await;
    assert_eq!(
        events["data"]["events"].as_array().unwrap().len(),
        3,
        "{events}"
    );
}

/// `sam local invoke` of a function with `events/<path>`; its answer.
fn invoke(function: &str, path: &str) -> Value {
    let event = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(path);
    let output = Command::new("sam")
        .args([
            "local",
            "invoke",
            function,
            "--skip-pull-image",
            "--region",
            "us-east-1",
        ])
        .arg("--template")
        .arg(setting("PULSE_TEST_SAM_TEMPLATE"))
        .arg("--env-vars")
        .arg(setting("PULSE_TEST_SAM_ENV_VARS"))
        .arg("--event")
        .arg(&event)
        .output()
        .unwrap_or_else(|e| panic!("sam local invoke {function}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{function} {path}: {stdout}\n{stderr}"
    );
    let answer = stdout.lines().rev().find(|line| line.starts_with('{'));
    serde_json::from_str(answer.unwrap_or_default())
        .unwrap_or_else(|e| panic!("{function} {path}: {e}: {stdout}\n{stderr}"))
}

/// The functions `sam local start-api` cannot serve, under `sam local invoke`.
async fn the_websocket_and_stream_functions_answer() {
    let connect = "WsConnectFunction";
    assert_eq!(
        invoke(connect, "ws-connect/connect-without-token.json")["statusCode"],
        401
    );
    assert_eq!(
        invoke(connect, "ws-connect/connect.json")["statusCode"],
        200
    );
    let default = "WsDefaultFunction";
    assert_eq!(
        answer_body(&invoke(default, "ws-default/ping.json"))["type"],
        "pong"
    );
    assert_eq!(
        answer_body(&invoke(default, "ws-default/subscribe.json"))["type"],
        "subscribed"
    );
    assert_eq!(
        answer_body(&invoke(default, "ws-default/malformed.json"))["type"],
        "error"
    );

    // The stream batch's one new event goes to the connection made above.
    let before = posts_to(SAMPLE_CONNECTION).await;
    let answer = invoke("BroadcastFunction", "broadcast/stream-batch.json");
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{answer}"
    );
    let after = posts_to(SAMPLE_CONNECTION).await;
    let posted = last_post(&after[before.len()..]);
    assert_eq!(posted["events"][0]["button_id"], "UNLOCK_CONTENT");

    assert_eq!(
        invoke("WsDisconnectFunction", "ws-disconnect/disconnect.json")["statusCode"],
        200
    );
}
