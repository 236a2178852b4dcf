//! An emulation of the API Gateway WebSocket API in front of the WebSocket
//! handlers, and of its Management API (`/@connections/{id}`).
//!
//! An upgrade becomes the `$connect` event API Gateway would send (refused with the
//! handler's status if it says no), each frame a `$default` event whose answer goes
//! back to the client (the route response), and a close a `$disconnect` event. The
//! events go through `aws_lambda_events`' own deserialiser, as in the Lambda
//! runtime. The Management API answers like API Gateway's, 410 GoneException
//! included, so that the broadcast function runs unchanged through the AWS SDK.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{SinkExt, StreamExt};
use pulse_shared::handlers::broadcast::{PostError, Push, MAX_MESSAGE_BYTES};
use pulse_shared::handlers::websocket::WebSocketHandler;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};

/// The stage name of the local WebSocket API.
pub const STAGE: &str = "local";

/// Messages queued for one client at most. A client that falls this far behind
/// (it stopped reading, or reads slower than events arrive) is disconnected, as
/// a server must, rather than queued for without bound; a dashboard reconnects.
const OUTBOX_CAPACITY: usize = 128;

/// A client connected through the emulated gateway.
struct Socket {
    outbox: mpsc::Sender<Message>,
    /// Told when the client fell behind and must go.
    evicted: Arc<Notify>,
    connected_at: DateTime<Utc>,
    last_active: DateTime<Utc>,
    source_ip: String,
    user_agent: String,
}

/// The WebSocket gateway: the handlers, and the sockets it holds open.
pub struct WebSocketGateway {
    handler: WebSocketHandler,
    sockets: Mutex<HashMap<String, Socket>>,
    /// Set when the stack stops: every socket closes (and so disconnects).
    closing: watch::Receiver<bool>,
}

impl WebSocketGateway {
    pub fn new(handler: WebSocketHandler, closing: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            handler,
            sockets: Mutex::default(),
            closing,
        })
    }

    /// How many clients are connected.
    pub fn connected(&self) -> usize {
        self.sockets.lock().expect("not poisoned").len()
    }

    /// The router of the WebSocket port: upgrades anywhere, and the Management API
    /// at `/@connections/{id}` with or without the stage in front.
    pub fn router(self: &Arc<Self>) -> Router {
        let management = post(post_to_connection)
            .get(get_connection)
            .delete(delete_connection);
        Router::new()
            .route("/@connections/{id}", management.clone())
            .route("/{stage}/@connections/{id}", management)
            .fallback(upgrade)
            .with_state(Arc::clone(self))
    }
}

/// The local stack's live path on the embedded store: the broadcaster puts each
/// message straight into the socket's outbox, as the Management API below does
/// for callers outside the process, without an HTTP round trip per client.
#[async_trait]
impl Push for WebSocketGateway {
    async fn post(&self, connection_id: &str, message: Vec<u8>) -> Result<(), PostError> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(PostError::Failed("message too long".into()));
        }
        let text = String::from_utf8(message).map_err(|e| PostError::Failed(e.into()))?;
        if send(self, connection_id, Message::Text(text.into())) {
            Ok(())
        } else {
            Err(PostError::Gone)
        }
    }
}

/// The event API Gateway sends a WebSocket route's function.
fn route_event(
    route_key: &str,
    connection_id: &str,
    connected_at: DateTime<Utc>,
    headers: Option<&HeaderMap>,
    uri: Option<&Uri>,
    source_ip: &str,
    body: Option<&str>,
) -> ApiGatewayWebsocketProxyRequest {
    let now = Utc::now();
    let event_type = match route_key {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut single = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (name, value) in headers.into_iter().flatten() {
        let value = value.to_str().unwrap_or_default();
        single.insert(name.as_str().to_owned(), json!(value));
        multi
            .entry(name.as_str().to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("built as an array")
            .push(json!(value));
    }
    let mut query = serde_json::Map::new();
    let mut multi_query = serde_json::Map::new();
    let raw_query = uri.and_then(Uri::query).unwrap_or_default();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        query.insert(key.to_string(), json!(value));
        multi_query
            .entry(key.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("built as an array")
            .push(json!(value));
    }
    let user_agent = headers
        .and_then(|h| h.get(header::USER_AGENT))
        .and_then(|v| v.to_str().ok());
    let request_id = format!("{:016x}", rand::random::<u64>());
    let mut event = json!({
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": STAGE,
            "connectedAt": connected_at.timestamp_millis(),
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "requestId": request_id,
            "domainName": "127.0.0.1",
            "connectionId": connection_id,
            "apiId": "local",
        },
        "isBase64Encoded": false,
    });
    if route_key == "$connect" {
        event["headers"] = Value::Object(single);
        event["multiValueHeaders"] = Value::Object(multi);
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
            event["multiValueQueryStringParameters"] = Value::Object(multi_query);
        }
    }
    if route_key == "$default" {
        event["requestContext"]["messageId"] = json!(format!("{:016x}", rand::random::<u64>()));
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    serde_json::from_value(event).expect("the gateway builds valid WebSocket events")
}

/// A fresh connection id, in API Gateway's style (base64 of random bytes).
fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE.encode(rand::random::<[u8; 10]>())
}

