//! Errors for loading components and calling tools.
//!
//! A [`LoadError`] means a component was refused; a [`CallError`] means one call
//! failed while the host, the session and the component all stay usable.

use std::time::Duration;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("`{name}` is not a WebAssembly file (bad magic number)")]
    NotWasm { name: String },
    /// A core module where a component was expected.
    #[error(
        "`{name}` is a core WebAssembly module, not a component; build it for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule { name: String },
    /// The component failed to parse, validate or compile.
    #[error("`{name}` is not a valid component: {reason}")]
    Invalid { name: String, reason: String },
    /// The component exports neither the tool world nor `wasi:cli/run`.
    #[error(
        "`{name}` implements the wrong world: expected an export of `agent:tool/tool` or \
         `wasi:cli/run`, found {found}"
    )]
    WrongWorld { name: String, found: String },
    /// The component imports interfaces this host does not provide.
    #[error("`{name}` imports {imports} which this host does not provide to tools")]
    UnsupportedImports { name: String, imports: String },
    /// `describe` failed or returned an invalid tool spec.
    #[error("`{name}` describes an invalid tool: {reason}")]
    BadSpec { name: String, reason: String },
    /// Two components offer a tool with the same name.
    #[error("tool `{tool}` from `{name}` collides with a tool of the same name from `{existing}`")]
    NameCollision { name: String, tool: String, existing: String },
    /// Reading the component from disk failed.
    #[error("cannot read component {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Why one tool call failed. Every variant names the tool; the limit variants
/// also name the limit that was hit.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No loaded component offers a tool with this name.
    #[error("there is no tool named `{tool}`")]
    UnknownTool { tool: String },
    /// The input is not a JSON document.
    #[error("input for tool `{tool}` is not valid JSON: {reason}")]
    InputNotJson { tool: String, reason: String },
    /// The input does not satisfy the tool's JSON Schema.
    #[error("input for tool `{tool}` does not match its schema: {}", violations.join("; "))]
    InputSchema { tool: String, violations: Vec<String> },
    /// The call ran past its wall-clock deadline.
    #[error("tool `{tool}` exceeded its wall-clock deadline of {deadline:?}")]
    Deadline { tool: String, deadline: Duration },
    /// The guest tried to grow its linear memory past the cap.
    #[error("tool `{tool}` exceeded its memory limit of {limit} bytes")]
    Memory { tool: String, limit: usize },
    /// The guest made more host calls than allowed.
    #[error("tool `{tool}` exceeded its limit of {limit} host calls")]
    HostCalls { tool: String, limit: u64 },
    /// The guest held more host resources (streams, pollables, files) than allowed.
    #[error("tool `{tool}` exceeded its limit of {limit} open host resources")]
    Resources { tool: String, limit: usize },
    /// The guest trapped: `unreachable`, stack overflow, out-of-bounds access, …
    #[error("tool `{tool}` crashed: {reason}{}", stderr_suffix(stderr))]
    Trap { tool: String, reason: String, stderr: String },
    /// The host failed to set up or run the call (a bug or resource exhaustion).
    #[error("tool `{tool}` could not run: {reason}")]
    Host { tool: String, reason: String },
}

fn stderr_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() { String::new() } else { format!(" (stderr: {stderr})") }
}
