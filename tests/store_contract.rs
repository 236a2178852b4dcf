//! The store contract: one suite, run against the SQLite store and against the
//! DynamoDB store on a real DynamoDB-compatible server (moto). Both must behave
//! the same.

use std::sync::Arc;

use chrono::{Duration, DurationRound, Utc};
use futures::future::join_all;
use pulse_shared::contact_key::ContactKeys;
use pulse_shared::counters::names;
use pulse_shared::metrics;
use pulse_shared::store::record_all;
use pulse_shared::store::{
    page_of_events, AlertLog, Connection, ConnectionStore, ContactPosition, EventQuery, Store,
};
use pulse_tests::*;

/// Runs each case against both stores, as `<case>::sqlite` and `<case>::dynamodb`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (store, _folder) = pulse_tests::sqlite_store();
                super::$case(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dynamodb() {
                super::$case(pulse_tests::dynamodb_store().await).await;
            }
        }
    )*};
}

contract!(
    stores_once_and_reports_duplicates,
    racing_deliveries_count_once,
    concurrent_events_of_one_contact_all_count,
    counters_are_read_by_window,
    clicks_by_weekday_and_hour,
    pages_newest_first_with_filters,
    a_quiet_history_fills_the_first_page,
    keeps_the_raw_update,
    contacts_newest_first_and_active_count,
    statuses_out_of_order_and_late_retries,
    a_large_delivery_counts_once,
    overlapping_deliveries_race,
    funnel_of_a_known_history,
);

async fn quarter_total(store: &dyn Store, name: &str) -> i64 {
    let now = Utc::now();
    let rows = store
        .quarter_counters(now - Duration::days(30), now + Duration::days(1), None)
        .await
        .unwrap();
    rows.iter()
        .filter(|row| row.name == name)
        .map(|row| row.total)
        .sum()
}

async fn stores_once_and_reports_duplicates(store: Arc<dyn Store>) {
    let now = Utc::now();
    let body = envelope(
        vec![
            text("wamid.a", CUSTOMER, now, "hi"),
            click("wamid.b", CUSTOMER, now, "UNLOCK_CONTENT"),
        ],
        vec![],
    );
    let first = record_all(store.as_ref(), &events(&body), 90)
        .await
        .unwrap();
    assert_eq!((first.received, first.stored, first.duplicates), (2, 2, 0));
    let again = record_all(store.as_ref(), &events(&body), 90)
        .await
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 2));
    assert_eq!(quarter_total(store.as_ref(), names::EVENTS).await, 2);
    assert_eq!(
        quarter_total(store.as_ref(), "click:UNLOCK_CONTENT").await,
        1
    );
    assert_eq!(quarter_total(store.as_ref(), names::TEXT).await, 1);
    let contacts = store.contacts(10, None).await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].inbound, 2);
}

async fn racing_deliveries_count_once(store: Arc<dyn Store>) {
    let now = Utc::now();
    let body = envelope(
        vec![text("wamid.race", CUSTOMER, now, "once")],
        vec![status("wamid.out", "sent", now, CUSTOMER)],
    );
    let deliveries = (0..12).map(|_| {
        let store = Arc::clone(&store);
        let received = events(&body);
        tokio::spawn(async move { record_all(store.as_ref(), &received, 90).await.unwrap() })
    });
    let summaries: Vec<_> = join_all(deliveries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        summaries.iter().map(|s| s.stored).sum::<usize>(),
        2,
        "{summaries:?}"
    );
    assert_eq!(quarter_total(store.as_ref(), names::EVENTS).await, 2);
    assert_eq!(quarter_total(store.as_ref(), names::OUTBOUND).await, 1);
    let contact = &store.contacts(1, None).await.unwrap()[0];
    assert_eq!((contact.inbound, contact.outbound), (1, 1));
}

async fn concurrent_events_of_one_contact_all_count(store: Arc<dyn Store>) {
    // Separate deliveries touching the same contact state at once: neither
    // optimistic retries (DynamoDB) nor group commits (SQLite) may lose an update.
    let now = Utc::now();
    let tasks = (0..16).map(|i| {
        let store = Arc::clone(&store);
        let body = envelope(
            vec![text(
                &format!("wamid.c{i}"),
                CUSTOMER,
                now + Duration::seconds(i),
                "x",
            )],
            vec![],
        );
        tokio::spawn(async move {
            record_all(store.as_ref(), &events(&body), 90)
                .await
                .unwrap()
        })
    });
    let summaries: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(summaries.iter().all(|s| s.stored == 1), "{summaries:?}");
    assert_eq!(store.contacts(1, None).await.unwrap()[0].inbound, 16);
    assert_eq!(quarter_total(store.as_ref(), names::TEXT).await, 16);
}

