//! The alert-notify Lambda: each alarm transition of the stack's SNS topic,
//! posted to `ALERT_WEBHOOK_URL` in the local stack's form, retried with
//! backoff until the invocation's time runs out; Lambda then retries the
//! event (`template.yaml` keeps it for an hour).

use std::time::{Duration, Instant};

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pulse_shared::alerts::alarms::notice_of_alarm;
use pulse_shared::alerts::notify::Notifier;
use pulse_shared::config::{self, ConfigError, ProcessEnv};
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let stack = config::stack_name(&ProcessEnv)?;
    let prefix = config::alarm_prefix(&ProcessEnv)?;
    let notifier = Notifier::from_source(&ProcessEnv, &stack)?
        .ok_or_else(|| ConfigError::new("ALERT_WEBHOOK_URL is not set".to_owned()))?;
    run(service_fn(|event: LambdaEvent<SnsEvent>| {
        let (notifier, stack, prefix) = (&notifier, &stack, &prefix);
        async move {
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let until = Instant::now() + left.saturating_sub(Duration::from_secs(1));
            for record in &event.payload.records {
                let Some(notice) = notice_of_alarm(stack, prefix, &record.sns.message) else {
                    continue;
                };
                let reply = notifier.post_until(&notice, until).await?;
                tracing::info!(rule = %notice.rule, to = %notifier.destination(), status = reply.status, "alert notified");
            }
            Ok::<(), Error>(())
        }
    }))
    .await
}
