//! The local stack's alerts: the rules ([`pulse_shared::alerts`]) checked in
//! process every `ALERT_CHECK_SECONDS` (15 by default), from the webhook
//! answers the stack tallies and the counters it keeps. Each fire and
//! resolve is recorded in the store before anyone is told, so a restart
//! knows what is active and notifies nothing twice; then it is posted to
//! `ALERT_WEBHOOK_URL`, retried with backoff for an hour, off the intake path.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pulse_shared::alerts::intake::{IntakeTally, Reading};
use pulse_shared::alerts::notify::{self, Notifier};
use pulse_shared::alerts::{
    self, AlertRules, Notification, NotificationState, Observation, Rule, State, Transition,
};
use pulse_shared::config::{ConfigError, Source};
use pulse_shared::store::{AlertLog, Store, StoreError};
use pulse_shared::telemetry::Chain;

/// How often the rules are checked unless `ALERT_CHECK_SECONDS` says otherwise.
pub const CHECK_EVERY: Duration = Duration::from_secs(15);

/// The alerts' settings: the thresholds, how often to check, where to post.
pub struct AlertSettings {
    pub rules: AlertRules,
    pub every: Duration,
    pub notifier: Option<Notifier>,
}

impl AlertSettings {
    /// From `ALERT_SILENCE_MINUTES`, `ALERT_REFUSED_COUNT`, `ALERT_FAILURE_RATE`,
    /// `ALERT_CHECK_SECONDS` (1 to 15) and `ALERT_WEBHOOK_URL`; a bad value
    /// stops the start with what it should be.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let every = match source.get("ALERT_CHECK_SECONDS") {
            None => CHECK_EVERY,
            Some(value) => match value.trim().parse::<u64>() {
                Ok(seconds @ 1..=15) => Duration::from_secs(seconds),
                _ => {
                    return Err(ConfigError::new(format!(
                    "ALERT_CHECK_SECONDS={value:?} is not a whole number of seconds from 1 to 15"
                )))
                }
            },
        };
        Ok(Self {
            rules: AlertRules::from_source(source)?,
            every,
            notifier: Notifier::from_source(source, "local")?,
        })
    }
}

/// The evaluator: what it reads, where it records, whom it tells.
pub struct Alerting {
    pub settings: AlertSettings,
    pub store: Arc<dyn Store>,
    pub log: Arc<dyn AlertLog>,
    pub tally: Arc<IntakeTally>,
}

impl Alerting {
    /// Checks the rules until the task is stopped. Notifications left pending
    /// by the last run are taken up again first.
    pub async fn run(self) {
        let this = Arc::new(self);
        this.resume_notifications().await;
        let mut active = loop {
            match this.log.latest_transitions().await {
                Ok(latest) => break alerts::active_from(&latest),
                Err(error) => {
                    tracing::warn!(error = %Chain(&error), "alerts: the log is unreadable; trying again");
                    tokio::time::sleep(this.settings.every).await;
                }
            }
        };
        let mut tick = tokio::time::interval(this.settings.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = this.check(&mut active, Utc::now()).await {
                tracing::warn!(error = %Chain(&error), "alerts: the rules could not be checked");
            }
        }
    }

    /// One check at `at`: the transitions are recorded, then told.
    async fn check(
        self: &Arc<Self>,
        active: &mut Vec<Transition>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let reading = self.tally.read(at);
        let observed = self.observe(at, &reading).await?;
        let holding = alerts::conditions(&self.settings.rules, &observed);
        let mut now = alerts::transitions(active, &holding, at);
        // Just started, the tally has not seen the refusals and 5xx before the
        // start: an alert of them active from before stays until it knows.
        now.retain(|t| match (t.state, t.rule) {
            (State::Resolved, Rule::Refused) => reading.refusals_known,
            (State::Resolved, Rule::Store) => reading.failures_known,
            _ => true,
        });
        if now.is_empty() {
            return Ok(());
        }
        if self.settings.notifier.is_some() {
            for transition in &mut now {
                transition.notification = Some(Notification::pending());
            }
        }
        self.log.record_transitions(&now).await?;
        for transition in &now {
            match transition.state {
                State::Firing => tracing::warn!(
                    alert = transition.rule.name(),
                    message = %transition.message,
                    "alert firing"
                ),
                State::Resolved => {
                    tracing::info!(alert = transition.rule.name(), "alert resolved");
                }
            }
        }
        active.retain(|a| now.iter().all(|t| t.rule != a.rule));
        active.extend(now.iter().filter(|t| t.state == State::Firing).cloned());
        for transition in now {
            self.notify(transition);
        }
        Ok(())
    }

