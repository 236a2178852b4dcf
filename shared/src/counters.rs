//! Pre-aggregated counters: how events become numbers a metrics query can read
//! without touching the events themselves.
//!
//! Counters live in time slots. Quarter slots (15 minutes, UTC-aligned) carry every
//! metric: since every time zone's offset is a multiple of 15 minutes, any local
//! calendar day or hour — `Asia/Kolkata`'s, Nepal's, a DST day — is an exact union of
//! quarters. Minute slots carry only event totals, for the realtime view.
//!
//! Quarters are read back a UTC day at a time ([`DayCounter`]): a 30-day window is
//! then about 31 rows a counter however busy it was, instead of 2 880. Each row
//! also carries its total, so a day wholly inside the window is one number to a
//! reader that needs no more than totals of that counter.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Unix milliseconds to a time (the epoch for the impossible out-of-range case).
pub fn utc_from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A counter's time resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    Quarter,
    Minute,
}

impl Granularity {
    pub const fn millis(self) -> i64 {
        match self {
            Granularity::Quarter => 15 * 60_000,
            Granularity::Minute => 60_000,
        }
    }

    /// The start of the slot that holds `at`, in Unix milliseconds.
    pub fn slot_of(self, at: DateTime<Utc>) -> i64 {
        at.timestamp_millis().div_euclid(self.millis()) * self.millis()
    }

    pub const fn code(self) -> &'static str {
        match self {
            Granularity::Quarter => "Q",
            Granularity::Minute => "M",
        }
    }
}

/// One counter cell: a slot and a counter name within it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    pub granularity: Granularity,
    /// Slot start, Unix milliseconds.
    pub slot: i64,
    pub name: String,
}

/// Additions to counters, merged per cell; zero sums are dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deltas(BTreeMap<CounterKey, i64>);

impl Deltas {
    pub fn add(
        &mut self,
        granularity: Granularity,
        at: DateTime<Utc>,
        name: impl Into<String>,
        by: i64,
    ) {
        let key = CounterKey {
            granularity,
            slot: granularity.slot_of(at),
            name: name.into(),
        };
        self.add_to(key, by);
    }

    /// Adds to one cell, dropping it when it sums to zero (without copying its
    /// key: the funnel adds and takes back many cells per event).
    fn add_to(&mut self, key: CounterKey, by: i64) {
        match self.0.entry(key) {
            Entry::Occupied(mut cell) => {
                *cell.get_mut() += by;
                if *cell.get() == 0 {
                    cell.remove();
                }
            }
            Entry::Vacant(cell) => {
                if by != 0 {
                    cell.insert(by);
                }
            }
        }
    }

    /// Counts a state's change: what it adds `after` less what it added
    /// `before`, only the cells that differ.
    pub fn add_change(&mut self, before: Contribution, after: Contribution) {
        let (before, after) = (before.merged(), after.merged());
        let (mut b, mut a) = (before.into_iter().peekable(), after.into_iter().peekable());
        loop {
            let order = match (b.peek(), a.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => (x.0, &x.1).cmp(&(y.0, &y.1)),
            };
            let (slot, name, by) = match order {
                std::cmp::Ordering::Less => {
                    let (slot, name, by) = b.next().expect("peeked");
                    (slot, name, -by)
                }
                std::cmp::Ordering::Greater => a.next().expect("peeked"),
                std::cmp::Ordering::Equal => {
                    let (slot, name, was) = b.next().expect("peeked");
                    let (_, _, now) = a.next().expect("peeked");
                    (slot, name, now - was)
                }
            };
            if by != 0 {
                let key = CounterKey {
                    granularity: Granularity::Quarter,
                    slot,
                    name: name.into_owned(),
                };
                self.add_to(key, by);
            }
        }
    }

