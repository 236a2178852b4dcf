//! The broadcast Lambda, on the events table's DynamoDB stream: sends each newly
//! stored event to the live WebSocket connections subscribed to its type.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pulse_shared::config::{self, ProcessEnv};
use pulse_shared::handlers::broadcast::{Broadcaster, ManagementApi};
use pulse_shared::store::dynamodb::DynamoConnections;
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let connections = DynamoConnections::from_env().await?;
    let push = ManagementApi::from_env(&config::websocket_endpoint(&ProcessEnv)?).await;
    let broadcaster = Broadcaster::new(Arc::new(connections), Arc::new(push));
    run(service_fn(|event: LambdaEvent<Event>| async {
        Ok::<_, Error>(broadcaster.handle(event.payload).await)
    }))
    .await
}
