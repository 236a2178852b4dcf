//! Files written by older builds, opened by this one: each numbered step from a
//! file at the version before it, and files from before the versions.

use rusqlite::{params, Connection};

use super::{delivery, file_with, schema, text, T0};
use crate::counters::{utc_from_ms, Granularity, DAY_MS, QUARTERS_PER_DAY};
use crate::event::{EventKind, ReceivedEvent};
use crate::ingest::{ContactState, Outcome};
use crate::metrics::Segments;
use crate::store::sqlite::quarters::encode_quarters;
use crate::store::sqlite::schema::IdKey;
use crate::store::sqlite::schema::{migrate, migrations, unversioned_layout, LATEST, SCHEMA};
use crate::store::sqlite::{to_json, SqliteStore};
use crate::store::{EventQuery, Store};
use crate::telemetry::Chain;
use serde_json::json;

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
        drop(store);
        let c = Connection::open(folder.path().join("pulse.db")).unwrap();
        assert_eq!(quarter_cells(&c), 0, "moved, not copied");
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

#[tokio::test]
async fn the_state_of_a_file_from_before_the_mark_is_taken_as_written_up_to_its_last_event() {
    let (folder, c) = file_at(1);
    // As a build of version 1 left it: each commit wrote its state with it.
    let old = delivery(vec![text("wamid.m1", T0), text("wamid.m2", T0 + 1)], vec![]).events;
    for (received, rowid) in old.iter().zip([3, 5]) {
        insert_keyed_by_text(&c, received, rowid);
    }
    let state = ContactState {
        wa_id: "919876543210".into(),
        inbound: 2,
        last_activity_ms: (T0 + 1) * 1000,
        last_inbound_ms: Some((T0 + 1) * 1000),
        ..Default::default()
    };
    c.execute(
        "INSERT INTO contacts (wa_id, version, activity_ms, inbound_ms, data) VALUES (?1, 1, ?2, ?3, ?4)",
        params![state.wa_id, state.last_activity_ms, state.last_inbound_ms, to_json(&state)],
    )
    .unwrap();
    drop(c);
    for _ in 0..2 {
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        // Not applied again on top of the state that holds them.
        assert_eq!(store.contacts(10, None).await.unwrap()[0].inbound, 2);
        drop(store);
        let c = Connection::open(folder.path().join("pulse.db")).unwrap();
        let mark: i64 = c
            .query_row("SELECT last_event FROM state_mark", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mark, 5);
    }
}

/// Stores events as versions 4 and 5 did, keyed by their ids' bytes; version 4
/// without their statuses' category.
fn insert_keyed_by_bytes(c: &Connection, events: &[ReceivedEvent], without_category: bool) {
    for (rowid, received) in (1..).zip(events) {
        let mut event = received.event.clone();
        if let EventKind::StatusUpdate { category, .. } = &mut event.kind {
            if without_category {
                *category = None;
            }
        }
        c.execute(
            "INSERT INTO events (rowid, id, type, occurred_ms, received_ms, expires_ms, search, data, raw)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)",
            params![
                rowid,
                IdKey::of(&event.id),
                event.kind.type_name(),
                event.occurred_at.timestamp_millis(),
                i64::MAX,
                event.search_text(),
                to_json(&event),
                received.raw.get()
            ],
        )
        .unwrap();
    }
}

