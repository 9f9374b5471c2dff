//! `checkpoint`: the cost of a durable [`Store::commit_step`] after a 1 KiB
//! filesystem change, as the harness commits a tool result: the snapshot's new
//! objects and root, two events (a model answer calling a tool and the tool's
//! result), a checkpoint record and the session head, in one redb write transaction
//! with `Durability::Immediate`.
//!
//! Cases, each a real redb file in a temporary directory on the same disk:
//!
//! - `turn_10`: database A holds a 1 MiB workspace (4 directories × 4 files ×
//!   64 KiB). Sessions are forked from it, committed to step 9 untimed, then timed at
//!   steps 10 to 19; then a new fork takes over.
//! - `turn_1000`: in the same database, one session committed to step 999 untimed,
//!   then timed from step 1,000 on (the steps reached are reported).
//! - `workspace_100mib`: database B holds a 100 MiB workspace (100 directories ×
//!   100 files × 10,486 bytes); timed like `turn_10`.
//! - `fsync_4kib` (baseline): writing 4 KiB to a file in the same directory and
//!   `fdatasync`ing it, the floor under any durable commit on this disk (redb's
//!   default one-phase commit ends with one such sync).
//!
//! Retention runs untimed, as in a harness that keeps the last N checkpoints: a
//! forked session is deleted once timed and the garbage collected every tenth time;
//! the `turn_1000` session is pruned to its last 100 checkpoints every 100 steps.
//! Without it every commit would also grow the file, which costs more per sync.
//!
//! One iteration changes 1 KiB at a pseudo-random offset of a pseudo-random file
//! and snapshots (untimed), then commits (timed). Bytes written per commit are what
//! the process handed to `write`/`pwrite` during the commit (`wchar` of
//! `/proc/self/io`); the file's growth over the timed commits is reported too.
//!
//! Targets: commit median ≤ 1 ms; `turn_1000` within 1.2× of `turn_10`;
//! `workspace_100mib` within 1.5× of `turn_10` (the 1 MiB workspace), medians.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use benches::{Latency, SplitMix as Rng, write_results};
use criterion::Criterion;
use harness::conversation::{Block, ModelAnswer, StopReason, Usage};
use harness::event::Event;
use harness::store::{SessionId, Step, Store};
use runtime::vfs::{OpenOptions, Quota, Vfs};
use serde_json::json;

const KIB: usize = 1 << 10;
/// Bytes changed per iteration.
const CHANGE: usize = KIB;
/// Forked sessions of the `turn_10` cases are timed at steps `YOUNG_FROM..YOUNG_UNTIL`.
const YOUNG_FROM: u64 = 10;
const YOUNG_UNTIL: u64 = 20;
/// The `turn_1000` session is timed from this step on.
const OLD_FROM: u64 = 1000;
/// The long-lived session keeps this many checkpoints, pruned (untimed) this often.
const PRUNE_EVERY: u64 = 100;
/// Interleaved sampling: rounds × iterations per case and round.
const ROUNDS: usize = 10;
const PER_ROUND: usize = 60;

/// Bytes this process has passed to write system calls so far.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|line| line.strip_prefix("wchar: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// One timed commit.
struct Sample {
    time: Duration,
    bytes: u64,
}

/// A workspace stored in a database, and the session being committed to.
struct Case {
    name: &'static str,
    description: &'static str,
    store: Store,
    /// The session every young session is forked from (its step 0 is the workspace).
    base: SessionId,
    /// Paths of the workspace's files, all `file_size` bytes.
    files: Vec<String>,
    file_size: u64,
    /// Fork a new session instead of committing this step (`None`: never).
    refork_at: Option<u64>,
    /// Steps the current session is brought to, untimed, before it is timed.
    warm_to: u64,
    current: Option<(SessionId, Vfs, u64)>,
    /// Sessions finished and deleted so far.
    retired: u64,
    rng: Rng,
    data: Vec<u8>,
    steps: (u64, u64),
    workspace_bytes: u64,
}

