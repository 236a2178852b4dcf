//! The metrics Lambda: health and the dashboard's REST routes.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use pulse_shared::config::{MetricsConfig, ProcessEnv, StoreConfig};
use pulse_shared::handlers::MetricsHandler;
use pulse_shared::store::dynamodb::DynamoStore;
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let store = Arc::new(DynamoStore::from_env(&StoreConfig::from_source(&ProcessEnv)?).await);
    let handler = MetricsHandler::new(MetricsConfig::from_source(&ProcessEnv)?, store);
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
