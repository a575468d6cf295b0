//! The guide: how typed-ws behaves at the edges, chapter by chapter. The API reference is on
//! the items themselves; these pages say what holds across them, and what the tests and benches
//! measured.
//!
//! - [`wire_format`] — what each codec writes, and what peers need to read it;
//! - [`limits`] — the defaults, and what bounds the memory a peer can make a server hold;
//! - [`errors`] — errors, close codes and HTTP refusals;
//! - [`negotiation`] — the converter chosen per session by subprotocol;
//! - [`tls`] — `wss://` with rustls;
//! - [`broadcast`] — zero-copy receive, and one encoding sent to many sessions;
//! - [`topics`] — fan-out to many sessions, slow subscribers, buses across nodes, history and
//!   resume;
//! - [`axum`] — sessions in axum routers and other hyper servers;
//! - [`reconnecting`] — clients that connect again;
//! - [`shutdown`] — graceful shutdown;
//! - [`compression`] — permessage-deflate;
//! - [`coalescing`] — replies to pipelined requests in one write;
//! - [`tracing`] — spans and events;
//! - [`cli`] — the `typed-ws` command-line tool;
//! - [`examples`] — the programs in `examples/`;
//! - [`conformance`] — Autobahn, interoperability, hostile peers, benchmarks.

// Each chapter is a Markdown file in docs/, so that it reads on GitHub too; its Rust code
// blocks run as doc tests.

#[doc = include_str!("../docs/wire-format.md")]
pub mod wire_format {}

#[doc = include_str!("../docs/limits.md")]
pub mod limits {}

#[doc = include_str!("../docs/errors.md")]
pub mod errors {}

#[doc = include_str!("../docs/negotiation.md")]
pub mod negotiation {}

#[doc = include_str!("../docs/tls.md")]
pub mod tls {}

#[doc = include_str!("../docs/broadcast.md")]
pub mod broadcast {}

#[doc = include_str!("../docs/topics.md")]
pub mod topics {}

#[doc = include_str!("../docs/axum.md")]
pub mod axum {}

#[doc = include_str!("../docs/reconnecting.md")]
pub mod reconnecting {}

#[doc = include_str!("../docs/shutdown.md")]
pub mod shutdown {}

#[doc = include_str!("../docs/compression.md")]
pub mod compression {}

#[doc = include_str!("../docs/coalescing.md")]
pub mod coalescing {}

#[doc = include_str!("../docs/tracing.md")]
pub mod tracing {}

#[doc = include_str!("../docs/cli.md")]
pub mod cli {}

#[doc = include_str!("../docs/examples.md")]
pub mod examples {}

#[doc = include_str!("../docs/conformance.md")]
pub mod conformance {}
