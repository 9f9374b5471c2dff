//! `server_load`: the HTTP API under sustained load, over loopback, in one process.
//!
//! The server is the real one (`harness::server::serve` over an [`Agent`] with
//! every built-in tool, a durable redb store in a temporary directory and a
//! replayed model) on its own two-thread tokio runtime; the clients run on a
//! second two-thread runtime in the same process and talk to it over
//! 127.0.0.1. The load logic is shared with the test suite
//! (`harness/tests/all/load.rs`, included below by path): each of
//! `SERVER_LOAD_SESSIONS` clients (default 200) runs one session after another
//! for `SERVER_LOAD_SECS` (default 60), so that many sessions are in flight the
//! whole time. A session is created, its event stream opened, a message posted,
//! its status read, its stream read through `run_ended`, its status read again,
//! and what the stream delivered compared with the store's log. The script is 5
//! model answers that each write a file and read it back, then an end: 10 tool
//! calls, 18 events and 18 durable commits (creation included) per session.
//!
//! Reported: p50/p99 latency of `POST …/messages` (which answers once the message
//! is committed) and `GET /v1/sessions/{id}`, of session creation and of a whole
//! run; tool calls and sessions per second within the window (at full
//! concurrency; sessions still running when it closes finish afterwards and
//! count in the totals only); errors, lost, duplicated and differing events; and
//! the process's peak resident memory (`VmHWM`, server and clients together).
//!
//! What bounds throughput: every commit is durable (an fsync) and redb takes one
//! write transaction at a time, so commits are serialized, and the server, the
//! tools and the clients share two cores. Sampled before the load: the disk's
//! `pwrite` + `fdatasync` latency, and the store's own commit latency (a result
//! event committed alone, on a warmed-up store in the same directory);
//! `commit_bound_sessions_per_s` is what that commit's mean alone would allow.
//! The process's CPU time over the load (`cores_busy`, out of 2) shows how close
//! to the CPU bound it ran.
//!
//! `cargo bench -p benches --bench server_load` runs it at full size and writes
//! `target/bench-results/server_load.json`. Run without `--bench` (as
//! `cargo test --benches` does) it runs a 20-session, 2-second smoke and writes
//! nothing. Either way it exits non-zero if any error or lost event was seen.

#[path = "../../harness/tests/all/load.rs"]
mod load;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{Latency, load_average, results_dir, write_results};
use harness::agent::{Agent, AgentConfig};
use harness::event::Event;
use harness::provider::ReplayProvider;
use harness::server::{ServerConfig, ServerState};
use harness::store::{NewSession, Step, Store};
use runtime::net::Network;
use runtime::{Limits, Runtime, RuntimeConfig};
use serde_json::json;

/// Baseline samples (fsync, commit) taken before the load.
const BASELINE_SAMPLES: usize = 300;
/// Untimed commits before the commit baseline is sampled.
const COMMIT_WARM_UP: usize = 2000;
/// Tokio worker threads of the server, and of the clients.
const SERVER_THREADS: usize = 2;
const CLIENT_THREADS: usize = 2;

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, got {value:?}")),
        Err(_) => default,
    }
}

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `pwrite` 4 KiB + `fdatasync` in `dir`: the floor under a durable commit.
fn fsync_latency(dir: &std::path::Path) -> Latency {
    let file = File::create(dir.join("fsync-probe")).expect("probe file");
    let data = vec![0x5a; 4096];
    benches::sample(BASELINE_SAMPLES, || {
        file.write_at(&data, 0).expect("write");
        file.sync_data().expect("fdatasync");
    })
}

/// One result event committed alone to a durable store in `dir`, after enough
/// untimed commits that the file has stopped growing with every commit (a commit
/// that grows the file also waits for a journal commit of the filesystem, which
/// the server's own commits mostly don't).
fn commit_latency(dir: &std::path::Path) -> Latency {
    let store = Store::open(dir.join("commit-probe.redb")).expect("probe store");
    let session = NewSession {
        owner: "probe".into(),
        provider: "replay".into(),
        model: "scripted".into(),
        harness_version: "bench".into(),
        ..NewSession::default()
    };
    let id = store.create_session(session, None).expect("probe session").id;
    let step = Step {
        events: vec![Event::ToolResult {
            call_id: "r0".into(),
            name: "read_file".into(),
            content: "turn 0: the load test wrote this\n".into(),
            is_error: false,
        }],
        snapshot: None,
        status: None,
    };
    for _ in 0..COMMIT_WARM_UP {
        store.commit_step(&id, &step).expect("commit");
    }
    benches::sample(BASELINE_SAMPLES, || {
        store.commit_step(&id, &step).expect("commit");
    })
}

