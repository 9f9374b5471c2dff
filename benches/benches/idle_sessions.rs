//! `idle_sessions`: the memory a process spends per idle session, with 10,000
//! sessions that really ran.
//!
//! In this design an idle session holds no instance and no filesystem in memory:
//! the process keeps the [`Agent`] (shared by every session: runtime, compiled
//! tools, provider, store handle) and, per session, only what a server would keep
//! — here its 16-byte id, in a `Vec` — while the log, checkpoints and files are in
//! the redb file on disk. The bench checks that by measuring the process:
//!
//! 1. `baseline_cold`: resident memory with the agent and its store opened and no
//!    session; `baseline`: the same after one throwaway `read_file` call made
//!    directly through a `runtime::Session` (no store involved), so the first
//!    instantiation's one-time costs (instance slot, code pages, the async
//!    runtime's timer) are not charged to sessions.
//! 2. [`SESSIONS`] sessions are created one after the other, each with its own
//!    small workspace (3 files, 2 directories, ~600 bytes, different in every
//!    session so nothing is shared in the store) and a completed replayed run: a
//!    user message, an answer calling `read_file`, its result, a final answer.
//!    Resident memory is sampled every 1,000 sessions; every sample is taken after
//!    `malloc_trim(0)` (glibc), so freed heap is returned first.
//! 3. **Per idle session** = (resident after − `baseline`) / sessions; also the
//!    slope of the samples (least squares), the worst sample's delta per session
//!    (the target is checked against the worse of the two), and the store file's
//!    size per session. The figure includes redb's page cache, which the store
//!    fills as it writes and reads (bounded only by redb's default, 1 GiB): part
//!    of what the process holds, but not per-session state. To show it apart, the
//!    agent and store are then dropped (`store_closed`, what the open store held)
//!    and reopened on the same file (`reopened`: what 10,000 idle sessions cost a
//!    restarted server).
//! 4. The resumed-cold path: 10 sessions picked at random are `resume`d before the
//!    reopen, 10 more after it, and those same 10 once again. A finished session's
//!    resume is a no-op (it reads the record and log back, restores the
//!    filesystem's root directory object, the rest being lazy, sees no open run
//!    and returns; no model call, no event, both checked). Each is timed, and resident memory after each batch shows
//!    that waking a session leaves behind only the store's cache of its pages,
//!    which a second wake of the same sessions reuses.
//!
//! Setup uses a durable store (the default, fsync per commit), as a server would;
//! memory, not commit speed, is measured, and setup time is reported.
//!
//! Criterion times waking an idle session (`resume`, after the reopen) against
//! its baseline, reading the session's record alone (`store.session`).
//!
//! Target: ≤ 16 KiB per idle session.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use benches::{Latency, SplitMix, load_average, results_dir, write_results};
use criterion::Criterion;
use harness::agent::{Agent, AgentConfig, Clock, Quiet, SessionOptions};
use harness::conversation::{Block, ModelAnswer, ModelRequest, StopReason, StreamEvent, Usage};
use harness::event::EndReason;
use harness::provider::{Cassette, Interaction, Provider, ProviderError, ReplayProvider};
use harness::store::{SessionId, Status, Store};
use runtime::net::Network;
use runtime::vfs::{OpenOptions, Quota, Snapshot, Timestamp, Vfs};
use runtime::{DEFAULT_MOUNT, Limits, Runtime, RuntimeConfig, Toolbox, Workspace};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Sessions created.
const SESSIONS: usize = 10_000;
/// Resident memory is sampled this often.
const SAMPLE_EVERY: usize = 1_000;
/// Sessions resumed at random, before and after the reopen.
const RESUMES: usize = 10;
const KIB: f64 = 1024.0;

/// Resident memory, from `/proc/self/status`, in bytes.
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct Rss {
    /// `VmRSS`: everything resident.
    total: u64,
    /// `RssAnon`: heap, stacks and other anonymous pages.
    anon: u64,
    /// `RssFile`: resident file-backed pages (code, mapped files).
    file: u64,
}

