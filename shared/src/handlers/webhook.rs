//! The webhook function: Meta's verification (`GET /webhook`) and signed
//! deliveries (`POST /webhook`), each recorded whole before it is answered.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use http::{header, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;

use crate::alerts::intake::{Answer, Figures, IntakeObserver};
use crate::config::WebhookConfig;
use crate::event::{events_from_body, EventKind, ReceivedEvent};
use crate::ingest::{Outcome, Summary};
use crate::signature::{self, SIGNATURE_HEADER};
use crate::store::Store;
use crate::telemetry::Chain;

use super::{method_not_allowed, store_error, success, ApiError, MAX_BODY_BYTES};

/// The webhook function: `GET /webhook` (Meta's verification) and `POST /webhook`.
pub struct WebhookHandler {
    config: WebhookConfig,
    store: Arc<dyn Store>,
    retention_days: u32,
    /// Told of each POST's answer, for the alerts.
    observer: Option<Arc<dyn IntakeObserver>>,
}

impl WebhookHandler {
    pub fn new(config: WebhookConfig, store: Arc<dyn Store>, retention_days: u32) -> Self {
        Self {
            config,
            store,
            retention_days,
            observer: None,
        }
    }

    /// Tells `observer` of each POST's answer: the local stack's alert tally,
    /// or the CloudWatch metrics in AWS.
    pub fn with_observer(mut self, observer: Arc<dyn IntakeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let result = match *request.method() {
            Method::GET => self.verify(&request),
            Method::POST => {
                let result = self.receive(&request).await;
                if let Some(observer) = &self.observer {
                    let answer = match &result {
                        Ok((_, figures)) => Answer::Accepted(*figures),
                        Err(error) if error.status.is_server_error() => Answer::Failed,
                        Err(_) => Answer::Refused,
                    };
                    observer.observe(Utc::now(), &answer);
                }
                result.map(|(response, _)| response)
            }
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
    async fn receive(&self, request: &Request) -> Result<(Response<Body>, Figures), ApiError> {
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
            tracing::warn!(error = %Chain(&error), "signed body is not a webhook");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_payload",
                Chain(&error).to_string(),
            )
        })?;
        let outcomes = self
            .store
            .record(&events, self.retention_days)
            .await
            .map_err(store_error)?;
        let summary = Summary::of(&outcomes);
        tracing::info!(
            received = summary.received,
            stored = summary.stored,
            duplicates = summary.duplicates,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "webhook stored"
        );
        Ok((success(summary), figures(&events, &outcomes)))
    }
}

/// What a delivery's newly stored events were, for the alerts' figures.
fn figures(events: &[ReceivedEvent], outcomes: &[Outcome]) -> Figures {
    let mut figures = Figures::default();
    for (event, outcome) in events.iter().zip(outcomes) {
        if *outcome != Outcome::Stored {
            figures.duplicates += 1;
            continue;
        }
        figures.stored += 1;
        if let EventKind::StatusUpdate { status, .. } = &event.event.kind {
            match status.as_str() {
                "sent" => figures.outbound += 1,
                "failed" => {
                    figures.outbound += 1;
                    figures.failed += 1;
                }
                _ => {}
            }
        }
    }
    figures
}
