//! Integration tests for the harness and its built-in tools. One binary, so
//! linking happens once.

mod agent;
mod cli;
mod cli_run;
mod cli_sessions;
mod client_calls;
mod crash;
mod file_tools;
mod load;
mod mcp_clients;
mod provider_anthropic;
mod provider_openai;
mod provider_replay;
mod search_tools;
mod server_auth;
mod server_crash;
mod server_docs;
mod server_history;
mod server_input;
mod server_load;
mod server_runs;
mod server_util;
mod session_settings;
mod store;
mod store_history;
mod store_log;
mod wire_server;

use std::sync::{Arc, OnceLock};

use runtime::{Limits, Runtime, RuntimeConfig, Session, ToolOutput, Toolbox};

/// A runtime shared by the tests of this process, with a compiled cache so each
/// built-in is compiled once.
pub fn runtime() -> Runtime {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path().to_path_buf();
    Runtime::new(RuntimeConfig { max_instances: 64, cache_dir: Some(dir), ..RuntimeConfig::default() })
        .expect("runtime")
}

/// A fresh session offering the named built-in tools (artifact names in `tools-wasm/tools/`).
pub async fn session_with(tools: &[&str]) -> Session {
    let runtime = runtime();
    let mut toolbox = Toolbox::new();
    for tool in tools {
        let component = runtime.load_file(fixtures::tool(tool)).await.unwrap_or_else(|err| panic!("{tool}: {err}"));
        toolbox.add(component).expect("no collisions");
    }
    Session::new(&runtime, Arc::new(toolbox), Limits::default())
}

/// Calls `tool` with a JSON input, panicking if the call itself fails (a tool error
/// result is returned, not a panic).
pub async fn call(session: &Session, tool: &str, input: serde_json::Value) -> ToolOutput {
    session.call(tool, &input.to_string()).await.unwrap_or_else(|err| panic!("{tool}: {err}"))
}

/// Writes a file into the session workspace from the host side, creating parents.
pub fn put(session: &Session, path: &str, content: &[u8]) {
    let mut vfs = session.workspace().lock();
    let root = vfs.root();
    let mut dir = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        dir = if dir.is_empty() { part.to_string() } else { format!("{dir}/{part}") };
        let _ = vfs.create_dir_at(root, &dir);
    }
    let options = runtime::vfs::OpenOptions { create: true, truncate: true, ..Default::default() };
    let node = vfs.open_at(root, path, options).expect("create file");
    vfs.write(node, 0, content).expect("write file");
}

/// Reads a file from the session workspace from the host side.
pub fn get(session: &Session, path: &str) -> Option<Vec<u8>> {
    let mut vfs = session.workspace().lock();
    let root = vfs.root();
    let node = vfs.lookup(root, path).ok()?;
    let size = vfs.stat(node).ok()?.size;
    vfs.read(node, 0, size as usize).ok()
}

/// The content of a successful call, failing the test on an error result.
pub async fn ok(session: &Session, tool: &str, input: serde_json::Value) -> String {
    let output = call(session, tool, input.clone()).await;
    assert!(!output.is_error, "{tool} {input} failed: {}", output.content);
    output.content
}

/// The content of an error result, failing the test on success.
pub async fn err(session: &Session, tool: &str, input: serde_json::Value) -> String {
    let output = call(session, tool, input.clone()).await;
    assert!(output.is_error, "{tool} {input} should fail, got: {}", output.content);
    output.content
}
