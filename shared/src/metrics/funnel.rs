//! The figures of `GET /api/webhook/funnel` and `GET /api/webhook/failures`,
//! from the funnel's quarter counters ([`crate::funnel`]): pure functions of the
//! counters, the zone, the window and the time.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::figures::{count_in, place_quarters};
use super::local_time::{local_window, LocalClock};
use super::views::*;
use crate::counters::{histogram, DayCounter};
use crate::event::KNOWN_BUTTONS;
use crate::funnel::{names, NO_CODE};

/// The window's days and its bounds in Unix ms.
struct Days {
    window: Window,
    range: Range<i64>,
    first_epoch_day: i64,
    clock: LocalClock,
}

impl Days {
    fn new(tz: Tz, days: u32, now: DateTime<Utc>) -> Self {
        let (first, last, start, end) = local_window(tz, days, now);
        Self {
            window: Window {
                days,
                from: first,
                to: last,
                timezone: tz.name().to_owned(),
            },
            range: start.timestamp_millis()..end.timestamp_millis(),
            first_epoch_day: i64::from(first.to_epoch_days()),
            clock: LocalClock::new(tz),
        }
    }

    fn dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        (0..self.window.days).map(|d| self.window.from + Duration::days(i64::from(d)))
    }

    /// Adds a row's quarters to `daily`, by local day of the window.
    fn place(&mut self, counter: &DayCounter, daily: &mut [i64]) {
        let first = self.first_epoch_day;
        place_quarters(
            counter,
            &self.range,
            &mut self.clock,
            |epoch_day, _, value| {
                if let Some(day) = usize::try_from(epoch_day - first)
                    .ok()
                    .and_then(|i| daily.get_mut(i))
                {
                    *day += value;
                }
            },
        );
    }
}

fn stage_mut<'a>(stages: &'a mut Stages, stage: &str) -> Option<&'a mut i64> {
    Some(match stage {
        "sent" => &mut stages.sent,
        "delivered" => &mut stages.delivered,
        "read" => &mut stages.read,
        "clicked" => &mut stages.clicked,
        "failed" => &mut stages.failed,
        _ => return None,
    })
}

fn durations(buckets: &BTreeMap<i64, i64>) -> Durations {
    let pairs: Vec<(i64, i64)> = buckets.iter().map(|(b, c)| (*b, *c)).collect();
    Durations {
        count: buckets.values().sum(),
        p50: histogram::quantile(&pairs, 0.50),
        p95: histogram::quantile(&pairs, 0.95),
    }
}

fn add_bucket(buckets: &mut BTreeMap<i64, i64>, bucket: &str, by: i64) {
    *buckets.entry(bucket.parse().unwrap_or(0)).or_default() += by;
}

