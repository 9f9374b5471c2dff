//! `tool_call`: one complete no-op tool call (new store → instantiate → call →
//! drop), for this runtime's engine and, in the same run, for
//! - wasmtime's default configuration (on-demand allocator, a fresh `Store` and
//!   a fresh `WasiCtx` per call, `InstancePre` as well so only the configuration
//!   differs), and
//! - spawning a trivial native process (`true`),
//!
//! plus calls/second across 1,000 sessions on every core, and the time to load
//! a component from the compiled cache (against compiling it).
//!
//! Targets: median ≤ 20 µs; ≥ 2× faster than the default configuration; ≥ 50×
//! faster than a process spawn; cache-hit load ≤ 1 ms.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{Latency, sample, write_results};
use criterion::Criterion;
use runtime::{Limits, Runtime, RuntimeConfig, Session, Toolbox};
use serde_json::json;

mod baseline {
    //! A plain wasmtime embedding the way most wasm tool runtimes ship it.

    use wasmtime::component::{Component, Linker};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::WasiCtx;

    wasmtime::component::bindgen!({
        path: "../runtime/wit",
        world: "tool-component",
        exports: { default: async },
    });

    use benches::PlainWasi as State;

    pub struct Baseline {
        engine: Engine,
        pre: ToolComponentPre<State>,
    }

    impl Baseline {
        pub fn new(wasm: &[u8]) -> Self {
            let engine = Engine::new(&wasmtime::Config::new()).expect("default engine");
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
            let component = Component::new(&engine, wasm).expect("compile");
            let pre = ToolComponentPre::new(linker.instantiate_pre(&component).expect("link")).expect("world");
            Baseline { engine, pre }
        }

        pub async fn call(&self, tool: &str, input: &str) -> String {
            let state = State::new(WasiCtx::builder().build());
            let mut store = Store::new(&self.engine, state);
            let instance = self.pre.instantiate_async(&mut store).await.expect("instantiate");
            let output = instance.agent_tool_tool().call_call(&mut store, tool, input).await.expect("call");
            output.content
        }
    }
}

const SAMPLES: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let wasm = fixtures::bytes(&fixtures::component("noop"));
    let cache_dir = tempfile_dir();
    let runtime =
        Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir.clone()), ..RuntimeConfig::default() }).unwrap();
    let noop = rt.block_on(runtime.load("noop", wasm.clone())).unwrap();
    let mut toolbox = Toolbox::new();
    toolbox.add(noop).unwrap();
    let session = Session::new(&runtime, Arc::new(toolbox), Limits::default());
    let baseline = baseline::Baseline::new(&wasm);
    assert_eq!(rt.block_on(session.call("noop", "{}")).unwrap().content, "");
    assert_eq!(rt.block_on(baseline.call("noop", "{}")), "");

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        let mut group = criterion.benchmark_group("tool_call");
        group.bench_function("this_runtime", |b| {
            b.to_async(&rt).iter(|| async { session.call("noop", "{}").await.unwrap() })
        });
        group.bench_function("wasmtime_default_config", |b| b.to_async(&rt).iter(|| baseline.call("noop", "{}")));
        group.sample_size(20).bench_function("process_spawn", |b| b.iter(spawn_true));
        group.finish();
    }
    criterion.final_summary();

    // Interleave the subjects in rounds so load on the shared machine hits all alike.
    let mut ours = Vec::with_capacity(SAMPLES);
    let mut theirs = Vec::with_capacity(SAMPLES);
    rt.block_on(async {
        for _ in 0..SAMPLES / 1000 {
            for _ in 0..1000 {
                let start = Instant::now();
                session.call("noop", "{}").await.unwrap();
                ours.push(start.elapsed());
            }
            for _ in 0..1000 {
                let start = Instant::now();
                baseline.call("noop", "{}").await;
                theirs.push(start.elapsed());
            }
        }
    });
    let ours = Latency::from_samples(ours);
    let theirs = Latency::from_samples(theirs);
    let spawn = sample(300, spawn_true);
    let throughput = throughput_across_sessions(&runtime, &session, 1000, 20);
    let (cached_load, compile) = load_times(&rt, &cache_dir, &wasm);

    write_results(
        "tool_call",
        &json!({
            "noop_call": { "this_runtime": ours, "wasmtime_default_config": theirs, "process_spawn": spawn },
            "ratios": {
                "default_config_over_this_runtime_median": theirs.median_us / ours.median_us,
                "process_spawn_over_this_runtime_median": spawn.median_us / ours.median_us,
            },
            "throughput_1000_sessions": throughput,
            "load": { "compiled_cache_hit": cached_load, "compile_without_cache": compile },
            "targets": {
                "median_us_max": 20.0, "vs_default_config_min": 2.0, "vs_process_spawn_min": 50.0, "cache_hit_load_us_max": 1000.0,
                "met": ours.median_us <= 20.0 && theirs.median_us / ours.median_us >= 2.0
                    && spawn.median_us / ours.median_us >= 50.0 && cached_load.median_us <= 1000.0,
            },
        }),
    );
}

fn spawn_true() {
    let status = Command::new("true").status().expect("spawn `true`");
    assert!(status.success());
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tool-call-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Calls/second with `sessions` sessions each making `calls` calls, on a
/// multi-threaded runtime with one worker per core.
fn throughput_across_sessions(
    runtime: &Runtime,
    template: &Session,
    session_count: usize,
    calls: usize,
) -> serde_json::Value {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    let sessions: Vec<Session> = (0..session_count)
        .map(|_| Session::new(runtime, Arc::new(template.toolbox().clone()), Limits::default()))
        .collect();
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = sessions
            .into_iter()
            .map(|session| {
                tokio::spawn(async move {
                    for _ in 0..calls {
                        session.call("noop", "{}").await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = started.elapsed();
    let per_second = (session_count * calls) as f64 / elapsed.as_secs_f64();
    json!({ "sessions": session_count, "calls_per_session": calls, "worker_threads": workers, "elapsed_ms": elapsed.as_secs_f64() * 1e3, "calls_per_second": per_second })
}

/// Median time to load the component from the compiled cache, and to compile it.
fn load_times(rt: &tokio::runtime::Runtime, cache_dir: &std::path::Path, wasm: &[u8]) -> (Latency, Latency) {
    let cached =
        Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir.to_path_buf()), ..RuntimeConfig::default() }).unwrap();
    let timed_loads = |runtime: &Runtime, count: usize| {
        let samples = (0..count)
            .map(|_| {
                let bytes = wasm.to_vec();
                let start = Instant::now();
                rt.block_on(runtime.load("noop", bytes)).unwrap();
                start.elapsed()
            })
            .collect();
        Latency::from_samples(samples)
    };
    let hits = timed_loads(&cached, 200);
    assert_eq!(cached.instantiations(), 0, "every load was a cache hit");
    let compiles = timed_loads(&Runtime::new(RuntimeConfig::default()).unwrap(), 5);
    (hits, compiles)
}
