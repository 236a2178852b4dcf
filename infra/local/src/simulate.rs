//! `pulse simulate`: realistic signed WhatsApp traffic for a running stack.
//!
//! [`Traffic`] decides what is sent, from a seed alone: which contact clicks which
//! button, who chats (in several languages), the business's replies and their
//! delivery statuses (out of order, some failed), and which deliveries Meta sends
//! again. [`simulate`] sends it at a rate, as Meta would, and counts the answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pulse_shared::signature::{sign, SIGNATURE_HEADER};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The business's number, as Meta puts it in every payload's `metadata`.
const BUSINESS: (&str, &str) = ("15550783881", "106540352242922");
const ACCOUNT_ID: &str = "102290129340398";

/// The Click-to-Unlock buttons, with how often each is clicked; then the others.
const BUTTONS: [(&str, &str, u32); 5] = [
    ("RETRIEVE_CONTENT", "Get the report", 40),
    ("UNLOCK_CONTENT", "Unlock the report", 30),
    ("SHARE_WITH_CLIENTS", "Share with my clients", 20),
    ("TALK_TO_ADVISOR", "Talk to my advisor", 6),
    ("NOT_NOW", "Not now", 4),
];

const NAMES: [&str; 16] = [
    "Asha Mehta",
    "Rahul Verma",
    "María García",
    "李伟",
    "Fatima Zahra",
    "Олег Петров",
    "Ngozi Okafor",
    "田中 ゆき",
    "João Silva",
    "Priya Nair",
    "Hans Müller",
    "Aisha Bello",
    "Chloé Dubois",
    "Mehmet Yılmaz",
    "Siddharth Rao",
    "Ana Kovač",
];

const TEXTS: [&str; 16] = [
    "Hi, can you send me this month's fund factsheet? 📄",
    "नमस्ते, मुझे नई रिपोर्ट चाहिए",
    "¿Podemos hablar mañana a las 10? 🙏",
    "Merci pour le rapport !",
    "谢谢，我已经看到了 👍",
    "Danke, bis morgen",
    "Olá! Quando sai o próximo relatório?",
    "شكراً جزيلاً على المعلومات",
    "Спасибо, получил",
    "ありがとうございます！",
    "Is my SIP still on for this month? 💰",
    "Please call me back ☎️",
    "Can you share this with my wife too? 👨‍👩‍👧",
    "The link says expired 😕",
    "<b>Is this bold?</b> & \"quoted\" 'text'",
    "ok 👍",
];

const MEDIA: [(&str, &str); 4] = [
    ("image", "Screenshot of the error"),
    ("document", "KYC form, signed"),
    ("audio", ""),
    ("video", "How I use the app"),
];

const REACTIONS: [&str; 4] = ["👍", "❤️", "🙏", "😂"];

/// Meta's error for a message outside the 24-hour window, the commonest failure.
const FAILURE: (i64, &str) = (131047, "Re-engagement message");

#[derive(Debug, Clone)]
struct Contact {
    wa_id: String,
    name: &'static str,
}

/// A delivery status of one of the business's messages, due at a later tick.
#[derive(Debug, Clone)]
struct Scheduled {
    due: u64,
    message_id: String,
    status: &'static str,
    recipient: String,
}

/// One webhook to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub body: Arc<Vec<u8>>,
    /// A re-delivery of an earlier body, byte for byte.
    pub resent: bool,
}

/// The traffic of a seed: the same seed, the same deliveries (ids, contacts, texts,
/// statuses and re-deliveries; only the times are those of the sending).
pub struct Traffic {
    rng: StdRng,
    contacts: Vec<Contact>,
    duplicates: f64,
    tick: u64,
    sent: Vec<Arc<Vec<u8>>>,
    scheduled: Vec<Scheduled>,
}

