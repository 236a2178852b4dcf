//! `pulse simulate`: realistic signed WhatsApp traffic for a running stack.
//!
//! [`Traffic`] decides what is sent, from a seed and the clock alone: the daily
//! content as templates (utility and marketing) with the three buttons, the
//! advisors' clicks on it minutes to days later and the content sent back, who
//! chats (in several languages) and the business's replies, every delivery
//! status at its own time and out of order, failures with Meta's codes, advisors
//! who never read and some who can no longer be reached, and which deliveries
//! Meta sends again. [`simulate`] sends it at a rate, as Meta would, with the
//! WhatsApp times of now or of the last `--days`, and counts the answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
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

/// Meta's errors for a failed send, with how often each comes: the re-engagement
/// window (free-form replies only), undeliverable, marketing's frequency cap and
/// opt-out, rate limits, the marketing experiment, and template errors.
const FAILURES: [(i64, &str, u32); 8] = [
    (131_026, "Message undeliverable", 25),
    (
        131_049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        25,
    ),
    (131_050, "User has stopped marketing messages", 10),
    (131_048, "Spam rate limit hit", 8),
    (
        131_056,
        "(Business Account, Consumer Account) pair rate limit hit",
        8,
    ),
    (130_472, "User's number is part of an experiment", 8),
    (132_001, "Template does not exist", 4),
    (132_000, "Template Param Count Mismatch", 4),
];
/// A delay between two times, in seconds, and how often it is drawn.
type Delay = (i64, i64, u32);
/// From content delivered to read: half within two minutes, the rest within hours.
const READ_AFTER: [Delay; 2] = [(3, 120, 5), (120, 6 * 3600, 5)];
/// From read to clicked: half within two minutes, a few days later.
const CLICK_AFTER: [Delay; 3] = [(2, 120, 5), (120, 8 * 3600, 3), (8 * 3600, 3 * 86_400, 2)];

/// Free-form replies outside the 24-hour window fail with this.
const RE_ENGAGEMENT: (i64, &str) = (131_047, "Re-engagement message");

/// How an advisor treats the daily content.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Habit {
    /// Reads it, and often clicks.
    Engaged,
    /// It is delivered; they never open it.
    NeverReads,
    /// Their number no longer takes messages: every send fails.
    Unreachable,
}

#[derive(Debug, Clone)]
struct Contact {
    wa_id: String,
    name: &'static str,
    habit: Habit,
}

/// Something Meta will tell us later, at its own WhatsApp time.
#[derive(Debug, Clone)]
struct Scheduled {
    at: DateTime<Utc>,
    what: Later,
}

#[derive(Debug, Clone)]
enum Later {
    Status {
        message_id: String,
        status: &'static str,
        recipient: String,
        category: &'static str,
        error: Option<(i64, &'static str)>,
    },
    /// An advisor clicks a button of the content message `context`.
    Click { contact: Contact, context: String },
    /// The business sends the unlocked content back (a service message).
    Answer { contact: Contact },
}

/// One webhook to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub body: Arc<Vec<u8>>,
    /// A re-delivery of an earlier body, byte for byte.
    pub resent: bool,
}

/// The traffic of a seed: the same seed, the same deliveries (ids, contacts, texts,
/// statuses and re-deliveries) for the same clock.
pub struct Traffic {
    rng: StdRng,
    contacts: Vec<Contact>,
    duplicates: f64,
    sent: Vec<Arc<Vec<u8>>>,
    scheduled: Vec<Scheduled>,
}

/// A random time between `from` and `to` after `at`.
fn after(
    rng: &mut StdRng,
    at: DateTime<Utc>,
    from: ChronoDuration,
    to: ChronoDuration,
) -> DateTime<Utc> {
    let span = (to - from).num_milliseconds().max(1);
    at + from + ChronoDuration::milliseconds(rng.random_range(0..span))
}

impl Traffic {
    /// `contacts` advisors; `duplicates` of the deliveries (0–1) are sent again.
    pub fn new(seed: u64, contacts: usize, duplicates: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let contacts = (0..contacts.max(1))
            .map(|i| Contact {
                wa_id: format!(
                    "91{:010}",
                    rng.random_range(7_000_000_000u64..9_999_999_999)
                ),
                name: NAMES[i % NAMES.len()],
                habit: match i % 10 {
                    3 => Habit::NeverReads,
                    7 if i > 7 => Habit::Unreachable,
                    8 => Habit::NeverReads,
                    _ => Habit::Engaged,
                },
            })
            .collect();
        Self {
            rng,
            contacts,
            duplicates: duplicates.clamp(0.0, 1.0),
            sent: Vec::new(),
            scheduled: Vec::new(),
        }
    }

