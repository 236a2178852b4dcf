//! The dashboard's figures. Each is computed from counters or a bounded page of
//! the store, never by reading every event: this module reads the store, the
//! computation is pure ([`figures`], [`local_time`]), and [`views`] holds the
//! shapes the API answers with.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::alerts::AlertSource;
use crate::counters::{names, utc_from_ms, Granularity};
use crate::store::{page_of_events, EventQuery, Store, StoreError};
use crate::telemetry::Chain;

mod contacts;
mod figures;
mod funnel;
mod local_time;
mod views;

pub use contacts::{contact, contacts, decode_cursor, encode_cursor, ContactList};
pub use figures::webhook_metrics_from;
pub use funnel::{failures_from, funnel_from};
pub use local_time::local_day_start;
use local_time::local_window;
pub use views::*;

/// `GET /api/webhook/metrics?days=N`.
pub async fn webhook_metrics(
    store: &dyn Store,
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> Result<WebhookMetrics, StoreError> {
    let (_, _, start, end) = local_window(tz, days, now);
    let counters = store
        .quarter_counters(start, end, Some(names::CLICK_PREFIX))
        .await?;
    Ok(webhook_metrics_from(&counters, tz, days, now))
}

/// `GET /api/webhook/funnel?days=N`.
pub async fn funnel(
    store: &dyn Store,
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Funnel, StoreError> {
    Ok(funnel_from(
        &funnel_counters(store, tz, days, now).await?,
        tz,
        days,
        now,
    ))
}

/// `GET /api/webhook/failures?days=N`.
pub async fn failures(
    store: &dyn Store,
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Failures, StoreError> {
    Ok(failures_from(
        &funnel_counters(store, tz, days, now).await?,
        tz,
        days,
        now,
    ))
}

/// The window's funnel counters, with their quarters (for local days).
async fn funnel_counters(
    store: &dyn Store,
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<crate::counters::DayCounter>, StoreError> {
    let (_, _, start, end) = local_window(tz, days, now);
    store
        .quarter_counters(start, end, Some(crate::funnel::names::PREFIX))
        .await
}

pub async fn conversations(
    store: &dyn Store,
    tz: Tz,
    limit: usize,
    active_minutes: u32,
    now: DateTime<Utc>,
) -> Result<Conversations, StoreError> {
    let (_, _, today_start, today_end) = local_window(tz, 1, now);
    let (active, today, contacts) = futures::try_join!(
        store.active_contacts(now - Duration::minutes(i64::from(active_minutes))),
        store.quarter_counters(today_start, today_end, None),
        store.contacts(limit, None),
    )?;
    Ok(Conversations {
        active_conversations: active,
        active_minutes,
        daily_chat_volume: today
            .iter()
            .filter(|c| c.name == names::TEXT)
            .map(|c| c.total)
            .sum(),
        conversations: contacts.into_iter().map(Conversation::from).collect(),
    })
}

pub async fn realtime(store: &dyn Store, now: DateTime<Utc>) -> Result<Realtime, StoreError> {
    let current = Granularity::Minute.slot_of(now);
    let first = current - 59 * 60_000;
    let newest = EventQuery {
        limit: 1,
        ..Default::default()
    };
    let (slots, last) = futures::try_join!(
        store.minute_counters(utc_from_ms(first), utc_from_ms(current + 60_000)),
        page_of_events(store, &newest),
    )?;
    let by_slot: BTreeMap<i64, i64> = slots
        .iter()
        .map(|s| (s.slot, s.get(names::EVENTS)))
        .collect();
    let per_minute: Vec<MinuteCount> = (0..60)
        .map(|i| first + i * 60_000)
        .map(|slot| MinuteCount {
            minute: utc_from_ms(slot),
            count: by_slot.get(&slot).copied().unwrap_or(0),
        })
        .collect();
    let last_n = |n: usize| per_minute.iter().rev().take(n).map(|m| m.count).sum();
    Ok(Realtime {
        last_minute: last_n(1),
        last_5_minutes: last_n(5),
        last_hour: last_n(60),
        per_minute,
        last_event_at: last.events.first().map(|e| e.occurred_at),
    })
}

/// The store's round trip and latest event, and the active alerts' rules
/// (when they can be read; the store's answer matters more).
pub async fn health(store: &dyn Store, alerts: &dyn AlertSource) -> Health {
    let started = Instant::now();
    let ping = store.ping().await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
    let last = match &ping {
        Ok(()) => page_of_events(
            store,
            &EventQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .ok(),
        Err(error) => {
            tracing::warn!(error = %Chain(error), "health check: store unreachable");
            None
        }
    };
    let alerts = match alerts.active_rules().await {
        Ok(rules) => rules,
        Err(error) => {
            tracing::warn!(error = %Chain(&error), "health check: alerts unreadable");
            Vec::new()
        }
    };
    Health {
        status: if ping.is_ok() && alerts.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        alerts,
        store: StoreHealth {
            reachable: ping.is_ok(),
            latency_ms,
        },
        last_event_at: last.and_then(|page| page.events.first().map(|e| e.occurred_at)),
        version: env!("CARGO_PKG_VERSION"),
    }
}