impl Traffic {
    /// `contacts` customers; `duplicates` of the deliveries (0–1) are sent again.
    pub fn new(seed: u64, contacts: usize, duplicates: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let contacts = (0..contacts.max(1))
            .map(|i| Contact {
                wa_id: format!(
                    "91{:010}",
                    rng.random_range(7_000_000_000u64..9_999_999_999)
                ),
                name: NAMES[i % NAMES.len()],
            })
            .collect();
        Self {
            rng,
            contacts,
            duplicates: duplicates.clamp(0.0, 1.0),
            tick: 0,
            sent: Vec::new(),
            scheduled: Vec::new(),
        }
    }

    /// The next delivery, its WhatsApp times set to `now`.
    pub fn next(&mut self, now: DateTime<Utc>) -> Delivery {
        self.tick += 1;
        if !self.sent.is_empty() && self.rng.random_bool(self.duplicates) {
            // Meta's re-deliveries: mostly soon after, a few much later.
            let index = if self.rng.random_bool(0.1) {
                self.rng.random_range(0..self.sent.len())
            } else {
                self.sent.len() - 1 - self.rng.random_range(0..self.sent.len().min(20))
            };
            return Delivery {
                body: Arc::clone(&self.sent[index]),
                resent: true,
            };
        }
        let body = Arc::new(self.fresh(now));
        self.sent.push(Arc::clone(&body));
        Delivery {
            body,
            resent: false,
        }
    }

    fn fresh(&mut self, now: DateTime<Utc>) -> Vec<u8> {
        let due: Vec<usize> = (0..self.scheduled.len())
            .filter(|&i| self.scheduled[i].due <= self.tick)
            .collect();
        if !due.is_empty() && self.rng.random_bool(0.7) {
            return self.statuses(due, now);
        }
        let contact = self
            .contacts
            .choose(&mut self.rng)
            .expect("one contact at least")
            .clone();
        let id = self.message_id();
        let message = match self.rng.random_range(0..100) {
            0..35 => {
                let (button, title, _) = *BUTTONS
                    .choose_weighted(&mut self.rng, |b| b.2)
                    .expect("weights are positive");
                let template = self.message_id();
                json!({"type": "interactive", "context": {"from": BUSINESS.0, "id": template},
                       "interactive": {"type": "button_reply", "button_reply": {"id": button, "title": title}}})
            }
            35..62 => {
                json!({"type": "text", "text": {"body": *TEXTS.choose(&mut self.rng).expect("texts")}})
            }
            62..68 => {
                let (kind, caption) = *MEDIA.choose(&mut self.rng).expect("media");
                let mut media = json!({"id": format!("{}", self.rng.random::<u64>()), "mime_type": "application/octet-stream"});
                if !caption.is_empty() {
                    media["caption"] = json!(caption);
                }
                let mut message = json!({"type": kind});
                message[kind] = media;
                message
            }
            68..72 => {
                let emoji = *REACTIONS.choose(&mut self.rng).expect("reactions");
                json!({"type": "reaction", "reaction": {"message_id": self.message_id(), "emoji": emoji}})
            }
            72..74 => json!({"type": "interactive", "interactive": {"type": "list_reply",
                       "list_reply": {"id": "PLAN_MONTHLY", "title": "Monthly plan"}}}),
            74..75 => return self.template_update(now),
            _ => return self.reply(contact, now),
        };
        let mut message = message;
        message["from"] = json!(contact.wa_id);
        message["id"] = json!(id);
        message["timestamp"] = json!(now.timestamp().to_string());
        envelope(
            json!({"contacts": [{"profile": {"name": contact.name}, "wa_id": contact.wa_id}], "messages": [message]}),
            now,
        )
    }

    /// The business answers a contact: `sent` now, then `delivered` and `read` (or
    /// `failed`) over the next ticks, in an order Meta does not promise.
    fn reply(&mut self, contact: Contact, now: DateTime<Utc>) -> Vec<u8> {
        let message_id = self.message_id();
        let later: &[&'static str] = if self.rng.random_bool(0.08) {
            &["failed"]
        } else {
            &["delivered", "read"]
        };
        for status in later {
            let due = self.tick + self.rng.random_range(1..12);
            self.scheduled.push(Scheduled {
                due,
                message_id: message_id.clone(),
                status,
                recipient: contact.wa_id.clone(),
            });
        }
        let sent = status_json(&message_id, "sent", &contact.wa_id, now);
        envelope(json!({"statuses": [sent]}), now)
    }

