//! Load for benchmarks: signed-webhook bodies in the mix of the load harness
//! (`../shared/peers/load`): 30 % button clicks (each on one of the last hundred
//! replies, as Click-to-Unlock clicks name the content), 30 % texts, 5 % media,
//! 35 % statuses of earlier replies (each reply's sent, delivered and read once,
//! in any order across deliveries, with `pricing.category`), 5 000 contacts,
//! WhatsApp times over the last 30 minutes.

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const BUTTONS: [&str; 4] = [
    "RETRIEVE_CONTENT",
    "UNLOCK_CONTENT",
    "SHARE_WITH_CLIENTS",
    "OTHER_CTA",
];
const STATUSES: [&str; 3] = ["sent", "delivered", "read"];

/// Makes deliveries of the load harness's mix.
#[derive(Debug)]
pub struct Mix {
    rng: StdRng,
    next_id: usize,
    /// Replies sent, with the statuses they have had.
    replies: Vec<(String, String, usize)>,
    /// The last hundred replies sent, which clicks name.
    recent: std::collections::VecDeque<String>,
    /// In every message id, so that two mixes of different seeds never collide.
    tag: String,
}

impl Mix {
    /// A mix; the same seed makes the same updates, another seed others.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            next_id: 0,
            replies: Vec::new(),
            recent: std::collections::VecDeque::new(),
            tag: format!("{seed:x}"),
        }
    }

    /// One delivery of `updates` new updates (no duplicate among any of this
    /// mix's deliveries).
    pub fn delivery(&mut self, updates: usize) -> Vec<u8> {
        let now = Utc::now();
        let (mut messages, mut statuses) = (Vec::new(), Vec::new());
        for _ in 0..updates {
            self.next_id += 1;
            let id = self.next_id;
            let tag = &self.tag;
            let from = format!("4477{:08}", self.rng.random_range(0..5000));
            let at = (now - Duration::seconds(self.rng.random_range(0..1800)))
                .timestamp()
                .to_string();
            let roll = self.rng.random_range(0..100);
            let replied = !self.replies.is_empty();
            if roll < 35 && replied {
                // Each reply gets sent, delivered and read once each, in any order
                // across deliveries: no update of the mix is a duplicate.
                let pick = self.rng.random_range(0..self.replies.len());
                let (message, recipient, sent) = &mut self.replies[pick];
                let status = STATUSES[*sent];
                *sent += 1;
                statuses.push(json!({"id": message, "status": status, "timestamp": at, "recipient_id": recipient,
                    "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility"}}));
                if *sent == STATUSES.len() {
                    self.replies.swap_remove(pick);
                }
                continue;
            }
            if roll < 35 {
                let reply = format!("wamid.out{tag}.{id}");
                self.recent.push_back(reply.clone());
                if self.recent.len() > 100 {
                    self.recent.pop_front();
                }
                self.replies.push((reply, from.clone(), 0));
            }
            let message: Value = match roll {
                0..65 => {
                    let context = match self.recent.len() {
                        0 => format!("wamid.before{tag}"),
                        n => self.recent[self.rng.random_range(0..n)].clone(),
                    };
                    json!({"from": from, "id": format!("wamid.c{tag}.{id}"), "timestamp": at, "type": "interactive",
                    "context": {"id": context},
                    "interactive": {"type": "button_reply", "button_reply": {"id": BUTTONS[id % 4], "title": "Unlock"}}})
                }
                65..95 => {
                    json!({"from": from, "id": format!("wamid.t{tag}.{id}"), "timestamp": at, "type": "text",
                    "text": {"body": "Could you send me the factsheet for the fund?"}})
                }
                _ => {
                    json!({"from": from, "id": format!("wamid.m{tag}.{id}"), "timestamp": at, "type": "image",
                    "image": {"id": format!("media{id}"), "mime_type": "image/jpeg"}})
                }
            };
            messages.push(message);
        }
        serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "messages": messages, "statuses": statuses}}]}]}))
        .expect("JSON")
    }
}
