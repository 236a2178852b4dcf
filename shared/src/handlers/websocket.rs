//! The WebSocket API's handlers: `ws-connect` (`$connect`), `ws-disconnect`
//! (`$disconnect`) and `ws-default` (`$default`).
//!
//! They take and return exactly what a Lambda behind an API Gateway WebSocket API
//! gets (`aws_lambda_events`' WebSocket types), so the Lambdas and the local
//! stack run this very code. A `$default` answer is sent back to the client by
//! the route's route response.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use chrono::{Duration, Utc};
use http::{header, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::event::EVENT_TYPES;
use crate::signature::tokens_match;
use crate::store::{Connection, ConnectionStore};
use crate::telemetry::Chain;

/// API Gateway ends a WebSocket connection after two hours at the latest; its
/// record expires then, in case `$disconnect` never comes.
pub const CONNECTION_LIFETIME: Duration = Duration::hours(2);

/// A message a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Ping,
    /// Receive only these event types from now on.
    Subscribe {
        types: Vec<String>,
    },
}

/// A message Pulse sends to a client.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Pong,
    Subscribed { types: Vec<String> },
    Error { message: String },
}

/// The handlers of the three WebSocket routes.
pub struct WebSocketHandler {
    /// Only `$connect` needs it, so only `ws-connect` is given it; without it,
    /// `$connect` refuses everyone.
    dashboard_token: Option<SecretString>,
    connections: Arc<dyn ConnectionStore>,
}

impl WebSocketHandler {
    pub fn new(connections: Arc<dyn ConnectionStore>) -> Self {
        Self {
            dashboard_token: None,
            connections,
        }
    }

    /// The token `$connect` asks of clients (`DASHBOARD_TOKEN`).
    pub fn with_dashboard_token(mut self, token: SecretString) -> Self {
        self.dashboard_token = Some(token);
        self
    }

    /// `$connect`: a dashboard presents its token as `?token=` (browsers cannot set
    /// headers on a WebSocket). Any status but 200 refuses the connection.
    pub async fn connect(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let presented = request
            .query_string_parameters
            .first("token")
            .unwrap_or_default();
        let Some(expected) = &self.dashboard_token else {
            tracing::error!("websocket connection refused: no DASHBOARD_TOKEN configured");
            return response(500, "Internal Server Error");
        };
        if !tokens_match(presented, expected.expose_secret()) {
            tracing::info!("websocket connection refused: missing or wrong token");
            return response(401, "Unauthorized");
        }
        let Some(id) = connection_id(&request) else {
            return response(400, "no connection id");
        };
        let connected_at = Utc::now();
        let connection = Connection {
            id: id.to_owned(),
            connected_at,
            expires_at: connected_at + CONNECTION_LIFETIME,
            types: None,
        };
        match self.connections.add(&connection).await {
            Ok(()) => {
                tracing::info!(connection_id = id, "websocket connected");
                response(200, "")
            }
            Err(error) => {
                tracing::error!(error = %Chain(&error), "storing the connection failed");
                response(500, "Internal Server Error")
            }
        }
    }

    /// `$disconnect`: the client left or API Gateway ended the connection.
    pub async fn disconnect(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let Some(id) = connection_id(&request) else {
            return response(400, "no connection id");
        };
        match self.connections.remove(id).await {
            Ok(()) => {
                tracing::info!(connection_id = id, "websocket disconnected");
                response(200, "")
            }
            Err(error) => {
                // The record expires through TTL, and a broadcast to it gets 410.
                tracing::error!(error = %Chain(&error), connection_id = id, "removing the connection failed");
                response(500, "Internal Server Error")
            }
        }
    }

    /// `$default`: every message of a connected client. Always answers 200 with a
    /// message for the client, errors included, so that nothing a client sends
    /// can fail the function.
    pub async fn message(
        &self,
        request: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let reply = match connection_id(&request) {
            None => error("no connection id"),
            Some(id) => {
                self.reply(id, request.body.as_deref().unwrap_or_default())
                    .await
            }
        };
        response(
            200,
            &serde_json::to_string(&reply).expect("server messages serialise"),
        )
    }

