//! The dashboard's figures. Each is computed from counters or a bounded page of
//! the store, never by reading every event.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use crate::counters::{
    histogram, names, utc_from_ms, DayCounter, Granularity, DAY_MS, QUARTERS_PER_DAY,
};
use crate::event::{Event, EventKind, KNOWN_BUTTONS};
use crate::ingest::ContactState;
use crate::mask::{mask_message_id, mask_phone};
use crate::store::{page_of_events, EventQuery, Store, StoreError};
use crate::telemetry::Chain;

/// `data` of `GET /api/webhook/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WebhookMetrics {
    pub window: Window,
    pub button_clicks: ButtonClicks,
    pub messages: MessageCounts,
    pub statuses: StatusCounts,
    /// Outbound messages that reached delivered or read ÷ outbound messages with
    /// any status; `null` when there were none.
    pub delivery_success_rate: Option<f64>,
    pub response_time_ms: ResponseTimes,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Window {
    pub days: u32,
    /// First and last local calendar day, `YYYY-MM-DD`.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub timezone: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ButtonClicks {
    pub total: i64,
    /// Every known button, and any other id that was clicked.
    pub by_button: BTreeMap<String, i64>,
    pub daily: Vec<DailyClicks>,
    /// Clicks by local hour of day, 0 to 23.
    pub hourly: [i64; 24],
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyClicks {
    pub date: NaiveDate,
    pub total: i64,
    pub by_button: BTreeMap<String, i64>,
}

/// Inbound messages; clicks are not included, list selections count as other.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct MessageCounts {
    pub text: i64,
    pub media: i64,
    pub other: i64,
    pub total: i64,
}

/// Distinct outbound messages for which each status was reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ResponseTimes {
    pub count: i64,
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

