//! The alerts in AWS: the stack's CloudWatch alarms, one per rule, named
//! `{ALERT_ALARM_PREFIX}{rule}` (`template.yaml`), read with `DescribeAlarms`
//! and `DescribeAlarmHistory`, so the dashboard shows the same banner and
//! history as on the local stack. CloudWatch evaluates them, SNS notifies.

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{HistoryItemType, ScanBy, StateValue};
use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::rules::{Rule, State, Transition};
use super::{AlertSource, Alerts, RECENT_TRANSITIONS};
use crate::store::StoreError;
use crate::telemetry::Chain;

/// An alarm as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub rule: Rule,
    pub firing: bool,
    pub since: DateTime<Utc>,
    /// What is wrong and what to check first (the alarm's description).
    pub description: String,
    /// CloudWatch's reason for its state, with the figures.
    pub reason: String,
}

/// A state change from an alarm's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub rule: Rule,
    pub at: DateTime<Utc>,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`, as CloudWatch names them.
    pub old: String,
    pub new: String,
    pub reason: String,
}

/// The alerts the alarms and their histories (any order) make: the alarms
/// in ALARM, and each move into ALARM (fired) or out of it (resolved),
/// newest first.
pub fn alerts_from(
    alarms: &[Alarm],
    mut changes: Vec<Change>,
    description: impl Fn(Rule) -> String,
) -> Alerts {
    let active = alarms
        .iter()
        .filter(|a| a.firing)
        .map(|a| Transition {
            rule: a.rule,
            state: State::Firing,
            since: a.since,
            at: a.since,
            message: format!("{} {}", a.description, a.reason),
            figures: Default::default(),
            notification: None,
        })
        .collect();
    changes.sort_by_key(|c| (c.rule, c.at));
    let mut recent = Vec::new();
    let mut fired_at: Option<(Rule, DateTime<Utc>)> = None;
    for change in &changes {
        let state = match (change.old.as_str(), change.new.as_str()) {
            (_, "ALARM") => State::Firing,
            ("ALARM", _) => State::Resolved,
            _ => continue,
        };
        let since = match (state, fired_at) {
            (State::Resolved, Some((rule, at))) if rule == change.rule => at,
            _ => change.at,
        };
        if state == State::Firing {
            fired_at = Some((change.rule, change.at));
        }
        recent.push(Transition {
            rule: change.rule,
            state,
            since,
            at: change.at,
            message: match state {
                State::Firing => format!("{} {}", description(change.rule), change.reason),
                State::Resolved => format!("Resolved: {}", change.reason),
            },
            figures: Default::default(),
            notification: None,
        });
    }
    recent.sort_by_key(|t| std::cmp::Reverse(t.at));
    recent.truncate(RECENT_TRANSITIONS);
    Alerts { active, recent }
}

/// The notice of a CloudWatch alarm's SNS message: a move into ALARM fires,
/// a move out of it resolves; `None` for any other move, or a message that is
/// not an alarm's. The rule is the alarm's name without `prefix` when it is a
/// rule's, else the alarm's whole name (the stack's other alarms share the topic).
pub fn notice_of_alarm(stack: &str, prefix: &str, message: &str) -> Option<super::notify::Notice> {
    let alarm: serde_json::Value = serde_json::from_str(message).ok()?;
    let name = alarm["AlarmName"].as_str()?;
    let (old, new) = (
        alarm["OldStateValue"].as_str()?,
        alarm["NewStateValue"].as_str()?,
    );
    let state = match (old, new) {
        (_, "ALARM") => State::Firing,
        ("ALARM", _) => State::Resolved,
        _ => return None,
    };
    let at = alarm["StateChangeTime"]
        .as_str()
        .and_then(|t| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let rule = name
        .strip_prefix(prefix)
        .filter(|rule| Rule::ALL.iter().any(|r| r.name() == *rule))
        .unwrap_or(name);
    let description = alarm["AlarmDescription"].as_str().unwrap_or_default();
    let reason = alarm["NewStateReason"].as_str().unwrap_or_default();
    let message = match state {
        State::Firing => format!("{description} {reason}"),
        State::Resolved => format!("Resolved: {description} {reason}"),
    };
    let figures = [
        ("alarm".to_owned(), serde_json::json!(name)),
        ("reason".to_owned(), serde_json::json!(reason)),
    ]
    .into();
    Some(super::notify::Notice::new(
        stack,
        rule,
        state,
        at,
        at,
        message.trim().to_owned(),
        figures,
    ))
}

/// The stack's alarms, through CloudWatch's API.
pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
    /// `ALERT_ALARM_PREFIX`: the stack's name and a dash.
    prefix: String,
}

impl CloudWatchAlarms {
    pub fn new(client: aws_sdk_cloudwatch::Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    /// The client of the function's environment (region, credentials).
    pub async fn from_env(prefix: impl Into<String>) -> Self {
        let config = aws_config::from_env().load().await;
        Self::new(aws_sdk_cloudwatch::Client::new(&config), prefix)
    }

    fn rule_of(&self, name: &str) -> Option<Rule> {
        let rule = name.strip_prefix(&self.prefix)?;
        Rule::ALL.into_iter().find(|r| r.name() == rule)
    }

    /// A rule alarm's history of state changes (the newest first, up to the
    /// API's page). IAM allows it per alarm: one call per rule.
    async fn history(&self, rule: Rule) -> Result<Vec<Change>, aws_sdk_cloudwatch::Error> {
        let page = self
            .client
            .describe_alarm_history()
            .alarm_name(format!("{}{}", self.prefix, rule.name()))
            .history_item_type(HistoryItemType::StateUpdate)
            .scan_by(ScanBy::TimestampDescending)
            .max_records(RECENT_TRANSITIONS as i32)
            .send()
            .await?;
        Ok(page
            .alarm_history_items()
            .iter()
            .filter_map(|item| {
                let data: serde_json::Value = serde_json::from_str(item.history_data()?).ok()?;
                let state = |side: &str| data[side]["stateValue"].as_str().map(str::to_owned);
                Some(Change {
                    rule,
                    at: time(item.timestamp()?)?,
                    old: state("oldState")?,
                    new: state("newState")?,
                    reason: data["newState"]["stateReason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                })
            })
            .collect())
    }
}

fn time(at: &aws_sdk_cloudwatch::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(at.to_millis().ok()?)
}

#[async_trait]
impl AlertSource for CloudWatchAlarms {
    async fn alerts(&self) -> Result<Alerts, StoreError> {
        let names: Vec<String> = Rule::ALL
            .iter()
            .map(|r| format!("{}{}", self.prefix, r.name()))
            .collect();
        let described = self
            .client
            .describe_alarms()
            .set_alarm_names(Some(names))
            .send()
            .await
            .map_err(|e| {
                StoreError::Unavailable(std::sync::Arc::new(aws_sdk_cloudwatch::Error::from(e)))
            })?;
        let mut descriptions = std::collections::BTreeMap::new();
        let alarms: Vec<Alarm> = described
            .metric_alarms()
            .iter()
            .filter_map(|alarm| {
                let rule = self.rule_of(alarm.alarm_name()?)?;
                let description = alarm.alarm_description().unwrap_or_default().to_owned();
                descriptions.insert(rule, description.clone());
                Some(Alarm {
                    rule,
                    firing: alarm.state_value() == Some(&StateValue::Alarm),
                    since: alarm.state_updated_timestamp().and_then(time)?,
                    description,
                    reason: alarm.state_reason().unwrap_or_default().to_owned(),
                })
            })
            .collect();
        // The history adds to the banner; without it the active alarms still show.
        let mut changes = Vec::new();
        for (alarm, history) in alarms
            .iter()
            .zip(join_all(alarms.iter().map(|a| self.history(a.rule))).await)
        {
            match history {
                Ok(history) => changes.extend(history),
                Err(error) => tracing::warn!(
                    alarm = alarm.rule.name(),
                    error = %Chain(&error),
                    "alarm history unreadable"
                ),
            }
        }
        Ok(alerts_from(&alarms, changes, |rule| {
            descriptions.get(&rule).cloned().unwrap_or_default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn an_alarm_message_becomes_a_notice_and_other_moves_none() {
        let message = |name: &str, old: &str, new: &str| {
            serde_json::json!({
                "AlarmName": name,
                "AlarmDescription": "Webhook deliveries are refused. Check the app secret on both sides.",
                "NewStateValue": new,
                "OldStateValue": old,
                "NewStateReason": "Threshold Crossed: 1 datapoint [7.0] was >= 5.0.",
                "StateChangeTime": "2026-12-06T09:30:00.000+0000",
            })
            .to_string()
        };
        let fired =
            notice_of_alarm("pulse", "pulse-", &message("pulse-refused", "OK", "ALARM")).unwrap();
        assert_eq!(
            (fired.rule.as_str(), fired.state),
            ("refused", State::Firing)
        );
        assert_eq!(
            fired.at,
            Utc.with_ymd_and_hms(2026, 12, 6, 9, 30, 0).unwrap()
        );
        assert!(
            fired
                .text
                .starts_with("Pulse (pulse): refused 🔴 firing since 2026-12-06 09:30 UTC."),
            "{}",
            fired.text
        );
        assert!(fired.message.contains("app secret") && fired.message.contains("[7.0]"));
        let resolved =
            notice_of_alarm("pulse", "pulse-", &message("pulse-refused", "ALARM", "OK")).unwrap();
        assert_eq!(resolved.state, State::Resolved);
        let other = notice_of_alarm(
            "pulse",
            "pulse-",
            &message("pulse-WebhookErrorsAlarm-X1", "OK", "ALARM"),
        )
        .unwrap();
        assert_eq!(other.rule, "pulse-WebhookErrorsAlarm-X1");
        assert_eq!(
            notice_of_alarm(
                "pulse",
                "pulse-",
                &message("pulse-refused", "INSUFFICIENT_DATA", "OK")
            ),
            None
        );
        assert_eq!(notice_of_alarm("pulse", "pulse-", "not json"), None);
    }

    #[test]
    fn alarms_in_alarm_are_active_and_their_moves_in_and_out_are_the_history() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap();
        let alarm = |rule, firing, minutes| Alarm {
            rule,
            firing,
            since: t0 + Duration::minutes(minutes),
            description: format!("{rule:?} is wrong; check this."),
            reason: "Threshold Crossed: 1 datapoint [7.0] was >= 5.0.".into(),
        };
        let change = |rule, minutes, old: &str, new: &str| Change {
            rule,
            at: t0 + Duration::minutes(minutes),
            old: old.into(),
            new: new.into(),
            reason: format!("{old} to {new}"),
        };
        let alarms = [
            alarm(Rule::Refused, true, 30),
            alarm(Rule::Silence, false, 20),
        ];
        let changes = vec![
            change(Rule::Refused, 30, "OK", "ALARM"),
            change(Rule::Silence, 20, "ALARM", "OK"),
            change(Rule::Silence, 5, "INSUFFICIENT_DATA", "ALARM"),
            change(Rule::Silence, 1, "INSUFFICIENT_DATA", "OK"),
            change(Rule::Refused, 2, "INSUFFICIENT_DATA", "OK"),
        ];
        let alerts = alerts_from(&alarms, changes, |rule| {
            format!("{rule:?} is wrong; check this.")
        });
        assert_eq!(alerts.active.len(), 1);
        assert_eq!(alerts.active[0].rule, Rule::Refused);
        assert_eq!(alerts.active[0].since, t0 + Duration::minutes(30));
        assert!(alerts.active[0].message.starts_with("Refused is wrong"));
        let recent: Vec<(Rule, State, i64, i64)> = alerts
            .recent
            .iter()
            .map(|t| {
                (
                    t.rule,
                    t.state,
                    (t.since - t0).num_minutes(),
                    (t.at - t0).num_minutes(),
                )
            })
            .collect();
        assert_eq!(
            recent,
            [
                (Rule::Refused, State::Firing, 30, 30),
                (Rule::Silence, State::Resolved, 5, 20),
                (Rule::Silence, State::Firing, 5, 5),
            ],
            "moves between OK and INSUFFICIENT_DATA are no alert"
        );
    }
}