/// Returns freed heap to the system (glibc), then reads resident memory.
fn rss() -> Rss {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Rss { total: field("VmRSS:"), anon: field("RssAnon:"), file: field("RssFile:") }
}

/// Replay, counting the model calls.
struct Counting {
    inner: ReplayProvider,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Provider for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.complete(request, on_event).await
    }
}

/// Every session's run: read the README, then answer.
fn cassette() -> Cassette {
    let usage = Usage { input_tokens: 900, output_tokens: 30, ..Usage::default() };
    let answers = [
        ModelAnswer {
            content: vec![
                Block::Text { text: "Let me read the README.".into() },
                Block::ToolUse {
                    id: "toolu_0001".into(),
                    name: "read_file".into(),
                    input: json!({"path": "README.md"}),
                },
            ],
            stop_reason: StopReason::ToolUse,
            usage,
            model: "replayed".into(),
        },
        ModelAnswer {
            content: vec![Block::Text { text: "The README describes a small Rust project.".into() }],
            stop_reason: StopReason::EndTurn,
            usage,
            model: "replayed".into(),
        },
    ];
    let mut cassette = Cassette::new("idle_sessions: one read_file call, then an answer");
    cassette.interactions =
        answers.into_iter().map(|answer| Interaction { request: None, expect_last_user: None, answer }).collect();
    cassette
}

/// Session `n`'s workspace, as a snapshot to create the session from.
fn workspace(n: usize) -> Snapshot {
    files(n).snapshot().expect("snapshot")
}

/// Session `n`'s files: three small files, unlike any other session's.
fn files(n: usize) -> Vfs {
    let mut vfs = Vfs::new(Quota::default());
    let root = vfs.root();
    vfs.create_dir_at(root, "src").expect("mkdir");
    vfs.create_dir_at(root, "notes").expect("mkdir");
    let files = [
        ("README.md", format!("# Project {n}\n\nA small Rust project, number {n}. Build it with `cargo build`.\n")),
        (
            "src/main.rs",
            format!(
                "//! Project {n}.\n\nfn main() {{\n    let answer = {n};\n    println!(\"project {{answer}}\");\n}}\n"
            ),
        ),
        ("notes/todo.txt", format!("- [ ] release {n}.0\n- [ ] write the changelog\n")),
    ];
    for (path, text) in files {
        let file = vfs.open_at(root, path, OpenOptions { create: true, ..Default::default() }).expect("create");
        vfs.write(file, 0, text.as_bytes()).expect("write");
    }
    vfs
}

fn open_agent(runtime: &Runtime, toolbox: &Arc<Toolbox>, path: &std::path::Path) -> (Agent, Arc<Counting>) {
    let store = Store::open(path).expect("open store");
    let provider =
        Arc::new(Counting { inner: ReplayProvider::new(cassette(), "idle_sessions.json"), calls: AtomicUsize::new(0) });
    let config =
        AgentConfig { clock: Clock::Fixed(Timestamp { secs: 1_700_000_000, nanos: 0 }), ..AgentConfig::default() };
    let agent = Agent::new(
        runtime.clone(),
        toolbox.clone(),
        Limits::default(),
        Arc::new(Network::default()),
        store,
        provider.clone(),
        "replayed".into(),
        config,
    );
    (agent, provider)
}

/// `count` sessions picked at random.
fn pick(ids: &[SessionId], rng: &mut SplitMix, count: usize) -> Vec<SessionId> {
    (0..count).map(|_| ids[rng.below(ids.len() as u64) as usize]).collect()
}

/// Resumes `picked`, checking each resume is a no-op; returns the times.
fn resume_all(rt: &tokio::runtime::Runtime, agent: &Agent, provider: &Counting, picked: &[SessionId]) -> Vec<Duration> {
    let calls = provider.calls.load(Ordering::Relaxed);
    let heads: Vec<u64> = picked.iter().map(|id| agent.store().session(id).expect("session").head.last_seq).collect();
    let times = picked
        .iter()
        .map(|id| {
            let start = Instant::now();
            let outcome = rt.block_on(agent.resume(id, &Quiet, &CancellationToken::new())).expect("resume");
            let time = start.elapsed();
            assert_eq!(outcome.reason, EndReason::EndTurn);
            time
        })
        .collect();
    assert_eq!(provider.calls.load(Ordering::Relaxed), calls, "a finished session's resume asks no model");
    for (id, head) in picked.iter().zip(heads) {
        let session = agent.store().session(id).expect("session");
        assert_eq!((session.head.last_seq, session.status), (head, Status::Finished), "resume committed nothing");
    }
    times
}

