//! `vfs_snapshot`: the cost of [`Vfs::snapshot`] after a 1 KiB change, in three
//! workspaces built in memory before anything is timed:
//!
//! - `small_1mib`: 1 MiB, 16 files of 64 KiB in 4 directories; the change writes
//!   1 KiB at a pseudo-random offset of one file (a different file each time);
//! - `many_files_100mib`: 100 MiB in 10,000 files (100 directories × 100 files
//!   of 10,486 bytes); the same kind of change;
//! - `one_file_100mib`: a single 100 MiB file, appended by 1 KiB. Every 1,024
//!   appends the file is cut back to 100 MiB and snapshotted, untimed, so it never
//!   drifts far from 100 MiB.
//!
//! Each workspace is snapshotted once first, so the tree starts clean. One
//! iteration is one change and one snapshot, timed separately; `snapshot` is the
//! figure the targets apply to, `change` and `change_plus_snapshot` are reported
//! too. Snapshots are dropped after each iteration (untimed), as the harness does
//! once it has persisted the new objects.
//!
//! Targets: snapshot median ≤ 200 µs in every case; both 100 MiB cases within 2×
//! of the 1 MiB case (median ratio).

use std::time::{Duration, Instant};

use benches::{Latency, SplitMix as Rng, write_results};
use criterion::Criterion;
use runtime::vfs::{NodeId, OpenOptions, Quota, Snapshot, Vfs};
use serde_json::json;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Bytes changed per iteration.
const CHANGE: usize = KIB;
/// Size of the single-file case, and how far it may grow before it is cut back.
const BIG_FILE: u64 = 100 * MIB as u64;
const BIG_FILE_SLACK: u64 = MIB as u64;
/// Interleaved sampling: rounds × iterations per case and round.
const ROUNDS: usize = 20;
const PER_ROUND: usize = 1000;

/// How a case changes its workspace each iteration.
enum Change {
    /// Write 1 KiB at a random offset of one of these files (all `size` bytes).
    Overwrite { files: Vec<NodeId>, size: u64 },
    /// Append 1 KiB to this file.
    Append { file: NodeId },
}

/// One workspace and its change.
struct Case {
    name: &'static str,
    description: &'static str,
    vfs: Vfs,
    change: Change,
    rng: Rng,
    data: Vec<u8>,
    total_bytes: u64,
    files: u64,
}

/// Objects handed out by snapshots, summed over a case's timed iterations.
#[derive(Default)]
struct NewObjects {
    snapshots: u64,
    objects: u64,
    bytes: u64,
    min_objects: Option<usize>,
    max_objects: usize,
    min_bytes: Option<usize>,
    max_bytes: usize,
}

impl NewObjects {
    fn record(&mut self, snapshot: &Snapshot) {
        let objects = snapshot.new_objects.len();
        let bytes: usize = snapshot.new_objects.iter().map(|(_, bytes)| bytes.len()).sum();
        self.snapshots += 1;
        self.objects += objects as u64;
        self.bytes += bytes as u64;
        self.min_objects = Some(self.min_objects.map_or(objects, |m| m.min(objects)));
        self.max_objects = self.max_objects.max(objects);
        self.min_bytes = Some(self.min_bytes.map_or(bytes, |m| m.min(bytes)));
        self.max_bytes = self.max_bytes.max(bytes);
    }

    fn figures(&self) -> serde_json::Value {
        let n = self.snapshots.max(1) as f64;
        json!({
            "snapshots": self.snapshots,
            "objects_mean": self.objects as f64 / n,
            "objects_min": self.min_objects.unwrap_or(0),
            "objects_max": self.max_objects,
            "bytes_mean": self.bytes as f64 / n,
            "bytes_min": self.min_bytes.unwrap_or(0),
            "bytes_max": self.max_bytes,
        })
    }
}

/// Times of one iteration.
struct Timed {
    change: Duration,
    snapshot: Duration,
}

