//! The ws-default Lambda, WebSocket route `$default`: answers pings and subscriptions.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pulse_shared::config::{self, ProcessEnv};
use pulse_shared::store::dynamodb::{DynamoConnections, DynamoStore};
use pulse_shared::telemetry;
use pulse_shared::websocket::WebSocketHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let connections = DynamoConnections::new(
        DynamoStore::client_from_env().await,
        config::connections_table(&ProcessEnv)?,
    );
    let handler = WebSocketHandler::new(Arc::new(connections));
    run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async {
            Ok::<_, Error>(handler.message(event.payload).await)
        },
    ))
    .await
}
