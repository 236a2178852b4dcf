//! Alerts: when WhatsApp stops reaching Pulse, when its deliveries are
//! refused, when the store fails or when sends fail.
//!
//! - [`rules`]: the rules, pure: an alert *fires* once when its rule starts to
//!   hold and *resolves* once when it stops; the active alerts are each rule's
//!   latest transition that fired, so they come back from the store after a
//!   restart and nothing fires twice;
//! - [`intake`]: what became of each webhook POST, told by the webhook handler
//!   to an [`intake::IntakeObserver`]: the local stack's tally, or
//!   [`emf`]'s CloudWatch metrics in AWS;
//! - [`notify`]: a transition posted to `ALERT_WEBHOOK_URL`, retried for an hour;
//! - [`AlertSource`]: the active and recent alerts the API answers with: the
//!   store's log locally, the stack's alarms in AWS (`alarms`, feature
//!   `cloudwatch`).

#[cfg(feature = "cloudwatch")]
pub mod alarms;
pub mod emf;
pub mod intake;
pub mod notify;
pub mod rules;

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use utoipa::ToSchema;

pub use rules::{
    active_from, conditions, transitions, AlertRules, Condition, Notification, NotificationState,
    Observation, Rule, State, Transition,
};

use crate::counters::names;
use crate::funnel;
use crate::store::{AlertLog, Store, StoreError};

/// How many transitions `GET /api/webhook/alerts` answers with.
pub const RECENT_TRANSITIONS: usize = 50;

/// `data` of `GET /api/webhook/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Alerts {
    /// The alerts firing now, each as the transition that fired it.
    pub active: Vec<Transition>,
    /// The latest transitions, newest first.
    pub recent: Vec<Transition>,
}

impl Alerts {
    /// The rules of the active alerts, as `/health` names them.
    pub fn active_rules(&self) -> Vec<Rule> {
        self.active.iter().map(|a| a.rule).collect()
    }
}

/// Where the API reads the alerts: the store's log on the local stack, the
/// stack's CloudWatch alarms in AWS.
#[async_trait]
pub trait AlertSource: Send + Sync {
    async fn alerts(&self) -> Result<Alerts, StoreError>;

    /// The rules of the active alerts alone, as `/health` names them.
    async fn active_rules(&self) -> Result<Vec<Rule>, StoreError> {
        Ok(self.alerts().await?.active_rules())
    }
}

/// The alerts of a store's log: each rule's latest transition that fired, and
/// the newest ones.
pub struct AlertHistory(pub std::sync::Arc<dyn AlertLog>);

#[async_trait]
impl AlertSource for AlertHistory {
    async fn alerts(&self) -> Result<Alerts, StoreError> {
        let (latest, recent) = futures::try_join!(
            self.0.latest_transitions(),
            self.0.transitions(RECENT_TRANSITIONS)
        )?;
        Ok(Alerts {
            active: latest
                .into_iter()
                .filter(|t| t.state == State::Firing)
                .collect(),
            recent,
        })
    }
}

/// The outbound messages of the hour before `at` and those that failed, with
/// the failures by Meta's code, most first: from the counters, which place a
/// message at its earliest status, so a message counts once however often
/// Meta repeats it. The hour is read in whole quarters, the current one included.
pub async fn sends_in_the_last_hour(
    store: &dyn Store,
    at: DateTime<Utc>,
) -> Result<(i64, i64, Vec<(Option<i64>, i64)>), StoreError> {
    let quarter = Duration::minutes(15);
    let from = (at - rules::FAILURE_WINDOW)
        .duration_trunc(quarter)
        .unwrap_or(at - rules::FAILURE_WINDOW);
    let counters = store.quarter_counters(from, at + quarter, None).await?;
    let (mut outbound, mut failed) = (0, 0);
    let mut codes: std::collections::BTreeMap<Option<i64>, i64> = Default::default();
    let failed_status = format!("{}failed", names::STATUS_PREFIX);
    for counter in &counters {
        if counter.name == names::OUTBOUND {
            outbound += counter.total;
        } else if counter.name == failed_status {
            failed += counter.total;
        } else if let Some(rest) = counter.name.strip_prefix(funnel::names::FAILURE) {
            let code = rest.split_once(':').map_or(rest, |(code, _)| code);
            *codes.entry(code.parse().ok()).or_default() += counter.total;
        }
    }
    let mut top: Vec<(Option<i64>, i64)> = codes.into_iter().filter(|(_, n)| *n > 0).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((outbound, failed, top))
}