    async fn reply(&self, connection_id: &str, body: &str) -> ServerMessage {
        let message = match serde_json::from_str::<ClientMessage>(body) {
            Ok(message) => message,
            Err(e) => {
                return error(format!(
                    "not a message Pulse understands ({e}); send {{\"type\":\"ping\"}} or \
                     {{\"type\":\"subscribe\",\"types\":[…]}}"
                ))
            }
        };
        match message {
            ClientMessage::Ping => ServerMessage::Pong,
            ClientMessage::Subscribe { types } => {
                let mut types = types;
                types.sort();
                types.dedup();
                if types.is_empty() || types.iter().any(|t| !EVENT_TYPES.contains(&t.as_str())) {
                    return error(format!(
                        "types must list one or more of: {}",
                        EVENT_TYPES.join(", ")
                    ));
                }
                match self.connections.subscribe(connection_id, &types).await {
                    Ok(true) => ServerMessage::Subscribed { types },
                    Ok(false) => error("this connection is not registered; reconnect"),
                    Err(e) => {
                        tracing::error!(error = %Chain(&e), connection_id, "saving a subscription failed");
                        error("the subscription could not be saved; try again")
                    }
                }
            }
        }
    }
}

fn error(message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        message: message.into(),
    }
}

fn connection_id(request: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    request
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
}

fn response(status: i64, body: &str) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    if !body.is_empty() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if body.starts_with('{') {
                "application/json"
            } else {
                "text/plain"
            }),
        );
        response.headers = headers;
        response.body = Some(Body::Text(body.to_owned()));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn request(
        query: &str,
        connection_id: &str,
        body: Option<&str>,
    ) -> ApiGatewayWebsocketProxyRequest {
        serde_json::from_value(serde_json::json!({
            "queryStringParameters": if query.is_empty() { serde_json::Value::Null } else { serde_json::json!({"token": query}) },
            "requestContext": {"connectionId": connection_id, "routeKey": "$default", "eventType": "MESSAGE", "connectedAt": 1, "requestTimeEpoch": 1},
            "body": body,
            "isBase64Encoded": false,
        }))
        .unwrap()
    }

    fn body(response: &ApiGatewayProxyResponse) -> serde_json::Value {
        match &response.body {
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn connect_checks_the_token_then_messages_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("db")).unwrap());
        let unconfigured = WebSocketHandler::new(store.clone());
        assert_eq!(
            unconfigured
                .connect(request("s3cret", "A=", None))
                .await
                .status_code,
            500
        );
        let handler = WebSocketHandler::new(store.clone()).with_dashboard_token("s3cret".into());
        let now = Utc::now();
        let live = || async {
            store
                .connections(None, 10, Utc::now())
                .await
                .unwrap()
                .connections
        };

        for bad in ["", "wrong", "s3cret "] {
            assert_eq!(
                handler.connect(request(bad, "A=", None)).await.status_code,
                401
            );
        }
        assert!(
            live().await.is_empty(),
            "a refused connection is not stored"
        );

        assert_eq!(
            handler
                .connect(request("s3cret", "A=", None))
                .await
                .status_code,
            200
        );
        let stored = live().await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].types, None);
        assert!(
            stored[0].expires_at.timestamp_millis()
                >= (now + CONNECTION_LIFETIME).timestamp_millis()
        );

        let ping = handler
            .message(request("", "A=", Some(r#"{"type":"ping"}"#)))
            .await;
        assert_eq!(body(&ping), serde_json::json!({"type": "pong"}));

        let subscribe =
            r#"{"type":"subscribe","types":["text_message","button_click","text_message"]}"#;
        let reply = handler.message(request("", "A=", Some(subscribe))).await;
        assert_eq!(
            body(&reply),
            serde_json::json!({"type": "subscribed", "types": ["button_click", "text_message"]})
        );
        assert_eq!(
            live().await[0].types.as_deref(),
            Some(&["button_click".to_owned(), "text_message".to_owned()][..])
        );

        for bad in [
            "",
            "not json",
            "[1]",
            r#"{"type":"dance"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","types":[]}"#,
            r#"{"type":"subscribe","types":["texts"]}"#,
        ] {
            let reply = handler.message(request("", "A=", Some(bad))).await;
            assert_eq!(reply.status_code, 200, "{bad}");
            assert_eq!(body(&reply)["type"], "error", "{bad}");
        }
        let unknown = handler.message(request("", "Z=", Some(subscribe))).await;
        assert_eq!(body(&unknown)["type"], "error");

        assert_eq!(
            handler
                .disconnect(request("", "A=", None))
                .await
                .status_code,
            200
        );
        assert!(live().await.is_empty());
    }
}
