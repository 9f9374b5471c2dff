//! Outbound network for tools: the per-session allowlist policy, the address
//! guard against server-side request forgery, the host's secrets and the rules
//! that inject them, and secret redaction.
//!
//! These are the host-side building blocks of `wasi:http` for tools; wiring them
//! into the outgoing-request handler is the next step (see the network issue).

pub mod policy;
pub mod redact;
pub mod secrets;