impl Case {
    fn new(name: &'static str, description: &'static str, mut vfs: Vfs, change: Change) -> Case {
        let usage = vfs.usage();
        // The initial snapshot: from here on the tree is clean and only changes are dirty.
        let initial = vfs.snapshot().expect("initial snapshot");
        drop(initial);
        Case {
            name,
            description,
            vfs,
            change,
            rng: Rng(0x5eed ^ name.len() as u64),
            data: vec![0; CHANGE],
            total_bytes: usage.bytes,
            files: usage.files,
        }
    }

    /// One change and one snapshot, timed apart. The snapshot is returned so the
    /// caller can count its objects and drop it outside the timed region.
    fn iteration(&mut self) -> (Timed, Snapshot) {
        self.rng.fill(&mut self.data);
        let (file, offset) = match &self.change {
            Change::Overwrite { files, size } => {
                let file = files[self.rng.below(files.len() as u64) as usize];
                (file, Some(self.rng.below(size - CHANGE as u64 + 1)))
            }
            Change::Append { file } => (*file, None),
        };
        let start = Instant::now();
        match offset {
            Some(offset) => {
                self.vfs.write(file, offset, &self.data).expect("write 1 KiB");
            }
            None => {
                self.vfs.append(file, &self.data).expect("append 1 KiB");
            }
        }
        let changed = Instant::now();
        let snapshot = self.vfs.snapshot().expect("snapshot");
        let done = Instant::now();
        (Timed { change: changed - start, snapshot: done - changed }, snapshot)
    }

    /// Untimed upkeep between iterations: cuts the appended file back to 100 MiB.
    fn upkeep(&mut self) {
        if let Change::Append { file } = self.change
            && self.vfs.stat(file).expect("stat").size >= BIG_FILE + BIG_FILE_SLACK
        {
            self.vfs.set_size(file, BIG_FILE).expect("cut back");
            drop(self.vfs.snapshot().expect("snapshot after cutting back"));
        }
    }
}

/// Creates `path` under the root with `size` pseudo-random bytes.
fn add_file(vfs: &mut Vfs, dir: NodeId, name: &str, size: usize, rng: &mut Rng, buf: &mut Vec<u8>) -> NodeId {
    let file = vfs.open_at(dir, name, OpenOptions { create: true, ..Default::default() }).expect("create file");
    buf.resize(size, 0);
    rng.fill(buf);
    vfs.write(file, 0, buf).expect("fill file");
    file
}

/// (a) 1 MiB: 4 directories × 4 files × 64 KiB.
fn small_workspace() -> Case {
    let mut vfs = Vfs::new(Quota::default());
    let (mut rng, mut buf) = (Rng(1), Vec::new());
    let root = vfs.root();
    let mut files = Vec::new();
    for d in 0..4 {
        let dir = vfs.create_dir_at(root, &format!("dir{d}")).expect("mkdir");
        for f in 0..4 {
            files.push(add_file(&mut vfs, dir, &format!("file{f}.bin"), 64 * KIB, &mut rng, &mut buf));
        }
    }
    let change = Change::Overwrite { files, size: 64 * KIB as u64 };
    Case::new("small_1mib", "16 files × 64 KiB in 4 dirs; write 1 KiB at a random offset", vfs, change)
}

/// (b) 100 MiB: 100 directories × 100 files × 10,486 bytes.
fn many_files_workspace() -> Case {
    const SIZE: usize = 10_486;
    let mut vfs = Vfs::new(Quota::default());
    let (mut rng, mut buf) = (Rng(2), Vec::new());
    let root = vfs.root();
    let mut files = Vec::new();
    for d in 0..100 {
        let dir = vfs.create_dir_at(root, &format!("dir{d:03}")).expect("mkdir");
        for f in 0..100 {
            files.push(add_file(&mut vfs, dir, &format!("file{f:03}.txt"), SIZE, &mut rng, &mut buf));
        }
    }
    let change = Change::Overwrite { files, size: SIZE as u64 };
    Case::new(
        "many_files_100mib",
        "10,000 files × 10,486 bytes in 100 dirs; write 1 KiB at a random offset",
        vfs,
        change,
    )
}

