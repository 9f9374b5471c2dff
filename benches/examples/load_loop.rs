//! Profiling aid: loads a component from the compiled cache in a loop.

use std::time::Instant;

use runtime::{Runtime, RuntimeConfig};

fn main() {
    let iterations: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = std::env::temp_dir().join("load-loop-cache");
    let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(dir), ..RuntimeConfig::default() }).unwrap();
    let wasm = std::fs::read(fixtures::component("noop")).unwrap();
    rt.block_on(runtime.load("noop", wasm.clone())).unwrap();
    let start = Instant::now();
    for _ in 0..iterations {
        rt.block_on(runtime.load("noop", wasm.clone())).unwrap();
    }
    println!("{iterations} cache-hit loads, {:?} per load", start.elapsed() / iterations);
}
