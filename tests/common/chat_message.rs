//! The chat message of the tests and the benches, in its own file so that
//! `benches/common/mod.rs` can include this very definition (`#[path]`): the benches measure
//! the message the tests check. `examples/common/mod.rs` keeps its own copy of the same shape,
//! because each example is a program to copy as it stands; it is the wire contract of the
//! example echo server, so the three must keep the same fields.

use serde::{Deserialize, Serialize};

/// The message the examples exchange, and the small payload of the benches: about 100 bytes
/// in every codec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: u64,
    pub author: String,
    pub text: String,
    pub tags: Vec<String>,
    pub reply_to: Option<u64>,
}
