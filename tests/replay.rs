//! A large, realistic scenario replayed the way Meta delivers: batches of 1 to
//! 1 000 updates, shuffled, 30 % delivered again (some at the same moment, some
//! much later). Every route's figures must equal those of the same scenario
//! delivered once, in order, and the simple counts must equal what the scenario
//! itself says.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use lambda_http::Body;
use pulse_shared::config::{MetricsConfig, WebhookConfig};
use pulse_shared::handlers::{MetricsHandler, WebhookHandler};
use pulse_shared::store::sqlite::SqliteStore;
use pulse_shared::store::Store;
use pulse_tests::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const BUTTONS: [&str; 5] = [
    "RETRIEVE_CONTENT",
    "UNLOCK_CONTENT",
    "SHARE_WITH_CLIENTS",
    "TALK_TO_ADVISOR",
    "NOT_NOW",
];

/// One update of the scenario, in the `messages` or `statuses` list of a change.
#[derive(Clone)]
enum Update {
    Message { from: String, value: Value },
    Status(Value),
}

/// What the scenario holds, counted from the scenario itself.
#[derive(Default, Debug, PartialEq)]
struct Truth {
    clicks: BTreeMap<String, i64>,
    text: i64,
    media: i64,
    other: i64,
}

/// `count` updates over the last four days from `contacts` customers: clicks,
/// texts, media, reactions and locations, and the business's replies with their
/// statuses (each status a fixed moment, as Meta re-sends it unchanged).
fn scenario(
    rng: &mut StdRng,
    count: usize,
    contacts: usize,
    now: DateTime<Utc>,
) -> (Vec<Update>, Truth) {
    let mut updates = Vec::with_capacity(count);
    let mut truth = Truth::default();
    let mut n = 0;
    while updates.len() < count {
        n += 1;
        let from = format!("9198{:08}", rng.random_range(0..contacts));
        let at = now - Duration::seconds(rng.random_range(60..4 * 86_400));
        let id = format!("wamid.R{n}");
        let base = json!({"from": from, "id": id, "timestamp": at.timestamp().to_string()});
        let with = |mut value: Value, fields: Value| {
            value
                .as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            value
        };
        let value = match rng.random_range(0..100) {
            0..35 => {
                let button = BUTTONS[rng.random_range(0..BUTTONS.len())];
                *truth.clicks.entry(button.into()).or_default() += 1;
                with(
                    base,
                    json!({"type": "interactive", "context": {"from": "15550783881", "id": "wamid.template"},
                    "interactive": {"type": "button_reply", "button_reply": {"id": button, "title": button}}}),
                )
            }
            35..60 => {
                truth.text += 1;
                with(
                    base,
                    json!({"type": "text", "text": {"body": format!("message {n} ✓")}}),
                )
            }
            60..66 => {
                truth.media += 1;
                with(
                    base,
                    json!({"type": "image", "image": {"id": "1", "mime_type": "image/jpeg", "caption": "look"}}),
                )
            }
            66..70 => {
                truth.other += 1;
                with(
                    base,
                    json!({"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "👍"}}),
                )
            }
            _ => {
                // A reply, and its statuses a few seconds to minutes later.
                let reply = format!("wamid.OUT{n}");
                let fate: &[&str] = match rng.random_range(0..10) {
                    0 => &["sent", "failed"],
                    1..4 => &["sent", "delivered"],
                    _ => &["sent", "delivered", "read"],
                };
                let mut when = at;
                for status in fate {
                    when += Duration::seconds(rng.random_range(1..600));
                    let mut value = json!({"id": reply, "status": status, "timestamp": when.timestamp().to_string(), "recipient_id": from});
                    if *status == "failed" {
                        value["errors"] =
                            json!([{"code": 131047, "title": "Re-engagement message"}]);
                    }
                    updates.push(Update::Status(value));
                }
                continue;
            }
        };
        updates.push(Update::Message { from, value });
    }
    updates.truncate(count);
    (updates, truth)
}

/// A webhook body holding these updates, one change per update (as Meta batches).
fn body(updates: &[Update]) -> Arc<Vec<u8>> {
    let changes: Vec<Value> = updates
        .iter()
        .map(|update| {
            let mut value = json!({"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}});
            match update {
                Update::Message { from, value: message } => {
                    value["contacts"] = json!([{"profile": {"name": "Customer"}, "wa_id": from}]);
                    value["messages"] = json!([message]);
                }
                Update::Status(status) => value["statuses"] = json!([status]),
            }
            json!({"field": "messages", "value": value})
        })
        .collect();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]});
    Arc::new(serde_json::to_vec(&body).unwrap())
}

async fn deliver(webhook: &WebhookHandler, body: &[u8]) {
    let response = webhook.handle(signed_post(body)).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());
}