    /// Adds every cell of `other` to this one.
    pub fn merge(&mut self, other: Deltas) {
        for (key, by) in other.0 {
            self.add_to(key, by);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&CounterKey, i64)> {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    /// The deltas grouped by slot, as the stores write them (one item or row group per slot).
    pub fn by_slot(&self) -> BTreeMap<(Granularity, i64), Vec<(&str, i64)>> {
        let mut slots: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for (key, value) in &self.0 {
            slots
                .entry((key.granularity, key.slot))
                .or_default()
                .push((key.name.as_str(), *value));
        }
        slots
    }

    /// How many slots the deltas touch (items or row groups a store writes).
    pub fn slots(&self) -> usize {
        self.slot_keys().count()
    }

    /// How many slots `other` touches that these deltas do not: at most how many
    /// more a store writes once it is merged in.
    pub fn new_slots(&self, other: &Deltas) -> usize {
        let mine: Vec<_> = self.slot_keys().collect();
        other
            .slot_keys()
            .filter(|slot| mine.binary_search(slot).is_err())
            .count()
    }

    /// Each (granularity, slot) once, in order.
    fn slot_keys(&self) -> impl Iterator<Item = (Granularity, i64)> + '_ {
        let mut last = None;
        self.0.keys().filter_map(move |k| {
            let slot = (k.granularity, k.slot);
            (last.replace(slot) != Some(slot)).then_some(slot)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, granularity: Granularity, at: DateTime<Utc>, name: &str) -> i64 {
        let key = CounterKey {
            granularity,
            slot: granularity.slot_of(at),
            name: name.into(),
        };
        self.0.get(&key).copied().unwrap_or(0)
    }
}

/// What one piece of state adds to the quarter counters: `(slot, name, value)`
/// cells, unmerged. A state's change is then counted as what it adds after
/// minus what it added before ([`Deltas::add_change`]): usually a few cells,
/// however many the state adds in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contribution(Vec<(i64, std::borrow::Cow<'static, str>, i64)>);

impl Contribution {
    /// Adds `by` to `name` in the quarter of `at_ms`.
    pub fn add(&mut self, at_ms: i64, name: impl Into<std::borrow::Cow<'static, str>>, by: i64) {
        let slot = at_ms.div_euclid(Granularity::Quarter.millis()) * Granularity::Quarter.millis();
        self.0.push((slot, name.into(), by));
    }

    /// The cells merged: sorted, one per slot and name, zeros left out.
    fn merged(mut self) -> Vec<(i64, std::borrow::Cow<'static, str>, i64)> {
        self.0
            .sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut merged: Vec<(i64, std::borrow::Cow<'static, str>, i64)> =
            Vec::with_capacity(self.0.len());
        for (slot, name, by) in self.0 {
            match merged.last_mut() {
                Some(last) if last.0 == slot && last.1 == name => last.2 += by,
                _ => merged.push((slot, name, by)),
            }
        }
        merged.retain(|cell| cell.2 != 0);
        merged
    }
}

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 86_400_000;
/// Quarters in a UTC day.
pub const QUARTERS_PER_DAY: usize = 96;

/// One counter's quarters within one UTC day, as a store reads them back for a
/// time range.
#[derive(Debug, Clone, PartialEq)]
pub struct DayCounter {
    /// The UTC day's start, Unix milliseconds.
    pub day: i64,
    pub name: String,
    /// The sum of the day's quarters inside the range.
    pub total: i64,
    /// (quarter of the day, 0 to 95; value) inside the range, in order, zeros left
    /// out. Always there for the names a read asks quarters of; otherwise a store
    /// may leave them out (empty) for a day wholly inside the range, where
    /// `total` says all.
    pub quarters: Vec<(u8, i64)>,
}

impl DayCounter {
    /// A row from its quarters, its total summed from them.
    pub fn new(day: i64, name: String, quarters: Vec<(u8, i64)>) -> Self {
        Self {
            day,
            name,
            total: quarters.iter().map(|(_, v)| v).sum(),
            quarters,
        }
    }

    /// Each quarter as (slot start in Unix milliseconds, value).
    pub fn slots(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        let quarter = Granularity::Quarter.millis();
        self.quarters
            .iter()
            .map(move |&(q, value)| (self.day + i64::from(q) * quarter, value))
    }

    /// Quarter cells `(slot, name, value)` gathered into a row per day and name,
    /// keeping only the slots in `[from_ms, to_ms)` and the non-zero sums.
    pub fn gather<'a>(
        cells: impl IntoIterator<Item = (i64, &'a str, i64)>,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<DayCounter> {
        let mut days: BTreeMap<(i64, &str), BTreeMap<u8, i64>> = BTreeMap::new();
        for (slot, name, value) in cells {
            if slot < from_ms || slot >= to_ms {
                continue;
            }
            let (day, quarter) = day_and_quarter(slot);
            *days
                .entry((day, name))
                .or_default()
                .entry(quarter)
                .or_default() += value;
        }
        days.into_iter()
            .map(|((day, name), quarters)| {
                let held = quarters.into_iter().filter(|(_, v)| *v != 0).collect();
                DayCounter::new(day, name.to_owned(), held)
            })
            .filter(|c| !c.quarters.is_empty())
            .collect()
    }
}

/// A quarter slot's UTC day start and its index within that day.
pub fn day_and_quarter(slot: i64) -> (i64, u8) {
    let day = slot.div_euclid(DAY_MS) * DAY_MS;
    let quarter = (slot - day) / Granularity::Quarter.millis();
    (day, quarter as u8)
}

/// One slot's counters as read back from a store (summed over its shards).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotCounters {
    pub slot: i64,
    pub values: BTreeMap<String, i64>,
}

impl SlotCounters {
    pub fn get(&self, name: &str) -> i64 {
        self.values.get(name).copied().unwrap_or(0)
    }
}

/// Counter names. One place, so that writers and readers agree.
pub mod names {
    pub const EVENTS: &str = "events";
    pub const CLICK_PREFIX: &str = "click:";
    pub const TEXT: &str = "messages:text";
    pub const MEDIA: &str = "messages:media";
    pub const OTHER: &str = "messages:other";
    pub const STATUS_PREFIX: &str = "status:";
    /// Outbound messages with any status, counted once, at their earliest status.
    pub const OUTBOUND: &str = "outbound:any";
    /// Outbound messages that reached delivered or read, at the earliest of those.
    pub const REACHED: &str = "outbound:reached";
    pub const RESPONSE_COUNT: &str = "rt:count";
    pub const RESPONSE_SUM_MS: &str = "rt:sum_ms";
    pub const RESPONSE_BUCKET_PREFIX: &str = "rt:b:";

    pub fn events_of_type(type_name: &str) -> String {
        format!("events:{type_name}")
    }
}

/// Log-scale histogram buckets for response times, so that percentiles can be read
/// from summed counters. A bucket's representative value is within 2 % of every
/// value it holds (the DDSketch mapping).
pub mod histogram {
    const RELATIVE_ACCURACY: f64 = 0.02;

    fn gamma() -> f64 {
        (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
    }

    /// The bucket of a duration in milliseconds; 0 holds everything under 1 ms.
    pub fn bucket(millis: i64) -> i64 {
        if millis < 1 {
            return 0;
        }
        ((millis as f64).ln() / gamma().ln()).ceil() as i64 + 1
    }

    /// The value that stands for a bucket.
    pub fn representative(bucket: i64) -> f64 {
        if bucket <= 0 {
            return 0.0;
        }
        let g = gamma();
        2.0 * g.powi((bucket - 1) as i32) / (g + 1.0)
    }

    /// The `q`-quantile (0..=1) of a histogram given as (bucket, count) pairs.
    pub fn quantile(buckets: &[(i64, i64)], q: f64) -> Option<f64> {
        let mut sorted: Vec<_> = buckets.iter().copied().filter(|(_, c)| *c > 0).collect();
        sorted.sort_unstable();
        let total: i64 = sorted.iter().map(|(_, c)| c).sum();
        if total == 0 {
            return None;
        }
        let rank = (q * (total - 1) as f64).round() as i64;
        let mut seen = 0;
        for (bucket, count) in sorted {
            seen += count;
            if seen > rank {
                return Some(representative(bucket));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn slots_are_counted_once_and_new_ones_against_others() {
        let at = |minute: i64| Utc.timestamp_opt(1_767_225_600 + 60 * minute, 0).unwrap();
        let mut held = Deltas::default();
        held.add(Granularity::Quarter, at(0), "a", 1);
        held.add(Granularity::Quarter, at(1), "b", 1); // the same quarter
        held.add(Granularity::Minute, at(1), "a", 1);
        assert_eq!(held.slots(), 2);
        let mut more = Deltas::default();
        more.add(Granularity::Quarter, at(2), "c", 1); // held's quarter
        more.add(Granularity::Quarter, at(20), "c", 1); // a new quarter
        more.add(Granularity::Minute, at(2), "a", 1); // a new minute
        more.add(Granularity::Minute, at(1), "z", 1); // held's minute
        assert_eq!(held.new_slots(&more), 2);
        held.merge(more);
        assert_eq!(held.slots(), 4);
    }

    #[test]
    fn slots_align_to_utc_quarters_and_minutes() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 44, 59).unwrap();
        assert_eq!(
            Granularity::Quarter.slot_of(at),
            Utc.with_ymd_and_hms(2026, 3, 1, 10, 30, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            Granularity::Minute.slot_of(at),
            Utc.with_ymd_and_hms(2026, 3, 1, 10, 44, 0)
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn deltas_merge_and_drop_zeros() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let mut d = Deltas::default();
        d.add(Granularity::Quarter, at, "a", 2);
        d.add(
            Granularity::Quarter,
            at + chrono::Duration::minutes(5),
            "a",
            1,
        );
        d.add(Granularity::Quarter, at, "b", 1);
        d.add(Granularity::Quarter, at, "b", -1);
        assert_eq!(d.get(Granularity::Quarter, at, "a"), 3);
        assert_eq!(d.iter().count(), 1);
    }

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let values: Vec<i64> = (1..=1000).map(|i| i * 37).collect();
        let mut buckets = BTreeMap::new();
        for v in &values {
            *buckets.entry(histogram::bucket(*v)).or_insert(0) += 1;
        }
        let pairs: Vec<_> = buckets.into_iter().collect();
        for (q, exact) in [(0.5, 500.0 * 37.0), (0.95, 950.0 * 37.0)] {
            let got = histogram::quantile(&pairs, q).unwrap();
            assert!((got - exact).abs() / exact < 0.03, "q{q}: {got} vs {exact}");
        }
        assert_eq!(histogram::quantile(&[], 0.5), None);
        assert_eq!(histogram::bucket(0), 0);
        assert_eq!(histogram::quantile(&[(0, 3)], 0.5), Some(0.0));
    }
}
