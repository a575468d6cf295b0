//! typed-ws inside other programs and crates: the axum extractor and server, TLS, tracing,
//! the `typed-ws` command-line tool, and the examples run as processes.

#[path = "../common/mod.rs"]
mod common;

mod axum;
mod axum_serve;
mod cli;
mod cli_reconnect;
mod examples;
mod tls;
mod tracing;
