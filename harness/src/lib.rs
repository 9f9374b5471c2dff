//! The agent harness: the loop that drives a language model, runs its tool calls
//! in the [`runtime`] sandbox and checkpoints every step into redb.
//!
//! The binary `harness` is a thin CLI over this library; the server and tests use
//! the same pieces.

pub mod agent;
pub mod builtin;
pub mod config;
pub mod conversation;
pub mod event;
pub mod mcp;
pub mod provider;
pub mod server;
pub mod settings;
pub mod store;
pub mod toolset;
