//! The embedded store's unit tests, by topic; the helpers they share are here.

use chrono::Utc;
use rusqlite::Connection;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::quarters::decode_quarters;
use super::schema::migrate;
use super::state::{read_state, Writer};
use super::writer::Delivery;
use super::UnwrittenContacts;
use crate::event::events_from_body;
use crate::ingest::ContactState;

mod migrations;
mod quarters;
mod state;
mod store;
mod writer;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z, in seconds as WhatsApp sends

fn delivery(messages: Vec<Value>, statuses: Vec<Value>) -> Delivery {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1"},
            "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919876543210"}],
            "messages": messages, "statuses": statuses}}]}]});
    let events = events_from_body(&serde_json::to_vec(&body).unwrap(), Utc::now()).unwrap();
    Delivery {
        events,
        retention_days: 90,
        done: oneshot::channel().0,
    }
}

fn text(id: &str, at: i64) -> Value {
    json!({"from": "919876543210", "id": id, "timestamp": at.to_string(), "type": "text", "text": {"body": "hi"}})
}

fn status(status: &str, at: i64) -> Value {
    json!({"id": "wamid.out", "status": status, "timestamp": at.to_string(), "recipient_id": "919876543210"})
}

/// A file holding what `ddl` creates (as an older version may have left it),
/// in a folder of its own.
fn file_with(ddl: &str) -> (tempfile::TempDir, Connection) {
    let folder = tempfile::tempdir().unwrap();
    let c = Connection::open(folder.path().join("pulse.db")).unwrap();
    c.execute_batch(ddl).unwrap();
    (folder, c)
}

/// A new file, at the latest version, in a folder of its own.
fn schema() -> (tempfile::TempDir, Connection) {
    let (folder, mut c) = file_with("");
    migrate(&mut c).unwrap();
    (folder, c)
}

fn total(c: &Connection, name: &str) -> i64 {
    let mut query = c
        .prepare("SELECT quarters FROM quarter_counters WHERE name = ?1")
        .unwrap();
    let rows = query.query_map([name], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    rows.map(|bytes| {
        decode_quarters(&bytes.unwrap())
            .unwrap()
            .iter()
            .sum::<i64>()
    })
    .sum()
}

fn writer() -> (tempfile::TempDir, Writer) {
    let (folder, c) = schema();
    (
        folder,
        Writer::open(c, UnwrittenContacts::default()).unwrap(),
    )
}

fn contact(c: &Connection) -> Option<ContactState> {
    read_state(
        c,
        "SELECT data FROM contacts WHERE wa_id = ?1",
        "919876543210",
    )
    .unwrap()
}

fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}
