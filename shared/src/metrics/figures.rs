//! The figures of `GET /api/webhook/metrics`, computed from quarter counters:
//! a pure function of the counters, the zone, the window and the time.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::local_time::{local_window, LocalClock};
use super::views::*;
use crate::counters::{histogram, names, DayCounter, Granularity, DAY_MS, QUARTERS_PER_DAY};
use crate::event::KNOWN_BUTTONS;

/// Adds to a named count without allocating the name when it is there already.
fn add_to(counts: &mut BTreeMap<String, i64>, name: &str, by: i64) {
    match counts.get_mut(name) {
        Some(count) => *count += by,
        None => {
            counts.insert(name.to_owned(), by);
        }
    }
}

const QUARTER_MS: i64 = Granularity::Quarter.millis();
const QUARTERS: i64 = QUARTERS_PER_DAY as i64;

/// Clicks by local weekday (Monday first) and local quarter of the day.
type WeekQuarters = [[i64; QUARTERS_PER_DAY]; 7];

/// The weekday, Monday 0, of the day `epoch_day` days after 1970-01-01 (a Thursday).
fn weekday(epoch_day: i64) -> usize {
    (epoch_day + 3).rem_euclid(7) as usize
}

/// Places a day row's quarters inside `window` in the operators' zone: calls
/// `each(local epoch day, local quarter of that day, value)` for each quarter.
pub(super) fn place_quarters(
    counter: &DayCounter,
    window: &Range<i64>,
    clock: &mut LocalClock,
    mut each: impl FnMut(i64, usize, i64),
) {
    // The row's quarters are in order: the window cuts it by binary search.
    let at_or_after = |time: i64| {
        counter
            .quarters
            .partition_point(|(q, _)| counter.day + i64::from(*q) * QUARTER_MS < time)
    };
    let quarters = &counter.quarters[at_or_after(window.start)..at_or_after(window.end)];
    // One zone offset all day (the rule): a quarter's local place is a shift,
    // with no time-zone lookup per quarter. On a DST day, each quarter's own.
    let shift = clock
        .day_offset_ms(counter.day)
        .filter(|offset| offset % QUARTER_MS == 0)
        .map(|offset| offset / QUARTER_MS);
    let utc_date = counter.day.div_euclid(DAY_MS);
    for &(q, value) in quarters {
        // Quarters since the start of the row's UTC date, in local time.
        let local = match shift {
            Some(shift) => i64::from(q) + shift,
            None => (clock.local_ms(counter.day + i64::from(q) * QUARTER_MS) - counter.day)
                .div_euclid(QUARTER_MS),
        };
        let day = local.div_euclid(QUARTERS);
        each(utc_date + day, (local - day * QUARTERS) as usize, value);
    }
}

/// A day row's count inside `window`: its total when the whole day is inside
/// (a store may then send the total alone; clicks always come with their
/// quarters, for hours and local days), else the sum of its quarters inside.
pub(super) fn count_in(counter: &DayCounter, window: &Range<i64>) -> i64 {
    if window.start <= counter.day && counter.day + DAY_MS <= window.end {
        counter.total
    } else {
        counter
            .slots()
            .filter(|(slot, _)| window.contains(slot))
            .map(|(_, v)| v)
            .sum()
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
    // Clicks by local weekday and quarter of the day, summed into hours at the end.
    let mut by_local_quarter: WeekQuarters = [[0; QUARTERS_PER_DAY]; 7];
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut buckets: BTreeMap<i64, i64> = BTreeMap::new();
    let mut clock = LocalClock::new(tz);
    let first_epoch_day = i64::from(first.to_epoch_days());

    for counter in counters {
        if let Some(button) = counter.name.strip_prefix(names::CLICK_PREFIX) {
            place_quarters(
                counter,
                &window,
                &mut clock,
                |epoch_day, quarter, clicks| {
                    by_local_quarter[weekday(epoch_day)][quarter] += clicks;
                    let Some(day) = usize::try_from(epoch_day - first_epoch_day)
                        .ok()
                        .and_then(|i| daily.get_mut(i))
                    else {
                        return;
                    };
                    add_to(&mut day.by_button, button, clicks);
                    day.total += clicks;
                    add_to(&mut by_button, button, clicks);
                },
            );
        } else if let Some(bucket) = counter.name.strip_prefix(names::RESPONSE_BUCKET_PREFIX) {
            *buckets.entry(bucket.parse().unwrap_or(0)).or_default() += count_in(counter, &window);
        } else {
            *totals.entry(counter.name.as_str()).or_default() += count_in(counter, &window);
        }
    }
    let mut hourly = [0i64; 24];
    let mut weekday_hourly = [[0i64; 24]; 7];
    for (weekday, quarters) in by_local_quarter.iter().enumerate() {
        for (quarter, clicks) in quarters.iter().enumerate() {
            hourly[quarter / 4] += clicks;
            weekday_hourly[weekday][quarter / 4] += clicks;
        }
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
            weekday_hourly,
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

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::super::local_time::local_day_start;
    use super::*;

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
    fn weekday_hours_are_local_and_sum_to_the_hours() {
        // 2026-05-01 is a Friday. In Kolkata (+05:30), 18:29:59Z is Friday 23:59
        // and 18:30Z Saturday 00:00; in Bogota (-05:00), 03:00Z on Saturday is
        // Friday 22:00. Berlin's clocks went forward on Sunday 2026-03-29.
        let at = |m, d, h, min| Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap();
        let rows = counters(&[
            (at(5, 1, 18, 29), &[("click:X", 1)]),
            (at(5, 1, 18, 30), &[("click:X", 2)]),
            (at(5, 2, 3, 0), &[("click:Y", 4)]),
        ]);
        let kolkata =
            webhook_metrics_from(&rows, "Asia/Kolkata".parse().unwrap(), 7, at(5, 3, 12, 0));
        let week = kolkata.button_clicks.weekday_hourly;
        assert_eq!((week[4][23], week[5][0], week[5][8]), (1, 2, 4));
        let bogota =
            webhook_metrics_from(&rows, "America/Bogota".parse().unwrap(), 7, at(5, 3, 12, 0));
        let week = bogota.button_clicks.weekday_hourly;
        assert_eq!(
            (week[4][13], week[4][22]),
            (3, 4),
            "Friday 13:29, 13:30 and 22:00"
        );
        for m in [&kolkata, &bogota] {
            let by_hour: Vec<i64> = (0..24)
                .map(|h| {
                    m.button_clicks
                        .weekday_hourly
                        .iter()
                        .map(|day| day[h])
                        .sum()
                })
                .collect();
            assert_eq!(by_hour, m.button_clicks.hourly);
        }
        let dst = counters(&[(at(3, 29, 1, 30), &[("click:X", 10)])]); // 03:30 CEST, Sunday
        let berlin =
            webhook_metrics_from(&dst, "Europe/Berlin".parse().unwrap(), 2, at(3, 29, 20, 0));
        assert_eq!(berlin.button_clicks.weekday_hourly[6][3], 10);
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
}