/// Least-squares slope of `(sessions, bytes)` points, in bytes per session.
fn slope(points: &[(usize, u64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) =
        (points.iter().map(|p| p.0 as f64).sum::<f64>() / n, points.iter().map(|p| p.1 as f64).sum::<f64>() / n);
    let cov: f64 = points.iter().map(|p| (p.0 as f64 - mx) * (p.1 as f64 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 as f64 - mx).powi(2)).sum();
    cov / var
}

fn kib_per_session(after: u64, before: u64) -> f64 {
    (after as f64 - before as f64) / SESSIONS as f64 / KIB
}

fn main() {
    let load_before = load_average();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sessions.redb");
    let cache_dir = results_dir().with_file_name("bench-tool-cache");
    let runtime =
        Runtime::new(RuntimeConfig { max_instances: 16, cache_dir: Some(cache_dir), ..RuntimeConfig::default() })
            .expect("runtime");
    let tools = rt.block_on(harness::toolset::load(&runtime, None));
    assert!(tools.rejected.is_empty(), "{:?}", tools.rejected);
    let toolbox = Arc::new(tools.toolbox);
    let (agent, provider) = open_agent(&runtime, &toolbox, &path);
    let baseline_cold = rss();

    // One direct call, outside the store, so one-time costs aren't charged to sessions.
    let warm = runtime::Session::new(&runtime, toolbox.clone(), Limits::default())
        .with_workspace(Workspace::new(files(0), DEFAULT_MOUNT));
    let output = rt.block_on(warm.call("read_file", r#"{"path":"README.md"}"#)).expect("warm-up call");
    assert!(!output.is_error && output.content.contains("Project 0"), "{}", output.content);
    drop(warm);
    let baseline = rss();

    let mut ids = Vec::with_capacity(SESSIONS);
    let mut samples = vec![(0usize, baseline)];
    let started = Instant::now();
    for n in 0..SESSIONS {
        let snapshot = workspace(n);
        let id = agent
            .create_session(
                &format!("user{:03}", n % 100),
                SessionOptions::titled(format!("session {n}")),
                Some(&snapshot),
            )
            .expect("create session");
        let outcome =
            rt.block_on(agent.send(&id, "What does the README say?", &Quiet, &CancellationToken::new())).expect("run");
        assert_eq!(outcome.reason, EndReason::EndTurn, "{outcome:?}");
        ids.push(id);
        if (n + 1) % SAMPLE_EVERY == 0 {
            let now = rss();
            let (secs, mib) = (started.elapsed().as_secs_f64(), now.total as f64 / KIB / KIB);
            println!("{} sessions in {secs:.1} s, resident {mib:.1} MiB", n + 1);
            samples.push((n + 1, now));
        }
    }
    let setup = started.elapsed();
    assert_eq!(provider.calls.load(Ordering::Relaxed), 2 * SESSIONS);
    let after = rss();
    let store_bytes = std::fs::metadata(&path).expect("store file").len();

    let mut rng = SplitMix(0x1d1e);
    let warm_picked = pick(&ids, &mut rng, RESUMES);
    let warm_resumes = resume_all(&rt, &agent, &provider, &warm_picked);
    let after_resumes = rss();

    drop(agent);
    let closed = rss();
    let (agent, provider) = open_agent(&runtime, &toolbox, &path);
    let reopened = rss();
    let cold_picked = pick(&ids, &mut rng, RESUMES);
    let cold_resumes = resume_all(&rt, &agent, &provider, &cold_picked);
    let after_cold_resumes = rss();
    // The same ten again: what the first wake left behind is redb's cache of their
    // pages, which a second wake reuses instead of growing.
    let again = resume_all(&rt, &agent, &provider, &cold_picked);
    let after_repeat = rss();

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    {
        let mut group = criterion.benchmark_group("idle_session_wake");
        let mut pick = SplitMix(7);
        group.bench_function("resume", |b| {
            b.iter(|| {
                let id = &ids[pick.below(SESSIONS as u64) as usize];
                rt.block_on(agent.resume(id, &Quiet, &CancellationToken::new())).expect("resume")
            })
        });
        group.bench_function("store_session_read", |b| {
            b.iter(|| agent.store().session(&ids[pick.below(SESSIONS as u64) as usize]).expect("session"))
        });
        group.finish();
    }
    criterion.final_summary();

    let curve: Vec<(usize, u64)> = samples.iter().map(|(n, rss)| (*n, rss.total)).collect();
    let anon_curve: Vec<(usize, u64)> = samples.iter().map(|(n, rss)| (*n, rss.anon)).collect();
    let per_session_kib = kib_per_session(after.total, baseline.total);
    let peak_kib = samples[1..]
        .iter()
        .map(|(n, rss)| (rss.total as f64 - baseline.total as f64) / *n as f64 / KIB)
        .fold(0.0, f64::max);
    let show = |ids: &[SessionId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>();
    write_results(
        "idle_sessions",
        &json!({
            "sessions": SESSIONS,
            "session": "own 3-file workspace (~600 bytes, 2 directories), one replayed run: user message, \
                        answer calling read_file, result, final answer (5 durable commits with the creation)",
            "setup": {
                "durable_store": true,
                "seconds": setup.as_secs_f64(),
                "per_session_ms": setup.as_secs_f64() * 1e3 / SESSIONS as f64,
            },
            "rss_bytes": {
                "baseline_cold": baseline_cold,
                "baseline": baseline,
                "after_sessions": after,
                "after_10_warm_resumes": after_resumes,
                "store_closed": closed,
                "reopened": reopened,
                "after_10_cold_resumes": after_cold_resumes,
                "after_same_10_again": after_repeat,
                "every_1000_sessions":
                    samples.iter().map(|(n, rss)| json!({"sessions": n, "rss": rss})).collect::<Vec<_>>(),
            },
            "per_idle_session_kib": {
                "rss_delta_over_sessions": per_session_kib,
                "rss_slope": slope(&curve) / KIB,
                "rss_anon_delta_over_sessions": kib_per_session(after.anon, baseline.anon),
                "rss_anon_slope": slope(&anon_curve) / KIB,
                "rss_delta_peak_of_samples": peak_kib,
                "rss_delta_from_cold_baseline": kib_per_session(after.total, baseline_cold.total),
                "held_by_the_open_store": kib_per_session(after.total, closed.total),
                "after_reopen_rss_delta": kib_per_session(reopened.total, baseline.total),
                "store_file": store_bytes as f64 / SESSIONS as f64 / KIB,
            },
            "store_file_bytes": store_bytes,
            "resume_finished_session": {
                "note": "no-op resumes: no model call, nothing committed (checked)",
                "warm_cache_before_reopen": Latency::from_samples(warm_resumes),
                "cold_after_reopen": Latency::from_samples(cold_resumes),
                "rss_change_kib_after_warm_resumes": (after_resumes.total as f64 - after.total as f64) / KIB,
                "rss_change_kib_after_cold_resumes": (after_cold_resumes.total as f64 - reopened.total as f64) / KIB,
                "same_10_again": Latency::from_samples(again),
                "rss_change_kib_after_same_10_again":
                    (after_repeat.total as f64 - after_cold_resumes.total as f64) / KIB,
                "sessions_warm": show(&warm_picked),
                "sessions_cold": show(&cold_picked),
            },
            "load_average_1_5_15_min": { "before": load_before, "after": load_average() },
            "targets": {
                "per_idle_session_kib_max": 16.0,
                "checked_against": "the worse of rss_delta_over_sessions and rss_delta_peak_of_samples",
                "met": per_session_kib.max(peak_kib) <= 16.0,
            },
        }),
    );
}