/// The funnel of a version 4 file's events is counted on open: a content
/// message (utility, read, clicked), its answer (service) and a failure with no
/// category, whose last event comes after the state mark and is applied again.
#[tokio::test]
async fn the_funnel_of_a_file_from_before_it_is_counted_from_its_events_on_open() {
    use crate::metrics::{failures, funnel};
    let (folder, c) = file_at(4);
    let priced = |id: &str, status: &str, at: i64, category: &str| {
        json!({"id": id, "status": status, "timestamp": at.to_string(), "recipient_id": "919876543210",
               "pricing": {"billable": true, "category": category}})
    };
    let click = json!({"from": "919876543210", "id": "wamid.click", "timestamp": (T0 + 120).to_string(),
        "type": "interactive", "context": {"id": "wamid.content"},
        "interactive": {"type": "button_reply", "button_reply": {"id": "UNLOCK_CONTENT", "title": "Unlock"}}});
    let failed = json!({"id": "wamid.failed", "status": "failed", "timestamp": T0.to_string(),
        "recipient_id": "919876543210", "errors": [{"code": 131026, "title": "Message undeliverable"}]});
    let events: Vec<ReceivedEvent> = [
        delivery(vec![], vec![priced("wamid.content", "sent", T0, "utility")]),
        delivery(
            vec![],
            vec![priced("wamid.content", "read", T0 + 60, "utility")],
        ),
        delivery(vec![click], vec![]),
        delivery(
            vec![],
            vec![priced("wamid.answer", "sent", T0 + 150, "service")],
        ),
        delivery(vec![], vec![failed]),
    ]
    .into_iter()
    .flat_map(|d| d.events)
    .collect();
    // As version 4 stored them: statuses without their category.
    insert_keyed_by_bytes(&c, &events, true);
    // The state tables as version 4 wrote them, up to the fourth event.
    let contact = json!({"wa_id": "919876543210", "last_activity_ms": (T0 + 150) * 1000, "inbound": 1,
        "outbound": 2, "timeline": {"entries": []}});
    c.execute(
        "INSERT INTO contacts (wa_id, version, activity_ms, inbound_ms, data) VALUES ('919876543210', 1, 0, NULL, ?1)",
        [contact.to_string()],
    )
    .unwrap();
    let content = json!({"recipient": "919876543210", "status": "read", "first_status_ms": T0 * 1000,
        "reached_ms": (T0 + 60) * 1000});
    c.execute(
        "INSERT INTO messages (id, version, data) VALUES ('wamid.content', 1, ?1)",
        [content.to_string()],
    )
    .unwrap();
    c.execute("UPDATE state_mark SET last_event = 4", [])
        .unwrap();
    drop(c);

    let now = utc_from_ms((T0 + 3600) * 1000);
    for _ in 0..2 {
        // The second open finds version 5 and changes nothing.
        let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
        let f = funnel(&store, chrono_tz::UTC, 1, now).await.unwrap();
        let stages = &f.stages;
        assert_eq!(
            (
                stages.sent,
                stages.delivered,
                stages.read,
                stages.clicked,
                stages.failed
            ),
            (3, 1, 1, 1, 1)
        );
        assert_eq!(f.by_category["utility"].clicked, 1);
        assert_eq!(f.by_category["service"].sent, 1);
        assert_eq!(f.by_category["unknown"].failed, 1);
        assert_eq!((f.answers.clicks, f.answers.answered), (1, 1));
        assert_eq!(f.answers.answer_ms.avg, Some(30_000.0));
        // Step 6 follows step 5, and neither counts the segments twice.
        assert_eq!(
            f.contacts,
            Segments {
                engaged: 1,
                ..Segments::default()
            }
        );
        let failures = failures(&store, chrono_tz::UTC, 1, now).await.unwrap();
        let codes: Vec<_> = failures
            .codes
            .iter()
            .map(|c| (c.code, c.messages, c.contacts))
            .collect();
        assert_eq!(codes, [(Some(131_026), 1, 1)]);
        // The category read from the raw update is in the stored event too.
        let (stored, _) = store.event(&events[0].event.id).await.unwrap().unwrap();
        assert!(matches!(
            stored.kind,
            EventKind::StatusUpdate { category: Some(ref c), .. } if c == "utility"
        ));
        // And recording goes on from the rebuilt state: a second click on the
        // content counts once more.
        drop(store);
    }
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let again = json!({"from": "919876543210", "id": "wamid.click2", "timestamp": (T0 + 200).to_string(),
        "type": "interactive", "context": {"id": "wamid.content"},
        "interactive": {"type": "button_reply", "button_reply": {"id": "SHARE_WITH_CLIENTS", "title": "Share"}}});
    store
        .record(&delivery(vec![again], vec![]).events, 90)
        .await
        .unwrap();
    let f = funnel(&store, chrono_tz::UTC, 1, now).await.unwrap();
    assert_eq!(
        (f.clicks.total, f.stages.clicked, f.answers.clicks),
        (2, 1, 2)
    );
}

