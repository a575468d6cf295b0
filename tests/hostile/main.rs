//! Hostile peers and payloads: garbage and bombs against every codec, raw frames and
//! handshakes that break the rules, peers that vanish, trickle or never read, servers that
//! misbehave, and the defaults that bound each of them.

#[path = "../common/mod.rs"]
mod common;

mod codecs;
mod crowd;
mod disconnects;
mod frames;
mod handshakes;
mod hardening;
mod random_frames;
mod servers;
mod slow_readers;
