//! `GET /api/webhook/contacts` and `GET /api/webhook/contacts/{key}`: each
//! advisor with its figures over the window, read from its own state. A page
//! reads contacts by latest activity, so the window's contacts come first and
//! the list stops at the first one active before it; a filtered page reads at
//! most [`READS`] store pages of [`SCAN`] contacts, and says where to go on.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::local_time::local_window;
use super::views::*;
use crate::contact_key::ContactKeys;
use crate::counters::utc_from_ms;
use crate::funnel::{Figures, Segment};
use crate::ingest::ContactState;
use crate::mask::mask_phone;
use crate::store::{ContactPosition, Store, StoreError};

/// Contacts a store page holds while a filtered list is read.
const SCAN: usize = 200;
/// Store pages one request reads at most.
const READS: usize = 5;

/// Which of the window's contacts a page holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactList {
    pub days: u32,
    pub segment: Option<Segment>,
    /// Meta's error code ([`crate::funnel::NO_CODE_NUMBER`] for none): the
    /// contacts with a message of the window that failed with it.
    pub code: Option<i64>,
    pub limit: usize,
    /// Where the previous page ended.
    pub after: Option<ContactPosition>,
}

/// Where a list goes on: the place of the last contact read, as
/// `{activity ms}.{key}`, so that no number shows in it.
pub fn encode_cursor(keys: &ContactKeys, position: &ContactPosition) -> String {
    format!("{}.{}", position.activity_ms, keys.key_of(&position.wa_id))
}

/// The place a cursor names, or `None` for one this API did not make.
pub fn decode_cursor(keys: &ContactKeys, cursor: &str) -> Option<ContactPosition> {
    let (ms, key) = cursor.split_once('.')?;
    Some(ContactPosition {
        activity_ms: ms.parse().ok()?,
        wa_id: keys.wa_id_of(key)?,
    })
}

/// A page of the window's contacts, newest activity first.
pub async fn contacts(
    store: &dyn Store,
    keys: &ContactKeys,
    tz: Tz,
    list: ContactList,
    now: DateTime<Utc>,
) -> Result<Contacts, StoreError> {
    let (window, range) = window_of(tz, list.days, now);
    let limit = list.limit;
    let filtered = list.segment.is_some() || list.code.is_some();
    let batch = if filtered { SCAN } else { limit };
    let mut after = list.after.clone();
    let mut found = Vec::new();
    for _ in 0..READS {
        let page = store.contacts(batch, after.as_ref()).await?;
        let last_page = page.len() < batch;
        for contact in page {
            if contact.last_activity_ms < range.start {
                // The rest were active before the window.
                return Ok(Contacts {
                    window,
                    contacts: found,
                    next: None,
                });
            }
            after = Some(ContactPosition::of(&contact));
            if list.matches(&contact, &range) {
                found.push(summary(keys, &contact, &range));
                if found.len() == limit {
                    break;
                }
            }
        }
        if found.len() == limit || last_page {
            let next = (!last_page || found.len() == limit)
                .then(|| after.as_ref().map(|p| encode_cursor(keys, p)))
                .flatten();
            return Ok(Contacts {
                window,
                contacts: found,
                next,
            });
        }
    }
    Ok(Contacts {
        window,
        contacts: found,
        next: after.as_ref().map(|p| encode_cursor(keys, p)),
    })
}

/// One contact with its window figures and its lifetime ones; `None` when
/// Pulse knows no contact with this key.
pub async fn contact(
    store: &dyn Store,
    keys: &ContactKeys,
    key: &str,
    tz: Tz,
    days: u32,
    now: DateTime<Utc>,
) -> Result<Option<ContactDetail>, StoreError> {
    let Some(wa_id) = keys.wa_id_of(key) else {
        return Ok(None);
    };
    let Some(contact) = store.contact(&wa_id).await? else {
        return Ok(None);
    };
    let (window, range) = window_of(tz, days, now);
    let lifetime = contact.engagement.lifetime();
    Ok(Some(ContactDetail {
        period: window,
        contact: summary(keys, &contact, &range),
        lifetime: figures_with(lifetime, contact.inbound),
    }))
}

fn window_of(tz: Tz, days: u32, now: DateTime<Utc>) -> (Window, std::ops::Range<i64>) {
    let (first, last, start, end) = local_window(tz, days, now);
    (
        Window {
            days,
            from: first,
            to: last,
            timezone: tz.name().to_owned(),
        },
        start.timestamp_millis()..end.timestamp_millis(),
    )
}

impl ContactList {
    fn matches(&self, contact: &ContactState, window: &std::ops::Range<i64>) -> bool {
        let engagement = &contact.engagement;
        self.segment
            .is_none_or(|s| engagement.segment(window.start) == s)
            && self
                .code
                .is_none_or(|code| engagement.failed_with(code, window))
    }
}

fn summary(
    keys: &ContactKeys,
    contact: &ContactState,
    window: &std::ops::Range<i64>,
) -> ContactSummary {
    let engagement = &contact.engagement;
    let figures = engagement.figures(window);
    let failure = contact.last_failure.as_ref();
    ContactSummary {
        key: keys.key_of(&contact.wa_id),
        name: contact.name.clone(),
        wa_id: mask_phone(&contact.wa_id),
        last_activity: utc_from_ms(contact.last_activity_ms),
        last_click: contact.last_button_ms.map(utc_from_ms),
        last_read: contact.last_read_ms.map(utc_from_ms),
        last_failure: failure.map(|f| utc_from_ms(f.at_ms)),
        last_failure_code: failure.and_then(|f| f.code),
        segment: SegmentName::of(engagement.segment(window.start)),
        window: figures_with(figures, contact.inbound_in(window)),
    }
}

fn figures_with(figures: Figures, inbound: u64) -> ContactFigures {
    ContactFigures {
        sent: figures.sent,
        delivered: figures.delivered,
        read: figures.read,
        clicked: figures.clicked,
        failed: figures.failed,
        clicks: figures.clicks,
        inbound,
    }
}