/// A version 5 file's contacts get their segments on open: the sends it kept
/// knew only whether each was delivered, so they are rebuilt from the events,
/// and every contact of the table counts at its latest activity.
#[tokio::test]
async fn the_segments_of_a_version_5_file_are_counted_from_its_events_on_open() {
    use crate::metrics::funnel;
    let (folder, c) = file_at(5);
    let status = |id: &str, status: &str, at: i64, to: &str| {
        json!({"id": id, "status": status, "timestamp": at.to_string(), "recipient_id": to,
               "pricing": {"billable": true, "category": "utility"}})
    };
    let (reader, unreached) = ("919876543210", "919800000002");
    let events: Vec<ReceivedEvent> = [
        delivery(vec![], vec![status("wamid.r", "sent", T0, reader)]),
        delivery(vec![], vec![status("wamid.r", "read", T0 + 60, reader)]),
        delivery(vec![], vec![status("wamid.u", "sent", T0, unreached)]),
    ]
    .into_iter()
    .flat_map(|d| d.events)
    .collect();
    insert_keyed_by_bytes(&c, &events, false);
    // The reader's row as version 5 wrote it: its send only "reached".
    let tag = crate::funnel::message_tag("wamid.r");
    let stored = |wa_id: &str, at_s: i64, engagement: serde_json::Value| {
        let contact = json!({"wa_id": wa_id, "last_activity_ms": at_s * 1000, "inbound": 0,
            "outbound": 1, "timeline": {"entries": []}, "engagement": engagement});
        c.execute(
            "INSERT INTO contacts (wa_id, version, activity_ms, inbound_ms, data) VALUES (?1, 1, ?2, NULL, ?3)",
            params![wa_id, at_s * 1000, contact.to_string()],
        )
        .unwrap();
    };
    stored(
        reader,
        T0 + 60,
        json!({"s": [[T0 * 1000, tag, true, null]]}),
    );
    stored(unreached, T0, json!({}));
    // A contact whose events retention deleted, active today all the same.
    stored("919800000003", T0 + 30, json!({}));
    c.execute("UPDATE state_mark SET last_event = 3", [])
        .unwrap();
    drop(c);

    let now = utc_from_ms((T0 + 3600) * 1000);
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let f = funnel(&store, chrono_tz::UTC, 1, now).await.unwrap();
    assert_eq!(
        f.contacts,
        Segments {
            reading: 1,
            unreached: 1,
            none: 1,
            ..Segments::default()
        }
    );
    // The test wrote none of the counters version 5 kept: step 6 adds none.
    assert_eq!(f.stages.sent, 0, "only the segments are counted again");
    let contacts = store.contacts(10, None).await.unwrap();
    let sends = &contacts
        .iter()
        .find(|c| c.wa_id == reader)
        .unwrap()
        .engagement
        .sends;
    assert_eq!(
        sends.iter().map(|s| s.level).collect::<Vec<_>>(),
        [crate::funnel::READ]
    );
}

