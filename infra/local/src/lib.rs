//! Pulse's local stack and tooling (the `pulse` binary): the Lambda handlers behind
//! an emulation of API Gateway, on an embedded store, on one machine.

pub mod alerting;
pub mod backup;
pub mod bench;
pub mod gateway;
pub mod live;
pub mod load;
pub mod send;
pub mod simulate;
pub mod stack;
pub mod stream;
pub mod websocket;
