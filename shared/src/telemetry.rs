//! Structured JSON logs on stderr, one flat object a line, as CloudWatch Logs
//! Insights and `jq` like them: `timestamp`, `level`, `target`, `message` and the
//! event's own fields side by side (`fields @timestamp, level, message`).

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// An error and its sources, for a log line or a person: `outer: inner: root`.
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The first error of `error`'s chain whose message already holds its source's,
/// so that [`Chain`] would print that cause twice; `None` when each prints once.
/// An error says what failed and keeps why as its source, never both in its text.
pub fn cause_printed_twice(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = error;
    while let Some(source) = current.source() {
        if current.to_string().contains(&source.to_string()) {
            return Some(current.to_string());
        }
        current = source;
    }
    None
}

/// Installs the JSON log subscriber. The level comes from `RUST_LOG`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`. Calling it twice is harmless.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let _ = subscriber(&filter, std::io::stderr).try_init();
}

/// The subscriber [`init`] installs, writing to `writer`.
fn subscriber<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::{cause_printed_twice, Chain};
    use crate::handlers::broadcast::PostError;
    use crate::store::StoreError;

    #[test]
    fn no_error_prints_its_cause_twice() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let payload = crate::event::events_from_body(b"{\"entry\": 7}", chrono::Utc::now())
            .expect_err("not a webhook");
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(StoreError::unavailable(refused())),
            Box::new(StoreError::corrupt("a counter item's slot is not a number")),
            Box::new(payload),
            Box::new(PostError::Failed(refused().into())),
            Box::new(crate::signature::verify(b"k", b"body", Some("sha256=00")).unwrap_err()),
        ];
        for error in &errors {
            let chain = Chain(error.as_ref()).to_string();
            assert_eq!(cause_printed_twice(error.as_ref()), None, "{chain}");
            assert!(error.source().is_none() || chain.contains(": "), "{chain}");
        }
        // The check itself: an error that prints its source is caught.
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Twice(#[source] std::io::Error);
        assert_eq!(
            cause_printed_twice(&Twice(refused())).as_deref(),
            Some("outer: refused")
        );
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_is_one_flat_json_object() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = super::subscriber("info", move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(stored = 2, "webhook stored");
            tracing::debug!("below the level");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["message"], "webhook stored", "{line}");
        assert_eq!(line["stored"], 2);
        assert_eq!(line["level"], "INFO");
        assert!(line.get("fields").is_none(), "{line}");
        assert!(line["timestamp"].is_string());
    }
}