#[test]
fn an_unversioned_file_is_stamped_with_the_version_of_its_layout_once() {
    // Builds stamp their files since version 4: none left a later one unstamped.
    for version in 0..=4 {
        let (folder, mut c) = file_at(version);
        c.pragma_update(None, "user_version", 0).unwrap();
        assert_eq!(unversioned_layout(&c).unwrap(), version);
        migrate(&mut c).unwrap();
        assert_eq!(user_version(&c), LATEST);
        // What step 1 would move, were the layout looked at again.
        c.execute(
            "INSERT INTO counters (granularity, slot, name, value) VALUES ('Q', 0, 'events', 1)",
            [],
        )
        .unwrap();
        drop(c);
        drop(SqliteStore::open(folder.path().join("pulse.db")).unwrap());
        let c = Connection::open(folder.path().join("pulse.db")).unwrap();
        assert_eq!(quarter_cells(&c), 1, "from version {version}");
    }
}

#[test]
fn a_file_written_before_the_versions_at_the_last_layout_is_only_stamped() {
    let (_folder, mut c) = file_with(SCHEMA);
    assert_eq!(user_version(&c), 0);
    let (before, changes) = (schema_version(&c), c.total_changes());
    migrate(&mut c).unwrap();
    assert_eq!(user_version(&c), LATEST);
    assert_eq!((schema_version(&c), c.total_changes()), (before, changes));
}

#[test]
fn an_unversioned_file_gets_the_table_and_index_some_older_builds_left_out() {
    // Files from before `connections`, and from the builds that moved the
    // feed's order out of `events_newest_first` (since reverted; their files
    // are at version 3, but the index goes with step 4 whatever the version).
    let (folder, c) = file_at(0);
    c.execute_batch("DROP TABLE connections; DROP INDEX events_newest_first")
        .unwrap();
    drop(c);
    drop(SqliteStore::open(folder.path().join("pulse.db")).unwrap());
    let c = Connection::open(folder.path().join("pulse.db")).unwrap();
    assert_eq!(layout(&c), layout(&schema().1));
}

#[tokio::test]
async fn a_file_at_the_latest_version_runs_no_step() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("pulse.db");
    drop(SqliteStore::open(&path).unwrap());
    let mut c = Connection::open(&path).unwrap();
    assert_eq!(user_version(&c), LATEST);
    // What step 1 would move, had it run again.
    c.execute(
        "INSERT INTO counters (granularity, slot, name, value) VALUES ('Q', 0, 'events', 1)",
        [],
    )
    .unwrap();
    let (before, changes) = (schema_version(&c), c.total_changes());
    migrate(&mut c).unwrap();
    assert_eq!((schema_version(&c), c.total_changes()), (before, changes));
    drop(c);
    let store = SqliteStore::open(&path).unwrap();
    store.ping().await.unwrap();
    let c = Connection::open(&path).unwrap();
    assert_eq!((user_version(&c), schema_version(&c)), (LATEST, before));
    assert_eq!(quarter_cells(&c), 1);
}

#[test]
fn a_file_from_a_newer_build_is_refused_and_left_as_it_is() {
    let (folder, c) = schema();
    let newer = LATEST + 1;
    c.pragma_update(None, "user_version", newer as i64).unwrap();
    let before = schema_version(&c);
    drop(c);
    let path = folder.path().join("pulse.db");
    let Err(error) = SqliteStore::open(&path) else {
        panic!("opened a file of a newer build");
    };
    let message = Chain(&error).to_string();
    assert!(
        message.contains(&format!("is at schema version {newer}"))
            && message.contains(&format!("knows versions up to {LATEST}"))
            && message.contains("newer Pulse"),
        "{message}"
    );
    let c = Connection::open(&path).unwrap();
    assert_eq!((user_version(&c), schema_version(&c)), (newer, before));
}

#[test]
fn a_file_brought_up_from_version_0_has_the_layout_of_a_new_one() {
    assert_eq!(migrations().pending_migrations(&schema().1).unwrap(), 0);
    let (_folder, mut c) = file_with("");
    assert_eq!(migrations().pending_migrations(&c).unwrap(), LATEST as i32);
    let (_new_folder, new) = schema();
    assert_eq!(user_version(&new), LATEST);
    c.execute_batch(FIRST_LAYOUT).unwrap();
    migrate(&mut c).unwrap();
    assert_eq!(user_version(&c), LATEST);
    assert_eq!(layout(&c), layout(&new));
}