async fn counters_are_read_by_window(store: Arc<dyn Store>) {
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap() + Duration::hours(1);
    let days_ago = |d| today - Duration::days(d);
    let body = envelope(
        vec![
            text("wamid.w0", CUSTOMER, days_ago(0), "a"),
            text("wamid.w3", CUSTOMER, days_ago(3), "b"),
            text("wamid.w9", CUSTOMER, days_ago(9), "c"),
        ],
        vec![],
    );
    record_all(store.as_ref(), &events(&body), 90)
        .await
        .unwrap();
    let rows = store
        .quarter_counters(days_ago(5), today + Duration::days(1), Some(names::TEXT))
        .await
        .unwrap();
    let texts: Vec<_> = rows.iter().filter(|r| r.name == names::TEXT).collect();
    assert_eq!(texts.iter().map(|r| r.total).sum::<i64>(), 2);
    // Asked for by quarter, a row's total is its quarters' sum; asked for
    // totals, whole days may come without quarters but with the same totals.
    let totals = store
        .quarter_counters(days_ago(5), today + Duration::days(1), None)
        .await
        .unwrap();
    for row in &texts {
        assert_eq!(row.total, row.quarters.iter().map(|(_, v)| v).sum::<i64>());
        let same = totals
            .iter()
            .find(|t| t.day == row.day && t.name == row.name);
        assert_eq!(same.map(|t| t.total), Some(row.total), "{totals:?}");
    }
    assert!(
        texts.windows(2).all(|w| w[0].day < w[1].day),
        "a row per day, in time order"
    );
    // A window that starts after a day's first quarter leaves that quarter out.
    let later = store
        .quarter_counters(days_ago(3) + Duration::minutes(15), today, None)
        .await
        .unwrap();
    assert!(later.iter().all(|r| r.name != names::TEXT), "{later:?}");
    let week = metrics::webhook_metrics(store.as_ref(), chrono_tz::UTC, 7, Utc::now())
        .await
        .unwrap();
    assert_eq!(week.messages.text, 2);
    let long = metrics::webhook_metrics(store.as_ref(), chrono_tz::UTC, 10, Utc::now())
        .await
        .unwrap();
    assert_eq!(long.messages.text, 3);
}

/// The metrics' weekday × hour grid, read from either store's counters.
async fn clicks_by_weekday_and_hour(store: Arc<dyn Store>) {
    use chrono::{Datelike, Timelike};
    let now = Utc::now();
    let times = [
        now - Duration::minutes(1),
        now - Duration::minutes(2),
        now - Duration::days(3),
    ];
    let clicks = times
        .iter()
        .enumerate()
        .map(|(i, at)| click(&format!("wamid.wh{i}"), CUSTOMER, *at, "UNLOCK_CONTENT"))
        .collect();
    record_all(store.as_ref(), &events(&envelope(clicks, vec![])), 90)
        .await
        .unwrap();
    let mut expected = [[0i64; 24]; 7];
    for at in times {
        expected[at.weekday().num_days_from_monday() as usize][at.hour() as usize] += 1;
    }
    let week = metrics::webhook_metrics(store.as_ref(), chrono_tz::UTC, 7, now)
        .await
        .unwrap();
    assert_eq!(week.button_clicks.weekday_hourly, expected);
}

/// Every event a query matches, following `next` to the end.
async fn all_pages(store: &dyn Store, mut query: EventQuery) -> Vec<pulse_shared::event::Event> {
    let mut events = Vec::new();
    for _ in 0..100 {
        let page = store.events(&query).await.unwrap();
        assert!(page.events.len() <= query.limit);
        events.extend(page.events);
        match page.next {
            Some(next) => query.before = Some(next),
            None => return events,
        }
    }
    panic!("paging did not end");
}

