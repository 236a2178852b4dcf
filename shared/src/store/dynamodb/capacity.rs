//! What the store's requests cost, by DynamoDB's published sizing rules
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html>):
//! computed from the items Pulse sends, because a local server does not bill
//! (moto answers `ConsumedCapacity` with fixed figures).
//!
//! - A transactional write costs 2 WRU per KB of the item, rounded up per item;
//!   an update is billed on the item's size after it (a counter item stays well
//!   under 1 KB: it holds one number per counter name of its slot).
//! - Each index entry an item writes costs 1 WRU per KB of the entry; an entry
//!   whose index key changes is a delete and a put.
//! - A strongly consistent read costs 1 RRU per 4 KB, rounded up per item, and 1
//!   for a key with no item. Every item Pulse reads on intake is under 4 KB (events
//!   are at most a few KB of JSON, state items are bounded): 1 RRU a key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

/// Attributes the index projects besides its keys (see `create_tables`).
const INDEX_ATTRIBUTES: [&str; 8] = [
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "data",
    "type",
    "search",
    "inbound_ms",
];

/// Requests and capacity units since a store was made. Shared by its clones.
#[derive(Debug, Default)]
pub struct Usage {
    read_requests: AtomicU64,
    write_requests: AtomicU64,
    read_units: AtomicU64,
    write_units: AtomicU64,
}

/// A reading of [`Usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageFigures {
    pub read_requests: u64,
    pub write_requests: u64,
    pub read_units: u64,
    pub write_units: u64,
}

impl Usage {
    /// A strongly consistent `BatchGetItem` of `keys` keys.
    pub(super) fn read(&self, keys: usize) {
        self.read_requests.fetch_add(1, Ordering::Relaxed);
        self.read_units.fetch_add(keys as u64, Ordering::Relaxed);
    }

    /// A `TransactWriteItems`.
    pub(super) fn write(&self, write: &Write) {
        self.write_requests.fetch_add(1, Ordering::Relaxed);
        self.write_units.fetch_add(write.units, Ordering::Relaxed);
    }

    pub fn figures(&self) -> UsageFigures {
        UsageFigures {
            read_requests: self.read_requests.load(Ordering::Relaxed),
            write_requests: self.write_requests.load(Ordering::Relaxed),
            read_units: self.read_units.load(Ordering::Relaxed),
            write_units: self.write_units.load(Ordering::Relaxed),
        }
    }
}

/// The write units of one transaction being built.
#[derive(Debug, Default)]
pub(super) struct Write {
    pub units: u64,
}

impl Write {
    /// A put of `item` in a transaction. `moves_index_entry`: the item is in the
    /// index already and its index key changes (a contact's latest activity).
    pub fn put(&mut self, item: &HashMap<String, AttributeValue>, moves_index_entry: bool) {
        self.units += 2 * kilobytes(item_size(item.iter()));
        if item.contains_key("gsi1pk") {
            let entry = item_size(
                item.iter()
                    .filter(|(name, _)| INDEX_ATTRIBUTES.contains(&name.as_str())),
            );
            self.units += kilobytes(entry) * if moves_index_entry { 2 } else { 1 };
        }
    }

    /// An `ADD` of `counters` to a counter item, in a transaction.
    pub fn counters(&mut self, counters: &[(&str, i64)]) {
        // Keys ("COUNTERS#Q#0", a 15-digit slot) and a TTL, then the counters
        // ("c:" and the name, a number).
        let size = 60
            + counters
                .iter()
                .map(|(name, value)| 2 + name.len() + number_size(&value.to_string()))
                .sum::<usize>();
        self.units += 2 * kilobytes(size);
    }
}

/// An item's size as DynamoDB bills it: attribute names and values in bytes.
pub fn item_size<'a>(attributes: impl Iterator<Item = (&'a String, &'a AttributeValue)>) -> usize {
    attributes
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// A number takes about one byte per two significant digits, plus one.
fn number_size(number: &str) -> usize {
    let digits = number
        .trim_start_matches('-')
        .trim_start_matches('0')
        .trim_end_matches('0')
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    digits.div_ceil(2) + 1
}

fn kilobytes(bytes: usize) -> u64 {
    bytes.div_ceil(1024).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn sizes_follow_the_published_rules() {
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("1700000000"), 2);
        assert_eq!(number_size("-12345"), 4);
        let small = item(&[("pk", AttributeValue::S("a".repeat(98)))]);
        assert_eq!(item_size(small.iter()), 100);
        let mut write = Write::default();
        write.put(&small, false);
        assert_eq!(write.units, 2, "a transactional write of 100 bytes");
        let big = item(&[
            ("pk", AttributeValue::S("x".into())),
            ("gsi1pk", AttributeValue::S("f".into())),
            ("raw", AttributeValue::S("r".repeat(3000))),
            ("data", AttributeValue::S("d".repeat(1500))),
        ]);
        let mut write = Write::default();
        write.put(&big, false);
        // 4.5 KB → 5 KB, doubled; the index entry (keys and data, 1.5 KB) → 2.
        assert_eq!(write.units, 10 + 2);
        let mut write = Write::default();
        write.put(&big, true);
        assert_eq!(
            write.units,
            10 + 4,
            "a moved index entry is a delete and a put"
        );
    }
}
