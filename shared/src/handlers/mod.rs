//! The Lambda functions' handlers, one module per function they serve. They take
//! and return exactly what a Lambda behind API Gateway gets (HTTP API payload
//! format 2.0 through `lambda_http`, WebSocket and DynamoDB stream events through
//! `aws_lambda_events`), so the Lambdas, the local stack and the tests all run
//! this very code.
//!
//! - [`webhook`]: `GET` and `POST /webhook` (the webhook function);
//! - [`metrics_api`]: the REST API under `/api/` (the metrics function);
//! - [`websocket`]: the WebSocket API's `$connect`, `$disconnect` and `$default`;
//! - [`broadcast`]: newly stored events from the table's stream to live connections;
//! - [`dashboard`]: the operators' web page and its assets.
//!
//! This module holds what the REST handlers share: the JSON envelope and errors.

use crate::telemetry::Chain;
use chrono::Utc;
use http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

pub mod broadcast;
pub mod dashboard;
pub mod metrics_api;
pub mod openapi;
pub mod webhook;
pub mod websocket;

pub use metrics_api::MetricsHandler;
pub use webhook::WebhookHandler;

/// The largest request body a Lambda function can be invoked with (6 MB,
/// synchronous invocation); API Gateway itself refuses over 10 MB.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// An error answer: `{"success": false, "error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    pub fn into_response(self) -> Response<Body> {
        let body = json!({"success": false, "error": {"code": self.code, "message": self.message}});
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(
            serde_json::to_string(body).expect("responses serialise"),
        ))
        .expect("static parts are valid")
}

/// A success answer: `{"success": true, "data": …, "timestamp": "<RFC 3339>"}`.
pub(crate) fn success(data: impl Serialize) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({"success": true, "data": data, "timestamp": Utc::now().to_rfc3339()}),
    )
}

pub(crate) fn store_error(error: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %Chain(&error), "store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the event store is unavailable; try again",
    )
}

pub(crate) fn method_not_allowed(allowed: &'static str) -> Response<Body> {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allowed}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
    response
}