/// The UTC instant a local calendar day starts at (the first valid local time of
/// that day where a DST change skips midnight).
pub fn local_day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    (0..=24 * 4)
        .find_map(|quarter| {
            tz.from_local_datetime(&(midnight + Duration::minutes(15 * quarter)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// `days` local calendar days ending today: (first day, last day, start, end).
fn local_window(
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> (NaiveDate, NaiveDate, DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let first = today - Duration::days(i64::from(days) - 1);
    (
        first,
        today,
        local_day_start(tz, first),
        local_day_start(tz, today + Duration::days(1)),
    )
}

/// UTC offsets of quarter slots: one time-zone lookup per UTC day, or per quarter
/// on a day whose offset changes (a DST day).
struct LocalClock {
    tz: Tz,
    day: Option<i64>,
    /// The day's offset, when the same at its start and end.
    offset_ms: Option<i64>,
}

impl LocalClock {
    fn new(tz: Tz) -> Self {
        Self {
            tz,
            day: None,
            offset_ms: None,
        }
    }

    fn lookup(&self, at_ms: i64) -> i64 {
        let utc = utc_from_ms(at_ms).naive_utc();
        i64::from(
            self.tz
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc(),
        ) * 1000
    }

    /// The offset of the UTC day starting at `day`, when it is the same all day.
    fn day_offset_ms(&mut self, day: i64) -> Option<i64> {
        if self.day != Some(day) {
            let (start, end) = (self.lookup(day), self.lookup(day + DAY_MS - 1));
            self.day = Some(day);
            self.offset_ms = (start == end).then_some(start);
        }
        self.offset_ms
    }

    /// The slot as local wall-clock time, in milliseconds since the local epoch.
    fn local_ms(&mut self, slot: i64) -> i64 {
        let day = slot.div_euclid(DAY_MS) * DAY_MS;
        slot + self.day_offset_ms(day).unwrap_or_else(|| self.lookup(slot))
    }
}

/// Adds to a named count without allocating the name when it is there already.
fn add_to(counts: &mut BTreeMap<String, i64>, name: &str, by: i64) {
    match counts.get_mut(name) {
        Some(count) => *count += by,
        None => {
            counts.insert(name.to_owned(), by);
        }
    }
}

/// Figures of `days` local calendar days (today included) from quarter counters.
pub fn webhook_metrics_from(
    counters: &[DayCounter],
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> WebhookMetrics {
    let (first, last, start, end) = local_window(tz, days, now);
    let window = start.timestamp_millis()..end.timestamp_millis();
    let known = || {
        KNOWN_BUTTONS
            .iter()
            .map(|b| (b.to_string(), 0))
            .collect::<BTreeMap<_, _>>()
    };
    let mut daily: Vec<DailyClicks> = (0..days)
        .map(|d| DailyClicks {
            date: first + Duration::days(i64::from(d)),
            total: 0,
            by_button: known(),
        })
        .collect();
    let mut by_button = known();
    // Clicks by local quarter of the day, summed into hours at the end.
    let mut by_local_quarter = [0i64; QUARTERS_PER_DAY];
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, i64> = BTreeMap::new();
    let mut clock = LocalClock::new(tz);
    let first_epoch_day = i64::from(first.to_epoch_days());

    const QUARTER_MS: i64 = Granularity::Quarter.millis();
    const QUARTERS: i64 = QUARTERS_PER_DAY as i64;
    for counter in counters {
        let slots = || counter.slots().filter(|(slot, _)| window.contains(slot));
        // A day wholly inside the window may come as its total alone (clicks
        // never do: they are asked for by quarter, for hours and local days).
        let whole_day = window.start <= counter.day && counter.day + DAY_MS <= window.end;
        let sum = || {
            if whole_day {
                counter.total
            } else {
                slots().map(|(_, v)| v).sum()
            }
        };
        if let Some(button) = counter.name.strip_prefix(names::CLICK_PREFIX) {
            // A UTC day's row spans at most two local days: sum per local day
            // (the day before its date, its date, the day after), then add each
            // sum to the day's map once.
            let mut per_local_day = [0i64; 3];
            // The row's quarters inside the window: they are in order.
            let at_or_after = |time: i64| {
                counter
                    .quarters
                    .partition_point(|(q, _)| counter.day + i64::from(*q) * QUARTER_MS < time)
            };
            let quarters = &counter.quarters[at_or_after(window.start)..at_or_after(window.end)];
            let shift = clock
                .day_offset_ms(counter.day)
                .filter(|offset| offset % QUARTER_MS == 0)
                .map(|offset| offset / QUARTER_MS);
            if let Some(shift) = shift {
                // One offset all day: a quarter's local place is a shift, and the
                // local days split the row where the shifted quarter leaves 0..96.
                let split = |bound: i64| quarters.partition_point(|(q, _)| i64::from(*q) < bound);
                let (before, after) = (split(-shift), split(QUARTERS - shift));
                let parts = [
                    &quarters[..before],
                    &quarters[before..after],
                    &quarters[after..],
                ];
                for ((day, part), sum) in (-1..).zip(parts).zip(&mut per_local_day) {
                    let to_local = shift - day * QUARTERS;
                    for &(q, value) in part {
                        if let Some(clicks) = usize::try_from(i64::from(q) + to_local)
                            .ok()
                            .and_then(|local| by_local_quarter.get_mut(local))
                        {
                            *clicks += value;
                        }
                        *sum += value;
                    }
                }
            } else {
                // A DST day: each quarter's own offset.
                for &(q, value) in quarters {
                    let local_ms = clock.local_ms(counter.day + i64::from(q) * QUARTER_MS);
                    let local = (local_ms - counter.day).div_euclid(QUARTER_MS);
                    let day = local.div_euclid(QUARTERS);
                    by_local_quarter[(local - day * QUARTERS) as usize] += value;
                    if let Some(sum) = usize::try_from(day + 1)
                        .ok()
                        .and_then(|d| per_local_day.get_mut(d))
                    {
                        *sum += value;
                    }
                }
            }
            let date_index = counter.day.div_euclid(DAY_MS) - first_epoch_day;
            for (offset, clicks) in (-1..).zip(per_local_day).filter(|(_, c)| *c != 0) {
                let Some(day) = usize::try_from(date_index + offset)
                    .ok()
                    .and_then(|i| daily.get_mut(i))
                else {
                    continue;
                };
                add_to(&mut day.by_button, button, clicks);
                day.total += clicks;
                add_to(&mut by_button, button, clicks);
            }
        } else if let Some(bucket) = counter.name.strip_prefix(names::RESPONSE_BUCKET_PREFIX) {
            *buckets.entry(bucket.parse().unwrap_or(0)).or_default() += sum();
        } else {
            *totals.entry(counter.name.as_str()).or_default() += sum();
        }
    }
    let mut hourly = [0i64; 24];
    for (quarter, clicks) in by_local_quarter.into_iter().enumerate() {
        hourly[quarter / 4] += clicks;
    }
    let total = |name: &str| totals.get(name).copied().unwrap_or(0);
    let messages = MessageCounts {
        text: total(names::TEXT),
        media: total(names::MEDIA),
        other: total(names::OTHER),
        total: total(names::TEXT) + total(names::MEDIA) + total(names::OTHER),
    };
    let status = |s: &str| total(&format!("{}{s}", names::STATUS_PREFIX));
    let outbound = total(names::OUTBOUND);
    let count = total(names::RESPONSE_COUNT);
    let histogram: Vec<(i64, i64)> = buckets.into_iter().collect();
    WebhookMetrics {
        window: Window {
            days,
            from: first,
            to: last,
            timezone: tz.name().to_owned(),
        },
        button_clicks: ButtonClicks {
            total: by_button.values().sum(),
            by_button,
            daily,
            hourly,
        },
        messages,
        statuses: StatusCounts {
            sent: status("sent"),
            delivered: status("delivered"),
            read: status("read"),
            failed: status("failed"),
        },
        delivery_success_rate: (outbound > 0)
            .then(|| total(names::REACHED) as f64 / outbound as f64),
        response_time_ms: ResponseTimes {
            count,
            avg: (count > 0).then(|| total(names::RESPONSE_SUM_MS) as f64 / count as f64),
            p50: histogram::quantile(&histogram, 0.50),
            p95: histogram::quantile(&histogram, 0.95),
        },
    }
}

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

/// `data` of `GET /api/webhook/conversations`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversations {
    /// Contacts with an inbound message in the last `active_minutes`.
    pub active_conversations: u64,
    pub active_minutes: u32,
    /// Inbound text messages today (local calendar day).
    pub daily_chat_volume: i64,
    pub conversations: Vec<Conversation>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversation {
    /// Masked.
    pub wa_id: String,
    pub name: Option<String>,
    pub last_activity: DateTime<Utc>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub last_button: Option<String>,
    pub reply_pending: bool,
    pub pending_since: Option<DateTime<Utc>>,
}

impl From<ContactState> for Conversation {
    fn from(contact: ContactState) -> Self {
        let pending = contact.pending_since_ms();
        Self {
            wa_id: mask_phone(&contact.wa_id),
            name: contact.name,
            last_activity: utc_from_ms(contact.last_activity_ms),
            messages_in: contact.inbound,
            messages_out: contact.outbound,
            last_button: contact.last_button,
            reply_pending: pending.is_some(),
            pending_since: pending.map(utc_from_ms),
        }
    }
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
        store.contacts(limit),
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

/// `data` of `GET /api/webhook/stats/realtime`, by WhatsApp time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Realtime {
    pub last_minute: i64,
    pub last_5_minutes: i64,
    pub last_hour: i64,
    /// Oldest first, the current minute last.
    pub per_minute: Vec<MinuteCount>,
    pub last_event_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub count: i64,
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

/// An event as the API and the live feed show it: the contact's number masked,
/// and message ids, which hold it too, replaced by opaque digests.
pub fn public_event(mut event: Event) -> Event {
    if let Some(contact) = event.contact.as_mut() {
        contact.wa_id = mask_phone(&contact.wa_id);
    }
    let mask = |id: &mut String| *id = mask_message_id(id);
    match &mut event.kind {
        EventKind::ButtonClick {
            message_id,
            context_message_id,
            ..
        } => {
            mask(message_id);
            context_message_id.as_mut().map(mask);
        }
        EventKind::ListSelection { message_id, .. }
        | EventKind::TextMessage { message_id, .. }
        | EventKind::MediaMessage { message_id, .. }
        | EventKind::OtherMessage { message_id, .. }
        | EventKind::StatusUpdate { message_id, .. } => mask(message_id),
        EventKind::OtherUpdate { .. } => {}
    }
    event
}

/// `data` of `GET /api/webhook/events/recent`: a page, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecentEvents {
    pub events: Vec<Event>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Body of `GET /health`: no personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub store: StoreHealth,
    pub last_event_at: Option<DateTime<Utc>>,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoreHealth {
    pub reachable: bool,
    pub latency_ms: f64,
}

pub async fn health(store: &dyn Store) -> Health {
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
    Health {
        status: if ping.is_ok() { "healthy" } else { "degraded" },
        store: StoreHealth {
            reachable: ping.is_ok(),
            latency_ms,
        },
        last_event_at: last.and_then(|page| page.events.first().map(|e| e.occurred_at)),
        version: env!("CARGO_PKG_VERSION"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    /// A quarter's cells: its time and `(name, value)` pairs.
    type Cells<'a> = (DateTime<Utc>, &'a [(&'a str, i64)]);

    /// Day rows of quarter cells, as a store reads them.
    fn counters(cells: &[Cells<'_>]) -> Vec<DayCounter> {
        let flat = cells.iter().flat_map(|(at, values)| {
            values
                .iter()
                .map(|(name, value)| (Granularity::Quarter.slot_of(*at), *name, *value))
        });
        DayCounter::gather(flat, i64::MIN, i64::MAX)
    }

    #[test]
    fn half_hour_zone_days_are_exact() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        // 18:29:59Z is 23:59:59 in Kolkata; 18:30Z is the next local day.
        let now = Utc.with_ymd_and_hms(2026, 5, 2, 12, 0, 0).unwrap();
        let before_midnight = Utc.with_ymd_and_hms(2026, 5, 1, 18, 29, 59).unwrap();
        let after_midnight = Utc.with_ymd_and_hms(2026, 5, 1, 18, 30, 0).unwrap();
        let slots = counters(&[
            (before_midnight, &[("click:UNLOCK_CONTENT", 1)]),
            (after_midnight, &[("click:X", 2)]),
        ]);
        let m = webhook_metrics_from(&slots, tz, 2, now);
        assert_eq!(m.button_clicks.daily.len(), 2);
        assert_eq!(m.button_clicks.daily[0].date.to_string(), "2026-05-01");
        assert_eq!(m.button_clicks.daily[0].total, 1);
        assert_eq!(m.button_clicks.daily[1].total, 2);
        assert_eq!(m.button_clicks.hourly[23], 1);
        assert_eq!(m.button_clicks.hourly[0], 2);
        assert_eq!(m.button_clicks.by_button["RETRIEVE_CONTENT"], 0);
        assert_eq!(m.button_clicks.by_button["X"], 2);
        assert_eq!(m.button_clicks.total, 3);
        assert_eq!(
            local_day_start(tz, NaiveDate::from_ymd_opt(2026, 5, 2).unwrap()),
            after_midnight
        );
    }

    #[test]
    fn a_zone_behind_utc_splits_its_days_and_whole_days_may_come_as_totals() {
        let tz: Tz = "America/Bogota".parse().unwrap(); // UTC-5 all year
        let now = Utc.with_ymd_and_hms(2026, 5, 3, 12, 0, 0).unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2026, 5, d, h, 0, 0).unwrap();
        let mut rows = counters(&[
            (at(2, 3), &[("click:X", 1)]),     // 22:00 on May 1 in Bogota
            (at(2, 10), &[("click:X", 2)]),    // 05:00 on May 2
            (at(1, 1), &[(names::TEXT, 100)]), // before the window (May 1 05:00Z)
            (at(1, 6), &[(names::TEXT, 5)]),
        ]);
        // A day wholly inside the window, read as its total alone.
        rows.push(DayCounter {
            day: at(2, 0).timestamp_millis(),
            name: names::TEXT.into(),
            total: 7,
            quarters: Vec::new(),
        });
        let m = webhook_metrics_from(&rows, tz, 3, now);
        let daily: Vec<_> = m.button_clicks.daily.iter().map(|d| d.total).collect();
        assert_eq!(daily, [1, 2, 0]);
        assert_eq!(m.button_clicks.hourly[22], 1);
        assert_eq!(m.button_clicks.hourly[5], 2);
        assert_eq!(m.messages.text, 12);
    }

    #[test]
    fn dst_days_have_their_real_length() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(); // 23 hours long
        let length = local_day_start(tz, day + Duration::days(1)) - local_day_start(tz, day);
        assert_eq!(length, Duration::hours(23));
        // A zone whose clocks skip midnight itself (Chile's DST start).
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let skipped = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        assert_eq!(
            local_day_start(santiago, skipped)
                .with_timezone(&santiago)
                .hour(),
            1
        );
    }

    #[test]
    fn clicks_on_a_dst_day_fall_in_their_local_hours_and_the_window_bounds_them() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 29, 20, 0, 0).unwrap();
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 29, h, m, 0).unwrap();
        let slots = counters(&[
            (at(0, 30), &[("click:X", 1)]),                       // 01:30 CET
            (at(1, 30), &[("click:X", 10)]), // 03:30 CEST: clocks went 02:00 -> 03:00
            (at(21, 45), &[("click:X", 100), (names::TEXT, 1)]), // 23:45 CEST
            (at(22, 0), &[("click:X", 1_000), (names::TEXT, 2)]), // the next local day
            (
                Utc.with_ymd_and_hms(2026, 3, 27, 22, 59, 0).unwrap(),
                &[(names::TEXT, 4)],
            ), // before
        ]);
        let m = webhook_metrics_from(&slots, tz, 2, now);
        assert_eq!(m.button_clicks.hourly[1], 1);
        assert_eq!(m.button_clicks.hourly[3], 10);
        assert_eq!(m.button_clicks.hourly[23], 100);
        assert_eq!(m.button_clicks.daily[1].total, 111);
        assert_eq!(m.button_clicks.by_button["X"], 111);
        assert_eq!(m.messages.text, 1);
    }

    #[test]
    fn ratios_and_response_times() {
        let now = Utc.with_ymd_and_hms(2026, 5, 2, 12, 0, 0).unwrap();
        let b = |ms| format!("{}{}", names::RESPONSE_BUCKET_PREFIX, histogram::bucket(ms));
        let (b1, b2) = (b(1_000), b(3_000));
        let slots = counters(&[(
            now,
            &[
                (names::OUTBOUND, 4),
                (names::REACHED, 3),
                ("status:sent", 4),
                ("status:failed", 1),
                (names::TEXT, 2),
                (names::OTHER, 1),
                (names::RESPONSE_COUNT, 2),
                (names::RESPONSE_SUM_MS, 4_000),
                (&b1, 1),
                (&b2, 1),
            ],
        )]);
        let m = webhook_metrics_from(&slots, chrono_tz::UTC, 7, now);
        assert_eq!(m.delivery_success_rate, Some(0.75));
        assert_eq!(
            m.statuses,
            StatusCounts {
                sent: 4,
                delivered: 0,
                read: 0,
                failed: 1
            }
        );
        assert_eq!(
            m.messages,
            MessageCounts {
                text: 2,
                media: 0,
                other: 1,
                total: 3
            }
        );
        assert_eq!(m.response_time_ms.avg, Some(2_000.0));
        let p95 = m.response_time_ms.p95.unwrap();
        assert!((p95 - 3_000.0).abs() < 60.0, "{p95}");
        let empty = webhook_metrics_from(&[], chrono_tz::UTC, 7, now);
        assert_eq!(
            (empty.delivery_success_rate, empty.response_time_ms.avg),
            (None, None)
        );
        assert_eq!(empty.button_clicks.daily.len(), 7);
    }

    /// Every string of `value`, base64-decoded where it decodes (after the
    /// `wamid.` prefix), must not contain `digits`.
    fn leaks(value: &serde_json::Value, digits: &str) -> Vec<String> {
        use base64::Engine;
        let mut found = Vec::new();
        match value {
            serde_json::Value::String(text) => {
                let bare = text.trim_start_matches("wamid.");
                let engines = [
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE,
                ];
                let decoded = engines
                    .iter()
                    .filter_map(|e| e.decode(bare).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                for candidate in std::iter::once(text.clone()).chain(decoded) {
                    if candidate.contains(digits) {
                        found.push(text.clone());
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|v| found.extend(leaks(v, digits)));
            }
            serde_json::Value::Object(fields) => {
                fields.values().for_each(|v| found.extend(leaks(v, digits)));
            }
            _ => {}
        }
        found
    }

    #[test]
    fn shown_events_hold_no_recoverable_phone_number() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/whatsapp");
        let mut checked = 0;
        for file in std::fs::read_dir(samples).unwrap() {
            let body = std::fs::read(file.unwrap().path()).unwrap();
            for received in crate::event::events_from_body(&body, Utc::now()).unwrap() {
                let Some(wa_id) = received.event.contact.as_ref().map(|c| c.wa_id.clone()) else {
                    continue;
                };
                let shown = serde_json::to_value(public_event(received.event)).unwrap();
                let leaked = leaks(&shown, &wa_id);
                assert!(leaked.is_empty(), "{wa_id} recoverable from {leaked:?}");
                checked += 1;
            }
        }
        assert!(checked >= 5, "only {checked} events with a contact checked");
    }
}
