//! Configuration from the environment. Secrets are held as [`SecretString`], whose
//! `Debug` prints `[REDACTED]`, so they cannot reach a log by accident.

use std::fmt;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};

use crate::contact_key::ContactKeys;

/// A setting that is missing or unusable; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// An error whose message names the variable and what it should be.
    pub fn new(message: String) -> Self {
        Self(message)
    }
}

/// Where settings come from: the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

fn required(source: &dyn Source, name: &str) -> Result<SecretString, ConfigError> {
    source
        .get(name)
        .map(SecretString::from)
        .ok_or_else(|| ConfigError(format!("{name} is not set")))
}

/// `STACK_NAME`: the stack's name, which `template.yaml` gives the functions
/// that name it (the `Stack` dimension of the metrics, notices' text).
pub fn stack_name(source: &dyn Source) -> Result<String, ConfigError> {
    source.get("STACK_NAME").ok_or_else(|| {
        ConfigError("STACK_NAME is not set (template.yaml sets it to the stack's name)".into())
    })
}

/// `ALERT_ALARM_PREFIX`: what the names of the stack's rule alarms start with
/// (`template.yaml`: the stack's name and a dash).
pub fn alarm_prefix(source: &dyn Source) -> Result<String, ConfigError> {
    source.get("ALERT_ALARM_PREFIX").ok_or_else(|| {
        ConfigError(
            "ALERT_ALARM_PREFIX is not set (template.yaml sets it to the stack's name and a dash)"
                .into(),
        )
    })
}

/// What the webhook function needs.
#[derive(Clone)]
pub struct WebhookConfig {
    /// `WHATSAPP_APP_SECRET`: the key of the body signature.
    pub app_secret: SecretString,
    /// `WHATSAPP_VERIFY_TOKEN`: what Meta presents when it verifies the endpoint.
    pub verify_token: SecretString,
}

impl WebhookConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            app_secret: required(source, "WHATSAPP_APP_SECRET")?,
            verify_token: required(source, "WHATSAPP_VERIFY_TOKEN")?,
        })
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig").finish_non_exhaustive()
    }
}

/// What the metrics function needs.
#[derive(Clone)]
pub struct MetricsConfig {
    /// `DASHBOARD_TOKEN`: the bearer token of every route but health.
    pub dashboard_token: SecretString,
    /// `PULSE_TIMEZONE`: the zone whose calendar days the metrics count in.
    pub timezone: Tz,
    /// From `CONTACT_KEY_SECRET`: what the contacts' keys are made with.
    pub contact_keys: ContactKeys,
}

/// The shortest `CONTACT_KEY_SECRET` taken: 128 bits as hex.
const CONTACT_KEY_SECRET_CHARS: usize = 32;

impl MetricsConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let secret = required(source, "CONTACT_KEY_SECRET")?;
        if secret.expose_secret().chars().count() < CONTACT_KEY_SECRET_CHARS {
            return Err(ConfigError(format!(
                "CONTACT_KEY_SECRET is shorter than {CONTACT_KEY_SECRET_CHARS} characters: \
                 make one with `openssl rand -hex 32`"
            )));
        }
        Ok(Self {
            dashboard_token: dashboard_token(source)?,
            timezone: timezone(source)?,
            contact_keys: ContactKeys::new(&secret),
        })
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("timezone", &self.timezone)
            .finish_non_exhaustive()
    }
}

/// `DASHBOARD_TOKEN`: what the metrics API and the WebSocket API ask of callers.
pub fn dashboard_token(source: &dyn Source) -> Result<SecretString, ConfigError> {
    required(source, "DASHBOARD_TOKEN")
}

/// `CONNECTIONS_TABLE`: the DynamoDB table of live WebSocket connections.
pub fn connections_table(source: &dyn Source) -> Result<String, ConfigError> {
    source
        .get("CONNECTIONS_TABLE")
        .ok_or_else(|| ConfigError("CONNECTIONS_TABLE is not set".into()))
}

/// `WEBSOCKET_ENDPOINT`: the WebSocket API's management endpoint that the broadcast
/// function posts to, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
pub fn websocket_endpoint(source: &dyn Source) -> Result<String, ConfigError> {
    let endpoint = source
        .get("WEBSOCKET_ENDPOINT")
        .ok_or_else(|| ConfigError("WEBSOCKET_ENDPOINT is not set".into()))?;
    if endpoint.starts_with("https://") || endpoint.starts_with("http://") {
        Ok(endpoint.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError(format!(
            "WEBSOCKET_ENDPOINT={endpoint:?} is not an http(s) URL such as \
             https://abc123.execute-api.eu-west-1.amazonaws.com/live"
        )))
    }
}

