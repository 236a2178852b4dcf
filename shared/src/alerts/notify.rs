//! A transition posted to `ALERT_WEBHOOK_URL` as JSON: a `text` field, which
//! Slack, Google Chat and Mattermost incoming webhooks show as it is (Teams
//! through a workflow), and the structured fields for anything else.
//!
//! A failed post is retried with backoff for an hour ([`RETRY_FOR`]). The URL
//! of an incoming webhook is itself a secret: it is never logged.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::rules::{Rule, State, Transition};
use crate::config::{ConfigError, Source};

/// How long a failing notification is retried.
pub const RETRY_FOR: Duration = Duration::hours(1);
/// The first wait between attempts, doubled each time up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: StdDuration = StdDuration::from_secs(5);
pub const MAX_BACKOFF: StdDuration = StdDuration::from_secs(300);
/// How long one attempt may take.
const TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The JSON body of a notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// One line for a person, as chat webhooks show it.
    pub text: String,
    /// The rule (`silence`, `refused`, `failures`, `store`); in AWS, the
    /// name of any other alarm of the stack.
    pub rule: String,
    pub state: State,
    pub since: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub message: String,
    pub figures: std::collections::BTreeMap<String, serde_json::Value>,
    /// `true` for `pulse alert test` only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Notice {
    pub fn new(
        stack: &str,
        rule: &str,
        state: State,
        since: DateTime<Utc>,
        at: DateTime<Utc>,
        message: String,
        figures: std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Self {
        let what = match state {
            State::Firing => "🔴 firing",
            State::Resolved => "✅ resolved",
        };
        Self {
            text: format!(
                "Pulse ({stack}): {rule} {what} since {}. {message}",
                since.format("%Y-%m-%d %H:%M UTC"),
            ),
            rule: rule.to_owned(),
            state,
            since,
            at,
            message,
            figures,
            test: false,
        }
    }

    pub fn of(transition: &Transition, stack: &str) -> Self {
        Self::new(
            stack,
            transition.rule.name(),
            transition.state,
            transition.since,
            transition.at,
            transition.message.clone(),
            transition.figures.clone(),
        )
    }
}

/// A transition made up to try the URL: `pulse alert test`.
pub fn test_transition(at: DateTime<Utc>) -> Transition {
    Transition {
        rule: Rule::Store,
        state: State::Resolved,
        since: at,
        at,
        message: "A test notification from `pulse alert test`: alerts reach this channel."
            .to_owned(),
        figures: Default::default(),
        notification: None,
    }
}

/// What the receiver answered a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The start of the body, for a person.
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// "HTTP 404: no_team" for a person.
    pub fn describe(&self) -> String {
        if self.body.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {}: {}", self.status, self.body)
        }
    }
}

/// Posts notifications to `ALERT_WEBHOOK_URL`.
#[derive(Clone)]
pub struct Notifier {
    url: SecretString,
    client: reqwest::Client,
    /// Named in each notification's text: which Pulse is speaking.
    stack: String,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// The notifier of `ALERT_WEBHOOK_URL`, if it is set; an URL that is not
    /// http(s) is refused at start.
    pub fn from_source(source: &dyn Source, stack: &str) -> Result<Option<Self>, ConfigError> {
        let Some(url) = source.get("ALERT_WEBHOOK_URL") else {
            return Ok(None);
        };
        let url = url.trim();
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            ConfigError::new(format!(
                "ALERT_WEBHOOK_URL is not a URL ({error}); give the incoming webhook's https:// address"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ConfigError::new(
                "ALERT_WEBHOOK_URL must be an http:// or https:// address".to_owned(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ConfigError::new(format!("cannot make an HTTP client: {error}")))?;
        Ok(Some(Self {
            url: SecretString::from(url.to_owned()),
            client,
            stack: stack.to_owned(),
        }))
    }

    /// Where notifications go, for a person: the scheme and host only (the
    /// path of an incoming webhook is its secret).
    pub fn destination(&self) -> String {
        reqwest::Url::parse(self.url.expose_secret())
            .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()))
            .unwrap_or_default()
    }

    /// One attempt: the receiver's answer, or why none came.
    pub async fn post(&self, notice: &Notice) -> Result<Reply, String> {
        let response = self
            .client
            .post(self.url.expose_secret())
            .json(notice)
            .send()
            .await
            // Without the URL, which reqwest's error would print.
            .map_err(|error| describe_error(&error.without_url()))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.trim().chars().take(200).collect();
        Ok(Reply { status, body })
    }

    /// The stack named in the notices.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The notice of a transition from this notifier's stack.
    pub fn notice(&self, transition: &Transition) -> Notice {
        Notice::of(transition, &self.stack)
    }
}

impl Notifier {
    /// Posts until the receiver takes it or `until` is near, with backoff:
    /// the last answer or error when it never took it.
    pub async fn post_until(
        &self,
        notice: &Notice,
        until: std::time::Instant,
    ) -> Result<Reply, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self.post(notice).await {
                Ok(reply) if reply.ok() => return Ok(reply),
                Ok(reply) => reply.describe(),
                Err(error) => error,
            };
            let wait = backoff(attempt);
            if std::time::Instant::now() + wait + TIMEOUT >= until {
                return Err(format!("{outcome} (after {attempt} attempts)"));
            }
            tracing::warn!(attempt, error = %outcome, "alert notification failed; will retry");
            tokio::time::sleep(wait).await;
        }
    }
}

fn describe_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The wait before attempt `attempt + 1` (the first retry waits
/// [`FIRST_BACKOFF`]).
pub fn backoff(attempt: u32) -> StdDuration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_five_minutes() {
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(1_000), MAX_BACKOFF);
    }

    #[test]
    fn a_notice_has_a_text_for_chats_and_the_structured_fields() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 6, 9, 30, 0).unwrap();
        let transition = Transition {
            rule: Rule::Refused,
            state: State::Firing,
            since: at,
            at,
            message: "7 webhook deliveries were refused.".into(),
            figures: [("refused".to_owned(), serde_json::json!(7))].into(),
            notification: None,
        };
        let body = serde_json::to_value(Notice::of(&transition, "pulse-prod")).unwrap();
        assert_eq!(
            body["text"],
            "Pulse (pulse-prod): refused 🔴 firing since 2026-12-06 09:30 UTC. 7 webhook deliveries were refused."
        );
        assert_eq!(body["rule"], "refused");
        assert_eq!(body["state"], "firing");
        assert_eq!(body["figures"]["refused"], 7);
        assert_eq!(body["since"], "2026-12-06T09:30:00Z");
        assert!(body.get("test").is_none());
    }

    #[test]
    fn only_an_http_url_is_taken_and_its_path_is_never_shown() {
        let none: [(&str, &str); 0] = [];
        assert!(Notifier::from_source(&none, "local").unwrap().is_none());
        for bad in ["hooks.slack.com/x", "ftp://example.com/x", "not a url"] {
            let error = Notifier::from_source(&[("ALERT_WEBHOOK_URL", bad)], "local")
                .unwrap_err()
                .to_string();
            assert!(error.contains("ALERT_WEBHOOK_URL"), "{error}");
        }
        let notifier = Notifier::from_source(
            &[(
                "ALERT_WEBHOOK_URL",
                "https://hooks.slack.com/services/T0/B0/secret",
            )],
            "local",
        )
        .unwrap()
        .unwrap();
        assert_eq!(notifier.destination(), "https://hooks.slack.com");
        assert!(!format!("{notifier:?}").contains("secret"));
    }
}
