//! The writer's group commits and the state it keeps in memory: counted once,
//! all or nothing, and rebuilt after a crash.

use rusqlite::Connection;

use super::{contact, count, delivery, status, text, total, writer, T0};
use crate::counters::{names, DAY_MS};
use crate::ingest::Outcome;
use crate::store::sqlite::schema::SCHEMA;
use crate::store::sqlite::state::state_due;
use crate::store::sqlite::store::{events_page, stored_event};
use crate::store::sqlite::{lock, purge, SqliteStore};
use crate::store::{EventQuery, Store, StoreError};
use chrono::Utc;

#[test]
fn overlapping_deliveries_in_one_commit_count_each_event_once() {
    let (_folder, mut w) = writer();
    let first = || {
        delivery(
            vec![text("wamid.a", T0), text("wamid.b", T0 + 10)],
            vec![status("sent", T0 + 60)],
        )
    };
    // Overlaps the first, repeats an update within itself, and adds `read`.
    let second = delivery(
        vec![text("wamid.b", T0 + 10)],
        vec![
            status("sent", T0 + 60),
            status("read", T0 + 90),
            status("read", T0 + 90),
        ],
    );
    let group = [first(), second, first()];
    let outcomes = w.write_group(&group).unwrap();
    w.write_state().unwrap(); // as the writer does when it has nothing else to do
    let c = &w.connection;
    use Outcome::{Duplicate as D, Stored as S};
    assert_eq!(outcomes, [vec![S, S, S], vec![D, D, S, D], vec![D, D, D]]);

    assert_eq!(total(c, names::EVENTS), 4);
    assert_eq!(total(c, names::TEXT), 2);
    assert_eq!(total(c, names::OUTBOUND), 1);
    assert_eq!(total(c, names::REACHED), 1);
    assert_eq!(total(c, names::RESPONSE_COUNT), 1);
    assert_eq!(total(c, names::RESPONSE_SUM_MS), 60_000);
    let stored = contact(c).unwrap();
    assert_eq!((stored.inbound, stored.outbound), (2, 1));

    // The next group reads the state the first one wrote.
    let again = w.write_group(&[first()]).unwrap();
    assert_eq!(again, [vec![D, D, D]]);
    assert_eq!(total(&w.connection, names::EVENTS), 4);
}