async fn pages_newest_first_with_filters(store: Arc<dyn Store>) {
    let start = Utc::now() - Duration::hours(30); // spans two UTC days on the DynamoDB feed
    let mut messages = Vec::new();
    for i in 0..25 {
        let at = start + Duration::hours(i);
        messages.push(if i % 5 == 0 {
            click(&format!("wamid.p{i}"), CUSTOMER, at, "SHARE_WITH_CLIENTS")
        } else {
            text(
                &format!("wamid.p{i}"),
                CUSTOMER,
                at,
                &format!("Übersicht École {i}"),
            )
        });
    }
    record_all(store.as_ref(), &events(&envelope(messages, vec![])), 90)
        .await
        .unwrap();

    let first = store
        .events(&EventQuery {
            limit: 7,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.events.len(), 7, "a page is full while there is more");
    let seen = all_pages(
        store.as_ref(),
        EventQuery {
            limit: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(seen.len(), 25, "every event once across pages");
    assert!(
        seen.windows(2)
            .all(|w| w[0].occurred_at >= w[1].occurred_at),
        "newest first"
    );
    let mut ids: Vec<_> = seen.iter().map(|e| e.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 25);

    let clicks = all_pages(
        store.as_ref(),
        EventQuery {
            limit: 50,
            event_type: Some("button_click".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(clicks.len(), 5);
    let found = all_pages(
        store.as_ref(),
        EventQuery {
            limit: 50,
            text: Some("ÜBERSICHT ÉCOLE 2".into()),
            ..Default::default()
        },
    )
    .await;
    let bodies: Vec<_> = found.iter().map(|e| e.search_text()).collect();
    assert_eq!(
        found.len(),
        5,
        "École 2, 21, 22, 23, 24 (20 is a click): {bodies:?}"
    );
    let by_name = all_pages(
        store.as_ref(),
        EventQuery {
            limit: 50,
            text: Some("asha".into()),
            event_type: Some("button_click".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_name.len(), 5);
}

/// Events weeks apart, older than one request's walk on DynamoDB (14 days): the
/// first page still shows them, and a page has a `next` only when older events
/// exist.
async fn a_quiet_history_fills_the_first_page(store: Arc<dyn Store>) {
    let now = Utc::now();
    let ages = [20, 45, 80];
    let messages = ages
        .iter()
        .map(|days| {
            let at = now - Duration::days(*days);
            text(&format!("wamid.q{days}"), CUSTOMER, at, "quiet")
        })
        .collect();
    record_all(store.as_ref(), &events(&envelope(messages, vec![])), 90)
        .await
        .unwrap();
    let page = |limit, event_type: Option<&str>| EventQuery {
        limit,
        event_type: event_type.map(str::to_owned),
        ..Default::default()
    };

    let first = page_of_events(store.as_ref(), &page(10, None))
        .await
        .unwrap();
    let shown: Vec<_> = first.events.iter().map(|e| e.search_text()).collect();
    assert_eq!(first.events.len(), 3, "{shown:?}");
    assert!(first.next.is_none(), "no older events, so no next page");
    let newest = page_of_events(store.as_ref(), &page(1, None))
        .await
        .unwrap();
    assert_eq!(
        newest.events[0].occurred_at.timestamp(),
        (now - Duration::days(20)).timestamp(),
        "the newest event, weeks old"
    );
    // One call of the store finds it: a quiet stretch costs no walk through its days.
    let one_call = store.events(&page(1, None)).await.unwrap();
    assert_eq!(one_call.events, newest.events);
    let two = page_of_events(store.as_ref(), &page(2, None))
        .await
        .unwrap();
    assert_eq!(two.events.len(), 2);
    let rest = page_of_events(
        store.as_ref(),
        &EventQuery {
            before: Some(two.next.expect("an older event is left")),
            ..page(2, None)
        },
    )
    .await
    .unwrap();
    assert_eq!(rest.events.len(), 1);
    assert_eq!(
        rest.events[0].occurred_at.timestamp(),
        (now - Duration::days(80)).timestamp()
    );
    assert!(rest.next.is_none());
    let none = page_of_events(store.as_ref(), &page(10, Some("button_click")))
        .await
        .unwrap();
    assert!(
        none.events.is_empty() && none.next.is_none(),
        "no click at all"
    );
}

async fn keeps_the_raw_update(store: Arc<dyn Store>) {
    let body = br#"{"entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"wamid.raw","timestamp":"1767261600","type":"text","text":{"body":"a\/b \u00e9"}}]}}]}]}"#;
    let received = events(body);
    record_all(store.as_ref(), &received, 90).await.unwrap();
    let (event, raw) = store.event(&received[0].event.id).await.unwrap().unwrap();
    assert_eq!(event, received[0].event);
    assert_eq!(
        raw,
        r#"{"from":"1","id":"wamid.raw","timestamp":"1767261600","type":"text","text":{"body":"a\/b \u00e9"}}"#
    );
    assert!(store.event("0000").await.unwrap().is_none());
}

async fn contacts_newest_first_and_active_count(store: Arc<dyn Store>) {
    let now = Utc::now();
    let body = envelope(
        vec![
            text("wamid.old", "111111111111", now - Duration::hours(3), "old"),
            text(
                "wamid.mid",
                "222222222222",
                now - Duration::minutes(20),
                "mid",
            ),
            text(
                "wamid.new",
                "333333333333",
                now - Duration::minutes(1),
                "new",
            ),
        ],
        vec![status("wamid.only-out", "sent", now, "444444444444")],
    );
    record_all(store.as_ref(), &events(&body), 90)
        .await
        .unwrap();
    let contacts = store.contacts(10, None).await.unwrap();
    let order: Vec<_> = contacts.iter().map(|c| c.wa_id.as_str()).collect();
    assert_eq!(
        order,
        [
            "444444444444",
            "333333333333",
            "222222222222",
            "111111111111"
        ]
    );
    assert_eq!(store.contacts(2, None).await.unwrap().len(), 2);
    // A page goes on strictly after the place it is given.
    let after = ContactPosition::of(&contacts[1]);
    let rest = store.contacts(10, Some(&after)).await.unwrap();
    let rest: Vec<_> = rest.iter().map(|c| c.wa_id.as_str()).collect();
    assert_eq!(rest, ["222222222222", "111111111111"]);
    let one = store.contact("333333333333").await.unwrap().unwrap();
    assert_eq!(one, contacts[1]);
    assert_eq!(store.contact("999999999999").await.unwrap(), None);
    assert_eq!(
        store
            .active_contacts(now - Duration::minutes(30))
            .await
            .unwrap(),
        2,
        "outbound-only contacts are not active"
    );
    assert_eq!(
        store
            .active_contacts(now - Duration::hours(4))
            .await
            .unwrap(),
        3
    );
}

async fn statuses_out_of_order_and_late_retries(store: Arc<dyn Store>) {
    let now = Utc::now();
    let two_days_ago = now - Duration::days(2);
    // read arrives first, then delivered, then a late sent; and an inbound message
    // from two days ago, delivered late.
    for body in [
        envelope(vec![], vec![status("wamid.o1", "read", now, CUSTOMER)]),
        envelope(
            vec![],
            vec![status(
                "wamid.o1",
                "delivered",
                now - Duration::seconds(5),
                CUSTOMER,
            )],
        ),
        envelope(
            vec![],
            vec![status(
                "wamid.o1",
                "sent",
                now - Duration::seconds(10),
                CUSTOMER,
            )],
        ),
        envelope(vec![], vec![status("wamid.o2", "read", now, CUSTOMER)]),
        envelope(vec![], vec![status("wamid.o3", "failed", now, CUSTOMER)]),
        envelope(
            vec![text("wamid.late", CUSTOMER, two_days_ago, "late")],
            vec![],
        ),
    ] {
        record_all(store.as_ref(), &events(&body), 90)
            .await
            .unwrap();
    }
    let m = metrics::webhook_metrics(store.as_ref(), chrono_tz::UTC, 7, now)
        .await
        .unwrap();
    assert_eq!(
        (
            m.statuses.sent,
            m.statuses.delivered,
            m.statuses.read,
            m.statuses.failed
        ),
        (1, 1, 2, 1)
    );
    let rate = m.delivery_success_rate.unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    let late_day = two_days_ago.date_naive();
    let day = m
        .button_clicks
        .daily
        .iter()
        .position(|d| d.date == late_day)
        .unwrap();
    assert_eq!(
        day, 4,
        "the late message counts on its own day, two days back"
    );
    let today = metrics::webhook_metrics(store.as_ref(), chrono_tz::UTC, 1, now)
        .await
        .unwrap();
    assert_eq!(today.messages.text, 0);
    assert_eq!(m.messages.text, 1);
}

/// The funnel and failures of `click_to_unlock_scenario`, whose figures are
/// known, recorded in order, then again in a shuffled order with duplicates and
/// random batching into a second store's worth of deliveries: every figure is
/// the same.
async fn funnel_of_a_known_history(store: Arc<dyn Store>) {
    use rand::{seq::SliceRandom, Rng, SeedableRng};
    let now = Utc::now();
    let base = (now - Duration::days(3))
        .duration_trunc(Duration::days(1))
        .unwrap()
        + Duration::hours(9);
    let updates = click_to_unlock_scenario(base);
    // Shuffled, a third of them twice, in deliveries of 1 to 4 updates.
    let mut rng = rand::rngs::StdRng::seed_from_u64(test_seed());
    let mut arrivals: Vec<&Vec<u8>> = updates.iter().collect();
    arrivals.extend(updates.iter().filter(|_| rng.random_bool(0.33)));
    arrivals.shuffle(&mut rng);
    let mut batches = Vec::new();
    while !arrivals.is_empty() {
        let take = rng.random_range(1..=4).min(arrivals.len());
        let events: Vec<_> = arrivals
            .drain(..take)
            .flat_map(|body| events(body))
            .collect();
        batches.push(events);
    }
    for batch in &batches {
        store.record(batch, 90).await.unwrap();
    }
    let utc = chrono_tz::UTC;
    let f = metrics::funnel(store.as_ref(), utc, 7, now).await.unwrap();
    let stages = |s: &metrics::Stages| (s.sent, s.delivered, s.read, s.clicked, s.failed);
    assert_eq!(stages(&f.stages), (6, 3, 2, 1, 3));
    assert_eq!(stages(&f.by_category["utility"]), (3, 2, 2, 1, 1));
    assert_eq!(stages(&f.by_category["service"]), (1, 1, 0, 0, 0));
    assert_eq!(stages(&f.by_category["marketing"]), (2, 0, 0, 0, 2));
    assert_eq!(f.by_category.len(), 3);
    let day = |date: chrono::NaiveDate| {
        let day = f.daily.iter().find(|d| d.date == date).unwrap();
        stages(&day.stages)
    };
    assert_eq!(day(base.date_naive()), (5, 3, 2, 1, 2));
    assert_eq!(
        day((base + Duration::days(1)).date_naive()),
        (1, 0, 0, 0, 1)
    );
    assert_eq!(f.daily.len(), 7);
    assert_eq!(
        (f.clicks.total, f.clicks.unattributed),
        (2, 1),
        "the click on a message without status is apart"
    );
    assert_eq!(f.clicks.by_button["UNLOCK_CONTENT"], 1);
    assert_eq!(f.clicks.by_button["SHARE_WITH_CLIENTS"], 1);
    assert_eq!(f.clicks.by_button["RETRIEVE_CONTENT"], 0);
    assert_eq!(f.rates.delivered, Some(0.5));
    assert_eq!(f.rates.clicked, Some(1.0 / 6.0));
    let near = |got: Option<f64>, minutes: f64| {
        let want = minutes * 60_000.0;
        (got.unwrap() - want).abs() / want < 0.03
    };
    assert_eq!(f.time_to_read_ms.count, 2);
    assert!(near(f.time_to_read_ms.p95, 30.0), "{:?}", f.time_to_read_ms);
    assert_eq!(f.time_to_click_ms.count, 2);
    assert!(
        near(f.time_to_click_ms.p95, 2.0 * 24.0 * 60.0),
        "{:?}",
        f.time_to_click_ms
    );
    let answers = &f.answers;
    assert_eq!(
        (answers.clicks, answers.answered, answers.answered_delivered),
        (2, 1, 1)
    );
    assert_eq!(answers.answer_ms.count, 1);
    assert_eq!(answers.answer_ms.avg, Some(60_000.0));

    let failures = metrics::failures(store.as_ref(), utc, 7, now)
        .await
        .unwrap();
    assert_eq!(failures.total, 3);
    let codes: Vec<_> = failures
        .codes
        .iter()
        .map(|c| (c.code, c.messages, c.contacts))
        .collect();
    assert_eq!(codes, [(Some(131_049), 2, 1), (Some(131_026), 1, 1)]);
    assert_eq!(
        failures.codes[1].title.as_deref(),
        Some("Message undeliverable")
    );
    let daily: Vec<i64> = failures.codes[0].daily.iter().map(|d| d.messages).collect();
    assert_eq!(daily.iter().sum::<i64>(), 2);
    assert_eq!(daily.iter().filter(|n| **n == 1).count(), 2, "a day apart");

    // Yesterday alone: C's second failure, and C once.
    let yesterday_window =
        (now.date_naive() - (base + Duration::days(1)).date_naive()).num_days() as u32 + 1;
    let recent = metrics::failures(store.as_ref(), utc, yesterday_window - 1, now)
        .await
        .unwrap();
    assert_eq!(recent.total, 0, "the window ends before C's second send");
    let recent = metrics::failures(store.as_ref(), utc, yesterday_window, now)
        .await
        .unwrap();
    let codes: Vec<_> = recent
        .codes
        .iter()
        .map(|c| (c.code, c.messages, c.contacts))
        .collect();
    assert_eq!(codes, [(Some(131_049), 1, 1)]);

    // Contacts by segment: A clicked, B read, C and D were never reached.
    let segments = |engaged, reading, unread, unreached, none| metrics::Segments {
        engaged,
        reading,
        unread,
        unreached,
        none,
    };
    assert_eq!(f.contacts, segments(1, 1, 0, 2, 0));
    // From the day before yesterday: C's second failed send, and A's late
    // click on a message sent before the window (active, nothing sent).
    let recent = metrics::funnel(store.as_ref(), utc, yesterday_window, now)
        .await
        .unwrap();
    assert_eq!(recent.contacts, segments(0, 0, 0, 1, 1));
    // E only writes; F's message is delivered and not read; G clicks on a
    // message after all its statuses came.
    let (e, f_, g) = ("911000000005", "911000000006", "911000000007");
    let later = [
        envelope(vec![text("wamid.tE", e, base, "hello")], vec![]),
        envelope(
            vec![],
            vec![priced(
                status("wamid.mF", "delivered", base, f_),
                "utility",
                None,
            )],
        ),
        envelope(
            vec![],
            vec![priced(
                status("wamid.mG", "delivered", base, g),
                "utility",
                None,
            )],
        ),
        envelope(
            vec![click_on(
                "wamid.cG",
                g,
                base + Duration::hours(1),
                "UNLOCK_CONTENT",
                "wamid.mG",
            )],
            vec![],
        ),
    ];
    for body in &later {
        store.record(&events(body), 90).await.unwrap();
    }
    let f = metrics::funnel(store.as_ref(), utc, 7, now).await.unwrap();
    assert_eq!(f.contacts, segments(2, 1, 1, 2, 1));

    // The contacts list: each segment holds the contacts the funnel counts,
    // and each failure code those the failures route counts.
    let keys = ContactKeys::new(&"a contact key secret for the contract".to_owned().into());
    let list = |segment, code, limit: usize, after| {
        let (store, keys) = (store.clone(), keys.clone());
        let list = metrics::ContactList {
            days: 7,
            segment,
            code,
            limit,
            after,
        };
        async move {
            metrics::contacts(store.as_ref(), &keys, utc, list, now)
                .await
                .unwrap()
        }
    };
    let all = list(None, None, 50, None).await;
    assert_eq!(all.contacts.len(), 7);
    assert_eq!(all.next, None);
    let by_segment = |segment: metrics::SegmentName| {
        all.contacts.iter().filter(|c| c.segment == segment).count() as i64
    };
    use metrics::SegmentName as S;
    assert_eq!(
        segments(
            by_segment(S::Engaged),
            by_segment(S::Reading),
            by_segment(S::Unread),
            by_segment(S::Unreached),
            by_segment(S::None)
        ),
        f.contacts
    );
    for segment in pulse_shared::funnel::Segment::ALL {
        let page = list(Some(segment), None, 50, None).await;
        assert!(page.contacts.iter().all(|c| c.segment == S::of(segment)));
        assert_eq!(page.contacts.len() as i64, by_segment(S::of(segment)));
    }
    let a = all
        .contacts
        .iter()
        .find(|c| c.wa_id.ends_with("0001"))
        .unwrap();
    assert_eq!(a.segment, S::Engaged);
    assert_eq!(
        (
            a.window.sent,
            a.window.delivered,
            a.window.read,
            a.window.clicked
        ),
        (2, 2, 1, 1)
    );
    assert_eq!(a.window.clicks, 2);
    assert!(!a.key.contains("0001") && a.wa_id.contains('•'));
    let failures = metrics::failures(store.as_ref(), utc, 7, now)
        .await
        .unwrap();
    for code in &failures.codes {
        let code = code.code.unwrap_or(pulse_shared::funnel::NO_CODE_NUMBER);
        let page = list(None, Some(code), 50, None).await;
        let expected = failures
            .codes
            .iter()
            .find(|c| c.code.unwrap_or(0) == code)
            .unwrap();
        assert_eq!(page.contacts.len() as i64, expected.contacts, "{code}");
        assert!(page.contacts.iter().all(|c| c.window.failed > 0));
    }
    // Page by page, one at a time: the same contacts in the same order.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = list(None, None, 1, after).await;
        paged.extend(page.contacts.into_iter().map(|c| c.key));
        match page.next {
            Some(cursor) => after = Some(metrics::decode_cursor(&keys, &cursor).unwrap()),
            None => break,
        }
    }
    let keys_of_all: Vec<_> = all.contacts.iter().map(|c| c.key.clone()).collect();
    assert_eq!(paged, keys_of_all);
    // One contact: its window, and its lifetime.
    let one = metrics::contact(store.as_ref(), &keys, &a.key, utc, 7, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.contact, *a);
    assert_eq!((one.lifetime.sent, one.lifetime.clicked), (2, 1));
    assert_eq!(
        metrics::contact(store.as_ref(), &keys, "not-a-key", utc, 7, now)
            .await
            .unwrap(),
        None
    );
    // Its timeline: every event of it, newest first.
    let timeline = page_of_events(
        store.as_ref(),
        &EventQuery {
            limit: 50,
            contact: Some(ADVISORS[0].to_owned()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(timeline.events.len(), 7, "A's five statuses and two clicks");
    assert!(timeline
        .events
        .iter()
        .all(|e| e.contact.as_ref().unwrap().wa_id == ADVISORS[0]));
}

/// Runs each case of the connections table against both stores.
macro_rules! connections_contract {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _folder) = pulse_tests::sqlite_connections();
                super::$case(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$case(pulse_tests::dynamodb_connections().await).await;
            }
        }
    )*};
}

connections_contract!(connections_page_subscribe_and_expire);

async fn connections_page_subscribe_and_expire(store: Arc<dyn ConnectionStore>) {
    let now = Utc::now();
    let connection = |id: &str, expires_in: Duration| Connection {
        id: id.to_owned(),
        connected_at: now - Duration::minutes(1),
        expires_at: now + expires_in,
        types: None,
    };
    for id in ["c1=", "c2=", "c3=", "c4=", "c5="] {
        store
            .add(&connection(id, Duration::hours(2)))
            .await
            .unwrap();
    }
    store
        .add(&connection("expired=", -Duration::minutes(5)))
        .await
        .unwrap();

    let all_pages = || async {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .connections(after.as_deref(), 2, Utc::now())
                .await
                .unwrap();
            assert!(page.connections.len() <= 2);
            seen.extend(page.connections);
            match page.next {
                Some(next) => after = Some(next),
                None => break seen,
            }
        }
    };
    let mut ids: Vec<String> = all_pages().await.into_iter().map(|c| c.id).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["c1=", "c2=", "c3=", "c4=", "c5="],
        "every live connection once, page by page; none expired"
    );

    let types = vec!["button_click".to_owned(), "text_message".to_owned()];
    assert!(store.subscribe("c2=", &types).await.unwrap());
    assert!(!store.subscribe("nobody=", &types).await.unwrap());
    let c2 = all_pages()
        .await
        .into_iter()
        .find(|c| c.id == "c2=")
        .unwrap();
    assert_eq!(c2.types, Some(types));
    assert_eq!(
        c2.connected_at.timestamp(),
        (now - Duration::minutes(1)).timestamp()
    );

    store.remove("c3=").await.unwrap();
    store.remove("never-there=").await.unwrap();
    assert!(!store
        .subscribe("c3=", &["text_message".to_owned()])
        .await
        .unwrap());
    let ids: Vec<String> = all_pages().await.into_iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 4);
    assert!(!ids.contains(&"c3=".to_owned()));
}

/// The updates of a busy delivery: `contacts` contacts each send a text and get a
/// reply whose statuses come read, delivered, sent (newest first, as Meta may),
/// times spread over the last hours so that counters fall in many slots.
fn busy_updates(prefix: &str, contacts: usize) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let start = Utc::now() - Duration::hours(3);
    let mut messages = Vec::new();
    let mut statuses = Vec::new();
    for c in 0..contacts {
        let wa_id = format!("3162{c:08}");
        let at = start + Duration::seconds(97 * c as i64);
        messages.push(text(&format!("wamid.{prefix}in{c}"), &wa_id, at, "hi"));
        let out = format!("wamid.{prefix}out{c}");
        for (s, status_name) in ["read", "delivered", "sent"].iter().enumerate() {
            let at = at + Duration::seconds(60 - 20 * s as i64);
            statuses.push(status(&out, status_name, at, &wa_id));
        }
    }
    (messages, statuses)
}

/// What [`busy_updates`] for `contacts` contacts must have counted, once each.
async fn assert_busy_totals(store: &dyn Store, contacts: usize) {
    let n = contacts as i64;
    for (name, expected) in [
        (names::EVENTS, 4 * n),
        (names::TEXT, n),
        (names::OUTBOUND, n),
        (names::REACHED, n),
        ("status:sent", n),
        (names::RESPONSE_COUNT, n),
        // Every reply was sent 20 s after its message.
        (names::RESPONSE_SUM_MS, n * 20_000),
    ] {
        assert_eq!(quarter_total(store, name).await, expected, "{name}");
    }
    let stored = store.contacts(2 * contacts, None).await.unwrap();
    assert_eq!(stored.len(), contacts);
    assert!(stored
        .iter()
        .all(|c| (c.inbound, c.outbound, c.pending_since_ms()) == (1, 1, None)));
}

async fn a_large_delivery_counts_once(store: Arc<dyn Store>) {
    // 90 contacts: 360 updates, which DynamoDB writes in several transactions of
    // at most 100 items; each contact's reply is answered within the delivery.
    let (messages, statuses) = busy_updates("big", 90);
    let body = envelope(messages, statuses);
    let first = record_all(store.as_ref(), &events(&body), 90)
        .await
        .unwrap();
    assert_eq!((first.stored, first.duplicates), (360, 0));
    let again = record_all(store.as_ref(), &events(&body), 90)
        .await
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 360));
    assert_busy_totals(store.as_ref(), 90).await;
}

