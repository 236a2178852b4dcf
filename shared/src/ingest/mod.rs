//! What recording events means, free of any store.
//!
//! [`apply`] is the whole business logic of ingestion as a pure function: an event
//! and the prior state of its contact and outbound message in, the new state and
//! the counter deltas out. A [`Ledger`] runs it over a delivery (or a group of
//! them): given the state its events touch, loaded once, it threads that state
//! through them in order and merges their counter deltas per cell, so that a store
//! writes the events, the final state and the deltas as one unit. The stores
//! ([`crate::store`]) decide which events are new and how the unit is written; a
//! redelivery changes nothing, and two racing deliveries of the same update count
//! once.

mod ledger;
mod state;
mod timeline;

pub use ledger::Ledger;
pub use state::{ContactState, MessageState};
pub use timeline::Timeline;

use serde::Serialize;

use crate::counters::{histogram, names, utc_from_ms as utc, Contribution, Deltas, Granularity};
use crate::event::{Event, EventKind, ReceivedEvent};
use crate::funnel::{self, message_counts, Failure};
use state::{earliest, status_rank};
use timeline::Side;

/// The state an event reads and writes, as loaded from the store (borrowed:
/// [`apply`] copies what it changes, once).
#[derive(Debug, Clone, Copy, Default)]
pub struct Prior<'a> {
    pub contact: Option<&'a ContactState>,
    pub message: Option<&'a MessageState>,
}

/// What recording an event changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub deltas: Deltas,
    pub contact: Option<ContactState>,
    pub message: Option<MessageState>,
}

/// Keys of the state an event touches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StateKeys {
    pub contact: Option<String>,
    pub message: Option<String>,
}

impl StateKeys {
    pub fn of(event: &Event) -> Self {
        let message = match &event.kind {
            EventKind::StatusUpdate { message_id, .. } => Some(message_id.clone()),
            EventKind::ButtonClick {
                context_message_id, ..
            } => context_message_id.clone(),
            _ => None,
        };
        Self {
            contact: event.contact.as_ref().map(|c| c.wa_id.clone()),
            message,
        }
    }
}

