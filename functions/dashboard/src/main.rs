//! The dashboard Lambda: the operators' page, its assets and `/config.json`.

use lambda_http::{run, service_fn, Error, Request};
use pulse_shared::config::ProcessEnv;
use pulse_shared::handlers::dashboard::{DashboardConfig, DashboardHandler};
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let handler = DashboardHandler::new(DashboardConfig::from_source(&ProcessEnv)?);
    run(service_fn(|request: Request| async {
        Ok::<_, Error>(handler.handle(request).await)
    }))
    .await
}
