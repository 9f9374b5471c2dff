//! Integration tests for the runtime, against real components built from source
//! (`fixtures/components/` and `tools-wasm/`). One binary, so linking happens once.

mod cache;
mod calls;
mod fs_conformance;
mod isolation;
mod limits;
mod loading;
mod net;
mod vfs_model;
mod workspace;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use runtime::{Limits, Runtime, RuntimeConfig, Session, ToolComponent, Toolbox};

/// A compiled-cache directory shared by the whole test process, so each fixture
/// is compiled once.
fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path().to_path_buf()
}

/// A runtime with a small pool (tests don't need thousands of slots).
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig { max_instances: 64, cache_dir: Some(shared_cache_dir()), ..RuntimeConfig::default() })
        .expect("runtime")
}

/// Loads a fixture component by artifact name.
pub async fn fixture(runtime: &Runtime, name: &str) -> Arc<ToolComponent> {
    let path = fixtures::component(name);
    runtime.load_file(&path).await.unwrap_or_else(|err| panic!("loading {}: {err}", path.display()))
}

/// A session over the given components.
pub fn session(runtime: &Runtime, components: &[Arc<ToolComponent>], limits: Limits) -> Session {
    let mut toolbox = Toolbox::new();
    for component in components {
        toolbox.add(component.clone()).expect("no collisions");
    }
    Session::new(runtime, Arc::new(toolbox), limits)
}

/// A session over the hostile fixture.
pub async fn hostile_session(limits: Limits) -> (Runtime, Session) {
    let runtime = runtime();
    let hostile = fixture(&runtime, "hostile").await;
    let session = session(&runtime, &[hostile], limits);
    (runtime, session)
}

/// Asserts that the session still serves an ordinary call.
pub async fn assert_still_serves(session: &Session) {
    let output = session.call("echo", r#"{"text":"still here"}"#).await.expect("echo after a failure");
    assert_eq!(output.content, "still here");
    assert!(!output.is_error);
}
