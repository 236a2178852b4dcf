//! A day row's bytes, and the quarters a range query keeps of them.

use super::{delivery, text, T0};
use crate::counters::{names, utc_from_ms, DAY_MS, QUARTERS_PER_DAY};
use crate::store::sqlite::quarters::{decode_quarters, encode_quarters};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

#[test]
fn a_day_row_keeps_each_quarter_and_refuses_broken_bytes() {
    let mut quarters = [0; QUARTERS_PER_DAY];
    quarters[0] = 3;
    quarters[57] = -2;
    quarters[95] = i64::MAX;
    let bytes = encode_quarters(&quarters);
    assert_eq!(bytes.len(), 3 * 9);
    assert_eq!(decode_quarters(&bytes).unwrap(), quarters);
    assert!(decode_quarters(&bytes[..10]).is_err());
    assert!(decode_quarters(&[96, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
}

#[tokio::test]
async fn a_range_keeps_only_its_own_quarters() {
    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(folder.path().join("pulse.db")).unwrap();
    let day = T0 * 1000;
    let texts = (0..4)
        .map(|i| text(&format!("wamid.r{i}"), T0 + i * 3600 * 6))
        .collect();
    let events = delivery(texts, vec![]).events;
    store.record(&events, 90).await.unwrap();
    // 06:00 to 18:00 holds the texts of 06:00 and 12:00 only.
    let rows = store
        .quarter_counters(
            utc_from_ms(day + DAY_MS / 4),
            utc_from_ms(day + 3 * DAY_MS / 4),
            None,
        )
        .await
        .unwrap();
    let texts: Vec<_> = rows.iter().filter(|r| r.name == names::TEXT).collect();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].quarters, [(24, 1), (48, 1)]);
}
