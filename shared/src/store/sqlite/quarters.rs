//! A `quarter_counters` row's bytes: a UTC day's non-zero quarters of one
//! counter as 9-byte (quarter, i64 LE) pairs, so that a 30-day query reads a row
//! a day per counter, and how quarter deltas are added to them (docs/performance.md,
//! "Why counters by quarter, in day rows with totals").

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{corrupt, unavailable, StoreError};
use crate::counters::{day_and_quarter, QUARTERS_PER_DAY};

/// Quarter cells `(slot, name, value)` summed into a row per (UTC day, name).
pub(super) fn day_rows<'a>(
    cells: impl IntoIterator<Item = (i64, &'a str, i64)>,
) -> BTreeMap<(i64, &'a str), [i64; QUARTERS_PER_DAY]> {
    let mut rows: BTreeMap<(i64, &str), [i64; QUARTERS_PER_DAY]> = BTreeMap::new();
    for (slot, name, value) in cells {
        let (day, quarter) = day_and_quarter(slot);
        rows.entry((day, name)).or_insert([0; QUARTERS_PER_DAY])[usize::from(quarter)] += value;
    }
    rows
}

/// Adds quarter cells `(slot, name, value)` to their day rows.
pub(super) fn add_quarters<'a>(
    tx: &Connection,
    cells: impl IntoIterator<Item = (i64, &'a str, i64)>,
) -> Result<(), StoreError> {
    let rows = day_rows(cells);
    let mut read = tx
        .prepare_cached("SELECT quarters FROM quarter_counters WHERE day = ?1 AND name = ?2")
        .map_err(unavailable)?;
    let mut write = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO quarter_counters (day, name, quarters, total) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(unavailable)?;
    for ((day, name), additions) in rows {
        let stored: Option<Vec<u8>> = read
            .query_row(params![day, name], |r| r.get(0))
            .optional()
            .map_err(unavailable)?;
        let mut quarters = match stored {
            Some(bytes) => decode_quarters(&bytes)?,
            None => [0; QUARTERS_PER_DAY],
        };
        for (sum, addition) in quarters.iter_mut().zip(additions) {
            *sum += addition;
        }
        let total: i64 = quarters.iter().sum();
        write
            .execute(params![day, name, encode_quarters(&quarters), total])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// A day's quarters as stored: the non-zero ones as (quarter, i64 LE) pairs.
pub(super) fn encode_quarters(quarters: &[i64; QUARTERS_PER_DAY]) -> Vec<u8> {
    let held = quarters.iter().filter(|v| **v != 0).count();
    let mut bytes = Vec::with_capacity(9 * held);
    for (quarter, value) in quarters.iter().enumerate().filter(|(_, v)| **v != 0) {
        bytes.push(quarter as u8);
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

pub(super) fn decode_quarters(bytes: &[u8]) -> Result<[i64; QUARTERS_PER_DAY], StoreError> {
    let mut quarters = [0; QUARTERS_PER_DAY];
    for pair in quarter_pairs(bytes)? {
        let (quarter, value) = pair?;
        quarters[usize::from(quarter)] += value;
    }
    Ok(quarters)
}

/// The (quarter, value) pairs of a stored day row, each checked as it is read.
pub(super) fn quarter_pairs(
    bytes: &[u8],
) -> Result<impl Iterator<Item = Result<(u8, i64), StoreError>> + '_, StoreError> {
    let pairs = bytes.chunks_exact(9);
    if !pairs.remainder().is_empty() {
        return Err(corrupt(
            "a quarter_counters row is not whole (quarter, value) pairs",
        ));
    }
    Ok(pairs.map(|pair| {
        if usize::from(pair[0]) >= QUARTERS_PER_DAY {
            return Err(corrupt("a quarter_counters row names a quarter past 95"));
        }
        let value = i64::from_le_bytes(pair[1..].try_into().expect("8 bytes"));
        Ok((pair[0], value))
    }))
}