    /// The next delivery at WhatsApp time `now` (which only moves forward).
    pub fn next(&mut self, now: DateTime<Utc>) -> Delivery {
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
        // The earliest thing due first.
        let due = (0..self.scheduled.len())
            .filter(|&i| self.scheduled[i].at <= now)
            .min_by_key(|&i| self.scheduled[i].at);
        if let Some(due) = due.filter(|_| self.rng.random_bool(0.7)) {
            return self.due(due, now);
        }
        let contact = self
            .contacts
            .choose(&mut self.rng)
            .expect("one contact at least")
            .clone();
        let id = self.message_id();
        let message = match self.rng.random_range(0..100) {
            0..30 => return self.content(contact, now),
            30..33 => {
                // A click on content sent before Pulse was listening.
                let context = self.message_id();
                self.button(&context)
            }
            33..58 => {
                json!({"type": "text", "text": {"body": *TEXTS.choose(&mut self.rng).expect("texts")}})
            }
            58..64 => {
                let (kind, caption) = *MEDIA.choose(&mut self.rng).expect("media");
                let mut media = json!({"id": format!("{}", self.rng.random::<u64>()), "mime_type": "application/octet-stream"});
                if !caption.is_empty() {
                    media["caption"] = json!(caption);
                }
                let mut message = json!({"type": kind});
                message[kind] = media;
                message
            }
            64..68 => {
                let emoji = *REACTIONS.choose(&mut self.rng).expect("reactions");
                json!({"type": "reaction", "reaction": {"message_id": self.message_id(), "emoji": emoji}})
            }
            68..70 => json!({"type": "interactive", "interactive": {"type": "list_reply",
                       "list_reply": {"id": "PLAN_MONTHLY", "title": "Monthly plan"}}}),
            70..71 => return self.template_update(now),
            _ => return self.reply(contact, now),
        };
        inbound(&contact, message, &id, now)
    }

    /// A button reply on the content message `context`.
    fn button(&mut self, context: &str) -> Value {
        let (button, title, _) = *BUTTONS
            .choose_weighted(&mut self.rng, |b| b.2)
            .expect("weights are positive");
        json!({"type": "interactive", "context": {"from": BUSINESS.0, "id": context},
               "interactive": {"type": "button_reply", "button_reply": {"id": button, "title": title}}})
    }

    /// Up to three things come due: a click or an answer alone, or statuses
    /// together, in an order Meta does not promise.
    fn due(&mut self, due: usize, now: DateTime<Utc>) -> Vec<u8> {
        let first = self.scheduled.swap_remove(due);
        match first.what {
            Later::Click { contact, context } => {
                let id = self.message_id();
                let message = self.button(&context);
                // The business sends the content back within a minute or two,
                // nearly always.
                if self.rng.random_bool(0.92) {
                    let at = after(
                        &mut self.rng,
                        first.at,
                        ChronoDuration::seconds(3),
                        ChronoDuration::seconds(90),
                    );
                    self.scheduled.push(Scheduled {
                        at,
                        what: Later::Answer {
                            contact: contact.clone(),
                        },
                    });
                }
                inbound(&contact, message, &id, first.at)
            }
            Later::Answer { contact } => {
                let message_id = self.message_id();
                let failure = self
                    .rng
                    .random_bool(0.04)
                    .then_some((131_048, "Spam rate limit hit"));
                self.send(&contact, &message_id, "service", first.at, failure);
                self.status_now(&message_id, &contact, "service", first.at)
            }
            Later::Status { .. } => {
                let mut picked = vec![first];
                while picked.len() < 3 {
                    let Some(i) = self
                        .scheduled
                        .iter()
                        .position(|s| s.at <= now && matches!(s.what, Later::Status { .. }))
                    else {
                        break;
                    };
                    picked.push(self.scheduled.swap_remove(i));
                }
                if self.rng.random_bool(0.5) {
                    picked.reverse();
                }
                let statuses: Vec<Value> = picked
                    .iter()
                    .filter_map(|s| match &s.what {
                        Later::Status {
                            message_id,
                            status,
                            recipient,
                            category,
                            error,
                        } => Some(status_json(
                            message_id, status, recipient, s.at, category, *error,
                        )),
                        _ => None,
                    })
                    .collect();
                envelope(json!({"statuses": statuses}), now)
            }
        }
    }

