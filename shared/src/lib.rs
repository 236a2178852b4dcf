//! Pulse's domain, shared by every Lambda function and the local stack.
//!
//! - [`whatsapp`]: the webhook payloads as Meta sends them;
//! - [`event`]: what each update means (the domain events);
//! - [`signature`]: the `X-Hub-Signature-256` check;
//! - [`ingest`]: recording events exactly once, with the state and counters they change;
//! - [`counters`]: the pre-aggregated counters metrics are read from;
//! - [`store`]: the store trait and its SQLite and DynamoDB implementations;
//! - [`metrics`]: the dashboard's figures, computed from counters;
//! - [`http`]: the Lambda handlers of the webhook and metrics functions;
//! - [`websocket`]: the Lambda handlers of the WebSocket API's routes;
//! - [`broadcast`]: sending newly stored events to live connections;
//! - [`config`], [`mask`], [`telemetry`]: settings, phone masking, logging.

pub mod broadcast;
pub mod config;
pub mod counters;
pub mod dashboard;
pub mod event;
pub mod http;
pub mod ingest;
pub mod mask;
pub mod metrics;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod websocket;
pub mod whatsapp;
