//! The chat message of the examples, the tests and the benches.

use serde::{Deserialize, Serialize};

/// The message every example sends and the echo server sends back: its wire contract. The
/// tests and the benches use this very definition (`#[path]`), so the benches measure the
/// message the tests check; about 100 bytes in every codec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: u64,
    pub author: String,
    pub text: String,
    pub tags: Vec<String>,
    pub reply_to: Option<u64>,
}
