//! The [`Store`] trait: deliveries go to the writer thread and are answered
//! once durable; reads run on the pool's connections and take the contacts the
//! writer has not written yet over the table's rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::quarters::quarter_pairs;
use super::schema::IdKey;
use super::writer::{Delivery, Job};
use super::{from_json, lock, to_json, unavailable, writer_gone, SqliteStore};
use crate::counters::{day_and_quarter, DayCounter, Granularity, SlotCounters, DAY_MS};
use crate::event::{Event, ReceivedEvent};
use crate::ingest::{ContactState, Outcome};
use crate::store::{ContactPosition, EventPage, EventQuery, Store, StoreError};

/// The contacts' ids as a JSON array, for `json_each`.
fn wa_ids(contacts: &[ContactState]) -> String {
    to_json(&contacts.iter().map(|c| &c.wa_id).collect::<Vec<_>>())
}

#[async_trait]
impl Store for SqliteStore {
    async fn record(
        &self,
        events: &[ReceivedEvent],
        retention_days: u32,
    ) -> Result<Vec<Outcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (done, result) = oneshot::channel();
        let delivery = Delivery {
            events: events.to_vec(),
            retention_days,
            done,
        };
        self.writer
            .send(Job::Record(delivery))
            .map_err(|_| writer_gone())?;
        result.await.map_err(|_| writer_gone())?
    }

    async fn quarter_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        quarters_of: Option<&str>,
    ) -> Result<Vec<DayCounter>, StoreError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        let first_day = day_and_quarter(from_ms).0;
        let quarters_of = quarters_of.map(str::to_owned);
        self.read(move |c| {
            // A day wholly inside the range, of a name whose quarters are not
            // asked for, is read as its total: its quarters are not even copied.
            let mut query = c
                .prepare_cached(
                    "SELECT day, name, total,
                        CASE WHEN day >= ?1 AND day <= ?2 - 86400000
                              AND (?3 IS NULL OR substr(name, 1, length(?3)) <> ?3)
                        THEN NULL ELSE quarters END
                     FROM quarter_counters WHERE day >= ?4 AND day < ?2 ORDER BY day, name",
                )
                .map_err(unavailable)?;
            let mut rows = query
                .query(params![from_ms, to_ms, quarters_of, first_day])
                .map_err(unavailable)?;
            let mut counters = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let day: i64 = row.get(0).map_err(unavailable)?;
                let name = || row.get(1).map_err(unavailable);
                let Some(bytes) = row
                    .get_ref(3)
                    .and_then(|v| Ok(v.as_blob_or_null()?))
                    .map_err(unavailable)?
                else {
                    let total: i64 = row.get(2).map_err(unavailable)?;
                    if total != 0 {
                        counters.push(DayCounter {
                            day,
                            name: name()?,
                            total,
                            quarters: Vec::new(),
                        });
                    }
                    continue;
                };
                // Sized up front: collecting a filter grows the vector step by step.
                let mut quarters = Vec::with_capacity(bytes.len() / 9);
                let whole_day = day >= from_ms && day + DAY_MS <= to_ms;
                for pair in quarter_pairs(bytes)? {
                    let (q, v) = pair?;
                    let slot = day + i64::from(q) * Granularity::Quarter.millis();
                    if v != 0 && (whole_day || (slot >= from_ms && slot < to_ms)) {
                        quarters.push((q, v));
                    }
                }
                if !quarters.is_empty() {
                    counters.push(DayCounter::new(day, name()?, quarters));
                }
            }
            Ok(counters)
        })
        .await
    }

    async fn minute_counters(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotCounters>, StoreError> {
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        self.read(move |c| {
            let mut query = c
                .prepare_cached(
                    "SELECT slot, name, value FROM counters WHERE granularity = 'M' AND slot >= ?1 AND slot < ?2 ORDER BY slot",
                )
                .map_err(unavailable)?;
            let rows = query
                .query_map(params![from_ms, to_ms], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(unavailable)?;
            let mut slots: Vec<SlotCounters> = Vec::new();
            for row in rows {
                let (slot, name, value) = row.map_err(unavailable)?;
                if slots.last().map(|s| s.slot) != Some(slot) {
                    slots.push(SlotCounters { slot, values: Default::default() });
                }
                slots.last_mut().expect("pushed above").values.insert(name, value);
            }
            Ok(slots)
        })
        .await
    }

    async fn events(&self, query: &EventQuery) -> Result<EventPage, StoreError> {
        let query = query.clone();
        self.read(move |c| events_page(c, &query)).await
    }

    async fn event(&self, id: &str) -> Result<Option<(Event, String)>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| stored_event(c, &id)).await
    }

    async fn contacts(
        &self,
        limit: usize,
        after: Option<&ContactPosition>,
    ) -> Result<Vec<ContactState>, StoreError> {
        let after = after.cloned();
        let unwritten: Vec<ContactState> = lock(&self.unwritten)
            .values()
            .map(|c| ContactState::clone(c))
            .collect();
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT data FROM contacts WHERE wa_id NOT IN (SELECT value FROM json_each(?2))
                       AND (?3 IS NULL OR (activity_ms, wa_id) < (?3, ?4))
                     ORDER BY activity_ms DESC, wa_id DESC LIMIT ?1",
                )
                .map_err(unavailable)?;
            let (after_ms, after_id) = after
                .as_ref()
                .map(|p| (p.activity_ms, p.wa_id.as_str()))
                .unzip();
            let rows = statement
                .query_map(
                    params![limit as i64, wa_ids(&unwritten), after_ms, after_id],
                    |r| r.get::<_, String>(0),
                )
                .map_err(unavailable)?;
            let mut contacts: Vec<ContactState> = unwritten
                .into_iter()
                .filter(|c| after.as_ref().is_none_or(|p| p.is_before(c)))
                .collect();
            for row in rows {
                contacts.push(from_json(&row.map_err(unavailable)?)?);
            }
            ContactPosition::sort(&mut contacts);
            contacts.truncate(limit);
            Ok(contacts)
        })
        .await
    }

    async fn contact(&self, wa_id: &str) -> Result<Option<ContactState>, StoreError> {
        if let Some(unwritten) = lock(&self.unwritten).get(wa_id) {
            return Ok(Some(ContactState::clone(unwritten)));
        }
        let wa_id = wa_id.to_owned();
        self.read(move |c| {
            let data: Option<String> = c
                .prepare_cached("SELECT data FROM contacts WHERE wa_id = ?1")
                .map_err(unavailable)?
                .query_row([&wa_id], |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            data.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn active_contacts(&self, since: DateTime<Utc>) -> Result<u64, StoreError> {
        let since_ms = since.timestamp_millis();
        let unwritten: Vec<ContactState> = lock(&self.unwritten)
            .values()
            .map(|c| ContactState::clone(c))
            .collect();
        let active = unwritten
            .iter()
            .filter(|c| c.last_inbound_ms.is_some_and(|ms| ms >= since_ms))
            .count() as u64;
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FROM contacts
                 WHERE inbound_ms >= ?1 AND wa_id NOT IN (SELECT value FROM json_each(?2))",
                params![since_ms, wa_ids(&unwritten)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64 + active)
            .map_err(unavailable)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(writer_gone());
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
            .await
    }
}

/// A page of the events route: newest first by WhatsApp time, from the feed
/// and the events after it.
pub(super) fn events_page(c: &Connection, query: &EventQuery) -> Result<EventPage, StoreError> {
    let (before_ms, before_id) = match &query.before {
        Some(b) => (b.occurred_ms, Some(IdKey::of(&b.id))),
        None => (i64::MAX, None),
    };
    // The feed holds the events up to the mark; the few after it (a second's
    // worth, 20 000 at most) are found by rowid and sorted here.
    let mut statement = c
        .prepare_cached(
            "SELECT data FROM (
               SELECT * FROM (
                 SELECT e.data, f.occurred_ms, f.id FROM feed f JOIN events e ON e.rowid = f.event
                 WHERE f.occurred_ms <= ?1 AND (f.occurred_ms < ?1 OR f.id < ?2)
                   AND (?3 IS NULL OR e.type = ?3)
                   AND (?4 IS NULL OR instr(e.search, ?4) > 0)
                   AND (?6 IS NULL OR instr(e.data, ?6) > 0)
                 ORDER BY f.occurred_ms DESC, f.id DESC LIMIT ?5)
               UNION ALL
               SELECT * FROM (
                 SELECT data, occurred_ms, id FROM events
                 WHERE rowid > (SELECT last_event FROM state_mark)
                   AND occurred_ms <= ?1 AND (occurred_ms < ?1 OR id < ?2)
                   AND (?3 IS NULL OR type = ?3)
                   AND (?4 IS NULL OR instr(search, ?4) > 0)
                   AND (?6 IS NULL OR instr(data, ?6) > 0)
                 ORDER BY occurred_ms DESC, id DESC LIMIT ?5))
             ORDER BY occurred_ms DESC, id DESC LIMIT ?5",
        )
        .map_err(unavailable)?;
    let text = query.text.as_deref().map(|t| t.to_lowercase());
    let contact = query.contact.as_deref().map(Event::contact_marker);
    let rows = statement
        .query_map(
            params![
                before_ms,
                before_id,
                query.event_type.as_deref(),
                text,
                query.limit as i64 + 1,
                contact
            ],
            |r| r.get::<_, String>(0),
        )
        .map_err(unavailable)?;
    let mut events = Vec::new();
    for row in rows {
        events.push(from_json::<Event>(&row.map_err(unavailable)?)?);
    }
    Ok(EventPage::from_overfetch(events, query.limit))
}

/// An event and its raw update, by id: through `event_ids` up to the mark, by a
/// look at the few events after it otherwise.
pub(super) fn stored_event(
    c: &Connection,
    id: &str,
) -> Result<Option<(Event, String)>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT data, raw FROM events WHERE rowid = (SELECT event FROM event_ids WHERE id = ?1)
             UNION ALL
             SELECT data, raw FROM events WHERE rowid > (SELECT last_event FROM state_mark) AND id = ?1",
        )
        .and_then(|mut query| {
            query
                .query_row([IdKey::of(id)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
        })
        .map_err(unavailable)?;
    row.map(|(data, raw)| Ok((from_json(&data)?, raw)))
        .transpose()
}