    /// Today's content to an advisor: a template (utility or marketing) with the
    /// three buttons. `sent` now; the rest as the advisor's habit has it.
    fn content(&mut self, contact: Contact, now: DateTime<Utc>) -> Vec<u8> {
        let message_id = self.message_id();
        let category = if self.rng.random_bool(0.7) {
            "utility"
        } else {
            "marketing"
        };
        let failure = match contact.habit {
            Habit::Unreachable => Some((131_026, "Message undeliverable")),
            _ if self.rng.random_bool(0.06) => {
                let (code, title, _) = *FAILURES
                    .choose_weighted(&mut self.rng, |f| f.2)
                    .expect("weights are positive");
                Some((code, title))
            }
            _ => None,
        };
        self.send(&contact, &message_id, category, now, failure);
        if failure.is_none() && contact.habit == Habit::Engaged && self.rng.random_bool(0.85) {
            // Read within seconds to hours; clicked, often, seconds to days later.
            let read = self.later(now, &READ_AFTER);
            self.schedule_status(&message_id, "read", &contact, category, read, None);
            if self.rng.random_bool(0.6) {
                let at = self.later(read, &CLICK_AFTER);
                self.scheduled.push(Scheduled {
                    at,
                    what: Later::Click {
                        contact: contact.clone(),
                        context: message_id.clone(),
                    },
                });
            }
        }
        self.status_now(&message_id, &contact, category, now)
    }

    /// The statuses of a message sent at `now`, after `sent`: delivered soon,
    /// or failed with `failure`.
    fn send(
        &mut self,
        contact: &Contact,
        message_id: &str,
        category: &'static str,
        now: DateTime<Utc>,
        failure: Option<(i64, &'static str)>,
    ) {
        let at = after(
            &mut self.rng,
            now,
            ChronoDuration::seconds(1),
            ChronoDuration::seconds(30),
        );
        let status = if failure.is_some() {
            "failed"
        } else {
            "delivered"
        };
        self.schedule_status(message_id, status, contact, category, at, failure);
    }

    fn schedule_status(
        &mut self,
        message_id: &str,
        status: &'static str,
        contact: &Contact,
        category: &'static str,
        at: DateTime<Utc>,
        error: Option<(i64, &'static str)>,
    ) {
        self.scheduled.push(Scheduled {
            at,
            what: Later::Status {
                message_id: message_id.to_owned(),
                status,
                recipient: contact.wa_id.clone(),
                category,
                error,
            },
        });
    }

    /// The `sent` status of a message, as its own delivery.
    fn status_now(
        &mut self,
        message_id: &str,
        contact: &Contact,
        category: &str,
        now: DateTime<Utc>,
    ) -> Vec<u8> {
        let sent = status_json(message_id, "sent", &contact.wa_id, now, category, None);
        envelope(json!({"statuses": [sent]}), now)
    }

    /// The business answers a chat (a service message): read or not, and now and
    /// then refused for being outside the 24-hour window.
    fn reply(&mut self, contact: Contact, now: DateTime<Utc>) -> Vec<u8> {
        let message_id = self.message_id();
        let failure = (contact.habit == Habit::Unreachable || self.rng.random_bool(0.08))
            .then_some(RE_ENGAGEMENT);
        self.send(&contact, &message_id, "service", now, failure);
        if failure.is_none() && contact.habit == Habit::Engaged {
            let read = after(
                &mut self.rng,
                now,
                ChronoDuration::seconds(2),
                ChronoDuration::minutes(30),
            );
            self.schedule_status(&message_id, "read", &contact, "service", read, None);
        }
        self.status_now(&message_id, &contact, "service", now)
    }

    fn template_update(&mut self, now: DateTime<Utc>) -> Vec<u8> {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": ACCOUNT_ID, "time": now.timestamp(),
            "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED",
                "message_template_id": self.rng.random_range(1_000_000u64..9_999_999), "message_template_name": "monthly_report",
                "message_template_language": "en_US", "reason": "NONE"}}]}]});
        serde_json::to_vec(&body).expect("JSON")
    }

    /// A time after `at`, its delay drawn from `delays`.
    fn later(&mut self, at: DateTime<Utc>, delays: &[Delay]) -> DateTime<Utc> {
        let (from, to, _) = *delays
            .choose_weighted(&mut self.rng, |d| d.2)
            .expect("weights are positive");
        after(
            &mut self.rng,
            at,
            ChronoDuration::seconds(from),
            ChronoDuration::seconds(to),
        )
    }

    fn message_id(&mut self) -> String {
        format!("wamid.SIM{:024X}", self.rng.random::<u128>() >> 32)
    }
}

