//! The converters: what each codec accepts and refuses, strict decoding, zero-copy
//! decoding, and converter negotiation by subprotocol.

#[path = "../common/mod.rs"]
mod common;

mod converters;
mod negotiation;
mod strict_decoding;
mod zero_copy;
