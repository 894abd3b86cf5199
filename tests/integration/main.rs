//! One integration test binary: parity with transformers on the generated fixtures, the
//! tokenizer cases, and the CLI end to end.

mod cli;
mod common;
mod hub;
mod hub_server;
mod parity;