/// The business logic of recording one (new) event.
pub fn apply(event: &Event, prior: Prior<'_>) -> Effects {
    use Granularity::{Minute, Quarter};
    let at = event.occurred_at;
    let ms = at.timestamp_millis();
    let mut deltas = Deltas::default();
    deltas.add(Quarter, at, names::EVENTS, 1);
    deltas.add(
        Quarter,
        at,
        names::events_of_type(event.kind.type_name()),
        1,
    );
    deltas.add(Minute, at, names::EVENTS, 1);

    let mut contact = event.contact.as_ref().map(|c| {
        let mut state = prior.contact.cloned().unwrap_or_else(|| ContactState {
            wa_id: c.wa_id.clone(),
            ..Default::default()
        });
        // An inbound profile name is the freshest; otherwise keep the one we have.
        if (event.kind.is_inbound() && c.name.is_some()) || state.name.is_none() {
            state.name = c.name.clone();
        }
        state.last_activity_ms = state.last_activity_ms.max(ms);
        state
    });
    let mut message = None;

    match &event.kind {
        EventKind::ButtonClick {
            button_id,
            context_message_id,
            ..
        } => {
            deltas.add(
                Quarter,
                at,
                format!("{}{button_id}", names::CLICK_PREFIX),
                1,
            );
            match context_message_id {
                Some(clicked) => {
                    let mut state = prior.message.cloned().unwrap_or_default();
                    // A set: the same click applied again (a state rebuilt
                    // after a crash) changes nothing.
                    let click = (ms, button_id.clone());
                    if let Err(position) = state.clicks.binary_search(&click) {
                        state.clicks.insert(position, click);
                    }
                    if let Some(c) = contact.as_mut() {
                        c.engagement.add_click(funnel::Click {
                            at_ms: ms,
                            tag: funnel::message_tag(clicked),
                        });
                        // The click raises the message's level among the sends.
                        if let Some(send) = state.send(clicked) {
                            c.engagement.put_send(send);
                        }
                    }
                    message = Some(state);
                }
                None => deltas.add(Quarter, at, funnel::names::UNATTRIBUTED, 1),
            }
        }
        EventKind::TextMessage { .. } => deltas.add(Quarter, at, names::TEXT, 1),
        EventKind::MediaMessage { .. } => deltas.add(Quarter, at, names::MEDIA, 1),
        EventKind::ListSelection { .. } | EventKind::OtherMessage { .. } => {
            deltas.add(Quarter, at, names::OTHER, 1);
        }
        EventKind::StatusUpdate {
            message_id,
            status,
            error,
            category,
        } => {
            deltas.add(Quarter, at, format!("{}{status}", names::STATUS_PREFIX), 1);
            let mut state = prior.message.cloned().unwrap_or_default();
            match state.first_status_ms {
                None => {
                    deltas.add(Quarter, at, names::OUTBOUND, 1);
                    if let Some(c) = contact.as_mut() {
                        c.outbound += 1;
                    }
                    state.recipient = event.contact.as_ref().map(|c| c.wa_id.clone());
                    state.first_status_ms = Some(ms);
                }
                Some(first) if ms < first => {
                    move_count(&mut deltas, names::OUTBOUND, first, ms);
                    state.first_status_ms = Some(ms);
                }
                Some(_) => {}
            }
            if state.status.is_empty() || status_rank(status) > status_rank(&state.status) {
                state.status = status.clone();
            }
            match status.as_str() {
                "delivered" | "read" => {
                    match state.reached_ms {
                        None => deltas.add(Quarter, at, names::REACHED, 1),
                        Some(earlier) if ms < earlier => {
                            move_count(&mut deltas, names::REACHED, earlier, ms);
                        }
                        Some(_) => {}
                    }
                    state.reached_ms = earliest(state.reached_ms, ms);
                    if status == "read" {
                        state.read_ms = earliest(state.read_ms, ms);
                        if let Some(c) = contact.as_mut() {
                            c.last_read_ms = c.last_read_ms.max(Some(ms));
                        }
                    }
                }
                "failed" => {
                    let failure = Failure {
                        at_ms: ms,
                        code: error.as_ref().and_then(|e| e.code),
                        title: error.as_ref().and_then(|e| e.title.clone()),
                    };
                    if let Some(c) = contact.as_mut() {
                        c.last_failure = c.last_failure.take().max(Some(failure.clone()));
                    }
                    state.failure = state.failure.take().max(Some(failure));
                }
                _ => {}
            }
            if let Some(category) = category {
                if state.category.as_ref().is_none_or(|held| category < held) {
                    state.category = Some(category.clone());
                }
            }
            if let (Some(c), Some(send)) = (contact.as_mut(), state.send(message_id)) {
                c.engagement.put_send(send);
            }
            message = Some(state);
        }
        EventKind::OtherUpdate { .. } => {}
    }

    // The funnel: what the message and the contact's engagement add now, less
    // what they added before (see `crate::funnel`).
    if message.is_some() {
        let (mut before, mut after) = (Contribution::default(), Contribution::default());
        if let Some(was) = prior.message {
            message_counts(was.funnel(), &mut before);
        }
        if let Some(now) = &message {
            message_counts(now.funnel(), &mut after);
        }
        if let Some(was) = prior.contact {
            was.engagement.counts(&mut before);
        }
        if let Some(now) = contact.as_mut() {
            now.engagement.counts(&mut after);
            now.engagement.trim();
        }
        deltas.add_change(before, after);
    }

    if let Some(c) = &contact {
        count_activity(&mut deltas, prior.contact, c);
    }

    if let Some(c) = contact.as_mut() {
        let side = match &event.kind {
            EventKind::StatusUpdate { status, .. } if status == "sent" => Some(Side::Out),
            kind if kind.is_inbound() => Some(Side::In),
            _ => None,
        };
        if event.kind.is_inbound() {
            c.inbound += 1;
            c.last_inbound_ms = Some(c.last_inbound_ms.map_or(ms, |last| last.max(ms)));
            if let EventKind::ButtonClick { button_id, .. } = &event.kind {
                // A late-arriving older click does not replace a newer one; two
                // clicks in the same millisecond are ordered by id, not arrival.
                let newer = match (c.last_button_ms, c.last_button.as_deref()) {
                    (Some(last_ms), Some(last)) => (ms, button_id.as_str()) > (last_ms, last),
                    _ => true,
                };
                if newer {
                    c.last_button = Some(button_id.clone());
                    c.last_button_ms = Some(ms);
                }
            }
        }
        if let Some(side) = side {
            let (removed, added) = c.timeline.insert(ms, side);
            for (sign, responses) in [(-1, removed), (1, added)] {
                for (start, reply) in responses {
                    count_response(&mut deltas, start, reply, sign);
                }
            }
        }
    }

    Effects {
        deltas,
        contact,
        message,
    }
}

