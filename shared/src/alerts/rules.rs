//! The rules, as pure functions of what the stack counted ([`Observation`])
//! and of the alerts already active.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::{ConfigError, Source};

/// The rules, as the API, the notifications and the variables name them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// No webhook POST accepted for `ALERT_SILENCE_MINUTES`.
    Silence,
    /// At least `ALERT_REFUSED_COUNT` webhook POSTs refused in 5 minutes
    /// (and since the latest accepted one: a good delivery resolves it).
    Refused,
    /// In the last hour, failed ÷ outbound ≥ `ALERT_FAILURE_RATE`.
    Failures,
    /// A webhook answered 5xx in the last 5 minutes.
    Store,
}

impl Rule {
    pub const ALL: [Rule; 4] = [Self::Silence, Self::Refused, Self::Failures, Self::Store];

    pub fn name(self) -> &'static str {
        match self {
            Self::Silence => "silence",
            Self::Refused => "refused",
            Self::Failures => "failures",
            Self::Store => "store",
        }
    }
}

/// How far back `refused` and `store` look.
pub const RECENT: Duration = Duration::minutes(5);
/// How far back `failures` looks, and the outbound messages it needs at least.
pub const FAILURE_WINDOW: Duration = Duration::hours(1);
pub const FAILURE_MIN_OUTBOUND: i64 = 10;

/// The thresholds; `None` turns a rule off (its variable set to 0).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// `ALERT_SILENCE_MINUTES`, default 60.
    pub silence: Option<Duration>,
    /// `ALERT_REFUSED_COUNT`, default 5.
    pub refused: Option<u64>,
    /// `ALERT_FAILURE_RATE`, default 0.2.
    pub failure_rate: Option<f64>,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            silence: Some(Duration::minutes(60)),
            refused: Some(5),
            failure_rate: Some(0.2),
        }
    }
}

impl AlertRules {
    /// The thresholds from `ALERT_SILENCE_MINUTES`, `ALERT_REFUSED_COUNT` and
    /// `ALERT_FAILURE_RATE`: the default when unset, off at 0, and a value that
    /// cannot be one refused with what it should be.
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let whole = |name: &str| -> Result<Option<u64>, ConfigError> {
            source
                .get(name)
                .map(|value| {
                    value.trim().parse::<u64>().map_err(|_| {
                        ConfigError::new(format!(
                            "{name}={value:?} is not a whole number (0 turns the rule off)"
                        ))
                    })
                })
                .transpose()
        };
        let silence = match whole("ALERT_SILENCE_MINUTES")? {
            None => defaults.silence,
            Some(0) => None,
            Some(minutes) => Some(Duration::minutes(i64::try_from(minutes).map_err(|_| {
                ConfigError::new(format!("ALERT_SILENCE_MINUTES={minutes} is too large"))
            })?)),
        };
        let refused = match whole("ALERT_REFUSED_COUNT")? {
            None => defaults.refused,
            Some(0) => None,
            Some(count) => Some(count),
        };
        let failure_rate = match source.get("ALERT_FAILURE_RATE") {
            None => defaults.failure_rate,
            Some(value) => match value.trim().parse::<f64>() {
                Ok(0.0) => None,
                Ok(rate) if rate > 0.0 && rate <= 1.0 => Some(rate),
                _ => {
                    return Err(ConfigError::new(format!(
                        "ALERT_FAILURE_RATE={value:?} is not a share between 0 and 1, such as 0.2 \
                         (0 turns the rule off)"
                    )))
                }
            },
        };
        Ok(Self {
            silence,
            refused,
            failure_rate,
        })
    }
}

/// What the stack counted, as the rules read it, at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub at: DateTime<Utc>,
    /// The latest accepted webhook POST; `None` while none has ever come.
    pub last_accepted: Option<DateTime<Utc>>,
    /// Webhook POSTs refused in the last [`RECENT`] and since the latest
    /// accepted one: a bad or missing signature, or a body that is not a webhook.
    pub refused: u64,
    /// Webhook POSTs answered 5xx in the last [`RECENT`].
    pub server_errors: u64,
    /// Outbound messages of the last [`FAILURE_WINDOW`], and those that failed.
    pub outbound: i64,
    pub failed: i64,
    /// The failed ones by Meta's code, most first.
    pub top_codes: Vec<(Option<i64>, i64)>,
}

