//! Every sample Lambda event in `events/<function>/` is read the way the Lambda
//! runtime reads it and handled by that function's handler, with the settings the
//! README gives for them (`WHATSAPP_APP_SECRET=sample-app-secret`, …).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::event::dynamodb;
use lambda_http::Body;
use pulse_shared::config::{MetricsConfig, WebhookConfig};
use pulse_shared::handlers::broadcast::{Broadcaster, PostError, Push};
use pulse_shared::handlers::websocket::WebSocketHandler;
use pulse_shared::handlers::{MetricsHandler, WebhookHandler};
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::ConnectionStore;
use pulse_tests::{no_alerts, sample_event, SAMPLE_APP_SECRET};
use serde_json::Value;

const SETTINGS: [(&str, &str); 4] = [
    ("WHATSAPP_APP_SECRET", SAMPLE_APP_SECRET),
    ("WHATSAPP_VERIFY_TOKEN", "sample-verify-token"),
    ("DASHBOARD_TOKEN", "sample-dashboard-token-0123456789"),
    (
        "CONTACT_KEY_SECRET",
        "sample-contact-key-secret-0123456789abcdef",
    ),
];

fn sample(path: &str) -> String {
    String::from_utf8(sample_event(path)).unwrap()
}

fn http_event(path: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&sample(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ws_event(path: &str) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_str(&sample(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn http_body(response: &lambda_http::Response<Body>) -> String {
    match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    }
}

fn ws_reply(response: &ApiGatewayProxyResponse) -> Value {
    match &response.body {
        Some(LambdaBody::Text(text)) => serde_json::from_str(text).unwrap(),
        other => panic!("no reply: {other:?}"),
    }
}

/// What the broadcast function posted, by connection.
#[derive(Default)]
struct Posted(Mutex<Vec<(String, Value)>>);

#[async_trait]
impl Push for Posted {
    async fn post(&self, connection_id: &str, message: Vec<u8>) -> Result<(), PostError> {
        let message = serde_json::from_slice(&message).unwrap();
        self.0
            .lock()
            .unwrap()
            .push((connection_id.to_owned(), message));
        Ok(())
    }
}

#[tokio::test]
async fn every_sample_event_is_handled_as_documented() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(folder.path().join("pulse.db")).unwrap());
    let webhook = WebhookHandler::new(
        WebhookConfig::from_source(&SETTINGS).unwrap(),
        store.clone(),
        90,
    );
    let metrics = MetricsHandler::new(
        MetricsConfig::from_source(&SETTINGS).unwrap(),
        store.clone(),
        no_alerts(),
    );
    let websocket = WebSocketHandler::new(store.clone()).with_dashboard_token(SETTINGS[2].1.into());

    // webhook
    let verified = webhook.handle(http_event("webhook/verify.json")).await;
    assert_eq!(verified.status(), 200);
    assert_eq!(http_body(&verified), "1158201444");
    let refused = webhook
        .handle(http_event("webhook/deliver-bad-signature.json"))
        .await;
    assert_eq!(refused.status(), 401);
    let delivered = webhook.handle(http_event("webhook/deliver.json")).await;
    assert_eq!(delivered.status(), 200, "{}", http_body(&delivered));
    let summary: Value = serde_json::from_str(&http_body(&delivered)).unwrap();
    assert_eq!(summary["data"]["stored"], 1);
    let again = webhook.handle(http_event("webhook/deliver.json")).await;
    let summary: Value = serde_json::from_str(&http_body(&again)).unwrap();
    assert_eq!(summary["data"]["duplicates"], 1);

    // metrics
    for file in [
        "metrics/health.json",
        "metrics/metrics.json",
        "metrics/conversations.json",
        "metrics/realtime.json",
        "metrics/events-recent.json",
    ] {
        let response = metrics.handle(http_event(file)).await;
        assert_eq!(response.status(), 200, "{file}: {}", http_body(&response));
    }
    let recent = metrics
        .handle(http_event("metrics/events-recent.json"))
        .await;
    let recent: Value = serde_json::from_str(&http_body(&recent)).unwrap();
    assert_eq!(recent["data"]["events"][0]["button_id"], "UNLOCK_CONTENT");
    assert_eq!(
        recent["data"]["events"][0]["contact"]["wa_id"],
        "91•••••3210"
    );
    let anonymous = metrics
        .handle(http_event("metrics/metrics-no-token.json"))
        .await;
    assert_eq!(anonymous.status(), 401);

    // WebSocket routes
    let refused = websocket
        .connect(ws_event("ws-connect/connect-without-token.json"))
        .await;
    assert_eq!(refused.status_code, 401);
    assert_eq!(
        websocket
            .connect(ws_event("ws-connect/connect.json"))
            .await
            .status_code,
        200
    );
    let live = || async {
        store
            .connections(None, 10, chrono::Utc::now())
            .await
            .unwrap()
            .connections
    };
    assert_eq!(live().await.len(), 1);
    let pong = websocket.message(ws_event("ws-default/ping.json")).await;
    assert_eq!(ws_reply(&pong)["type"], "pong");
    let subscribed = websocket
        .message(ws_event("ws-default/subscribe.json"))
        .await;
    assert_eq!(ws_reply(&subscribed)["type"], "subscribed");
    let malformed = websocket
        .message(ws_event("ws-default/malformed.json"))
        .await;
    assert_eq!(ws_reply(&malformed)["type"], "error");

    // broadcast: of the INSERT, MODIFY (counter) and REMOVE (TTL) records, only the
    // new event goes out, to the connection subscribed to button clicks.
    let posted = Arc::new(Posted::default());
    let broadcaster = Broadcaster::new(store.clone(), posted.clone());
    let batch: dynamodb::Event =
        serde_json::from_str(&sample("broadcast/stream-batch.json")).unwrap();
    let response = broadcaster.handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    let posted = posted.0.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].0, "Jmx9YcdOPHcCEPg=");
    assert_eq!(posted[0].1["events"].as_array().unwrap().len(), 1);
    assert_eq!(posted[0].1["events"][0]["contact"]["wa_id"], "91•••••3210");

    assert_eq!(
        websocket
            .disconnect(ws_event("ws-disconnect/disconnect.json"))
            .await
            .status_code,
        200
    );
    assert!(live().await.is_empty());
}
