//! Shared helpers for the benchmarks: latency sampling and the JSON results file.
//!
//! Criterion prints its own statistics; on top of that every benchmark samples
//! its subject and baselines in the same run, so the ratios hold even on a
//! shared, noisy machine, and writes the figures to `target/bench-results/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Median, p99 and mean of a set of timed iterations.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Iterations measured.
    pub samples: usize,
    /// Median, in microseconds.
    pub median_us: f64,
    /// 99th percentile, in microseconds.
    pub p99_us: f64,
    /// Mean, in microseconds.
    pub mean_us: f64,
}

impl Latency {
    /// Summarises individual iteration times.
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let total: Duration = samples.iter().sum();
        Latency {
            samples: samples.len(),
            median_us: micros(at(0.5)),
            p99_us: micros(at(0.99)),
            mean_us: micros(total) / samples.len() as f64,
        }
    }
}

/// Times `iterations` runs of `f` one by one.
pub fn sample(iterations: usize, mut f: impl FnMut()) -> Latency {
    let samples = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    Latency::from_samples(samples)
}

/// A duration in fractional microseconds.
pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// `target/bench-results/`, created if needed. Found from the running binary
/// (`<target>/<profile>/deps/NAME-HASH`), so it is the target directory that
/// built the bench, wherever the sources were.
pub fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("path of the running benchmark");
        exe.ancestors().nth(3).expect("benchmarks run from <target>/<profile>/deps").to_path_buf()
    });
    let dir = target.join("bench-results");
    std::fs::create_dir_all(&dir).expect("create target/bench-results");
    dir
}

/// Writes `figures` to `target/bench-results/NAME.json` and prints them.
pub fn write_results(name: &str, figures: &serde_json::Value) {
    let path = results_dir().join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(figures).expect("figures serialize");
    std::fs::write(&path, &text).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    println!("\n{name} results ({}):\n{text}", path.display());
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), to read a run's
/// figures against: on a 2-core machine, a load above 2 means the bench shared
/// its cores. Zeros where unavailable.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|field| field.parse().unwrap_or(0.0));
    [(); 3].map(|()| fields.next().unwrap_or(0.0))
}

/// A tiny deterministic generator (SplitMix64), so every run builds the same data.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Fills `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// Store data of a plain wasmtime-wasi embedding: the baselines' configuration.
pub struct PlainWasi {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl PlainWasi {
    /// Wraps a WASI context with a fresh resource table.
    pub fn new(ctx: wasmtime_wasi::WasiCtx) -> Self {
        PlainWasi { ctx, table: wasmtime::component::ResourceTable::new() }
    }
}

impl wasmtime_wasi::WasiView for PlainWasi {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}