/// A rule that holds: what is wrong, what to check first, and its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub rule: Rule,
    pub message: String,
    pub figures: BTreeMap<String, serde_json::Value>,
}

/// The rules that hold in `observed`.
pub fn conditions(rules: &AlertRules, observed: &Observation) -> Vec<Condition> {
    use serde_json::json;
    let mut holding = Vec::new();
    let mut hold = |rule, message: String, figures: &[(&str, serde_json::Value)]| {
        holding.push(Condition {
            rule,
            message,
            figures: figures
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
        });
    };
    // Until the first webhook has ever arrived, silence waits: a new install
    // is not an outage.
    if let (Some(after), Some(last)) = (rules.silence, observed.last_accepted) {
        let quiet = observed.at - last;
        if quiet >= after {
            hold(
                Rule::Silence,
                format!(
                    "No webhook has been accepted for {} minutes (the last at {}). Check the \
                     webhook subscription and callback URL in Meta's app settings (WhatsApp → \
                     Configuration), and that Meta can reach the URL.",
                    quiet.num_minutes(),
                    last.format("%Y-%m-%d %H:%M UTC"),
                ),
                &[
                    ("last_accepted", json!(last)),
                    ("minutes", json!(quiet.num_minutes())),
                ],
            );
        }
    }
    if let Some(threshold) = rules.refused {
        if observed.refused >= threshold {
            hold(
                Rule::Refused,
                format!(
                    "{} refused in the last 5 minutes (a bad or missing signature, or not a \
                     webhook). Check the app secret on both sides: WHATSAPP_APP_SECRET here, \
                     and the App Secret in Meta's app settings.",
                    counted(
                        observed.refused,
                        "webhook delivery was",
                        "webhook deliveries were"
                    )
                ),
                &[("refused", json!(observed.refused))],
            );
        }
    }
    if let Some(rate) = rules.failure_rate {
        let share = observed.failed as f64 / observed.outbound.max(1) as f64;
        if observed.outbound >= FAILURE_MIN_OUTBOUND && share >= rate {
            let codes: Vec<String> = observed
                .top_codes
                .iter()
                .take(3)
                .map(|(code, n)| match code {
                    Some(code) => format!("{code} ({n})"),
                    None => format!("no code ({n})"),
                })
                .collect();
            hold(
                Rule::Failures,
                format!(
                    "{} of the last hour's {} outbound messages failed ({:.0} %). Most often: {}.",
                    observed.failed,
                    observed.outbound,
                    share * 100.0,
                    if codes.is_empty() {
                        "no code".to_owned()
                    } else {
                        codes.join(", ")
                    },
                ),
                &[
                    ("outbound", json!(observed.outbound)),
                    ("failed", json!(observed.failed)),
                    ("rate", json!(share)),
                    (
                        "top_codes",
                        json!(observed
                            .top_codes
                            .iter()
                            .take(3)
                            .map(|(code, n)| json!({"code": code, "messages": n}))
                            .collect::<Vec<_>>()),
                    ),
                ],
            );
        }
    }
    if observed.server_errors > 0 {
        hold(
            Rule::Store,
            format!(
                "{} answered 5xx in the last 5 minutes: the store is failing, and Meta will \
                 retry. Check /health and the store's logs.",
                counted(observed.server_errors, "webhook was", "webhooks were")
            ),
            &[("server_errors", json!(observed.server_errors))],
        );
    }
    holding
}

/// "1 webhook was" or "3 webhooks were".
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whether a transition starts an alert or ends one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Firing,
    Resolved,
}

/// A fire or a resolve, as recorded, notified and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    pub rule: Rule,
    pub state: State,
    /// When the alert fired (a resolve keeps the time its alert fired).
    pub since: DateTime<Utc>,
    /// When this transition happened.
    pub at: DateTime<Utc>,
    /// What is wrong and what to check first.
    pub message: String,
    /// The figures the rule read, by name (`refused`, `minutes`, `rate`, …).
    #[schema(value_type = Object)]
    pub figures: BTreeMap<String, serde_json::Value>,
    /// How its notification to `ALERT_WEBHOOK_URL` went; absent when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