/// (c) 100 MiB in one file, appended to.
fn one_file_workspace() -> Case {
    let mut vfs = Vfs::new(Quota::default());
    let mut rng = Rng(3);
    let root = vfs.root();
    let file = vfs.open_at(root, "big.bin", OpenOptions { create: true, ..Default::default() }).expect("create");
    let mut piece = vec![0u8; 4 * MIB];
    for i in 0..(BIG_FILE as usize / piece.len()) {
        rng.fill(&mut piece);
        vfs.write(file, (i * piece.len()) as u64, &piece).expect("fill");
    }
    Case::new("one_file_100mib", "one 100 MiB file; append 1 KiB", vfs, Change::Append { file })
}

fn main() {
    let built = Instant::now();
    let mut cases = [small_workspace(), many_files_workspace(), one_file_workspace()];
    println!("built and snapshotted the workspaces in {:.1} s", built.elapsed().as_secs_f64());
    for case in &cases {
        println!("{}: {} bytes in {} files and dirs", case.name, case.total_bytes, case.files);
    }

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    {
        // Criterion times the snapshot alone: the change and the upkeep are excluded.
        let mut group = criterion.benchmark_group("vfs_snapshot_after_1kib_change");
        for case in &mut cases {
            group.bench_function(case.name, |b| {
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let (timed, snapshot) = case.iteration();
                        total += timed.snapshot;
                        drop(snapshot);
                        case.upkeep();
                    }
                    total
                })
            });
        }
        group.finish();
    }
    criterion.final_summary();

    // Interleave the cases in rounds so load on the shared machine hits all alike.
    let mut times: Vec<(Vec<Duration>, Vec<Duration>, Vec<Duration>)> =
        cases.iter().map(|_| Default::default()).collect();
    let mut objects: Vec<NewObjects> = cases.iter().map(|_| NewObjects::default()).collect();
    for _ in 0..ROUNDS {
        for (i, case) in cases.iter_mut().enumerate() {
            for _ in 0..PER_ROUND {
                let (timed, snapshot) = case.iteration();
                objects[i].record(&snapshot);
                drop(snapshot);
                case.upkeep();
                times[i].0.push(timed.snapshot);
                times[i].1.push(timed.change);
                times[i].2.push(timed.change + timed.snapshot);
            }
        }
    }

    let mut report = serde_json::Map::new();
    let mut snapshot_medians = Vec::new();
    for ((case, (snapshot, change, both)), objects) in cases.iter().zip(times).zip(&objects) {
        let snapshot = Latency::from_samples(snapshot);
        snapshot_medians.push(snapshot.median_us);
        report.insert(
            case.name.to_string(),
            json!({
                "workspace": case.description,
                "workspace_bytes": case.total_bytes,
                "workspace_nodes": case.files,
                "snapshot": snapshot,
                "change": Latency::from_samples(change),
                "change_plus_snapshot": Latency::from_samples(both),
                "new_objects_per_snapshot": objects.figures(),
            }),
        );
    }
    let [small, many, one] = snapshot_medians[..] else { unreachable!("three cases") };
    let worst = small.max(many).max(one);
    let (many_ratio, one_ratio) = (many / small, one / small);
    write_results(
        "vfs_snapshot",
        &json!({
            "timing": "per iteration: change (write or append 1 KiB) and snapshot timed separately; \
                       targets apply to `snapshot`; snapshots dropped untimed",
            "cases": report,
            "ratios": {
                "many_files_100mib_over_small_1mib_median": many_ratio,
                "one_file_100mib_over_small_1mib_median": one_ratio,
            },
            "targets": {
                "snapshot_median_us_max": 200.0,
                "ratio_100mib_over_1mib_max": 2.0,
                "met": worst <= 200.0 && many_ratio <= 2.0 && one_ratio <= 2.0,
            },
        }),
    );
}
