//! The webhook Lambda: Meta's verification GET and signed event POSTs, each
//! POST's figures written as CloudWatch metrics (EMF) for the alarms.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use pulse_shared::alerts::emf::EmfMetrics;
use pulse_shared::config::{self, ProcessEnv, StoreConfig, WebhookConfig};
use pulse_shared::handlers::WebhookHandler;
use pulse_shared::store::dynamodb::DynamoStore;
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let store_config = StoreConfig::from_source(&ProcessEnv)?;
    let store = Arc::new(DynamoStore::from_env(&store_config).await);
    let handler = WebhookHandler::new(
        WebhookConfig::from_source(&ProcessEnv)?,
        store,
        store_config.retention_days,
    )
    .with_observer(Arc::new(EmfMetrics::new(config::stack_name(&ProcessEnv)?)));
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
