//! One integration test binary: parity with transformers on the generated fixtures, the
//! tokenizer cases, and the CLI end to end (translate, summarize, models, the hub).

mod cli;
mod common;
mod documents;
mod folders;
mod hub;
mod hub_server;
mod languages;
mod parity;
mod serve;
mod summarize;