    /// Up to three due statuses in one delivery, shuffled.
    fn statuses(&mut self, due: Vec<usize>, now: DateTime<Utc>) -> Vec<u8> {
        let mut picked: Vec<Scheduled> = due
            .into_iter()
            .take(3)
            .rev()
            .map(|i| self.scheduled.swap_remove(i))
            .collect();
        if self.rng.random_bool(0.5) {
            picked.reverse();
        }
        let statuses: Vec<Value> = picked
            .iter()
            .map(|s| status_json(&s.message_id, s.status, &s.recipient, now))
            .collect();
        envelope(json!({"statuses": statuses}), now)
    }

    fn template_update(&mut self, now: DateTime<Utc>) -> Vec<u8> {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": ACCOUNT_ID, "time": now.timestamp(),
            "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED",
                "message_template_id": self.rng.random_range(1_000_000u64..9_999_999), "message_template_name": "monthly_report",
                "message_template_language": "en_US", "reason": "NONE"}}]}]});
        serde_json::to_vec(&body).expect("JSON")
    }

    fn message_id(&mut self) -> String {
        format!("wamid.SIM{:024X}", self.rng.random::<u128>() >> 32)
    }
}

fn status_json(id: &str, status: &str, recipient: &str, now: DateTime<Utc>) -> Value {
    let mut value = json!({"id": id, "status": status, "timestamp": now.timestamp().to_string(), "recipient_id": recipient});
    if status == "failed" {
        value["errors"] = json!([{"code": FAILURE.0, "title": FAILURE.1, "message": FAILURE.1}]);
    }
    value
}

/// A `messages` change of the business's number holding `value`'s fields.
fn envelope(value: Value, now: DateTime<Utc>) -> Vec<u8> {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": BUSINESS.0, "phone_number_id": BUSINESS.1});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": ACCOUNT_ID, "time": now.timestamp(),
        "changes": [{"field": "messages", "value": value}]}]});
    serde_json::to_vec(&body).expect("JSON")
}

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: String,
    pub secret: String,
    /// Webhooks per second.
    pub rate: f64,
    pub duration: Duration,
    pub contacts: usize,
    pub duplicates: f64,
    pub seed: u64,
}

/// What a run did, as the stack answered it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Webhooks posted (re-deliveries included).
    pub sent: u64,
    /// Of which re-deliveries of an earlier body.
    pub resent: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Events the stack stored, and those it recognised as already stored.
    pub stored: u64,
    pub duplicates: u64,
    /// Not answered 2xx, or not answered at all.
    pub errors: u64,
    pub elapsed: Duration,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
}