/// Where a transition's notification stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub state: NotificationState,
    /// Posts tried so far.
    pub attempts: u32,
    /// When the latest one was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// What the latest failed one got: the status and the start of the body,
    /// or why nothing came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    /// Not delivered yet; retried with backoff for an hour.
    Pending,
    Sent,
    /// Given up after an hour of retries.
    Failed,
}

impl Notification {
    pub fn pending() -> Self {
        Self {
            state: NotificationState::Pending,
            attempts: 0,
            at: None,
            error: None,
        }
    }
}

impl Transition {
    /// What identifies it in a store, in time order: its time (15 digits of
    /// Unix ms), rule and state. Recording it again finds it there.
    pub fn id(&self) -> String {
        let state = match self.state {
            State::Firing => "firing",
            State::Resolved => "resolved",
        };
        format!(
            "{:015}#{}#{state}",
            self.at.timestamp_millis(),
            self.rule.name()
        )
    }
}

/// The alerts active after `history` (oldest first): each rule whose latest
/// transition fired.
pub fn active_from(history: &[Transition]) -> Vec<Transition> {
    let mut latest: BTreeMap<Rule, &Transition> = BTreeMap::new();
    for transition in history {
        latest.insert(transition.rule, transition);
    }
    latest
        .into_values()
        .filter(|t| t.state == State::Firing)
        .cloned()
        .collect()
}

