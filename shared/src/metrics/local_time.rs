//! Local calendar days and hours in the operators' zone (`PULSE_TIMEZONE`),
//! over counters kept by UTC quarter.

use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::counters::{utc_from_ms, DAY_MS};

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
pub(super) fn local_window(
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
pub(super) struct LocalClock {
    tz: Tz,
    day: Option<i64>,
    /// The day's offset, when the same at its start and end.
    offset_ms: Option<i64>,
}

impl LocalClock {
    pub(super) fn new(tz: Tz) -> Self {
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
    pub(super) fn day_offset_ms(&mut self, day: i64) -> Option<i64> {
        if self.day != Some(day) {
            let (start, end) = (self.lookup(day), self.lookup(day + DAY_MS - 1));
            self.day = Some(day);
            self.offset_ms = (start == end).then_some(start);
        }
        self.offset_ms
    }

    /// The slot as local wall-clock time, in milliseconds since the local epoch.
    pub(super) fn local_ms(&mut self, slot: i64) -> i64 {
        let day = slot.div_euclid(DAY_MS) * DAY_MS;
        slot + self.day_offset_ms(day).unwrap_or_else(|| self.lookup(slot))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

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
}