async fn upgrade(
    State(gateway): State<Arc<WebSocketGateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return gateway_error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let id = new_connection_id();
    let connected_at = Utc::now();
    let source_ip = peer.ip().to_string();
    // The socket is known before $connect stores it, so that a broadcast finding
    // it in the table never gets 410 for a client still being let in.
    let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
    let evicted = Arc::new(Notify::new());
    gateway.sockets.lock().expect("not poisoned").insert(
        id.clone(),
        Socket {
            outbox,
            evicted: Arc::clone(&evicted),
            connected_at,
            last_active: connected_at,
            source_ip: source_ip.clone(),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        },
    );
    let event = route_event(
        "$connect",
        &id,
        connected_at,
        Some(&headers),
        Some(&uri),
        &source_ip,
        None,
    );
    let answer = gateway.handler.connect(event).await;
    if answer.status_code != 200 {
        gateway.sockets.lock().expect("not poisoned").remove(&id);
        return refusal(answer);
    }
    upgrade
        .on_failed_upgrade({
            let (gateway, id) = (Arc::clone(&gateway), id.clone());
            move |_| {
                tokio::spawn(async move { disconnect(&gateway, &id, connected_at).await });
            }
        })
        .on_upgrade(move |socket| serve_socket(gateway, id, connected_at, socket, inbox, evicted))
}

/// Relays one client's frames to `$default` and posts to the client, until either
/// side closes or the stack stops; then `$disconnect`.
async fn serve_socket(
    gateway: Arc<WebSocketGateway>,
    id: String,
    connected_at: DateTime<Utc>,
    socket: WebSocket,
    mut inbox: mpsc::Receiver<Message>,
    evicted: Arc<Notify>,
) {
    let (mut sink, mut frames) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(message) = inbox.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut closing = gateway.closing.clone();
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            _ = closing.wait_for(|closing| *closing) => {
                send(&gateway, &id, Message::Close(None));
                break;
            }
            _ = evicted.notified() => {
                tracing::warn!(connection_id = id, queued = OUTBOX_CAPACITY, "a client fell behind; disconnected");
                break;
            }
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
        };
        if let Some(socket) = gateway.sockets.lock().expect("not poisoned").get_mut(&id) {
            socket.last_active = Utc::now();
        }
        let event = route_event("$default", &id, connected_at, None, None, "", Some(&text));
        let answer = gateway.handler.message(event).await;
        if let Some(body) = body_text(&answer) {
            send(&gateway, &id, Message::Text(body.into()));
        }
    }
    disconnect(&gateway, &id, connected_at).await;
    // Let what was queued go out (a close included), then stop writing: a client
    // that does not read would hold the writer, and its queue, for ever.
    let abort = writer.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

async fn disconnect(gateway: &WebSocketGateway, id: &str, connected_at: DateTime<Utc>) {
    gateway.sockets.lock().expect("not poisoned").remove(id);
    let event = route_event("$disconnect", id, connected_at, None, None, "", None);
    gateway.handler.disconnect(event).await;
}

/// Queues a message for a client; `false` if it is not connected.
/// Queues a message for a client; `false` when it is gone, or so far behind that
/// it is being disconnected (and so as good as gone).
fn send(gateway: &WebSocketGateway, id: &str, message: Message) -> bool {
    let mut sockets = gateway.sockets.lock().expect("not poisoned");
    let Some(socket) = sockets.get(id) else {
        return false;
    };
    match socket.outbox.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            socket.evicted.notify_one();
            sockets.remove(id);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn body_text(answer: &ApiGatewayProxyResponse) -> Option<String> {
    match &answer.body {
        Some(LambdaBody::Text(text)) if !text.is_empty() => Some(text.clone()),
        Some(LambdaBody::Binary(bytes)) if !bytes.is_empty() => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        _ => None,
    }
}

/// A refused handshake: the `$connect` function's status and body.
fn refusal(answer: ApiGatewayProxyResponse) -> Response {
    let status = u16::try_from(answer.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, body_text(&answer).unwrap_or_default()).into_response()
}

/// An error of API Gateway itself: its JSON shape, and the error type header the
/// AWS SDK reads.
fn gateway_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"message": message}).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    let mut response = gateway_error(StatusCode::GONE, "the connection is gone");
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        header::HeaderValue::from_static("GoneException"),
    );
    response
}

/// The connection id from either route (`/@connections/{id}` or with a stage).
fn connection_id(params: HashMap<String, String>) -> String {
    params.get("id").cloned().unwrap_or_default()
}

async fn post_to_connection(
    State(gateway): State<Arc<WebSocketGateway>>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let id = connection_id(params);
    if body.len() > MAX_MESSAGE_BYTES {
        let mut response = gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "message too long");
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            header::HeaderValue::from_static("PayloadTooLargeException"),
        );
        return response;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if send(&gateway, &id, Message::Text(text.into())) {
        StatusCode::OK.into_response()
    } else {
        gone()
    }
}

async fn get_connection(
    State(gateway): State<Arc<WebSocketGateway>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let id = connection_id(params);
    let sockets = gateway.sockets.lock().expect("not poisoned");
    let Some(socket) = sockets.get(&id) else {
        return gone();
    };
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "ConnectedAt": iso(socket.connected_at),
            "Identity": {"SourceIp": socket.source_ip, "UserAgent": socket.user_agent},
            "LastActiveAt": iso(socket.last_active),
        })
        .to_string(),
    )
        .into_response()
}

async fn delete_connection(
    State(gateway): State<Arc<WebSocketGateway>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    if send(&gateway, &connection_id(params), Message::Close(None)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}
