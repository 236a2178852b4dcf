//! The webhook function's figures as CloudWatch Embedded Metric Format lines
//! in its log: CloudWatch turns them into metrics, so the hot path makes no
//! API call. The stack's alarms (`template.yaml`) watch these metrics.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::intake::{Answer, Figures, IntakeObserver};

pub const NAMESPACE: &str = "Pulse";
/// The dimension: the stack's name, from `STACK_NAME`.
pub const DIMENSION: &str = "Stack";
/// Every metric, in every line (zeros too, so that a sum over a period is
/// the period's figure and no data means no POST at all).
pub const METRICS: [&str; 7] = [
    "WebhooksAccepted",
    "WebhooksRefused",
    "WebhooksFailed",
    "EventsStored",
    "Duplicates",
    "OutboundMessages",
    "OutboundFailed",
];

/// Writes one EMF line per webhook POST to stdout, which Lambda sends to the
/// function's log group.
pub struct EmfMetrics {
    stack: String,
}

impl EmfMetrics {
    pub fn new(stack: impl Into<String>) -> Self {
        Self {
            stack: stack.into(),
        }
    }

    /// The line for one answer.
    pub fn line(&self, at: DateTime<Utc>, answer: &Answer) -> String {
        let (accepted, refused, failed, figures) = match answer {
            Answer::Accepted(figures) => (1, 0, 0, *figures),
            Answer::Refused => (0, 1, 0, Figures::default()),
            Answer::Failed => (0, 0, 1, Figures::default()),
        };
        let values = [
            accepted,
            refused,
            failed,
            figures.stored,
            figures.duplicates,
            figures.outbound,
            figures.failed,
        ];
        let mut line = json!({
            "_aws": {
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": METRICS.iter().map(|name| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            },
            DIMENSION: self.stack,
        });
        for (name, value) in METRICS.iter().zip(values) {
            line[*name] = json!(value);
        }
        line.to_string()
    }
}

impl IntakeObserver for EmfMetrics {
    fn observe(&self, at: DateTime<Utc>, answer: &Answer) {
        // One write of a whole line, so it never interleaves with a log line.
        let line = format!("{}\n", self.line(at, answer));
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_every_metric_under_the_stack_dimension_with_its_value() {
        let emf = EmfMetrics::new("pulse-prod");
        let figures = Figures {
            stored: 3,
            duplicates: 1,
            outbound: 2,
            failed: 1,
        };
        let line: serde_json::Value =
            serde_json::from_str(&emf.line(Utc::now(), &Answer::Accepted(figures))).unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Pulse");
        assert_eq!(declared["Dimensions"], json!([["Stack"]]));
        let names: Vec<&str> = declared["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, METRICS);
        assert_eq!(line["Stack"], "pulse-prod");
        let values: Vec<i64> = METRICS
            .iter()
            .map(|name| line[*name].as_i64().unwrap())
            .collect();
        assert_eq!(values, [1, 0, 0, 3, 1, 2, 1]);
        let refused: serde_json::Value =
            serde_json::from_str(&emf.line(Utc::now(), &Answer::Refused)).unwrap();
        assert_eq!(
            (
                refused["WebhooksAccepted"].as_i64(),
                refused["WebhooksRefused"].as_i64()
            ),
            (Some(0), Some(1))
        );
    }
}