/// Counts each contact once at its latest activity ([`funnel::names::ACTIVE_CONTACTS`]).
fn count_activity(deltas: &mut Deltas, before: Option<&ContactState>, after: &ContactState) {
    let quarter = |ms| Granularity::Quarter.slot_of(utc(ms));
    let name = funnel::names::ACTIVE_CONTACTS;
    match before.map(|b| b.last_activity_ms) {
        None => deltas.add(Granularity::Quarter, utc(after.last_activity_ms), name, 1),
        Some(was) if quarter(was) != quarter(after.last_activity_ms) => {
            move_count(deltas, name, was, after.last_activity_ms);
        }
        Some(_) => {}
    }
}

/// Moves one count of `name` from the slot of `from_ms` to that of `to_ms`.
fn move_count(deltas: &mut Deltas, name: &str, from_ms: i64, to_ms: i64) {
    deltas.add(Granularity::Quarter, utc(from_ms), name, -1);
    deltas.add(Granularity::Quarter, utc(to_ms), name, 1);
}

/// Counts (or, with `sign` -1, uncounts) a response at the time of the reply.
fn count_response(deltas: &mut Deltas, start_ms: i64, reply_ms: i64, sign: i64) {
    let at = utc(reply_ms);
    let took = reply_ms - start_ms;
    deltas.add(Granularity::Quarter, at, names::RESPONSE_COUNT, sign);
    deltas.add(
        Granularity::Quarter,
        at,
        names::RESPONSE_SUM_MS,
        sign * took,
    );
    let bucket = format!(
        "{}{}",
        names::RESPONSE_BUCKET_PREFIX,
        histogram::bucket(took)
    );
    deltas.add(Granularity::Quarter, at, bucket, sign);
}

/// When a raw event may be deleted (its counters stay).
pub fn expires_at(received: &ReceivedEvent, retention_days: u32) -> chrono::DateTime<chrono::Utc> {
    received.event.received_at + chrono::Duration::days(i64::from(retention_days))
}