#[test]
fn a_group_that_fails_writes_nothing_and_leaves_no_state_behind() {
    let (_folder, mut w) = writer();
    w.connection.execute_batch("DROP TABLE counters").unwrap();
    let group = [delivery(vec![text("wamid.a", T0)], vec![])];
    assert!(matches!(
        w.write_group(&group),
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(
        (
            count(&w.connection, "events"),
            count(&w.connection, "contacts")
        ),
        (0, 0)
    );
    // The failed group's effects do not carry over into the next one.
    w.connection.execute_batch(SCHEMA).unwrap();
    let next = [delivery(vec![text("wamid.b", T0 + 1)], vec![])];
    w.write_group(&next).unwrap();
    w.write_state().unwrap();
    assert_eq!(contact(&w.connection).unwrap().inbound, 1);
    assert_eq!(total(&w.connection, names::EVENTS), 1);
}

#[test]
fn state_is_written_sooner_while_the_writer_has_time_to_spare() {
    let ms = std::time::Duration::from_millis;
    // A busy writer holds the state for a second, to write a busy contact once.
    assert!(!state_due(ms(300), ms(101), 0));
    assert!(!state_due(ms(999), ms(400), 0));
    assert!(state_due(ms(1_000), ms(900), 0));
    // One that spent at most a third of the time in commits writes it every
    // 200 ms, in writes that hold up the groups behind them for less time.
    assert!(state_due(ms(300), ms(100), 0));
    assert!(!state_due(ms(150), ms(0), 0));
    // Or as soon as 20 000 events wait to be indexed.
    assert!(!state_due(ms(0), ms(0), 19_999));
    assert!(state_due(ms(0), ms(0), 20_000));
}

#[tokio::test]
async fn state_kept_in_memory_at_a_crash_is_rebuilt_on_open_without_counting_twice() {
    let (folder, mut w) = writer();
    let group = [delivery(
        vec![text("wamid.a", T0), text("wamid.b", T0 + 10)],
        vec![status("sent", T0 + 60), status("read", T0 + 90)],
    )];
    // State written just now (on open): only events and counters go.
    w.write_group(&group).unwrap();
    assert_eq!(lock(&w.unwritten)["919876543210"].inbound, 2);
    assert_eq!(count(&w.connection, "events"), 4);
    assert_eq!(count(&w.connection, "messages"), 0);
    assert!(contact(&w.connection).is_none());
    drop(w); // a crash: the state in memory is never written

    for _ in 0..2 {
        // The second open finds nothing left to apply.
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let contacts = store.contacts(10, None).await.unwrap();
        assert_eq!(contacts.len(), 1);
        assert_eq!((contacts[0].inbound, contacts[0].outbound), (2, 1));
        let c = Connection::open(store.path()).unwrap();
        assert_eq!(count(&c, "messages"), 1);
        assert_eq!(total(&c, names::EVENTS), 4);
        assert_eq!(total(&c, names::RESPONSE_COUNT), 1);
        let mark: i64 = c
            .query_row("SELECT last_event FROM state_mark", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mark, 4);
    }

    // After the rebuild, a late status finds the message it follows.
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let late = delivery(vec![], vec![status("delivered", T0 + 70)]).events;
    assert_eq!(store.record(&late, 90).await.unwrap(), [Outcome::Stored]);
    let c = Connection::open(store.path()).unwrap();
    assert_eq!(total(&c, names::OUTBOUND), 1);
    assert_eq!(total(&c, names::REACHED), 1);
}

#[tokio::test]
async fn events_after_a_purge_that_emptied_the_table_are_rebuilt_after_a_crash() {
    let (folder, mut w) = writer();
    w.write_group(&[delivery(vec![text("wamid.a", T0)], vec![])])
        .unwrap();
    w.write_state().unwrap();
    // Far past the retention: every event goes, their state stays.
    let later = Utc::now().timestamp_millis() + 400 * DAY_MS;
    assert_eq!(purge(&w.connection, later).unwrap(), 1);
    // The next event takes rowid 1 again; its state stays in memory.
    w.write_group(&[delivery(vec![text("wamid.b", T0 + 1)], vec![])])
        .unwrap();
    drop(w);

    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    assert_eq!(store.contacts(10, None).await.unwrap()[0].inbound, 2);
}

#[tokio::test]
async fn events_are_indexed_with_the_state_and_found_before_and_after() {
    let (folder, mut w) = writer();
    let newest_first = |c: &Connection| {
        let mut query = EventQuery {
            limit: 1,
            ..EventQuery::default()
        };
        let mut seconds = Vec::new();
        loop {
            let page = events_page(c, &query).unwrap();
            seconds.extend(page.events.iter().map(|e| e.occurred_at.timestamp() - T0));
            match page.next {
                Some(next) => query.before = Some(next),
                None => return seconds,
            }
        }
    };
    let first = [delivery(
        vec![text("wamid.a", T0), text("wamid.c", T0 + 20)],
        vec![],
    )];
    let second = [delivery(
        vec![text("wamid.b", T0 + 10), text("wamid.d", T0 + 30)],
        vec![],
    )];
    w.write_group(&first).unwrap();
    w.write_state().unwrap();
    // After the mark, and between the two in time: not indexed yet.
    w.write_group(&second).unwrap();
    assert_eq!(
        (
            count(&w.connection, "feed"),
            count(&w.connection, "event_ids")
        ),
        (2, 2)
    );
    assert_eq!(newest_first(&w.connection), [30, 20, 10, 0]);
    let (a, d) = (&first[0].events[0].event, &second[0].events[1].event);
    for e in [a, d] {
        assert_eq!(stored_event(&w.connection, &e.id).unwrap().unwrap().0, *e);
    }
    // Found again whether indexed or not.
    let again = [delivery(
        vec![text("wamid.a", T0), text("wamid.d", T0 + 30)],
        vec![],
    )];
    assert_eq!(
        w.write_group(&again).unwrap(),
        [[Outcome::Duplicate, Outcome::Duplicate]]
    );
    drop(w); // a crash: the index rows in memory are never written

    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let c = Connection::open(store.path()).unwrap();
    assert_eq!((count(&c, "feed"), count(&c, "event_ids")), (4, 4));
    assert_eq!(newest_first(&c), [30, 20, 10, 0]);
    assert_eq!(store.event(&d.id).await.unwrap().unwrap().0, *d);
    assert_eq!(
        store.record(&again[0].events, 90).await.unwrap(),
        [Outcome::Duplicate; 2]
    );
    // Retention takes an event's index rows with it.
    let later = Utc::now().timestamp_millis() + 400 * DAY_MS;
    store
        .purge_expired(chrono::DateTime::from_timestamp_millis(later).unwrap())
        .await
        .unwrap();
    let left = |table| count(&c, table);
    assert_eq!((left("events"), left("feed"), left("event_ids")), (0, 0, 0));
}
