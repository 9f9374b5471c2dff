//! `vfs_io`: one complete copy of a 10 MiB file by the `fs_copy` guest (a plain
//! `wasi:cli/command` that reads `/workspace/src.bin` and writes
//! `/workspace/dst.bin` through a 64 KiB buffer), as a whole tool call:
//!
//! - `vfs`: through this runtime, a [`Session`] whose in-memory workspace holds
//!   `src.bin`;
//! - `real_dir`: in the same run, through wasmtime-wasi's own `wasi:filesystem`
//!   over a temporary directory preopened at `/workspace`, with the default
//!   `WasiCtx` (blocking file operations go through `spawn_blocking`);
//! - `real_dir_inline`: the same with `allow_blocking_current_thread(true)`, the
//!   fastest wasmtime-wasi can touch a real directory.
//!
//! All three run the same component on the same engine (this runtime's: pooling
//! allocator, copy-on-write images, epoch interruption with a yield every tick) on
//! the same single-threaded tokio runtime. The guest truncates `dst.bin` itself
//! each time (`File::create`), in both worlds.
//!
//! Target: the VFS no slower than the real directory (median ratio vfs/real_dir ≤ 1).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{Latency, write_results};
use criterion::{Criterion, SamplingMode};
use runtime::vfs::OpenOptions;
use runtime::{Limits, Runtime, RuntimeConfig, Session, Toolbox};
use serde_json::json;

/// Bytes copied per call.
const FILE_BYTES: usize = 10 << 20;
/// Interleaved sampling: rounds × calls per subject and round.
const ROUNDS: usize = 20;
const PER_ROUND: usize = 5;

mod real_dir {
    //! The same component under plain wasmtime-wasi with a real directory.

    use std::path::Path;

    use wasmtime::component::{Component, Linker};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::p2::bindings::CommandPre;
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    use wasmtime_wasi::{FsPerms, WasiCtx};

    use benches::PlainWasi as State;

    pub struct RealDir {
        engine: Engine,
        pre: CommandPre<State>,
    }

    impl RealDir {
        /// Compiles `wasm` on `engine` (shared with the runtime under test).
        pub fn new(engine: &Engine, wasm: &Path) -> Self {
            let component = Component::from_file(engine, wasm).expect("compile fs_copy");
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
            let pre = CommandPre::new(linker.instantiate_pre(&component).expect("link")).expect("a command");
            RealDir { engine: engine.clone(), pre }
        }

        /// Runs the copy once with `dir` at `/workspace`; returns the guest's stdout.
        pub async fn call(&self, dir: &Path, inline: bool) -> String {
            let stdout = MemoryOutputPipe::new(1 << 16);
            let stderr = MemoryOutputPipe::new(1 << 16);
            let mut builder = WasiCtx::builder();
            builder
                .args(&["fs_copy"])
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .allow_blocking_current_thread(inline)
                .preopened_dir(dir, "/workspace", FsPerms::ReadWrite)
                .expect("preopen");
            let mut store = Store::new(&self.engine, State::new(builder.build()));
            // The runtime's engine interrupts on epochs: yield each tick, as the runtime does.
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
            let command = self.pre.instantiate_async(&mut store).await.expect("instantiate");
            let result = command.wasi_cli_run().call_run(&mut store).await.expect("run");
            assert!(result.is_ok(), "fs_copy failed: {}", String::from_utf8_lossy(&stderr.contents()));
            String::from_utf8_lossy(&stdout.contents()).into_owned()
        }
    }
}

/// Pseudo-random bytes (SplitMix64), so no layer can shortcut zeros.
fn content(len: usize) -> Vec<u8> {
    let mut state = 0x5eed_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vfs-io-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the real directory");
    dir
}