/// `WEBSOCKET_URL`: the WebSocket API's URL as a browser connects to it,
/// `wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}`; the dashboard learns
/// it from `/config.json`, and its Content-Security-Policy allows only it.
pub fn websocket_url(source: &dyn Source) -> Result<http::Uri, ConfigError> {
    let url = source
        .get("WEBSOCKET_URL")
        .ok_or_else(|| ConfigError("WEBSOCKET_URL is not set".into()))?;
    let parsed: http::Uri = url
        .trim_end_matches('/')
        .parse()
        .map_err(|_| ConfigError(format!("WEBSOCKET_URL={url:?} is not a URL")))?;
    match (parsed.scheme_str(), parsed.authority()) {
        (Some("ws" | "wss"), Some(_)) => Ok(parsed),
        _ => Err(ConfigError(format!(
            "WEBSOCKET_URL={url:?} is not a ws(s) URL such as \
             wss://abc123.execute-api.eu-west-1.amazonaws.com/live"
        ))),
    }
}

/// `CORS_ALLOWED_ORIGINS`: the origins (`https://ops.example.com`, comma-separated)
/// whose pages may call the HTTP API from a browser; none when unset. In AWS the
/// template's `CorsAllowedOrigins` configures API Gateway itself.
pub fn cors_allowed_origins(source: &dyn Source) -> Result<Vec<String>, ConfigError> {
    let Some(list) = source.get("CORS_ALLOWED_ORIGINS") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let uri: Option<http::Uri> = origin.parse().ok();
            let is_origin = uri.as_ref().is_some_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.authority().is_some()
                    && uri.path() == "/"
                    && !origin.ends_with('/')
                    && uri.query().is_none()
            });
            if is_origin {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError(format!(
                    "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin such as https://ops.example.com \
                     (scheme and host, an optional port, no path)"
                )))
            }
        })
        .collect()
}

/// `PULSE_TIMEZONE`, an IANA name; `UTC` when unset.
pub fn timezone(source: &dyn Source) -> Result<Tz, ConfigError> {
    let name = source.get("PULSE_TIMEZONE").unwrap_or_else(|| "UTC".into());
    name.trim().parse().map_err(|_| {
        ConfigError(format!(
            "PULSE_TIMEZONE={name:?} is not an IANA time zone name (such as Asia/Kolkata)"
        ))
    })
}

/// The events table and how long raw events are kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `EVENTS_TABLE`
    pub events_table: String,
    /// `RETENTION_DAYS`: raw events expire after this many days (default 90); counters stay.
    pub retention_days: u32,
}

impl StoreConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: source
                .get("EVENTS_TABLE")
                .ok_or_else(|| ConfigError("EVENTS_TABLE is not set".into()))?,
            retention_days: retention_days(source)?,
        })
    }
}

/// `RETENTION_DAYS`, 1 to 3650; 90 when unset.
pub fn retention_days(source: &dyn Source) -> Result<u32, ConfigError> {
    match source.get("RETENTION_DAYS") {
        None => Ok(90),
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|days| (1..=3650).contains(days))
            .ok_or_else(|| {
                ConfigError(format!(
                    "RETENTION_DAYS={text:?} is not a whole number of days from 1 to 3650"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn cors_origins_are_origins_and_none_by_default() {
        assert!(cors_allowed_origins(&[("X", "")]).unwrap().is_empty());
        assert_eq!(
            cors_allowed_origins(&[(
                "CORS_ALLOWED_ORIGINS",
                "https://ops.example.com, http://127.0.0.1:5173"
            )])
            .unwrap(),
            ["https://ops.example.com", "http://127.0.0.1:5173"]
        );
        for bad in [
            "*",
            "ops.example.com",
            "https://ops.example.com/",
            "https://ops.example.com/x",
            "ftp://ops.example.com",
        ] {
            let error = cors_allowed_origins(&[("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert!(
                error.to_string().contains("is not an origin"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn reads_and_validates() {
        let env = [
            ("DASHBOARD_TOKEN", "t"),
            ("PULSE_TIMEZONE", "Asia/Kolkata"),
            ("RETENTION_DAYS", "30"),
            ("CONTACT_KEY_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        let metrics = MetricsConfig::from_source(&env).unwrap();
        let short = MetricsConfig::from_source(&[
            ("DASHBOARD_TOKEN", "t"),
            ("CONTACT_KEY_SECRET", "short"),
        ]);
        assert!(short
            .unwrap_err()
            .to_string()
            .contains("openssl rand -hex 32"));
        assert_eq!(metrics.dashboard_token.expose_secret(), "t");
        assert_eq!(metrics.timezone, chrono_tz::Asia::Kolkata);
        assert!(!format!("{metrics:?}").contains('t') || !format!("{metrics:?}").contains("\"t\""));
        assert_eq!(retention_days(&env).unwrap(), 30);
        assert_eq!(retention_days(&[("X", "")]).unwrap(), 90);
        assert!(retention_days(&[("RETENTION_DAYS", "0")]).is_err());
        assert!(timezone(&[("PULSE_TIMEZONE", "Mars/Olympus")])
            .unwrap_err()
            .to_string()
            .contains("PULSE_TIMEZONE"));
        let missing = WebhookConfig::from_source(&[("WHATSAPP_APP_SECRET", "s")]).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "configuration: WHATSAPP_VERIFY_TOKEN is not set"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let config = WebhookConfig::from_source(&[
            ("WHATSAPP_APP_SECRET", "hunter2"),
            ("WHATSAPP_VERIFY_TOKEN", "tok3n"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok3n"),
            "{shown}"
        );
    }
}