async fn overlapping_deliveries_race(store: Arc<dyn Store>) {
    // Eight deliveries, each an overlapping share of the same 30 contacts' updates
    // in its own order, at once: each update counts once whichever delivery (and,
    // on SQLite, whichever place in one group commit) stores it.
    let (messages, statuses) = busy_updates("race", 30);
    let pool: Vec<(bool, serde_json::Value)> = messages
        .into_iter()
        .map(|m| (true, m))
        .chain(statuses.into_iter().map(|s| (false, s)))
        .collect();
    let deliveries = (0..8usize).map(|d| {
        let mut share: Vec<_> = pool
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + d) % 3 != 0 || d == 0)
            .map(|(_, update)| update.clone())
            .collect();
        let turn = d * 7 % share.len();
        share.rotate_left(turn);
        if d % 2 == 1 {
            share.reverse();
        }
        let (inbound, outbound): (Vec<_>, Vec<_>) = share.into_iter().partition(|(m, _)| *m);
        let body = envelope(
            inbound.into_iter().map(|(_, v)| v).collect(),
            outbound.into_iter().map(|(_, v)| v).collect(),
        );
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            record_all(store.as_ref(), &events(&body), 90)
                .await
                .unwrap()
        })
    });
    let summaries: Vec<_> = join_all(deliveries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        summaries.iter().map(|s| s.stored).sum::<usize>(),
        120,
        "{summaries:?}"
    );
    assert_busy_totals(store.as_ref(), 30).await;
}