fn user_version(c: &Connection) -> usize {
    c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .unwrap() as usize
}

/// SQLite's count of changes to the file's tables and indexes.
fn schema_version(c: &Connection) -> i64 {
    c.query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap()
}

fn quarter_cells(c: &Connection) -> i64 {
    c.query_row(
        "SELECT count(*) FROM counters WHERE granularity = 'Q'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Each table's columns (name, type, not null, key) and whether it has a
/// rowid, and each index's columns and order.
fn layout(c: &Connection) -> Vec<String> {
    let mut rows: Vec<String> = c
        .prepare(
            "SELECT m.name, instr(upper(m.sql), 'WITHOUT ROWID') > 0, p.name, p.type, p.\"notnull\", p.pk
             FROM sqlite_schema m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, i64>(5)?
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let indexes: Vec<String> = c
        .prepare(
            "SELECT m.tbl_name, m.name, x.seqno, x.name, x.desc
             FROM sqlite_schema m JOIN pragma_index_xinfo(m.name) x
             WHERE m.type = 'index' AND x.key ORDER BY m.name, x.seqno",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.extend(indexes);
    rows
}

/// Step 7 gives a version 6 file the table of alert transitions.
#[tokio::test]
async fn a_version_6_file_gets_the_alerts_table_on_open() {
    use crate::alerts::{Rule, State, Transition};
    use crate::store::AlertLog;
    let (folder, c) = file_at(6);
    assert_eq!(user_version(&c), 6);
    drop(c);
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let at = utc_from_ms(T0 * 1000);
    let fired = Transition {
        rule: Rule::Store,
        state: State::Firing,
        since: at,
        at,
        message: "the store is failing".into(),
        figures: Default::default(),
        notification: None,
    };
    store
        .record_transitions(std::slice::from_ref(&fired))
        .await
        .unwrap();
    assert_eq!(store.transitions(10).await.unwrap(), [fired]);
    drop(store);
    let c = Connection::open(folder.path().join("pulse.db")).unwrap();
    assert_eq!(user_version(&c), LATEST);
}

/// Step 8 indexes a version 7 file's events up to the mark in `event_ids` and
/// `feed`, and the writer adds the rest on open.
#[tokio::test]
async fn a_version_7_file_gets_its_events_indexed_on_open() {
    let (folder, c) = file_at(7);
    let events = delivery(
        vec![
            text("wamid.a", T0 + 20),
            text("wamid.b", T0),
            text("wamid.c", T0 + 10),
        ],
        vec![],
    )
    .events;
    insert_keyed_by_bytes(&c, &events, false);
    c.execute("UPDATE state_mark SET last_event = 2", [])
        .unwrap();
    drop(c);
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let page = store
        .events(&EventQuery {
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let seconds: Vec<i64> = page
        .events
        .iter()
        .map(|e| e.occurred_at.timestamp() - T0)
        .collect();
    assert_eq!(seconds, [20, 10, 0]);
    for received in &events {
        let (found, _) = store.event(&received.event.id).await.unwrap().unwrap();
        assert_eq!(found, received.event);
    }
    assert_eq!(
        store.record(&events, 90).await.unwrap(),
        [Outcome::Duplicate; 3]
    );
    drop(store);
    let c = Connection::open(folder.path().join("pulse.db")).unwrap();
    assert_eq!(user_version(&c), LATEST);
    let fed: Vec<i64> = c
        .prepare("SELECT event FROM feed ORDER BY occurred_ms DESC")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(fed, [1, 3, 2]);
    let ids: i64 = c
        .query_row("SELECT count(*) FROM event_ids", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ids, 3);
    let index: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'events_newest_first')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!index, "the index the feed replaces is dropped");
}
