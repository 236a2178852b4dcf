//! Files written by older builds, opened by this one: each numbered step from a
//! file at the version before it, and files from before the versions.

use rusqlite::{params, Connection};

use super::{delivery, file_with, text, T0};
use crate::counters::{utc_from_ms, Granularity, DAY_MS, QUARTERS_PER_DAY};
use crate::event::ReceivedEvent;
use crate::ingest::Outcome;
use crate::store::sqlite::quarters::encode_quarters;
use crate::store::sqlite::schema::migrations;
use crate::store::sqlite::{to_json, SqliteStore};
use crate::store::{EventQuery, Store};

/// Version 0, the first layout, as the builds before `quarter_counters` wrote it.
const FIRST_LAYOUT: &str = "
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    search      TEXT NOT NULL,
    data        TEXT NOT NULL,
    raw         TEXT NOT NULL
);
CREATE INDEX events_newest_first ON events (occurred_ms DESC, id DESC);
CREATE INDEX events_expiry ON events (expires_ms);
CREATE TABLE contacts (
    wa_id       TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    activity_ms INTEGER NOT NULL,
    inbound_ms  INTEGER,
    data        TEXT NOT NULL
);
CREATE INDEX contacts_by_activity ON contacts (activity_ms DESC);
CREATE TABLE messages (
    id      TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    data    TEXT NOT NULL
);
CREATE TABLE counters (
    granularity TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (granularity, slot, name)
) WITHOUT ROWID;
CREATE TABLE connections (
    connection_id TEXT PRIMARY KEY,
    connected_ms  INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    types         TEXT
);";

/// A file at `version`, stamped: the first layout brought up by the steps
/// before it, as the build of that version left it.
fn file_at(version: usize) -> (tempfile::TempDir, Connection) {
    let (folder, mut c) = file_with(FIRST_LAYOUT);
    migrations().to_version(&mut c, version).unwrap();
    (folder, c)
}

/// Stores an event at `rowid` as the files before version 4 did, keyed by its
/// id's text.
fn insert_keyed_by_text(c: &Connection, received: &ReceivedEvent, rowid: i64) {
    let e = &received.event;
    c.execute(
        "INSERT INTO events (rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)",
        params![
            rowid,
            e.id,
            e.kind.type_name(),
            e.occurred_at.timestamp_millis(),
            i64::MAX,
            e.search_text(),
            to_json(e),
            received.raw.get()
        ],
    )
    .unwrap();
}

#[tokio::test]
async fn quarter_cells_of_an_older_file_move_to_day_rows_on_open() {
    let (folder, c) = file_at(0);
    let quarter = Granularity::Quarter.millis();
    let day = 1_767_225_600_000; // 2026-01-01
    for (slot, name, value) in [
        (day, "events", 2),
        (day + 95 * quarter, "events", 1),
        (day + 96 * quarter, "events", 5), // the next day's first quarter
        (day, "click:X", 1),
    ] {
        c.execute(
            "INSERT INTO counters (granularity, slot, name, value) VALUES ('Q', ?1, ?2, ?3)",
            params![slot, name, value],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO counters (granularity, slot, name, value) VALUES ('M', ?1, 'events', 7)",
        [day],
    )
    .unwrap();
    drop(c);
    for _ in 0..2 {
        // The second open finds nothing left to move and changes nothing.
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let rows = store
            .quarter_counters(utc_from_ms(day), utc_from_ms(day + 2 * DAY_MS), Some(""))
            .await
            .unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.day, r.name.as_str(), r.quarters.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (day, "click:X", vec![(0, 1)]),
                (day, "events", vec![(0, 2), (95, 1)]),
                (day + DAY_MS, "events", vec![(0, 5)]),
            ]
        );
        let minutes = store
            .minute_counters(utc_from_ms(day), utc_from_ms(day + quarter))
            .await
            .unwrap();
        assert_eq!(minutes[0].get("events"), 7);
    }
}

#[tokio::test]
async fn day_rows_of_an_older_file_get_their_totals_on_open() {
    let (folder, c) = file_at(2);
    let day = 1_767_225_600_000; // 2026-01-01
    let mut quarters = [0; QUARTERS_PER_DAY];
    quarters[3] = 4;
    quarters[90] = 5;
    c.execute(
        "INSERT INTO quarter_counters (day, name, quarters) VALUES (?1, 'events', ?2)",
        params![day, encode_quarters(&quarters)],
    )
    .unwrap();
    drop(c);
    for _ in 0..2 {
        // The second open finds the column there and changes nothing.
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let whole_day = store
            .quarter_counters(utc_from_ms(day), utc_from_ms(day + DAY_MS), None)
            .await
            .unwrap();
        let got: Vec<_> = whole_day
            .iter()
            .map(|r| (r.name.as_str(), r.total))
            .collect();
        assert_eq!(got, [("events", 9)]);
    }
}

#[tokio::test]
async fn events_of_a_file_keyed_by_text_ids_are_rekeyed_on_open_and_still_found_once() {
    let (folder, c) = file_at(3);
    let old = delivery(vec![text("wamid.k1", T0), text("wamid.k2", T0)], vec![]).events;
    for (received, rowid) in old.iter().zip([7, 9]) {
        insert_keyed_by_text(&c, received, rowid);
    }
    drop(c);
    for _ in 0..2 {
        // The second open finds the table keyed by bytes and changes nothing.
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let (found, raw) = store.event(&old[0].event.id).await.unwrap().unwrap();
        assert_eq!(found.id, old[0].event.id);
        assert_eq!(raw, old[0].raw.get());
        // Ties at one time still page in the ids' order.
        let mut ids: Vec<_> = old.iter().map(|r| r.event.id.clone()).collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let first = store
            .events(&EventQuery {
                limit: 1,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(first.events[0].id, ids[0]);
        let second = store
            .events(&EventQuery {
                limit: 1,
                before: first.next.clone(),
                ..EventQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(second.events[0].id, ids[1]);
        assert_eq!(
            store.record(&old, 90).await.unwrap(),
            [Outcome::Duplicate, Outcome::Duplicate]
        );
        drop(store);
        let c = Connection::open(folder.path().join("pulse.db")).unwrap();
        let rows: Vec<(i64, String)> = c
            .prepare("SELECT rowid, typeof(id) FROM events ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(7, "blob".into()), (9, "blob".into())]);
    }
}
