//! Sessions end to end, over loopback: handshakes, frames, closes, split halves, keep-alive,
//! limits, pipelined replies, cancel safety, errors, the budget for unfinished messages,
//! compression, reconnecting clients, graceful shutdown, topics, and a load of 200 sessions.

#[path = "../common/mod.rs"]
mod common;

mod budget;
mod cancel_safety;
mod close;
mod coalescing;
mod compression;
mod errors;
mod frames;
mod halves;
mod handshake;
mod keepalive;
mod limits;
mod load;
mod reconnect;
mod shutdown;
mod topics;
mod topics_compress;
mod topics_resume;
mod topics_slow;