    async fn observe(
        &self,
        at: DateTime<Utc>,
        reading: &Reading,
    ) -> Result<Observation, StoreError> {
        let (outbound, failed, top_codes) = if self.settings.rules.failure_rate.is_some() {
            alerts::sends_in_the_last_hour(self.store.as_ref(), at).await?
        } else {
            (0, 0, Vec::new())
        };
        Ok(Observation {
            at,
            last_accepted: reading.last_accepted,
            refused: reading.refused,
            server_errors: reading.failed,
            outbound,
            failed,
            top_codes,
        })
    }

    /// Takes up the notifications a stop left pending: those of the last
    /// hour are tried again, older ones are given up.
    async fn resume_notifications(self: &Arc<Self>) {
        let recent = match self.log.transitions(alerts::RECENT_TRANSITIONS).await {
            Ok(recent) => recent,
            Err(error) => {
                tracing::warn!(error = %Chain(&error), "alerts: pending notifications unreadable");
                return;
            }
        };
        let pending = recent.into_iter().filter(|t| {
            t.notification
                .as_ref()
                .is_some_and(|n| n.state == NotificationState::Pending)
        });
        for transition in pending {
            self.notify(transition);
        }
    }

    /// Posts a transition in the background until it is received or an hour
    /// has passed since it happened, recording each attempt's outcome.
    fn notify(self: &Arc<Self>, mut transition: Transition) {
        let Some(notifier) = self.settings.notifier.clone() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut notification = transition
                .notification
                .take()
                .unwrap_or_else(Notification::pending);
            loop {
                if Utc::now() - transition.at >= notify::RETRY_FOR {
                    notification.state = NotificationState::Failed;
                    tracing::error!(
                        alert = transition.rule.name(),
                        attempts = notification.attempts,
                        error = notification.error.as_deref().unwrap_or("not tried"),
                        "alert notification given up after an hour"
                    );
                    break;
                }
                let reply = notifier.post(&notifier.notice(&transition)).await;
                notification.attempts += 1;
                notification.at = Some(Utc::now());
                match reply {
                    Ok(reply) if reply.ok() => {
                        notification.state = NotificationState::Sent;
                        notification.error = None;
                        tracing::info!(
                            alert = transition.rule.name(),
                            to = %notifier.destination(),
                            "alert notified"
                        );
                        break;
                    }
                    Ok(reply) => notification.error = Some(reply.describe()),
                    Err(error) => notification.error = Some(error),
                }
                tracing::warn!(
                    alert = transition.rule.name(),
                    to = %notifier.destination(),
                    attempt = notification.attempts,
                    error = notification.error.as_deref().unwrap_or_default(),
                    "alert notification failed; will retry"
                );
                transition.notification = Some(notification.clone());
                this.record(&transition).await;
                tokio::time::sleep(notify::backoff(notification.attempts)).await;
            }
            transition.notification = Some(notification);
            this.record(&transition).await;
        });
    }

    async fn record(&self, transition: &Transition) {
        if let Err(error) = self
            .log
            .record_transitions(std::slice::from_ref(transition))
            .await
        {
            tracing::warn!(error = %Chain(&error), "alerts: a notification's outcome was not recorded");
        }
    }
}
