//! Pulse's domain, shared by every Lambda function and the local stack.
//!
//! - [`whatsapp`]: the webhook payloads as Meta sends them;
//! - [`event`]: what each update means (the domain events);
//! - [`signature`]: the `X-Hub-Signature-256` check;
//! - [`ingest`]: what recording an event changes (state and counter deltas), pure;
//! - [`counters`]: the pre-aggregated counters metrics are read from;
//! - [`funnel`]: what a message and a contact add to the funnel's counters, pure;
//! - [`store`]: the store trait and its SQLite (feature `sqlite`) and DynamoDB
//!   implementations, which record whole deliveries exactly once;
//! - [`metrics`]: the dashboard's figures, computed from counters;
//! - [`routes`]: the HTTP API's route table (gateway, template check, OpenAPI);
//! - [`handlers`]: one per Lambda function (webhook, metrics API, WebSocket
//!   routes, broadcast, dashboard);
//! - [`alerts`]: when to tell someone (silence, refusals, failing sends or
//!   store), pure;
//! - [`config`], [`mask`], [`contact_key`], [`telemetry`]: settings, phone
//!   masking, the contacts' opaque keys, logging.
//!
//! Dependencies point one way: handlers → metrics, store → ingest → event →
//! whatsapp; the domain (`whatsapp`, `event`, `ingest`, `funnel`, `counters`) knows no
//! AWS or SQLite type.

pub mod alerts;
pub mod config;
pub mod contact_key;
pub mod counters;
pub mod event;
pub mod funnel;
pub mod handlers;
pub mod ingest;
pub mod mask;
pub mod metrics;
pub mod routes;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod whatsapp;