/// Runs each case of the alert log against both stores.
macro_rules! alerts_contract {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, _folder) = pulse_tests::sqlite_alerts();
                super::$case(store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                super::$case(pulse_tests::dynamodb_alerts().await).await;
            }
        }
    )*};
}

alerts_contract!(alert_transitions_are_kept_newest_first_once_each);

/// A store keeps each transition once (as recorded last: how its
/// notification went), gives the newest first, and each rule's latest however
/// old, from which the active alerts come back as they were (a restart
/// repeats nothing).
async fn alert_transitions_are_kept_newest_first_once_each(log: Arc<dyn AlertLog>) {
    use pulse_shared::alerts::{
        AlertHistory, AlertSource, Notification, NotificationState, Rule, State, Transition,
    };
    let t0 = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let transition = |rule, state, minutes| Transition {
        rule,
        state,
        since: t0,
        at: t0 + Duration::minutes(minutes),
        message: format!("{rule:?} {state:?}"),
        figures: [("refused".to_owned(), serde_json::json!(7))].into(),
        notification: Some(Notification::pending()),
    };
    let mut history = [
        transition(Rule::Refused, State::Firing, 0),
        transition(Rule::Silence, State::Firing, 1),
        transition(Rule::Refused, State::Resolved, 2),
    ];
    log.record_transitions(&history[..2]).await.unwrap();
    // Recorded again with the next one, as after a crash between the two.
    log.record_transitions(&history[1..]).await.unwrap();
    // Its notification went out: recorded again, it is kept as now.
    history[0].notification = Some(Notification {
        state: NotificationState::Sent,
        attempts: 2,
        at: Some(t0),
        error: None,
    });
    log.record_transitions(&history[..1]).await.unwrap();
    let newest_first = log.transitions(50).await.unwrap();
    assert_eq!(
        newest_first,
        history.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(log.transitions(1).await.unwrap(), [history[2].clone()]);
    // Many later transitions of another rule: silence's fire is still its latest.
    let flapping: Vec<Transition> = (0..60)
        .map(|i| {
            let state = if i % 2 == 0 {
                State::Firing
            } else {
                State::Resolved
            };
            transition(Rule::Store, state, 3 + i)
        })
        .collect();
    log.record_transitions(&flapping).await.unwrap();
    let mut latest = log.latest_transitions().await.unwrap();
    latest.sort_by_key(|t| t.rule);
    assert_eq!(
        latest,
        [history[1].clone(), history[2].clone(), flapping[59].clone()]
    );
    let alerts = AlertHistory(log).alerts().await.unwrap();
    assert_eq!(alerts.active, [history[1].clone()], "silence still fires");
    assert_eq!(alerts.recent.len(), 50);
    assert_eq!(alerts.recent[0], flapping[59]);
}
