//! typed-ws inside other programs and crates: the axum extractor and server, TLS, tracing,
//! the `typed-ws` command-line tool, the examples run as processes, and topics across nodes on
//! real NATS and Redis servers.

#[path = "../common/mod.rs"]
mod common;

mod axum;
mod axum_serve;
mod bus;
mod bus_history;
mod bus_resume;
mod chat_bus;
mod cli;
mod cli_reconnect;
mod examples;
mod ticker;
mod tls;
mod tracing;