/// An advisor's message, as its own delivery.
fn inbound(contact: &Contact, mut message: Value, id: &str, at: DateTime<Utc>) -> Vec<u8> {
    message["from"] = json!(contact.wa_id);
    message["id"] = json!(id);
    message["timestamp"] = json!(at.timestamp().to_string());
    envelope(
        json!({"contacts": [{"profile": {"name": contact.name}, "wa_id": contact.wa_id}], "messages": [message]}),
        at,
    )
}

fn status_json(
    id: &str,
    status: &str,
    recipient: &str,
    at: DateTime<Utc>,
    category: &str,
    error: Option<(i64, &str)>,
) -> Value {
    let mut value = json!({"id": id, "status": status, "timestamp": at.timestamp().to_string(), "recipient_id": recipient,
        "pricing": {"billable": category != "service", "pricing_model": "PMP", "category": category}});
    if let Some((code, title)) = error {
        value["errors"] = json!([{"code": code, "title": title, "message": title}]);
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
    /// Spread the WhatsApp times over this many days before now (0: now).
    pub days: u32,
}

impl Plan {
    /// The WhatsApp time of the `sent`th of `expected` webhooks: now, or, over
    /// `days`, as far into the last days as the run is into its webhooks.
    fn clock(&self, started: DateTime<Utc>, sent: u64, expected: u64) -> DateTime<Utc> {
        if self.days == 0 {
            return Utc::now();
        }
        let span = ChronoDuration::days(i64::from(self.days));
        let done = sent as f64 / expected.max(1) as f64;
        started - span
            + ChronoDuration::milliseconds((span.num_milliseconds() as f64 * done) as i64)
    }
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
    let started_at = Utc::now();
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
        let delivery = traffic.next(plan.clock(started_at, summary.sent, expected));
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

    /// A delivery every half minute.
    fn run(seed: u64, count: usize) -> Vec<Delivery> {
        let start = DateTime::from_timestamp(1_767_261_600, 0).unwrap();
        let mut traffic = Traffic::new(seed, 20, 0.2);
        (0..count)
            .map(|i| traffic.next(start + ChronoDuration::seconds(30 * i as i64)))
            .collect()
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
        let mut categories = std::collections::BTreeSet::new();
        let mut codes = std::collections::BTreeSet::new();
        let mut contexts = Vec::new();
        for delivery in deliveries.iter().filter(|d| !d.resent) {
            let events = events_from_body(&delivery.body, now).expect("a webhook");
            assert!(!events.is_empty());
            for received in events {
                kinds.insert(received.event.kind.type_name());
                match received.event.kind {
                    EventKind::ButtonClick {
                        button_id,
                        context_message_id,
                        ..
                    } => {
                        buttons.insert(button_id);
                        contexts.extend(context_message_id);
                    }
                    EventKind::StatusUpdate {
                        message_id,
                        status,
                        error,
                        category,
                    } => {
                        statuses.entry(message_id).or_default().push(status);
                        categories.extend(category);
                        codes.extend(error.and_then(|e| e.code));
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
        let on_content = contexts
            .iter()
            .filter(|c| statuses.contains_key(*c))
            .count();
        assert!(
            on_content * 3 > contexts.len() * 2 && contexts.len() > on_content,
            "most clicks are on content sent, a few on older messages: {on_content} of {}",
            contexts.len()
        );
        assert_eq!(
            categories,
            ["marketing", "service", "utility"].map(String::from).into(),
            "templates and service replies"
        );
        assert!(codes.len() >= 4, "a mix of failure codes: {codes:?}");
        assert!(codes.contains(&131_026) && codes.contains(&131_047));
        assert!(read_before_delivered > 0, "statuses arrive out of order");
    }
}
