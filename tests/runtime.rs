//! The built functions under a Lambda runtime emulator (`cargo lambda watch
//! --only-lambda-apis`, started by `make test`): each binary is started as Lambda
//! starts it (`AWS_LAMBDA_RUNTIME_API` and its settings in the environment),
//! invoked with its `events/` files through the Lambda invoke API, against moto.
//! This proves the binaries, the runtime client and the events'
//! (de)serialisation end to end, not just the handlers.

use std::process::{Child, Command, Stdio};

use pulse_shared::store::dynamodb::{create_tables, DynamoStore};
use pulse_shared::store::{page_of_events, EventQuery};
use pulse_tests::*;
use serde_json::Value;

/// The emulator `make test` started.
fn invoke_endpoint() -> String {
    from_test_command("PULSE_TEST_LAMBDA_ENDPOINT", "starts `cargo lambda watch`")
}

/// The functions, started into the emulator; stopped when dropped.
struct Functions(Vec<Child>);

/// Where the webhook function's standard output goes: its log, with the
/// CloudWatch metrics (EMF) lines `infra/deploy/check_template.py` holds
/// the template's alarms to.
fn webhook_log() -> std::path::PathBuf {
    let binaries = std::env::current_exe().unwrap();
    let target = binaries
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap();
    let logs = target.join("test-logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs.join("webhook-emf.jsonl")
}

impl Functions {
    fn start(events_table: &str, connections_table: &str, alert_webhook_url: &str) -> Self {
        let binaries = std::env::current_exe().unwrap();
        let binaries = binaries.parent().unwrap().parent().unwrap();
        let api = invoke_endpoint();
        let functions = [
            "webhook",
            "metrics",
            "dashboard",
            "ws-connect",
            "ws-disconnect",
            "ws-default",
            "broadcast",
            "alert-notify",
        ];
        Self(
            functions
                .iter()
                .map(|function| {
                    let binary = binaries.join(function);
                    assert!(
                        binary.exists(),
                        "{} is missing: run `make test`, or `cargo build --workspace --bins` first",
                        binary.display()
                    );
                    Command::new(binary)
                        .env("AWS_LAMBDA_RUNTIME_API", format!("{api}/.rt/{function}"))
                        .env("AWS_LAMBDA_FUNCTION_NAME", function)
                        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                        .env("AWS_ENDPOINT_URL", moto_endpoint())
                        .env("WEBSOCKET_ENDPOINT", moto_endpoint())
                        .env(
                            "WEBSOCKET_URL",
                            "wss://abc123.execute-api.eu-west-1.amazonaws.com/live",
                        )
                        .env("EVENTS_TABLE", events_table)
                        .env("CONNECTIONS_TABLE", connections_table)
                        .env("WHATSAPP_APP_SECRET", SAMPLE_APP_SECRET)
                        .env("WHATSAPP_VERIFY_TOKEN", "sample-verify-token")
                        .env("DASHBOARD_TOKEN", "sample-dashboard-token-0123456789")
                        .env(
                            "CONTACT_KEY_SECRET",
                            "sample-contact-key-secret-0123456789abcdef",
                        )
                        .env("STACK_NAME", "pulse")
                        .env("ALERT_ALARM_PREFIX", "pulse-")
                        .env("ALERT_WEBHOOK_URL", alert_webhook_url)
                        .env("RUST_LOG", "warn")
                        .stdout(if *function == "webhook" {
                            Stdio::from(std::fs::File::create(webhook_log()).unwrap())
                        } else {
                            Stdio::null()
                        })
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Functions {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Invokes `function` with the sample event `events/<function>/<file>`.
async fn invoke(function: &str, file: &str) -> Value {
    let event = sample_event(&format!("{function}/{file}"));
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        invoke_endpoint()
    );
    let response = reqwest::Client::new()
        .post(url)
        .timeout(std::time::Duration::from_secs(30))
        .body(event)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{function} {file}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{function} {file}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{function} {file}: {e}: {text}"))
}

#[tokio::test]
async fn the_functions_run_under_the_lambda_runtime() {
    let client = moto_client();
    let (events_table, connections_table) = (unique_name("events"), unique_name("connections"));
    create_tables(&client, &events_table, &connections_table)
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let _functions = Functions::start(&events_table, &connections_table, &receiver.url);
    let store = DynamoStore::new(client.clone(), &events_table, 90);

    let verified = invoke("webhook", "verify.json").await;
    assert_eq!(verified["statusCode"], 200);
    assert_eq!(verified["body"], "1158201444");
    let refused = invoke("webhook", "deliver-bad-signature.json").await;
    assert_eq!(refused["statusCode"], 401);
    let delivered = invoke("webhook", "deliver.json").await;
    assert_eq!(delivered["statusCode"], 200, "{delivered}");
    assert_eq!(answer_body(&delivered)["data"]["stored"], 1);
    assert_eq!(
        answer_body(&invoke("webhook", "deliver.json").await)["data"]["duplicates"],
        1
    );
    let stored = page_of_events(
        &store,
        &EventQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(stored.events.len(), 1);
    assert_eq!(stored.events[0].kind.type_name(), "button_click");

    // Each POST's figures are in the log as CloudWatch metrics: refused,
    // stored, then a duplicate.
    let log = std::fs::read_to_string(webhook_log()).unwrap();
    let emf: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("_aws").is_some())
        .collect();
    let figures: Vec<[i64; 4]> = emf
        .iter()
        .map(|line| {
            [
                "WebhooksAccepted",
                "WebhooksRefused",
                "EventsStored",
                "Duplicates",
            ]
            .map(|name| line[name].as_i64().unwrap_or(-1))
        })
        .collect();
    assert_eq!(figures, [[0, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]], "{log}");
    assert_eq!(emf[0]["Stack"], "pulse");

    for file in [
        "health.json",
        "metrics.json",
        "conversations.json",
        "realtime.json",
    ] {
        let response = invoke("metrics", file).await;
        assert_eq!(response["statusCode"], 200, "{file}: {response}");
    }
    let recent = invoke("metrics", "events-recent.json").await;
    assert_eq!(
        answer_body(&recent)["data"]["events"][0]["contact"]["wa_id"],
        "91•••••3210"
    );
    assert_eq!(
        invoke("metrics", "metrics-no-token.json").await["statusCode"],
        401
    );

    // The page goes out brotli-compressed, base64-encoded as API Gateway needs.
    let page = invoke("dashboard", "page.json").await;
    assert_eq!(page["statusCode"], 200, "{page}");
    assert_eq!(page["isBase64Encoded"], true);
    assert_eq!(page["headers"]["content-encoding"], "br");
    assert!(page["headers"]["content-security-policy"]
        .as_str()
        .unwrap()
        .contains("connect-src 'self' wss://abc123.execute-api.eu-west-1.amazonaws.com;"));
    assert_eq!(
        answer_body(&invoke("dashboard", "config.json").await)["websocket_url"],
        "wss://abc123.execute-api.eu-west-1.amazonaws.com/live"
    );

    assert_eq!(
        invoke("ws-connect", "connect-without-token.json").await["statusCode"],
        401
    );
    assert_eq!(
        invoke("ws-connect", "connect.json").await["statusCode"],
        200
    );
    assert_eq!(
        answer_body(&invoke("ws-default", "ping.json").await)["type"],
        "pong"
    );
    assert_eq!(
        answer_body(&invoke("ws-default", "subscribe.json").await)["type"],
        "subscribed"
    );
    assert_eq!(
        answer_body(&invoke("ws-default", "malformed.json").await)["type"],
        "error"
    );

    // broadcast posts to moto's Management API (WEBSOCKET_ENDPOINT is moto's root).
    let answer = invoke("broadcast", "stream-batch.json").await;
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{answer}"
    );
    // moto appends every post to a connection: the last message is this one.
    let posted = last_post(&posts_to(SAMPLE_CONNECTION).await);
    assert_eq!(posted["events"][0]["button_id"], "UNLOCK_CONTENT");

    assert_eq!(
        invoke("ws-disconnect", "disconnect.json").await["statusCode"],
        200
    );
    let left = client
        .scan()
        .table_name(&connections_table)
        .send()
        .await
        .unwrap();
    assert_eq!(left.count(), 0, "the connection is forgotten");

    // An alarm's SNS message reaches ALERT_WEBHOOK_URL as the local stack's
    // notifications do.
    invoke("alert-notify", "alarm.json").await;
    let notices = receiver.wait_for(1, 10).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(
        (notices[0]["rule"].as_str(), notices[0]["state"].as_str()),
        (Some("refused"), Some("firing"))
    );
    assert!(
        notices[0]["text"].as_str().unwrap().contains("app secret"),
        "{}",
        notices[0]
    );
}
