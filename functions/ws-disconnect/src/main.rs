//! The ws-disconnect Lambda, WebSocket route `$disconnect`: forgets the connection.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pulse_shared::handlers::websocket::WebSocketHandler;
use pulse_shared::store::dynamodb::DynamoConnections;
use pulse_shared::telemetry;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let connections = DynamoConnections::from_env().await?;
    let handler = WebSocketHandler::new(Arc::new(connections));
    run(service_fn(
        |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async {
            Ok::<_, Error>(handler.disconnect(event.payload).await)
        },
    ))
    .await
}