/// CPU time this process has used, user and system.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn latency_json(latency: &Latency) -> serde_json::Value {
    json!({
        "median_ms": latency.median_us / 1e3,
        "p99_ms": latency.p99_us / 1e3,
        "mean_ms": latency.mean_us / 1e3,
        "samples": latency.samples,
    })
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (default_secs, default_sessions) = if full { (60, 200) } else { (2, 20) };
    let secs = env_or("SERVER_LOAD_SECS", default_secs);
    let clients = env_or("SERVER_LOAD_SESSIONS", default_sessions) as usize;
    let load_before = load_average();
    let dir = tempfile::tempdir().expect("temp dir");
    let fsync = fsync_latency(dir.path());
    let commit = commit_latency(dir.path());

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_THREADS)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let store = Store::open(dir.path().join("harness.redb")).expect("store");
    let token = store.add_user("load").expect("user");
    let (url, stop, served) = server_rt.block_on(async {
        let cache_dir = results_dir().with_file_name("bench-tool-cache");
        // As `harness serve` configures it.
        let runtime =
            Runtime::new(RuntimeConfig { max_instances: 64, cache_dir: Some(cache_dir), ..RuntimeConfig::default() })
                .expect("runtime");
        let tools = harness::toolset::load(&runtime, None).await;
        assert!(tools.rejected.is_empty(), "{:?}", tools.rejected);
        let provider = Arc::new(ReplayProvider::new(load::cassette(), dir.path().join("cassette.json")));
        let agent = Agent::new(
            runtime,
            Arc::new(tools.toolbox),
            Limits::default(),
            Arc::new(Network::default()),
            store.clone(),
            provider,
            "scripted".into(),
            AgentConfig::default(),
        );
        let config = ServerConfig { quota: agent.quota(), ..ServerConfig::default() };
        let state = ServerState::new(Arc::new(agent), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(harness::server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        (url, stop, served)
    });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CLIENT_THREADS)
        .thread_name("client")
        .enable_all()
        .build()
        .expect("client runtime");
    println!("server_load: {clients} sessions in flight for {secs} s against {url}");
    let config = load::LoadConfig {
        url,
        token,
        clients,
        duration: Duration::from_secs(secs),
        patience: Duration::from_secs(120),
    };
    let started = Instant::now();
    let cpu_before = cpu_time();
    let report = client_rt.block_on(load::run(config, store.clone()));
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    drop(client_rt);

    let _ = stop.send(());
    server_rt.block_on(served).expect("serve task").expect("serve");
    let peak_rss_kib = status_kib("VmHWM");
    let rss_kib = status_kib("VmRSS");
    let db_bytes = std::fs::metadata(dir.path().join("harness.redb")).map(|meta| meta.len()).unwrap_or(0);

    let mut figures = report.to_json();
    let extra = json!({
        "description": "HTTP API over loopback: clients each run scripted sessions back to back (5 turns, each a \
                        write_file and a read_file; 10 tool calls, 18 events, 18 durable commits per session), \
                        every SSE stream checked against the store log",
        "server_threads": SERVER_THREADS,
        "client_threads": CLIENT_THREADS,
        "tool_calls_per_session": load::TOOL_CALLS,
        "events_per_session": load::EVENTS,
        "durable_commits_per_session": load::COMMITS,
        "wall_s": wall.as_secs_f64(),
        "process_cpu_s": cpu.as_secs_f64(),
        "cores_busy": cpu.as_secs_f64() / wall.as_secs_f64(),
        "peak_rss_kib": peak_rss_kib,
        "rss_after_kib": rss_kib,
        "database_bytes": db_bytes,
        "fsync_4kib": latency_json(&fsync),
        "store_commit_alone": latency_json(&commit),
        "commit_bound_sessions_per_s": 1e6 / commit.mean_us / load::COMMITS as f64,
        "commit_bound_tool_calls_per_s": 1e6 / commit.mean_us / load::COMMITS as f64 * load::TOOL_CALLS as f64,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    });
    if let (Some(figures), Some(extra)) = (figures.as_object_mut(), extra.as_object()) {
        figures.extend(extra.clone());
    }
    if full {
        write_results("server_load", &figures);
    } else {
        println!("server_load smoke (not written):\n{figures:#}");
    }
    println!(
        "p50/p99 POST message {:.1}/{:.1} ms, GET status {:.1}/{:.1} ms; {:.0} tool calls/s; {} sessions; \
         {} errors; {} lost events; peak RSS {:.1} MiB; commit alone {:.2} ms (fsync {:.2} ms)",
        figures["latency_ms"]["post_message"]["p50"].as_f64().unwrap_or(0.0),
        figures["latency_ms"]["post_message"]["p99"].as_f64().unwrap_or(0.0),
        figures["latency_ms"]["get_status"]["p50"].as_f64().unwrap_or(0.0),
        figures["latency_ms"]["get_status"]["p99"].as_f64().unwrap_or(0.0),
        report.tool_calls_per_s(),
        report.sessions_completed,
        report.errors,
        report.lost_events,
        peak_rss_kib as f64 / 1024.0,
        commit.median_us / 1e3,
        fsync.median_us / 1e3,
    );
    assert_eq!(report.errors, 0, "errors: {:?}", report.error_samples);
    assert_eq!(
        (report.lost_events, report.duplicate_events, report.mismatched_events),
        (0, 0, 0),
        "every stream must deliver the whole log once"
    );
}
