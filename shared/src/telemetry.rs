//! Structured JSON logs on stderr, one object a line, as CloudWatch and `jq` like them.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber. The level comes from `RUST_LOG`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`. Calling it twice is harmless.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .try_init();
}
