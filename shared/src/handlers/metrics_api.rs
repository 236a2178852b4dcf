//! The metrics function: the REST API under `/api/` that the dashboard and
//! operators' scripts read, behind the bearer token.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::{Modify, OpenApi, ToSchema};

use crate::config::MetricsConfig;
use crate::event::EVENT_TYPES;
use crate::mask;
use crate::metrics;
use crate::signature;
use crate::store::{page_of_events, Cursor, EventQuery, Store};

use super::{json_response, method_not_allowed, store_error, success, ApiError};

/// The metrics function: health and the dashboard's four data routes.
pub struct MetricsHandler {
    config: MetricsConfig,
    store: Arc<dyn Store>,
}

/// Where the API's OpenAPI description is served (no token: it holds no data).
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// The data routes, behind the token; [`ApiDoc`] documents each.
pub const DATA_PATHS: [&str; 4] = [
    "/api/webhook/metrics",
    "/api/webhook/conversations",
    "/api/webhook/stats/realtime",
    "/api/webhook/events/recent",
];

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
        if path == OPENAPI_PATH {
            return openapi_response();
        }
        if !DATA_PATHS.contains(&path.as_str()) {
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
        let body = HealthAnswer {
            health,
            timestamp: Utc::now(),
        };
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
        let query = EventQuery {
            before,
            limit,
            event_type,
            text,
        };
        let page = page_of_events(self.store.as_ref(), &query)
            .await
            .map_err(store_error)?;
        Ok(success(metrics::RecentEvents {
            events: page.events.into_iter().map(mask::public_event).collect(),
            next: page.next.map(|cursor| cursor.encode()),
        }))
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

/// Body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthAnswer {
    #[serde(flatten)]
    pub health: metrics::Health,
    pub timestamp: DateTime<Utc>,
}

/// A success answer: `data` is the route's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    pub timestamp: DateTime<Utc>,
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Failure {
    /// Always `false`.
    pub success: bool,
    pub error: FailureDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureDetail {
    /// Machine-readable: `unauthorized`, `invalid_parameter`, `not_found`,
    /// `store_unavailable`, …
    pub code: String,
    /// For a person.
    pub message: String,
}

/// The OpenAPI 3.1 description of the HTTP API, served at [`OPENAPI_PATH`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pulse",
        description = "WhatsApp Business webhooks in, metrics out. Data routes take `Authorization: Bearer <DASHBOARD_TOKEN>`; every JSON answer is `{success, data, timestamp}` or `{success: false, error: {code, message}}`."
    ),
    paths(
        doc::verify,
        doc::deliver,
        doc::health,
        doc::metrics,
        doc::conversations,
        doc::realtime,
        doc::recent_events
    ),
    modifiers(&BearerToken),
    tags(
        (name = "webhook", description = "What Meta calls"),
        (name = "metrics", description = "What the dashboard and operators read")
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("DASHBOARD_TOKEN"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("dashboard_token", SecurityScheme::Http(scheme));
    }
}

fn openapi_response() -> Response<Body> {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI description serialises")
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::Text(document.clone()))
        .expect("static parts are valid")
}

/// The routes as OpenAPI operations. utoipa reads these signatures; the
/// handlers above do the work (API Gateway hands them requests, not typed
/// arguments).
#[allow(dead_code)]
mod doc {
    use super::{Failure, HealthAnswer, Success};
    use crate::metrics::{Conversations, Realtime, RecentEvents, WebhookMetrics};

