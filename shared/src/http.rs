//! The webhook and metrics functions' handlers.
//!
//! They take and return exactly what a Lambda behind an API Gateway HTTP API gets
//! (payload format 2.0 through `lambda_http`), so the Lambdas, the local stack and
//! the tests all run this very code.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;

use crate::config::{MetricsConfig, WebhookConfig};
use crate::event::{events_from_body, EVENT_TYPES};
use crate::metrics;
use crate::signature::{self, SIGNATURE_HEADER};
use crate::store::record_all;
use crate::store::{Cursor, EventQuery, Store};

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

    fn bad_parameter(message: impl Into<String>) -> Self {
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

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
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
fn success(data: impl Serialize) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({"success": true, "data": data, "timestamp": Utc::now().to_rfc3339()}),
    )
}

fn store_error(error: crate::store::StoreError) -> ApiError {
    tracing::error!(%error, "store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the event store is unavailable; try again",
    )
}

fn method_not_allowed(allowed: &'static str) -> Response<Body> {
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

/// The webhook function: `GET /webhook` (Meta's verification) and `POST /webhook`.
pub struct WebhookHandler {
    config: WebhookConfig,
    store: Arc<dyn Store>,
    retention_days: u32,
}

impl WebhookHandler {
    pub fn new(config: WebhookConfig, store: Arc<dyn Store>, retention_days: u32) -> Self {
        Self {
            config,
            store,
            retention_days,
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let result = match *request.method() {
            Method::GET => self.verify(&request),
            Method::POST => self.receive(&request).await,
            _ => return method_not_allowed("GET, POST"),
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    /// Meta's subscription check: echo the challenge when the token is ours.
    fn verify(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let query = request.query_string_parameters();
        let token_ok = query.first("hub.verify_token").is_some_and(|token| {
            signature::tokens_match(token, self.config.verify_token.expose_secret())
        });
        if query.first("hub.mode") != Some("subscribe") || !token_ok {
            tracing::warn!("webhook verification refused");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "hub.mode must be subscribe and hub.verify_token must match",
            ));
        }
        let challenge = query.first("hub.challenge").unwrap_or_default().to_owned();
        tracing::info!("webhook verified");
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::Text(challenge))
            .expect("static parts are valid"))
    }

    /// A delivery: check, parse, store every event, and only then answer 200.
    async fn receive(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let started = Instant::now();
        let body: &[u8] = request.body().as_ref();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            ));
        }
        let header = request
            .headers()
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or(""));
        if let Err(error) = signature::verify(
            self.config.app_secret.expose_secret().as_bytes(),
            body,
            header,
        ) {
            tracing::warn!(%error, bytes = body.len(), "webhook refused");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                error.to_string(),
            ));
        }
        let events = events_from_body(body, Utc::now()).map_err(|error| {
            tracing::warn!(%error, "signed body is not a webhook");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_payload",
                error.to_string(),
            )
        })?;
        let summary = record_all(self.store.as_ref(), &events, self.retention_days)
            .await
            .map_err(store_error)?;
        tracing::info!(
            received = summary.received,
            stored = summary.stored,
            duplicates = summary.duplicates,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "webhook stored"
        );
        Ok(success(summary))
    }
}

/// The metrics function: health and the dashboard's four data routes.
pub struct MetricsHandler {
    config: MetricsConfig,
    store: Arc<dyn Store>,
}

/// Query parameter bounds; the issue fixes `days` and `active_minutes`.
const MAX_DAYS: u32 = 90;
const MAX_ACTIVE_MINUTES: u32 = 10_080;
const MAX_LIMIT: usize = 200;
const MAX_QUERY_CHARS: usize = 200;

impl MetricsHandler {
    pub fn new(config: MetricsConfig, store: Arc<dyn Store>) -> Self {
        Self { config, store }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let path = request.uri().path().trim_end_matches('/').to_owned();
        if request.method() != Method::GET {
            return method_not_allowed("GET");
        }
        if path == "/health" || path == "/api/webhook/health" {
            return self.health().await;
        }
        let known = [
            "/api/webhook/metrics",
            "/api/webhook/conversations",
            "/api/webhook/stats/realtime",
            "/api/webhook/events/recent",
        ];
        if !known.contains(&path.as_str()) {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {path}"),
            )
            .into_response();
        }
        if let Err(error) = self.authorize(&request) {
            return error.into_response();
        }
        let result = match path.as_str() {
            "/api/webhook/metrics" => self.metrics(&request).await,
            "/api/webhook/conversations" => self.conversations(&request).await,
            "/api/webhook/stats/realtime" => metrics::realtime(self.store.as_ref(), Utc::now())
                .await
                .map(success)
                .map_err(store_error),
            _ => self.recent_events(&request).await,
        };
        result.unwrap_or_else(ApiError::into_response)
    }

    fn authorize(&self, request: &Request) -> Result<(), ApiError> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // RFC 7235: the scheme is case-insensitive.
                let (scheme, token) = v.trim_start().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            });
        match presented {
            Some(token)
                if signature::tokens_match(
                    token.trim(),
                    self.config.dashboard_token.expose_secret(),
                ) =>
            {
                Ok(())
            }
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is not valid",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <DASHBOARD_TOKEN>",
            )),
        }
    }

    async fn health(&self) -> Response<Body> {
        let health = metrics::health(self.store.as_ref()).await;
        let status = if health.status == "healthy" {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut body = serde_json::to_value(&health).expect("health serialises");
        body["timestamp"] = json!(Utc::now().to_rfc3339());
        json_response(status, &body)
    }

    async fn metrics(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let days = number_parameter(request, "days", 7, 1, MAX_DAYS)?;
        let data =
            metrics::webhook_metrics(self.store.as_ref(), self.config.timezone, days, Utc::now())
                .await
                .map_err(store_error)?;
        Ok(success(data))
    }

    async fn conversations(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let limit = number_parameter(request, "limit", 20, 1, MAX_LIMIT as u32)? as usize;
        let minutes = number_parameter(request, "active_minutes", 30, 1, MAX_ACTIVE_MINUTES)?;
        let data = metrics::conversations(
            self.store.as_ref(),
            self.config.timezone,
            limit,
            minutes,
            Utc::now(),
        )
        .await
        .map_err(store_error)?;
        Ok(success(data))
    }

    async fn recent_events(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let query = request.query_string_parameters();
        let limit = number_parameter(request, "limit", 50, 1, MAX_LIMIT as u32)? as usize;
        let event_type = query
            .first("type")
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if let Some(t) = &event_type {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(ApiError::bad_parameter(format!(
                    "type must be one of {}",
                    EVENT_TYPES.join(", ")
                )));
            }
        }
        let text = query
            .first("q")
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        if text
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            return Err(ApiError::bad_parameter(format!(
                "q is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let before = match query.first("before").filter(|b| !b.is_empty()) {
            None => None,
            Some(token) => Some(Cursor::decode(token).ok_or_else(|| {
                ApiError::bad_parameter("before is not a cursor this API returned")
            })?),
        };
        let page = self
            .store
            .events(&EventQuery {
                before,
                limit,
                event_type,
                text,
            })
            .await
            .map_err(store_error)?;
        let mut data = json!({"events": page.events.into_iter().map(metrics::public_event).collect::<Vec<_>>()});
        if let Some(next) = page.next {
            data["next"] = json!(next.encode());
        }
        Ok(success(data))
    }
}

/// A whole-number query parameter within bounds, or its default when absent.
fn number_parameter(
    request: &Request,
    name: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match request.query_string_parameters().first(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_parameter(format!(
                    "{name} must be a whole number from {min} to {max}"
                ))
            }),
    }
}
