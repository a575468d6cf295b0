//! Interoperability with independent implementations: Python `websockets` and Node `ws`
//! with their CBOR and MessagePack libraries, with and without compression, and Chromium.

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod compression;
mod exchange;