/// How recording one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// Already stored before; nothing changed.
    Duplicate,
}

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub received: usize,
    pub stored: usize,
    pub duplicates: usize,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Self {
        let stored = outcomes.iter().filter(|o| **o == Outcome::Stored).count();
        Self {
            received: outcomes.len(),
            stored,
            duplicates: outcomes.len() - stored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventContact;
    use std::collections::BTreeMap;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn event(kind: EventKind, wa_id: &str, at_ms: i64) -> Event {
        Event {
            id: format!("{at_ms}-{}", kind.type_name()),
            occurred_at: utc(at_ms),
            received_at: utc(at_ms),
            implausible_timestamp: None,
            phone_number_id: None,
            contact: Some(EventContact {
                wa_id: wa_id.into(),
                name: Some("N".into()),
            }),
            kind,
        }
    }
    fn text(at_ms: i64) -> Event {
        event(
            EventKind::TextMessage {
                message_id: format!("in{at_ms}"),
                body: "hi".into(),
            },
            "c",
            at_ms,
        )
    }
    fn status(id: &str, status: &str, at_ms: i64) -> Event {
        event(
            EventKind::StatusUpdate {
                message_id: id.into(),
                status: status.into(),
                error: None,
                category: None,
            },
            "c",
            at_ms,
        )
    }

    /// Applies events in the given order, threading state, and sums the deltas.
    fn run(
        events: &[Event],
    ) -> (
        BTreeMap<String, i64>,
        Option<ContactState>,
        BTreeMap<String, MessageState>,
    ) {
        let mut contact = None;
        let mut messages: BTreeMap<String, MessageState> = BTreeMap::new();
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for e in events {
            let keys = StateKeys::of(e);
            let prior = Prior {
                contact: contact.as_ref(),
                message: keys.message.as_ref().and_then(|m| messages.get(m)),
            };
            let effects = apply(e, prior);
            for (key, value) in effects.deltas.iter() {
                if key.granularity == Granularity::Quarter {
                    *totals.entry(key.name.clone()).or_default() += value;
                }
            }
            contact = effects.contact.or(contact);
            if let (Some(m), Some(state)) = (keys.message, effects.message) {
                messages.insert(m, state);
            }
        }
        totals.retain(|_, v| *v != 0);
        (totals, contact, messages)
    }

    #[test]
    fn statuses_are_monotonic_and_read_counts_as_delivered() {
        let (totals, _, messages) = run(&[status("m", "read", T0 + 2000), status("m", "sent", T0)]);
        assert_eq!(messages["m"].status, "read");
        assert_eq!(totals[names::OUTBOUND], 1);
        assert_eq!(totals[names::REACHED], 1);
        assert_eq!(totals["status:sent"], 1);
        assert_eq!(totals["status:read"], 1);
        assert!(!totals.contains_key("status:delivered"));

        let (totals, _, messages) = run(&[status("f", "failed", T0)]);
        assert_eq!(messages["f"].status, "failed");
        assert_eq!(
            (totals[names::OUTBOUND], totals.get(names::REACHED)),
            (1, None)
        );
    }

    #[test]
    fn outbound_counts_move_to_the_earliest_status() {
        // read (day 2) arrives before delivered (day 1): the message counts as
        // delivered on day 1, and once.
        let day = 86_400_000;
        let events = [status("m", "read", T0 + day), status("m", "delivered", T0)];
        let mut contact = None;
        let mut message = None;
        let mut by_slot = Deltas::default();
        for e in &events {
            let effects = apply(
                e,
                Prior {
                    contact: contact.as_ref(),
                    message: message.as_ref(),
                },
            );
            for (key, value) in effects.deltas.iter() {
                by_slot.add(key.granularity, utc(key.slot), key.name.clone(), value);
            }
            contact = effects.contact;
            message = effects.message;
        }
        assert_eq!(
            by_slot.get(Granularity::Quarter, utc(T0), names::REACHED),
            1
        );
        assert_eq!(
            by_slot.get(Granularity::Quarter, utc(T0 + day), names::REACHED),
            0
        );
        assert_eq!(
            by_slot.get(Granularity::Quarter, utc(T0), names::OUTBOUND),
            1
        );
    }

    #[test]
    fn response_time_runs_from_first_unanswered_to_first_sent() {
        let (totals, contact, _) = run(&[
            text(T0),
            text(T0 + 5_000),
            status("r", "sent", T0 + 60_000),
            text(T0 + 90_000),
        ]);
        assert_eq!(totals[names::RESPONSE_COUNT], 1);
        assert_eq!(totals[names::RESPONSE_SUM_MS], 60_000);
        let contact = contact.unwrap();
        assert_eq!(contact.pending_since_ms(), Some(T0 + 90_000));
        assert_eq!((contact.inbound, contact.outbound), (3, 1));
    }

    #[test]
    fn response_time_is_the_same_in_any_arrival_order() {
        let timeline = [
            text(T0),
            text(T0 + 5_000),
            status("r1", "sent", T0 + 60_000),
            text(T0 + 70_000),
            status("r2", "sent", T0 + 100_000),
        ];
        let expected = run(&timeline).0;
        assert_eq!(expected[names::RESPONSE_COUNT], 2);
        assert_eq!(expected[names::RESPONSE_SUM_MS], 60_000 + 30_000);
        // Every rotation and the reverse.
        for shift in 0..timeline.len() {
            let mut order = timeline.to_vec();
            order.rotate_left(shift);
            assert_eq!(run(&order).0, expected, "rotation {shift}");
            order.reverse();
            assert_eq!(run(&order).0, expected, "reversed rotation {shift}");
        }
    }

    #[test]
    fn a_reply_before_the_message_answers_nothing() {
        let (totals, contact, _) = run(&[status("r", "sent", T0), text(T0 + 1_000)]);
        assert!(!totals.contains_key(names::RESPONSE_COUNT));
        assert_eq!(contact.unwrap().pending_since_ms(), Some(T0 + 1_000));
    }

    #[test]
    fn timeline_stays_bounded_and_consistent() {
        let mut events = Vec::new();
        for i in 0..200 {
            events.push(text(T0 + i * 10_000));
            events.push(status(&format!("r{i}"), "sent", T0 + i * 10_000 + 3_000));
        }
        let (totals, contact, _) = run(&events);
        assert_eq!(totals[names::RESPONSE_COUNT], 200);
        assert_eq!(totals[names::RESPONSE_SUM_MS], 200 * 3_000);
        let contact = contact.unwrap();
        assert!(contact.timeline.entries.len() <= Timeline::CAPACITY);
        // A late message from before the horizon changes nothing.
        let late = apply(
            &text(T0 + 15_000),
            Prior {
                contact: Some(&contact),
                message: None,
            },
        );
        assert_eq!(
            late.deltas
                .iter()
                .filter(|(k, _)| k.name.starts_with("rt:"))
                .count(),
            0
        );
    }

    #[test]
    fn clicks_count_by_id_and_messages_by_kind() {
        let click = event(
            EventKind::ButtonClick {
                message_id: "b".into(),
                button_id: "UNLOCK_CONTENT".into(),
                title: None,
                context_message_id: None,
            },
            "c",
            T0,
        );
        let list = event(
            EventKind::ListSelection {
                message_id: "l".into(),
                selection_id: "x".into(),
                title: None,
            },
            "c",
            T0,
        );
        let (totals, contact, _) = run(&[click, list, text(T0)]);
        assert_eq!(totals["click:UNLOCK_CONTENT"], 1);
        assert_eq!(totals[names::OTHER], 1);
        assert_eq!(totals[names::TEXT], 1);
        assert_eq!(totals[names::EVENTS], 3);
        assert_eq!(
            contact.unwrap().last_button.as_deref(),
            Some("UNLOCK_CONTENT")
        );
    }

    /// Applies events through ledgers of `chunk` events each, carrying state from
    /// one to the next as a store would between commits.
    type Recorded = (Deltas, Vec<ContactState>, Vec<(String, MessageState)>);

    fn through_ledgers(events: &[Event], chunk: usize) -> Recorded {
        let mut contacts: BTreeMap<String, ContactState> = BTreeMap::new();
        let mut messages: BTreeMap<String, MessageState> = BTreeMap::new();
        let mut deltas = Deltas::default();
        for part in events.chunks(chunk) {
            let mut ledger = Ledger::default();
            for e in part {
                let missing = ledger.missing(e);
                if let Some(k) = missing.contact {
                    let state = contacts.get(&k).cloned();
                    ledger.load_contact(k, state);
                }
                if let Some(k) = missing.message {
                    let state = messages.get(&k).cloned();
                    ledger.load_message(k, state);
                }
                assert_eq!(ledger.missing(e), StateKeys::default());
                ledger.apply(e);
            }
            for c in ledger.changed_contacts() {
                contacts.insert(c.wa_id.clone(), c.clone());
            }
            for (id, m) in ledger.changed_messages() {
                messages.insert(id.to_owned(), m.clone());
            }
            deltas.merge(ledger.deltas().clone());
        }
        (
            deltas,
            contacts.into_values().collect(),
            messages.into_iter().collect(),
        )
    }

    #[test]
    fn a_ledger_gives_the_same_however_a_delivery_is_split() {
        let timeline = [
            text(T0),
            status("r1", "delivered", T0 + 70_000),
            text(T0 + 5_000),
            status("r1", "sent", T0 + 60_000),
            text(T0 + 80_000),
            status("r2", "sent", T0 + 100_000),
            status("r1", "read", T0 + 120_000),
        ];
        let (whole, contacts, messages) = through_ledgers(&timeline, timeline.len());
        assert_eq!(whole.get(Granularity::Quarter, utc(T0), names::EVENTS), 7);
        assert_eq!(whole.get(Granularity::Quarter, utc(T0), names::OUTBOUND), 2);
        assert_eq!(
            whole.get(Granularity::Quarter, utc(T0), names::RESPONSE_COUNT),
            2
        );
        assert_eq!(
            whole.get(Granularity::Quarter, utc(T0), names::RESPONSE_SUM_MS),
            60_000 + 20_000
        );
        assert_eq!((contacts[0].inbound, contacts[0].outbound), (3, 2));
        for chunk in 1..timeline.len() {
            assert_eq!(
                through_ledgers(&timeline, chunk),
                (whole.clone(), contacts.clone(), messages.clone()),
                "chunks of {chunk}"
            );
        }
    }

    /// A click, text or status of one of two contacts; statuses are of three
    /// outbound messages, each status at a time fixed by (message, status), as a
    /// redelivery of the same status carries the same time.
    fn update() -> impl proptest::strategy::Strategy<Value = (u8, u8, u8, i64)> {
        (0u8..3, 0u8..2, 0u8..3, 0i64..50)
    }

    fn build(index: usize, (kind, contact, which, minute): (u8, u8, u8, i64)) -> Event {
        let wa_id = ["c0", "c1"][contact as usize];
        let at = T0 + minute * 60_000;
        let mut built = match kind {
            0 => event(
                EventKind::TextMessage {
                    message_id: format!("in{index}"),
                    body: "hi".into(),
                },
                wa_id,
                at,
            ),
            1 => event(
                EventKind::ButtonClick {
                    message_id: format!("in{index}"),
                    button_id: crate::event::KNOWN_BUTTONS[which as usize].into(),
                    title: None,
                    // Most clicks name a message, some one that has no status.
                    context_message_id: (minute % 5 != 0)
                        .then(|| format!("out{contact}{}", minute % 4)),
                },
                wa_id,
                at,
            ),
            _ => {
                let name = ["sent", "delivered", "read", "failed"][(minute % 4) as usize];
                let message = format!("out{contact}{which}");
                // Hours apart, so that a late status moves a message's day and
                // its answers.
                let at = T0 + i64::from(which) * 600_000 + (minute % 4) * 7 * 3_600_000;
                let error = (name == "failed").then(|| crate::event::StatusError {
                    code: Some([131_026, 131_049, 131_047][which as usize]),
                    title: Some(format!("title {which}")),
                });
                let mut e = event(
                    EventKind::StatusUpdate {
                        message_id: message.clone(),
                        status: name.into(),
                        error,
                        // Mostly one category a message, sometimes two.
                        category: [None, Some("utility"), Some("service")]
                            [(i64::from(which) + minute % 4 / 3) as usize % 3]
                            .map(Into::into),
                    },
                    wa_id,
                    at,
                );
                e.id = format!("{message}:{name}");
                return e;
            }
        };
        built.id = format!("e{index}");
        built
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn any_arrival_order_and_duplication_counts_the_same(
            updates in proptest::collection::vec(update(), 1..40),
            repeats in proptest::collection::vec(0usize..1000, 0..15),
            shuffle in proptest::prelude::any::<u64>(),
            chunk in 1usize..12,
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let events: Vec<Event> = updates.into_iter().enumerate().map(|(i, u)| build(i, u)).collect();
            let mut arrivals = events.clone();
            arrivals.extend(repeats.iter().map(|r| events[r % events.len()].clone()));
            arrivals.shuffle(&mut rand::rngs::StdRng::seed_from_u64(shuffle));
            // What a store does: an id already recorded is a duplicate.
            let mut seen = std::collections::HashSet::new();
            arrivals.retain(|e| seen.insert(e.id.clone()));
            let mut first = std::collections::HashSet::new();
            let unique: Vec<Event> = events.into_iter().filter(|e| first.insert(e.id.clone())).collect();
            proptest::prop_assert_eq!(
                through_ledgers(&arrivals, chunk),
                through_ledgers(&unique, unique.len())
            );
        }
    }
}
