//! Profiling aid: runs no-op tool calls in a loop (`perf record` this binary).

use std::sync::Arc;
use std::time::Instant;

use runtime::{Limits, Runtime, RuntimeConfig, Session, Toolbox};

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let noop = rt.block_on(runtime.load_file(fixtures::component("noop"))).unwrap();
    let mut toolbox = Toolbox::new();
    toolbox.add(noop).unwrap();
    let session = Session::new(&runtime, Arc::new(toolbox), Limits::default());
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iterations {
            session.call("noop", "{}").await.unwrap();
        }
        let per_call = start.elapsed() / iterations as u32;
        println!("{iterations} calls, {per_call:?} per call");
    });
}
