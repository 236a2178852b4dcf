//! The metrics function: the REST API under `/api/` that the dashboard and
//! operators' scripts read, behind the bearer token, and `/health`.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;

use crate::alerts::AlertSource;
use crate::config::MetricsConfig;
use crate::event::EVENT_TYPES;
use crate::funnel::{Segment, NO_CODE_NUMBER};
use crate::mask;
use crate::metrics::{self, ContactList, HealthAnswer};
use crate::routes::{Function, Operation};
use crate::signature;
use crate::store::{page_of_events, Cursor, EventQuery, Store, StoreError};
use crate::telemetry::Chain;

use super::{json_response, method_not_allowed, openapi, store_error, success, ApiError};

/// The metrics function: health, the OpenAPI description and the data routes.
pub struct MetricsHandler {
    config: MetricsConfig,
    store: Arc<dyn Store>,
    /// The store's alert log locally, the stack's alarms in AWS.
    alerts: Arc<dyn AlertSource>,
}

/// Query parameter bounds; the issue fixes `days` and `active_minutes`.
const MAX_DAYS: u32 = 90;
const MAX_ACTIVE_MINUTES: u32 = 10_080;
const MAX_LIMIT: usize = 200;
const MAX_QUERY_CHARS: usize = 200;

impl MetricsHandler {
    pub fn new(config: MetricsConfig, store: Arc<dyn Store>, alerts: Arc<dyn AlertSource>) -> Self {
        Self {
            config,
            store,
            alerts,
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        if request.method() != Method::GET {
            return method_not_allowed("GET");
        }
        let path = request.uri().path();
        let Some(operation) = Operation::find("GET", path)
            .filter(|operation| operation.spec().function == Function::Metrics)
        else {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route {}", path.trim_end_matches('/')),
            )
            .into_response();
        };
        if operation.spec().token {
            if let Err(error) = self.authorize(&request) {
                return error.into_response();
            }
        }
        let result = match operation {
            Operation::Health => return self.health().await,
            Operation::OpenApi => return openapi_response(),
            Operation::Metrics => self.windowed(&request, metrics::webhook_metrics).await,
            Operation::Conversations => self.conversations(&request).await,
            Operation::Realtime => metrics::realtime(self.store.as_ref(), Utc::now())
                .await
                .map(success)
                .map_err(store_error),
            Operation::RecentEvents => self.recent_events(&request).await,
            Operation::Funnel => self.windowed(&request, metrics::funnel).await,
            Operation::Failures => self.windowed(&request, metrics::failures).await,
            Operation::Contacts => self.contacts(&request).await,
            Operation::Contact => self.contact(&request, path).await,
            Operation::Alerts => self.alerts.alerts().await.map(success).map_err(|error| {
                tracing::error!(error = %Chain(&error), "alerts unreadable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "alerts_unavailable",
                    "the alerts could not be read (from the store locally, from CloudWatch's alarms in AWS); try again",
                )
            }),
            Operation::Verify | Operation::Deliver => unreachable!("the webhook function's"),
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
        let health = metrics::health(self.store.as_ref(), self.alerts.as_ref()).await;
        // An active alert is news, not an outage of this function: only a
        // store that does not answer makes it 503.
        let status = if health.store.reachable {
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

    /// A route of figures over the last `days` local calendar days.
    async fn windowed<'a, T, F>(
        &'a self,
        request: &Request,
        figures: impl FnOnce(&'a dyn Store, Tz, u32, DateTime<Utc>) -> F,
    ) -> Result<Response<Body>, ApiError>
    where
        T: serde::Serialize,
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let days = number_parameter(request, "days", 7, 1, MAX_DAYS)?;
        let data = figures(self.store.as_ref(), self.config.timezone, days, Utc::now())
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
        let contact = match query.first("contact").filter(|c| !c.is_empty()) {
            None => None,
            Some(key) => Some(self.config.contact_keys.wa_id_of(key).ok_or_else(|| {
                ApiError::bad_parameter("contact is not a key this API returned")
            })?),
        };
        let query = EventQuery {
            before,
            limit,
            event_type,
            text,
            contact,
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

impl MetricsHandler {
    async fn contacts(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let query = request.query_string_parameters();
        let days = number_parameter(request, "days", 7, 1, MAX_DAYS)?;
        let limit = number_parameter(request, "limit", 50, 1, MAX_LIMIT as u32)? as usize;
        let segment = match query.first("segment").unwrap_or("all") {
            "all" | "" => None,
            name => Some(
                Segment::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .ok_or_else(|| {
                        ApiError::bad_parameter(
                            "segment must be all, engaged, reading, unread, unreached or none",
                        )
                    })?,
            ),
        };
        let code = match query.first("code").filter(|c| !c.is_empty()) {
            None => None,
            Some("none") => Some(NO_CODE_NUMBER),
            Some(code) => Some(code.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(|| {
                ApiError::bad_parameter("code must be one of Meta's error codes, or none")
            })?),
        };
        let keys = &self.config.contact_keys;
        let after = match query.first("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(metrics::decode_cursor(keys, cursor).ok_or_else(|| {
                ApiError::bad_parameter("cursor is not a cursor this API returned")
            })?),
        };
        let page = metrics::contacts(
            self.store.as_ref(),
            keys,
            self.config.timezone,
            ContactList {
                days,
                segment,
                code,
                limit,
                after,
            },
            Utc::now(),
        )
        .await
        .map_err(store_error)?;
        Ok(success(page))
    }

    async fn contact(&self, request: &Request, path: &str) -> Result<Response<Body>, ApiError> {
        let days = number_parameter(request, "days", 7, 1, MAX_DAYS)?;
        let key = Operation::Contact
            .spec()
            .path_params(path.trim_end_matches('/'));
        let key = key.and_then(|values| values.first().copied()).unwrap_or("");
        let contact = metrics::contact(
            self.store.as_ref(),
            &self.config.contact_keys,
            key,
            self.config.timezone,
            days,
            Utc::now(),
        )
        .await
        .map_err(store_error)?;
        match contact {
            Some(contact) => Ok(success(contact)),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no contact has this key",
            )),
        }
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

fn openapi_response() -> Response<Body> {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        openapi::document()
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