impl Case {
    /// Builds the workspace in memory, stores it as a session's step 0 (untimed).
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &'static str,
        description: &'static str,
        path: &Path,
        dirs: usize,
        per_dir: usize,
        file_size: usize,
        refork_at: Option<u64>,
        warm_to: u64,
    ) -> Case {
        let store = Store::open(path).expect("open store");
        let mut vfs = Vfs::new(Quota::default());
        let (mut rng, mut buf) = (Rng(name.len() as u64), vec![0u8; file_size]);
        let root = vfs.root();
        let mut files = Vec::new();
        for d in 0..dirs {
            vfs.create_dir_at(root, &format!("dir{d:03}")).expect("mkdir");
            for f in 0..per_dir {
                let path = format!("dir{d:03}/file{f:03}.bin");
                let options = OpenOptions { create: true, ..Default::default() };
                let file = vfs.open_at(root, &path, options).expect("create file");
                rng.fill(&mut buf);
                vfs.write(file, 0, &buf).expect("fill file");
                files.push(path);
            }
        }
        let workspace_bytes = vfs.usage().bytes;
        let snapshot = vfs.snapshot().expect("initial snapshot");
        let base = store.create_session(session_meta(), Some(&snapshot)).expect("create the base session").id;
        Case {
            name,
            description,
            store,
            base,
            files,
            file_size: file_size as u64,
            refork_at,
            warm_to,
            current: None,
            retired: 0,
            rng,
            data: vec![0; CHANGE],
            steps: (u64::MAX, 0),
            workspace_bytes,
        }
    }

    /// The step the next commit makes and the session's filesystem, forking a new
    /// session from the base (and warming it untimed) when needed.
    fn session(&mut self) -> &mut (SessionId, Vfs, u64) {
        let stale = match (&self.current, self.refork_at) {
            (None, _) => true,
            (Some((_, _, step)), Some(limit)) => *step + 1 >= limit,
            (Some(_), None) => false,
        };
        if stale {
            // Retention, untimed: a finished session is deleted and every tenth time the
            // garbage is collected, so the file stays the size of what is live, as in a
            // harness that keeps the last N checkpoints.
            if let Some((done, _, _)) = self.current.take() {
                self.store.delete_session(&done).expect("delete a finished session");
                self.retired += 1;
                if self.retired.is_multiple_of(10) {
                    self.store.collect_garbage().expect("collect garbage");
                }
            }
            let fork = self.store.fork(&self.base, 0, "bench").expect("fork the base session");
            let vfs = self.store.restore_root(fork.head.root, Quota::default()).expect("restore");
            self.current = Some((fork.id, vfs, 0));
            while self.current.as_ref().expect("set above").2 < self.warm_to - 1 {
                self.commit();
            }
        }
        self.current.as_mut().expect("set above")
    }

    /// Changes 1 KiB and snapshots (untimed), then commits (timed).
    fn commit(&mut self) -> Sample {
        self.rng.fill(&mut self.data);
        let path = &self.files[self.rng.below(self.files.len() as u64) as usize];
        let offset = self.rng.below(self.file_size - CHANGE as u64 + 1);
        let (id, vfs, step) = self.current.as_mut().expect("a current session");
        let root = vfs.root();
        let file = vfs.lookup(root, path).expect("lookup");
        vfs.write(file, offset, &self.data).expect("write 1 KiB");
        let snapshot = vfs.snapshot().expect("snapshot");
        let step_events = Step { events: events(*step), snapshot: Some(snapshot), status: None };
        let before = written();
        let start = Instant::now();
        let checkpoint = self.store.commit_step(id, &step_events).expect("commit");
        let time = start.elapsed();
        let bytes = written() - before;
        *step = checkpoint.step;
        if self.refork_at.is_none() && checkpoint.step.is_multiple_of(PRUNE_EVERY) {
            self.store.prune(id, PRUNE_EVERY as usize).expect("prune");
        }
        Sample { time, bytes }
    }

    /// One timed commit of the case's current session.
    fn sample(&mut self) -> Sample {
        self.session();
        let sample = self.commit();
        let step = self.current.as_ref().expect("committed").2;
        self.steps = (self.steps.0.min(step), self.steps.1.max(step));
        sample
    }

    fn file_size(&self) -> u64 {
        std::fs::metadata(self.store.path()).map_or(0, |meta| meta.len())
    }
}

