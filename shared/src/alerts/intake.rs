//! What became of each webhook POST, as the alerts read it: the webhook
//! handler tells an [`IntakeObserver`] of each one.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::rules::RECENT;

/// A webhook POST's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Stored (200), with what it held.
    Accepted(Figures),
    /// Refused (4xx): a bad or missing signature, a body that is not a
    /// webhook, or one too large.
    Refused,
    /// Answered 5xx: the store failed, and Meta will retry.
    Failed,
}

/// What an accepted delivery held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Events stored now, and those already stored before.
    pub stored: u64,
    pub duplicates: u64,
    /// Newly stored `sent` and `failed` statuses: an outbound message
    /// announces itself by one of them first.
    pub outbound: u64,
    /// Newly stored `failed` statuses.
    pub failed: u64,
}

/// Told of each webhook POST as it is answered. It must not block: it runs
/// on the request's path.
pub trait IntakeObserver: Send + Sync {
    fn observe(&self, at: DateTime<Utc>, answer: &Answer);
}

/// The local stack's count of webhook answers, which its alert evaluator reads.
#[derive(Debug, Default)]
pub struct IntakeTally(Mutex<Tally>);

#[derive(Debug, Default)]
struct Tally {
    /// When it started counting: before, it knows nothing.
    started: Option<DateTime<Utc>>,
    last_accepted: Option<DateTime<Utc>>,
    /// The times of recent refusals and 5xx answers, oldest first.
    refused: VecDeque<DateTime<Utc>>,
    failed: VecDeque<DateTime<Utc>>,
}

/// What the tally holds at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub last_accepted: Option<DateTime<Utc>>,
    /// Refusals in the last [`RECENT`], since the latest accepted POST.
    pub refused: u64,
    /// 5xx answers in the last [`RECENT`].
    pub failed: u64,
    /// Whether it knows every 5xx of the last [`RECENT`] (it has counted
    /// that long), and every refusal since the latest accepted POST (that
    /// too, or one came since it started): until then, after a start, no
    /// 5xx or refusal is no news.
    pub failures_known: bool,
    pub refusals_known: bool,
}

impl IntakeTally {
    /// A tally that starts counting at `started`, from the latest accepted
    /// POST a store remembers.
    pub fn new(started: DateTime<Utc>, last_accepted: Option<DateTime<Utc>>) -> Self {
        Self(Mutex::new(Tally {
            started: Some(started),
            last_accepted,
            ..Tally::default()
        }))
    }

    pub fn read(&self, at: DateTime<Utc>) -> Reading {
        let mut tally = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tally.forget_before(at - RECENT);
        let since = tally.last_accepted;
        let whole = tally.started.is_none_or(|started| at - started >= RECENT);
        Reading {
            last_accepted: tally.last_accepted,
            refused: tally
                .refused
                .iter()
                .filter(|t| since.is_none_or(|s| **t > s))
                .count() as u64,
            failed: tally.failed.len() as u64,
            failures_known: whole,
            refusals_known: whole
                || tally
                    .started
                    .zip(tally.last_accepted)
                    .is_some_and(|(started, last)| last >= started),
        }
    }
}

impl Tally {
    fn forget_before(&mut self, cutoff: DateTime<Utc>) {
        for times in [&mut self.refused, &mut self.failed] {
            while times.front().is_some_and(|t| *t < cutoff) {
                times.pop_front();
            }
        }
    }
}

impl IntakeObserver for IntakeTally {
    fn observe(&self, at: DateTime<Utc>, answer: &Answer) {
        let mut tally = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match answer {
            Answer::Accepted(_) => {
                tally.last_accepted = Some(tally.last_accepted.map_or(at, |last| last.max(at)));
            }
            Answer::Refused => tally.refused.push_back(at),
            Answer::Failed => tally.failed.push_back(at),
        }
        // Bounded whatever the rate: only the last few minutes matter.
        tally.forget_before(at - RECENT);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn refusals_count_for_five_minutes_and_until_a_delivery_is_accepted() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap();
        let tally = IntakeTally::new(t0, None);
        assert_eq!(
            tally.read(t0),
            Reading {
                last_accepted: None,
                refused: 0,
                failed: 0,
                failures_known: false,
                refusals_known: false,
            }
        );
        for seconds in 0..3 {
            tally.observe(t0 + Duration::seconds(seconds), &Answer::Refused);
        }
        tally.observe(t0, &Answer::Failed);
        let at = t0 + Duration::seconds(10);
        assert_eq!((tally.read(at).refused, tally.read(at).failed), (3, 1));
        // Five minutes on, they are forgotten.
        let later = t0 + RECENT + Duration::seconds(3);
        assert_eq!(
            (tally.read(later).refused, tally.read(later).failed),
            (0, 0)
        );
        assert!(tally.read(later).failures_known && !tally.read(at).failures_known);
        assert!(tally.read(later).refusals_known && !tally.read(at).refusals_known);

        // A delivery accepted after refusals: the secret works again.
        let tally = IntakeTally::new(t0, Some(t0 - Duration::days(1)));
        tally.observe(t0, &Answer::Refused);
        assert_eq!(
            tally.read(t0).refused,
            1,
            "an older acceptance resets nothing"
        );
        tally.observe(
            t0 + Duration::seconds(1),
            &Answer::Accepted(Figures::default()),
        );
        let reading = tally.read(t0 + Duration::seconds(2));
        assert_eq!(reading.refused, 0);
        assert!(
            reading.refusals_known,
            "none since the delivery accepted now"
        );
        assert!(!reading.failures_known);
        assert_eq!(reading.last_accepted, Some(t0 + Duration::seconds(1)));
        // Out of order (concurrent requests): the latest acceptance stays.
        tally.observe(t0, &Answer::Accepted(Figures::default()));
        assert_eq!(
            tally.read(t0 + Duration::seconds(2)).last_accepted,
            Some(t0 + Duration::seconds(1))
        );
    }
}