    /// Meta's subscription check: echoes `hub.challenge` for the verify token.
    #[utoipa::path(get, path = "/webhook", tag = "webhook",
        params(
            ("hub.mode" = String, Query, description = "`subscribe`"),
            ("hub.verify_token" = String, Query, description = "WHATSAPP_VERIFY_TOKEN"),
            ("hub.challenge" = String, Query, description = "Echoed back as text/plain"),
        ),
        responses(
            (status = 200, description = "The challenge", content_type = "text/plain", body = String),
            (status = 403, description = "Wrong token or mode", body = Failure),
        ))]
    fn verify() {}

    /// A signed delivery (`X-Hub-Signature-256`): recorded whole, exactly once,
    /// before the answer.
    #[utoipa::path(post, path = "/webhook", tag = "webhook",
        params(("X-Hub-Signature-256" = String, Header, description = "`sha256=` HMAC of the body with WHATSAPP_APP_SECRET")),
        request_body(content = Object, description = "Meta's webhook payload", content_type = "application/json"),
        responses(
            (status = 200, description = "Stored: `data` is `{received, stored, duplicates}`", body = Success<crate::ingest::Summary>),
            (status = 400, description = "Not a webhook payload", body = Failure),
            (status = 401, description = "Missing or wrong signature", body = Failure),
            (status = 413, description = "Over 6 MB", body = Failure),
            (status = 503, description = "The store failed; Meta retries", body = Failure),
        ))]
    fn deliver() {}

    /// Liveness and the store's round trip; also at `/api/webhook/health`.
    #[utoipa::path(get, path = "/health", tag = "metrics",
        responses(
            (status = 200, description = "Healthy", body = HealthAnswer),
            (status = 503, description = "The store does not answer", body = HealthAnswer),
        ))]
    fn health() {}

    /// Button clicks, messages, statuses, delivery rate and response times over
    /// the last `days` local calendar days (PULSE_TIMEZONE).
    #[utoipa::path(get, path = "/api/webhook/metrics", tag = "metrics",
        security(("dashboard_token" = [])),
        params(("days" = Option<u32>, Query, description = "1 to 90, default 7", minimum = 1, maximum = 90)),
        responses(
            (status = 200, description = "The figures", body = Success<WebhookMetrics>),
            (status = 400, description = "A parameter out of bounds", body = Failure),
            (status = 401, description = "No or wrong token", body = Failure),
            (status = 503, description = "The store failed", body = Failure),
        ))]
    fn metrics() {}

    /// Contacts by latest activity, with who is waiting for a reply.
    #[utoipa::path(get, path = "/api/webhook/conversations", tag = "metrics",
        security(("dashboard_token" = [])),
        params(
            ("limit" = Option<u32>, Query, description = "1 to 200, default 20", minimum = 1, maximum = 200),
            ("active_minutes" = Option<u32>, Query, description = "1 to 10080, default 30", minimum = 1, maximum = 10080),
        ),
        responses(
            (status = 200, description = "The conversations", body = Success<Conversations>),
            (status = 400, description = "A parameter out of bounds", body = Failure),
            (status = 401, description = "No or wrong token", body = Failure),
            (status = 503, description = "The store failed", body = Failure),
        ))]
    fn conversations() {}

    /// Events in the last minute, 5 minutes and hour, and per minute.
    #[utoipa::path(get, path = "/api/webhook/stats/realtime", tag = "metrics",
        security(("dashboard_token" = [])),
        responses(
            (status = 200, description = "The counts", body = Success<Realtime>),
            (status = 401, description = "No or wrong token", body = Failure),
            (status = 503, description = "The store failed", body = Failure),
        ))]
    fn realtime() {}

    /// Events newest first (by WhatsApp time), numbers masked, page by page.
    #[utoipa::path(get, path = "/api/webhook/events/recent", tag = "metrics",
        security(("dashboard_token" = [])),
        params(
            ("limit" = Option<u32>, Query, description = "1 to 200, default 50", minimum = 1, maximum = 200),
            ("type" = Option<String>, Query, description = "One event type: button_click, text_message, media_message, list_selection, other_message, status_update, other_update"),
            ("q" = Option<String>, Query, description = "Text to find (case-insensitive), at most 200 characters"),
            ("before" = Option<String>, Query, description = "The `next` of the previous page"),
        ),
        responses(
            (status = 200, description = "A page", body = Success<RecentEvents>),
            (status = 400, description = "A parameter out of bounds", body = Failure),
            (status = 401, description = "No or wrong token", body = Failure),
            (status = 503, description = "The store failed", body = Failure),
        ))]
    fn recent_events() {}
}
