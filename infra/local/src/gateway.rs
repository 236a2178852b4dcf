//! An emulation of the API Gateway HTTP API in front of the Lambda handlers.
//!
//! Each HTTP request becomes the payload-2.0 event API Gateway would send, which
//! goes through `lambda_http`'s own deserialiser into the handler the Lambda runs;
//! the handler's response goes back out as API Gateway would return it. Routes
//! ([`pulse_shared::routes`]) and limits are those of `template.yaml`'s HTTP API.

use std::sync::Arc;

use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use http::{header, HeaderMap, StatusCode};
use lambda_http::Body;
use pulse_shared::handlers::dashboard::DashboardHandler;
use pulse_shared::handlers::{MetricsHandler, WebhookHandler};
use pulse_shared::routes::{self, Function};
use serde_json::{json, Value};

/// API Gateway's own limit on a request body.
pub const API_GATEWAY_MAX_BODY: usize = 10 * 1024 * 1024;

/// The functions behind the HTTP API.
pub struct Functions {
    pub webhook: WebhookHandler,
    pub metrics: MetricsHandler,
    pub dashboard: DashboardHandler,
}

/// The axum handler for every request.
pub async fn handle(
    State(functions): State<Arc<Functions>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some(route) = routes::find(parts.method.as_str(), parts.uri.path()) else {
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(body) = to_bytes(body, API_GATEWAY_MAX_BODY).await else {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let event = api_gateway_event(&parts, &route.key(), &body, &peer.ip().to_string());
    let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "could not build the Lambda request");
            return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let response = match route.function {
        Function::Webhook => functions.webhook.handle(lambda_request).await,
        Function::Metrics => functions.metrics.handle(lambda_request).await,
        Function::Dashboard => functions.dashboard.handle(lambda_request).await,
    };
    into_http(response)
}

/// The payload-2.0 event API Gateway builds for a request.
pub fn api_gateway_event(
    parts: &http::request::Parts,
    route_key: &str,
    body: &[u8],
    source_ip: &str,
) -> Value {
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_owned(), json!(values.join(",")));
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(key.as_ref()) {
            Some(Value::String(existing)) => *existing = format!("{existing},{value}"),
            _ => {
                query.insert(key.into_owned(), json!(value));
            }
        }
    }
    let cookies: Vec<&str> = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split("; "))
        .collect();
    let textual = std::str::from_utf8(body)
        .ok()
        .filter(|_| is_text(&parts.headers));
    let (body_field, is_base64) = match (body.is_empty(), textual) {
        (true, _) => (Value::Null, false),
        (false, Some(text)) => (json!(text), false),
        (false, None) => (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let now = Utc::now();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let request_id = format!("{:032x}", rand::random::<u128>());
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "cookies": if cookies.is_empty() { Value::Null } else { json!(cookies) },
        "headers": headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(host),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": parts.headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": body_field,
        "isBase64Encoded": is_base64,
    })
}

/// API Gateway passes these content types as text; everything else as base64.
fn is_text(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    content_type.is_empty()
        || content_type.starts_with("text/")
        || ["json", "xml", "javascript", "x-www-form-urlencoded", "yaml"]
            .iter()
            .any(|t| content_type.contains(t))
}

/// A handler's response as API Gateway returns it.
fn into_http(response: lambda_http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

/// An answer of API Gateway itself, in its own shape.
fn gateway_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"message": message}).to_string(),
    )
        .into_response()
}