/// What changes at `at`: each condition without an active alert fires, and
/// each active alert whose rule no longer holds resolves.
pub fn transitions(
    active: &[Transition],
    holding: &[Condition],
    at: DateTime<Utc>,
) -> Vec<Transition> {
    let fired = holding
        .iter()
        .filter(|c| active.iter().all(|a| a.rule != c.rule))
        .map(|c| Transition {
            rule: c.rule,
            state: State::Firing,
            since: at,
            at,
            message: c.message.clone(),
            figures: c.figures.clone(),
            notification: None,
        });
    let resolved = active
        .iter()
        .filter(|a| holding.iter().all(|c| c.rule != a.rule))
        .map(|a| Transition {
            state: State::Resolved,
            at,
            message: format!("Resolved: {}", a.message),
            notification: None,
            ..a.clone()
        });
    fired.chain(resolved).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap()
    }

    fn quiet(at: DateTime<Utc>) -> Observation {
        Observation {
            at,
            last_accepted: Some(at),
            refused: 0,
            server_errors: 0,
            outbound: 0,
            failed: 0,
            top_codes: Vec::new(),
        }
    }

    /// Runs the rules over observations, as the stack's evaluator does, with
    /// its history restored from the transitions recorded so far.
    fn run(
        rules: &AlertRules,
        history: &mut Vec<Transition>,
        observed: &Observation,
    ) -> Vec<Transition> {
        let now = transitions(
            &active_from(history),
            &conditions(rules, observed),
            observed.at,
        );
        history.extend(now.clone());
        now
    }

    #[test]
    fn an_alert_fires_once_and_resolves_once_and_a_restart_repeats_nothing() {
        let rules = AlertRules::default();
        let mut history = Vec::new();
        let mut observed = quiet(t0());
        assert!(run(&rules, &mut history, &observed).is_empty());
        observed.refused = 5;
        let fired = run(&rules, &mut history, &observed);
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].rule, fired[0].state),
            (Rule::Refused, State::Firing)
        );
        assert!(
            fired[0].message.contains("WHATSAPP_APP_SECRET"),
            "{}",
            fired[0].message
        );
        // Still holding, fifteen seconds later: nothing new.
        observed.at += Duration::seconds(15);
        observed.refused = 9;
        assert!(run(&rules, &mut history, &observed).is_empty());
        // A restart: the history comes back from the store, the alert is still active.
        let mut restarted = history.clone();
        assert!(run(&rules, &mut restarted, &observed).is_empty());
        assert_eq!(active_from(&restarted).len(), 1);
        // The rule stops holding: one resolve, which keeps when it fired.
        observed.refused = 0;
        observed.at += Duration::seconds(15);
        let resolved = run(&rules, &mut history, &observed);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, State::Resolved);
        assert_eq!(resolved[0].since, fired[0].at);
        assert!(run(&rules, &mut history, &observed).is_empty());
        assert!(active_from(&history).is_empty());
    }

    #[test]
    fn the_thresholds_hold_and_zero_turns_a_rule_off() {
        let rules = AlertRules::default();
        let rules_of = |observed: &Observation| -> Vec<Rule> {
            conditions(&rules, observed)
                .iter()
                .map(|c| c.rule)
                .collect()
        };
        let mut observed = quiet(t0());
        observed.refused = 4;
        assert_eq!(rules_of(&observed), []);
        observed.refused = 5;
        assert_eq!(rules_of(&observed), [Rule::Refused]);

        // Silence: 60 minutes, and only once a webhook has ever come.
        let mut silent = quiet(t0());
        silent.last_accepted = Some(t0() - Duration::minutes(59));
        assert_eq!(rules_of(&silent), []);
        silent.last_accepted = Some(t0() - Duration::minutes(60));
        assert_eq!(rules_of(&silent), [Rule::Silence]);
        assert!(conditions(&rules, &silent)[0]
            .message
            .contains("callback URL"));
        silent.last_accepted = None;
        assert_eq!(rules_of(&silent), [], "a new install is not an outage");

        // Failures: a share of at least 10 outbound messages.
        let mut failing = quiet(t0());
        (failing.outbound, failing.failed) = (9, 9);
        assert_eq!(rules_of(&failing), []);
        (failing.outbound, failing.failed) = (10, 2);
        failing.top_codes = vec![(Some(131_049), 2)];
        assert_eq!(rules_of(&failing), [Rule::Failures]);
        assert!(conditions(&rules, &failing)[0]
            .message
            .contains("131049 (2)"));
        failing.failed = 1;
        assert_eq!(rules_of(&failing), []);

        // The store: any 5xx.
        let mut erring = quiet(t0());
        erring.server_errors = 1;
        assert_eq!(rules_of(&erring), [Rule::Store]);

        let off = AlertRules::from_source(&[
            ("ALERT_SILENCE_MINUTES", "0"),
            ("ALERT_REFUSED_COUNT", "0"),
            ("ALERT_FAILURE_RATE", "0"),
        ])
        .unwrap();
        let mut everything = quiet(t0());
        everything.last_accepted = Some(t0() - Duration::days(2));
        everything.refused = 1_000;
        (everything.outbound, everything.failed) = (100, 100);
        assert_eq!(
            conditions(&off, &everything)
                .iter()
                .map(|c| c.rule)
                .collect::<Vec<_>>(),
            Vec::<Rule>::new()
        );
    }

    #[test]
    fn settings_take_defaults_and_a_bad_value_is_refused_with_what_it_should_be() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            AlertRules::from_source(&none).unwrap(),
            AlertRules::default()
        );
        let set = AlertRules::from_source(&[
            ("ALERT_SILENCE_MINUTES", "15"),
            ("ALERT_REFUSED_COUNT", "1"),
            ("ALERT_FAILURE_RATE", "0.5"),
        ])
        .unwrap();
        assert_eq!(set.silence, Some(Duration::minutes(15)));
        assert_eq!((set.refused, set.failure_rate), (Some(1), Some(0.5)));
        for (name, value, says) in [
            ("ALERT_SILENCE_MINUTES", "an hour", "whole number"),
            ("ALERT_REFUSED_COUNT", "-1", "whole number"),
            ("ALERT_FAILURE_RATE", "20%", "between 0 and 1"),
            ("ALERT_FAILURE_RATE", "1.5", "between 0 and 1"),
        ] {
            let error = AlertRules::from_source(&[(name, value)])
                .unwrap_err()
                .to_string();
            assert!(error.contains(name) && error.contains(says), "{error}");
        }
    }
}