/// Meta's way: batches of 1–1 000 in shuffled order; 30 % again, half of those at
/// the same moment as the first, half after everything else.
async fn deliver_as_meta_does(
    webhook: &WebhookHandler,
    rng: &mut StdRng,
    updates: &[Update],
    largest: usize,
) {
    let mut shuffled = updates.to_vec();
    shuffled.shuffle(rng);
    let mut batches = Vec::new();
    let mut rest = &shuffled[..];
    while !rest.is_empty() {
        let size = rng.random_range(1..=largest.min(rest.len()));
        batches.push(body(&rest[..size]));
        rest = &rest[size..];
    }
    let mut late = Vec::new();
    for batch in &batches {
        if rng.random_bool(0.15) {
            join_all([deliver(webhook, batch), deliver(webhook, batch)]).await;
        } else {
            deliver(webhook, batch).await;
            if rng.random_bool(0.15 / 0.85) {
                late.push(Arc::clone(batch));
            }
        }
    }
    late.shuffle(rng);
    join_all(late.iter().map(|batch| deliver(webhook, batch))).await;
}

/// The metrics and conversations routes' answers.
async fn figures(store: Arc<dyn Store>) -> Value {
    let metrics = MetricsHandler::new(
        MetricsConfig::from_source(&HANDLER_SETTINGS).unwrap(),
        store,
        no_alerts(),
    );
    let mut all = serde_json::Map::new();
    for (name, path, query) in [
        ("metrics", "/api/webhook/metrics", vec![("days", "7")]),
        (
            "conversations",
            "/api/webhook/conversations",
            vec![("limit", "200"), ("active_minutes", "10080")],
        ),
    ] {
        let response = metrics.handle(authorized_get(path, &query)).await;
        let answer: Value = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(response.status(), 200, "{answer}");
        all.insert(name.into(), answer["data"].clone());
    }
    Value::Object(all)
}

async fn replay(store: Arc<dyn Store>, updates: usize, contacts: usize, largest: usize) {
    let seed = test_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (scenario, truth) = scenario(&mut rng, updates, contacts, Utc::now());
    let config = || WebhookConfig::from_source(&HANDLER_SETTINGS).unwrap();

    let webhook = WebhookHandler::new(config(), Arc::clone(&store), 90);
    let started = std::time::Instant::now();
    deliver_as_meta_does(&webhook, &mut rng, &scenario, largest).await;
    println!(
        "{updates} updates delivered Meta's way in {:?}",
        started.elapsed()
    );

    let folder = tempfile::tempdir().unwrap();
    let control: Arc<dyn Store> =
        Arc::new(SqliteStore::open(folder.path().join("control.db")).unwrap());
    let in_order = WebhookHandler::new(config(), Arc::clone(&control), 90);
    for updates in scenario.chunks(100) {
        deliver(&in_order, &body(updates)).await;
    }

    let (got, expected) = (figures(store).await, figures(control).await);
    let clicks = &got["metrics"]["button_clicks"];
    let counted = Truth {
        clicks: serde_json::from_value(clicks["by_button"].clone()).unwrap(),
        text: got["metrics"]["messages"]["text"].as_i64().unwrap(),
        media: got["metrics"]["messages"]["media"].as_i64().unwrap(),
        other: got["metrics"]["messages"]["other"].as_i64().unwrap(),
    };
    assert_eq!(counted, truth, "the counts are the scenario's");
    assert_eq!(
        clicks["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["total"].as_i64().unwrap())
            .sum::<i64>(),
        truth.clicks.values().sum::<i64>()
    );
    for route in ["metrics", "conversations"] {
        assert!(
            got[route] == expected[route],
            "{route}: not what one in-order delivery gives:\n{}\n{}",
            got[route],
            expected[route]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_updates_delivered_as_meta_does_count_exactly_on_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(folder.path().join("pulse.db")).unwrap());
    replay(store, 10_000, 300, 1_000).await;
}

/// moto applies a transaction in tens of milliseconds: the same mix at a size
/// that keeps the test command within its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_on_dynamodb_counts_exactly_too() {
    replay(dynamodb_store().await, 100, 20, 50).await;
}