/// The two events of a tool step: the model's call and the tool's result.
fn events(step: u64) -> Vec<Event> {
    let call = format!("toolu_{step:06}");
    vec![
        Event::ModelAnswer(ModelAnswer {
            content: vec![
                Block::Text { text: "I'll update the file.".into() },
                Block::ToolUse {
                    id: call.clone(),
                    name: "write_file".into(),
                    input: json!({"path": "dir000/file000.bin", "offset": step, "content": "…1 KiB…"}),
                },
            ],
            stop_reason: StopReason::ToolUse,
            usage: Usage { input_tokens: 12_000, output_tokens: 150, ..Usage::default() },
            model: "claude-bench".into(),
        }),
        Event::ToolResult {
            call_id: call,
            name: "write_file".into(),
            content: "wrote 1024 bytes".into(),
            is_error: false,
        },
    ]
}

fn session_meta() -> harness::store::NewSession {
    harness::store::NewSession {
        owner: "bench".into(),
        provider: "anthropic".into(),
        model: "claude-bench".into(),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// The baseline: 4 KiB written in place and synced, in the databases' directory.
struct Fsync {
    file: File,
    data: Vec<u8>,
    path: PathBuf,
}

impl Fsync {
    fn new(path: PathBuf) -> Fsync {
        let file = File::options().create(true).truncate(true).read(true).write(true).open(&path).expect("probe file");
        let data = vec![0x5a; 4 * KIB];
        file.write_at(&data, 0).expect("write");
        file.sync_all().expect("sync");
        Fsync { file, data, path }
    }

    fn sample(&mut self) -> Sample {
        self.data[0] = self.data[0].wrapping_add(1);
        let before = written();
        let start = Instant::now();
        self.file.write_at(&self.data, 0).expect("write 4 KiB");
        self.file.sync_data().expect("fdatasync");
        Sample { time: start.elapsed(), bytes: written() - before }
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let built = Instant::now();
    let mut young = Case::new(
        "turn_10",
        "1 MiB workspace (16 files × 64 KiB in 4 dirs); forked sessions timed at steps 10–19",
        &dir.path().join("small.redb"),
        4,
        4,
        64 * KIB,
        Some(YOUNG_UNTIL),
        YOUNG_FROM,
    );
    // Shares database A with `turn_10`, so both see the same tree sizes.
    let mut old = Case {
        name: "turn_1000",
        description: "same database as turn_10; one session timed from step 1,000 on",
        current: None,
        retired: 0,
        refork_at: None,
        warm_to: OLD_FROM,
        rng: Rng(1000),
        steps: (u64::MAX, 0),
        data: vec![0; CHANGE],
        store: young.store.clone(),
        base: young.base,
        files: young.files.clone(),
        file_size: young.file_size,
        workspace_bytes: young.workspace_bytes,
    };
    old.session();
    let mut big = Case::new(
        "workspace_100mib",
        "100 MiB workspace (10,000 files × 10,486 bytes in 100 dirs); forked sessions timed at steps 10–19",
        &dir.path().join("big.redb"),
        100,
        100,
        10_486,
        Some(YOUNG_UNTIL),
        YOUNG_FROM,
    );
    let mut fsync = Fsync::new(dir.path().join("fsync.probe"));
    println!("built and stored the workspaces in {:.1} s", built.elapsed().as_secs_f64());

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    {
        let mut group = criterion.benchmark_group("checkpoint_commit_1kib_change");
        for case in [&mut young, &mut old, &mut big] {
            group.bench_function(case.name, |b| {
                b.iter_custom(|iterations| (0..iterations).map(|_| case.sample().time).sum())
            });
        }
        group.bench_function("fsync_4kib", |b| {
            b.iter_custom(|iterations| (0..iterations).map(|_| fsync.sample().time).sum())
        });
        group.finish();
    }
    criterion.final_summary();

    // Interleave the cases in rounds so load on the shared machine hits all alike.
    let growth_before = [young.file_size(), big.file_size()];
    let mut samples: [Vec<Sample>; 4] = Default::default();
    for _ in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            samples[0].push(young.sample());
        }
        for _ in 0..PER_ROUND {
            samples[1].push(old.sample());
        }
        for _ in 0..PER_ROUND {
            samples[2].push(big.sample());
        }
        for _ in 0..PER_ROUND {
            samples[3].push(fsync.sample());
        }
    }
    let growth = [young.file_size() as i64 - growth_before[0] as i64, big.file_size() as i64 - growth_before[1] as i64];

    let summary = |samples: &[Sample]| {
        let latency = Latency::from_samples(samples.iter().map(|s| s.time).collect());
        let mut bytes: Vec<u64> = samples.iter().map(|s| s.bytes).collect();
        bytes.sort_unstable();
        let mean = bytes.iter().sum::<u64>() as f64 / bytes.len() as f64;
        (latency, json!({ "median": bytes[bytes.len() / 2], "mean": mean, "max": bytes[bytes.len() - 1] }))
    };
    let mut report = serde_json::Map::new();
    let mut medians = Vec::new();
    for (case, samples) in [&young, &old, &big].into_iter().zip(&samples) {
        let (latency, bytes) = summary(samples);
        medians.push(latency.median_us);
        report.insert(
            case.name.into(),
            json!({
                "description": case.description,
                "workspace_bytes": case.workspace_bytes,
                "steps_timed": { "first": case.steps.0, "last": case.steps.1 },
                "commit": latency,
                "bytes_written_per_commit": bytes,
            }),
        );
    }
    let (fsync_latency, fsync_bytes) = summary(&samples[3]);
    report.insert(
        "fsync_4kib".into(),
        json!({
            "description": format!("baseline: pwrite 4 KiB + fdatasync of {}, same directory", fsync.path.display()),
            "latency": fsync_latency,
            "bytes_written_per_call": fsync_bytes,
        }),
    );
    let [turn_10, turn_1000, big_median] = medians[..] else { unreachable!("three cases") };
    let (turn_ratio, size_ratio) = (turn_1000 / turn_10, big_median / turn_10);
    let worst = turn_10.max(turn_1000).max(big_median);
    write_results(
        "checkpoint",
        &json!({
            "timing": "per iteration: 1 KiB change + snapshot untimed; one durable commit_step timed \
                       (objects, root, 2 events, checkpoint, head: one redb write transaction, Durability::Immediate)",
            "cases": report,
            "retention": "untimed: forked sessions deleted after their timed steps, garbage collected every 10th; \
                          turn_1000 pruned to its last 100 checkpoints every 100 steps",
            "timed_commits_file_growth_bytes": { "database_a": growth[0], "database_b": growth[1] },
            "ratios": {
                "turn_1000_over_turn_10_median": turn_ratio,
                "workspace_100mib_over_1mib_median": size_ratio,
                "commit_over_fsync_median": turn_10 / fsync_latency.median_us,
            },
            "targets": {
                "commit_median_us_max": 1000.0,
                "turn_ratio_max": 1.2,
                "workspace_ratio_max": 1.5,
                "met": worst <= 1000.0 && turn_ratio <= 1.2 && size_ratio <= 1.5,
            },
        }),
    );
}
