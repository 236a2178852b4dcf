//! Reads through the pool, with the writer's unwritten contacts over the rows.

use super::{delivery, text, T0};
use crate::counters::utc_from_ms;
use crate::ingest::ContactState;
use crate::store::sqlite::{lock, SqliteStore};
use crate::store::Store;

#[tokio::test]
async fn readers_take_unwritten_contacts_over_their_rows() {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let events = delivery(vec![text("wamid.a", T0)], vec![]).events;
    store.record(&events, 90).await.unwrap();
    // Any other job runs after the state is written.
    store.write(|_| Ok(())).await.unwrap();
    let stored = store.contacts(10, None).await.unwrap();
    assert_eq!(stored[0].inbound, 1);

    // As the writer leaves them between state writes: a newer state of the
    // stored contact and a contact with no row yet.
    let newer = ContactState {
        inbound: 2,
        last_activity_ms: T0 * 1000 + 5,
        last_inbound_ms: Some(T0 * 1000 + 5),
        ..stored[0].clone()
    };
    let other = ContactState {
        wa_id: "447700900123".into(),
        last_activity_ms: T0 * 1000 + 9,
        ..Default::default()
    };
    lock(&store.unwritten).extend([
        (newer.wa_id.clone(), std::sync::Arc::new(newer.clone())),
        (other.wa_id.clone(), std::sync::Arc::new(other.clone())),
    ]);
    let contacts = store.contacts(10, None).await.unwrap();
    let seen: Vec<_> = contacts
        .iter()
        .map(|c| (c.wa_id.as_str(), c.inbound))
        .collect();
    assert_eq!(seen, [("447700900123", 0), ("919876543210", 2)]);
    assert_eq!(
        store.contacts(1, None).await.unwrap()[0].wa_id,
        "447700900123"
    );
    let since = utc_from_ms(T0 * 1000 + 1);
    assert_eq!(store.active_contacts(since).await.unwrap(), 1);
    assert_eq!(store.active_contacts(utc_from_ms(0)).await.unwrap(), 1);
}