/// Guest-to-host calls one copy makes (all WASI calls, file I/O included): the
/// smallest [`Limits::host_calls`] under which the call still succeeds. Tells how
/// the guest's 64 KiB reads and writes reach the host.
async fn host_calls_per_copy(runtime: &Runtime, session: &Session) -> u64 {
    let succeeds = |host_calls: u64| async move {
        let limited =
            Session::new(runtime, Arc::new(session.toolbox().clone()), Limits { host_calls, ..Limits::default() })
                .with_workspace(session.workspace().clone());
        limited.call("fs_copy", r#"{"args": []}"#).await.is_ok_and(|output| !output.is_error)
    };
    let (mut fails, mut works) = (0u64, 1u64 << 20);
    assert!(succeeds(works).await, "a copy needs fewer than {works} host calls");
    while works - fails > 1 {
        let mid = fails + (works - fails) / 2;
        if succeeds(mid).await {
            works = mid;
        } else {
            fails = mid;
        }
    }
    works
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let wasm = fixtures::component("fs_copy");
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let copy = rt.block_on(runtime.load_file(&wasm)).expect("load fs_copy");
    let mut toolbox = Toolbox::new();
    toolbox.add(copy).unwrap();
    let session = Session::new(&runtime, Arc::new(toolbox), Limits::default());
    let data = content(FILE_BYTES);
    {
        let mut vfs = session.workspace().lock();
        let root = vfs.root();
        let src = vfs.open_at(root, "src.bin", OpenOptions { create: true, ..Default::default() }).unwrap();
        vfs.write(src, 0, &data).unwrap();
    }
    let dir = temp_dir();
    std::fs::write(dir.join("src.bin"), &data).expect("write src.bin");
    let real = real_dir::RealDir::new(runtime.engine(), &wasm);

    let expected = format!("{FILE_BYTES}\n");
    let input = r#"{"args": []}"#;
    let vfs_call = || async {
        let output = session.call("fs_copy", input).await.expect("fs_copy call");
        assert!(!output.is_error, "fs_copy failed: {}", output.content);
        output.stdout
    };
    let real_call = |inline: bool| real.call(&dir, inline);

    // Both worlds copy correctly before anything is timed.
    assert_eq!(rt.block_on(vfs_call()), expected);
    {
        let mut vfs = session.workspace().lock();
        let root = vfs.root();
        let dst = vfs.lookup(root, "dst.bin").expect("dst.bin exists");
        assert!(vfs.read(dst, 0, FILE_BYTES + 1).unwrap() == data, "the VFS copy matches");
    }
    for inline in [false, true] {
        assert_eq!(rt.block_on(real_call(inline)), expected);
        assert!(std::fs::read(dir.join("dst.bin")).unwrap() == data, "the real copy matches");
    }

    let host_calls = rt.block_on(host_calls_per_copy(&runtime, &session));

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        let mut group = criterion.benchmark_group("vfs_io_copy_10mib");
        group.sample_size(20).sampling_mode(SamplingMode::Flat);
        group.bench_function("vfs", |b| b.to_async(&rt).iter(vfs_call));
        group.bench_function("real_dir", |b| b.to_async(&rt).iter(|| real_call(false)));
        group.bench_function("real_dir_inline", |b| b.to_async(&rt).iter(|| real_call(true)));
        group.finish();
    }
    criterion.final_summary();

    // Interleave the subjects in rounds so load on the shared machine hits all alike.
    let mut times: [Vec<Duration>; 3] = Default::default();
    rt.block_on(async {
        for _ in 0..ROUNDS {
            for (subject, samples) in times.iter_mut().enumerate() {
                for _ in 0..PER_ROUND {
                    let start = Instant::now();
                    let stdout = match subject {
                        0 => vfs_call().await,
                        1 => real_call(false).await,
                        _ => real_call(true).await,
                    };
                    samples.push(start.elapsed());
                    assert_eq!(stdout, expected);
                }
            }
        }
    });
    let [vfs, real_default, real_inline] = times.map(Latency::from_samples);
    let _ = std::fs::remove_dir_all(&dir);
    let mib_per_s = |latency: &Latency| FILE_BYTES as f64 / (1 << 20) as f64 / (latency.median_us / 1e6);
    let ratio = vfs.median_us / real_default.median_us;
    write_results(
        "vfs_io",
        &json!({
            "subject": "one complete fs_copy call: instantiate, copy 10 MiB src.bin -> dst.bin (64 KiB reads and \
                        writes, dst truncated by the guest), print the count",
            "file_bytes": FILE_BYTES,
            "engine": "shared: the runtime's engine (pooling allocator, CoW images, epoch yield per tick) for all",
            "copy_10mib": { "vfs": vfs, "real_dir": real_default, "real_dir_inline": real_inline },
            "throughput_mib_per_s_median": {
                "vfs": mib_per_s(&vfs), "real_dir": mib_per_s(&real_default), "real_dir_inline": mib_per_s(&real_inline),
            },
            "vfs_host_calls_per_copy": host_calls,
            "ratios": {
                "vfs_over_real_dir_median": ratio,
                "vfs_over_real_dir_p99": vfs.p99_us / real_default.p99_us,
                "vfs_over_real_dir_inline_median": vfs.median_us / real_inline.median_us,
            },
            "targets": { "vfs_over_real_dir_median_max": 1.0, "met": ratio <= 1.0 },
        }),
    );
}
