//! The metrics Lambda: health, the dashboard's REST routes, and the alerts
//! of the stack's CloudWatch alarms.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use pulse_shared::alerts::alarms::CloudWatchAlarms;
use pulse_shared::config::{self, MetricsConfig, ProcessEnv, StoreConfig};
use pulse_shared::handlers::MetricsHandler;
use pulse_shared::store::dynamodb::DynamoStore;
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let store = Arc::new(DynamoStore::from_env(&StoreConfig::from_source(&ProcessEnv)?).await);
    let alarms = CloudWatchAlarms::from_env(config::alarm_prefix(&ProcessEnv)?).await;
    let handler = MetricsHandler::new(
        MetricsConfig::from_source(&ProcessEnv)?,
        store,
        Arc::new(alarms),
    );
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