impl Summary {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// At most this many requests wait for an answer at once.
const IN_FLIGHT: usize = 64;

/// Sends the plan's traffic until its duration is over or `stop` resolves (Ctrl-C),
/// then waits for the answers still due.
pub async fn simulate(plan: &Plan, stop: impl std::future::Future<Output = ()>) -> Summary {
    let client = reqwest::Client::new();
    let mut traffic = Traffic::new(plan.seed, plan.contacts, plan.duplicates);
    let expected = (plan.rate * plan.duration.as_secs_f64()).ceil() as u64;
    let progress = ProgressBar::with_draw_target(Some(expected), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} webhooks  {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut summary = Summary::default();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut answers = JoinSet::new();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.max(0.001)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    while summary.sent < expected {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => break,
        }
        while let Some(answer) = answers.try_join_next() {
            count(
                &mut summary,
                answer.expect("the request task does not panic"),
            );
        }
        let delivery = traffic.next(Utc::now());
        summary.sent += 1;
        summary.resent += u64::from(delivery.resent);
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("never closed");
        let (client, url, secret) = (client.clone(), plan.url.clone(), plan.secret.clone());
        answers.spawn(async move {
            let _permit = permit;
            post(&client, &url, &secret, &delivery.body).await
        });
        progress.set_position(summary.sent);
        progress.set_message(format!(
            "stored {} · duplicates {} · errors {}",
            summary.stored, summary.duplicates, summary.errors
        ));
    }
    while let Some(answer) = answers.join_next().await {
        count(
            &mut summary,
            answer.expect("the request task does not panic"),
        );
    }
    summary.elapsed = started.elapsed();
    progress.finish_and_clear();
    summary
}

/// `(stored, duplicates)` of an accepted webhook, or why it was not.
type Answer = Result<(u64, u64), String>;

fn count(summary: &mut Summary, answer: Answer) {
    match answer {
        Ok((stored, duplicates)) => {
            summary.accepted += 1;
            summary.stored += stored;
            summary.duplicates += duplicates;
        }
        Err(error) => {
            summary.errors += 1;
            summary.first_error.get_or_insert(error);
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, secret: &str, body: &[u8]) -> Answer {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, sign(secret.as_bytes(), body))
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e} (is `pulse serve` running?)"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {text}"));
    }
    let answer: Value = serde_json::from_str(&text).unwrap_or_default();
    let field = |name: &str| answer["data"][name].as_u64().unwrap_or(0);
    Ok((field("stored"), field("duplicates")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_shared::event::{events_from_body, EventKind};

    fn run(seed: u64, count: usize) -> Vec<Delivery> {
        let now = DateTime::from_timestamp(1_767_261_600, 0).unwrap();
        let mut traffic = Traffic::new(seed, 20, 0.2);
        (0..count).map(|_| traffic.next(now)).collect()
    }

    #[test]
    fn the_same_seed_sends_the_same_traffic_and_another_seed_other_traffic() {
        assert_eq!(run(7, 300), run(7, 300));
        assert_ne!(run(7, 300), run(8, 300));
    }

    #[test]
    fn every_delivery_is_a_webhook_and_the_mix_is_realistic() {
        let deliveries = run(42, 2_000);
        let resent = deliveries.iter().filter(|d| d.resent).count();
        assert!(
            (300..500).contains(&resent),
            "about 20 % re-sent, got {resent}"
        );
        let now = Utc::now();
        let mut buttons = std::collections::BTreeSet::new();
        let mut statuses = std::collections::BTreeMap::<String, Vec<String>>::new();
        let mut kinds = std::collections::BTreeSet::new();
        for delivery in deliveries.iter().filter(|d| !d.resent) {
            let events = events_from_body(&delivery.body, now).expect("a webhook");
            assert!(!events.is_empty());
            for received in events {
                kinds.insert(received.event.kind.type_name());
                match received.event.kind {
                    EventKind::ButtonClick { button_id, .. } => {
                        buttons.insert(button_id);
                    }
                    EventKind::StatusUpdate {
                        message_id, status, ..
                    } => {
                        statuses.entry(message_id).or_default().push(status);
                    }
                    _ => {}
                }
            }
        }
        for button in [
            "RETRIEVE_CONTENT",
            "UNLOCK_CONTENT",
            "SHARE_WITH_CLIENTS",
            "TALK_TO_ADVISOR",
        ] {
            assert!(buttons.contains(button), "{button} is clicked");
        }
        assert_eq!(kinds.len(), 7, "every event type: {kinds:?}");
        let failed = statuses
            .values()
            .filter(|s| s.contains(&"failed".into()))
            .count();
        let read_before_delivered = statuses
            .values()
            .filter(|s| {
                let at = |name: &str| s.iter().position(|x| x == name);
                matches!((at("read"), at("delivered")), (Some(r), Some(d)) if r < d)
            })
            .count();
        assert!(failed > 0, "some replies fail");
        assert!(read_before_delivered > 0, "statuses arrive out of order");
    }
}