/// The funnel of `days` local calendar days (today included).
pub fn funnel_from(counters: &[DayCounter], tz: Tz, days: u32, now: DateTime<Utc>) -> Funnel {
    let mut place = Days::new(tz, days, now);
    let width = days as usize;
    let mut daily: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    let mut by_button: BTreeMap<String, i64> =
        KNOWN_BUTTONS.iter().map(|b| (b.to_string(), 0)).collect();
    let (mut unattributed, mut answer_clicks, mut answered, mut answered_delivered) = (0, 0, 0, 0);
    let mut answer_sum = 0;
    // Contacts with a message at each level in the window, and all of them.
    let mut at_level = [0; 4];
    let mut active = 0;
    let (mut to_read, mut to_click, mut to_answer) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for counter in counters {
        let Some(name) = counter.name.strip_prefix(names::PREFIX) else {
            continue;
        };
        let count = || count_in(counter, &place.range);
        if let Some(button) = counter.name.strip_prefix(names::CLICK) {
            *by_button.entry(button.to_owned()).or_default() += count();
        } else if let Some(bucket) = counter.name.strip_prefix(names::TIME_TO_READ) {
            add_bucket(&mut to_read, bucket, count());
        } else if let Some(bucket) = counter.name.strip_prefix(names::TIME_TO_CLICK) {
            add_bucket(&mut to_click, bucket, count());
        } else if let Some(bucket) = counter.name.strip_prefix(names::ANSWER_BUCKET) {
            add_bucket(&mut to_answer, bucket, count());
        } else if counter.name == names::UNATTRIBUTED {
            unattributed += count();
        } else if counter.name == names::ANSWER_CLICKS {
            answer_clicks += count();
        } else if counter.name == names::ANSWERED {
            answered += count();
        } else if counter.name == names::ANSWER_DELIVERED {
            answered_delivered += count();
        } else if counter.name == names::ANSWER_SUM_MS {
            answer_sum += count();
        } else if counter.name == names::ACTIVE_CONTACTS {
            active += count();
        } else if let Some(level) = names::LEVELS.iter().position(|l| *l == counter.name) {
            at_level[level] += count();
        } else if let Some((stage, category)) = name.split_once(':') {
            if names::STAGES.contains(&stage) {
                let row = daily
                    .entry((stage, category))
                    .or_insert_with(|| vec![0; width]);
                place.place(counter, row);
            }
        }
    }

    let mut stages = Stages::default();
    let mut by_category: BTreeMap<String, Stages> = BTreeMap::new();
    let mut per_day = vec![Stages::default(); width];
    for ((stage, category), row) in &daily {
        let sum: i64 = row.iter().sum();
        for (target, by) in [
            (&mut stages, sum),
            (by_category.entry((*category).to_owned()).or_default(), sum),
        ] {
            *stage_mut(target, stage).expect("a known stage") += by;
        }
        for (day, by) in per_day.iter_mut().zip(row) {
            *stage_mut(day, stage).expect("a known stage") += by;
        }
    }
    let rate = |count: i64| (stages.sent > 0).then(|| count as f64 / stages.sent as f64);
    let answer_ms = durations(&to_answer);
    Funnel {
        daily: place
            .dates()
            .zip(per_day)
            .map(|(date, stages)| DailyStages { date, stages })
            .collect(),
        window: place.window,
        rates: FunnelRates {
            delivered: rate(stages.delivered),
            read: rate(stages.read),
            clicked: rate(stages.clicked),
        },
        stages,
        by_category,
        clicks: FunnelClicks {
            total: by_button.values().sum(),
            by_button,
            unattributed,
        },
        time_to_read_ms: durations(&to_read),
        time_to_click_ms: durations(&to_click),
        answers: Answers {
            clicks: answer_clicks,
            answered,
            answered_delivered,
            answer_ms: ResponseTimes {
                count: answer_ms.count,
                avg: (answer_ms.count > 0).then(|| answer_sum as f64 / answer_ms.count as f64),
                p50: answer_ms.p50,
                p95: answer_ms.p95,
            },
        },
        contacts: Segments {
            engaged: at_level[3],
            reading: at_level[2] - at_level[3],
            unread: at_level[1] - at_level[2],
            unreached: at_level[0] - at_level[1],
            none: active - at_level[0],
        },
    }
}

/// The failures of `days` local calendar days (today included), most first.
pub fn failures_from(counters: &[DayCounter], tz: Tz, days: u32, now: DateTime<Utc>) -> Failures {
    struct Code {
        /// (latest quarter with it, title).
        title: Option<(i64, String)>,
        daily: Vec<i64>,
        contacts: i64,
    }
    let mut place = Days::new(tz, days, now);
    let width = days as usize;
    let mut codes: BTreeMap<String, Code> = BTreeMap::new();
    fn code<'a>(codes: &'a mut BTreeMap<String, Code>, name: &str, width: usize) -> &'a mut Code {
        codes.entry(name.to_owned()).or_insert_with(|| Code {
            title: None,
            daily: vec![0; width],
            contacts: 0,
        })
    }
    for counter in counters {
        if let Some(rest) = counter.name.strip_prefix(names::FAILURE) {
            let (name, title) = rest.split_once(':').unwrap_or((rest, ""));
            let entry = code(&mut codes, name, width);
            place.place(counter, &mut entry.daily);
            let latest = counter
                .slots()
                .filter(|(slot, value)| place.range.contains(slot) && *value > 0)
                .map(|(slot, _)| slot)
                .max();
            if let (Some(at), false) = (latest, title.is_empty()) {
                if entry.title.as_ref().is_none_or(|(held, _)| at > *held) {
                    entry.title = Some((at, title.to_owned()));
                }
            }
        } else if let Some(name) = counter.name.strip_prefix(names::FAILED_CONTACTS) {
            code(&mut codes, name, width).contacts += count_in(counter, &place.range);
        }
    }
    let mut codes: Vec<FailureCode> = codes
        .into_iter()
        .map(|(name, code)| FailureCode {
            code: (name != NO_CODE).then(|| name.parse().ok()).flatten(),
            title: code.title.map(|(_, title)| title),
            messages: code.daily.iter().sum(),
            contacts: code.contacts,
            daily: place
                .dates()
                .zip(&code.daily)
                .map(|(date, messages)| DailyFailures {
                    date,
                    messages: *messages,
                })
                .collect(),
        })
        .filter(|code| code.messages > 0)
        .collect();
    codes.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.code.cmp(&b.code)));
    Failures {
        total: codes.iter().map(|c| c.messages).sum(),
        codes,
        window: place.window,
    }
}
