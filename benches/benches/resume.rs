//! `resume`: from process start to the first tool result of a session that a
//! killed process left mid-run, with a 10,000-file workspace.
//!
//! A template database holds one session whose last committed step is a model
//! answer asking for `read_file` on one file of a workspace of 10,000 files
//! (100 directories × 100 files of 1 KiB, all different). Each iteration copies the template
//! (untimed), starts the real `harness sessions resume` process and times until
//! it prints the tool's result line (`← ok`): process start, opening the
//! database, loading the built-in tools from the compiled cache, reading the log,
//! restoring the filesystem (lazily: only the path to the file is loaded), the
//! instance, the call and its commit. Baselines in the same run: the same
//! process start for `harness --version` (the floor), and the same resume with a
//! 10-file workspace (whether workspace size matters; it shouldn't).
//!
//! The binary is built first with `cargo build --release -p harness`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use benches::{Latency, write_results};
use harness::conversation::{Block, ModelAnswer, StopReason, Usage};
use harness::event::Event;
use harness::provider::{Cassette, Interaction};
use harness::store::{NewSession, Status, Step, Store};
use runtime::vfs::{OpenOptions, Quota, Vfs};
use serde_json::json;

const ROUNDS: usize = 15;

fn answer(content: Vec<Block>, stop_reason: StopReason) -> ModelAnswer {
    ModelAnswer { content, stop_reason, usage: Usage::default(), model: "replay".into() }
}

/// A database with one interrupted session over a workspace of `dirs` × `files` files.
fn template(dir: &Path, name: &str, dirs: usize, files: usize) -> PathBuf {
    let mut vfs = Vfs::new(Quota::default());
    let root = vfs.root();
    let mut content = vec![b'x'; 1024];
    for d in 0..dirs {
        let dir = vfs.create_dir_at(root, &format!("dir{d:03}")).expect("mkdir");
        for f in 0..files {
            // Distinct contents, so the store holds 10,000 files' worth, not one shared chunk.
            content[..16].copy_from_slice(format!("{d:08}{f:08}").as_bytes());
            let file = vfs.open_at(dir, &format!("file{f:03}.txt"), OpenOptions { create: true, ..Default::default() });
            vfs.write(file.expect("create"), 0, &content).expect("write");
        }
    }
    let snapshot = vfs.snapshot().expect("snapshot");
    let path = dir.join(name);
    let store = Store::open(&path).expect("store");
    let new =
        NewSession { owner: "bench".into(), provider: "replay".into(), model: "replay".into(), ..Default::default() };
    let first = Step {
        events: vec![Event::UserMessage { text: "read it".into() }],
        snapshot: None,
        status: Some(Status::Running),
    };
    let session = store.create_session_with(new, Some(&snapshot), Some(&first)).expect("session");
    let read =
        Block::ToolUse { id: "r".into(), name: "read_file".into(), input: json!({"path": "dir000/file000.txt"}) };
    let step = Step { events: vec![Event::ModelAnswer(answer(vec![read], StopReason::ToolUse))], ..Step::default() };
    store.commit_step(&session.id, &step).expect("answer");
    path
}

/// The `harness` binary, built in release mode beside this bench.
fn binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo).args(["build", "--release", "-q", "-p", "harness", "--bin", "harness"]).status();
    assert!(status.is_ok_and(|s| s.success()), "cargo build --release -p harness failed");
    let target = benches::results_dir().parent().expect("target dir").to_path_buf();
    target.join("release").join("harness")
}

struct Env {
    binary: PathBuf,
    cache: tempfile::TempDir,
    work: tempfile::TempDir,
    cassette: PathBuf,
}

impl Env {
    /// Copies `template`, resumes it and returns the time to the first tool result.
    fn resume(&self, template: &Path) -> Duration {
        let db = self.work.path().join("work.redb");
        std::fs::copy(template, &db).expect("copy template");
        // Flushed untimed: otherwise the copy's dirty pages are written by the
        // resumed process's first fsync and counted as its time.
        std::fs::File::open(&db).and_then(|file| file.sync_all()).expect("sync the copy");
        let started = Instant::now();
        let mut child = Command::new(&self.binary)
            .arg("--db")
            .arg(&db)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(["sessions", "resume", "--replay"])
            .arg(&self.cassette)
            .env_remove("HARNESS_TOOLS_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn harness");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let took = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("← ok") => break started.elapsed(),
                Some(Ok(_)) => continue,
                _ => panic!("harness exited before the tool result"),
            }
        };
        for _ in lines {}
        assert!(child.wait().expect("wait").success(), "resume failed");
        took
    }

    fn version(&self) -> Duration {
        let started = Instant::now();
        let status = Command::new(&self.binary).arg("--version").stdout(Stdio::null()).status().expect("spawn");
        assert!(status.success());
        started.elapsed()
    }
}

fn main() {
    let binary = binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let built = Instant::now();
    let large = template(dir.path(), "large.redb", 100, 100);
    let small = template(dir.path(), "small.redb", 1, 10);
    println!("built the templates in {:.1} s", built.elapsed().as_secs_f64());
    let mut cassette = Cassette::new("resume benchmark: the answer asking for read_file, then the end");
    let read =
        Block::ToolUse { id: "r".into(), name: "read_file".into(), input: json!({"path": "dir000/file000.txt"}) };
    for answer in [
        answer(vec![read], StopReason::ToolUse),
        answer(vec![Block::Text { text: "done".into() }], StopReason::EndTurn),
    ] {
        cassette.interactions.push(Interaction { request: None, expect_last_user: None, answer });
    }
    let cassette_path = dir.path().join("cassette.json");
    std::fs::write(&cassette_path, cassette.to_json().expect("cassette json")).expect("write cassette");
    let env = Env {
        binary,
        cache: tempfile::tempdir().expect("cache"),
        work: tempfile::tempdir().expect("work"),
        cassette: cassette_path,
    };

    // Warm-up: fills the compiled-component cache, as a deployed harness has it.
    env.resume(&small);
    let (mut floor, mut ten, mut ten_thousand) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        floor.push(env.version());
        ten.push(env.resume(&small));
        ten_thousand.push(env.resume(&large));
    }
    let (floor, ten, ten_thousand) =
        (Latency::from_samples(floor), Latency::from_samples(ten), Latency::from_samples(ten_thousand));
    write_results(
        "resume",
        &json!({
            "description": "process start to the first tool result of an interrupted session (harness sessions resume)",
            "workspace_10000_files": ten_thousand,
            "workspace_10_files": ten,
            "process_start_floor": floor,
            "ratio_10000_vs_10_files": ten_thousand.median_us / ten.median_us,
            "above_process_start_ms": (ten_thousand.median_us - floor.median_us) / 1e3,
            "template_bytes_10000_files": std::fs::metadata(&large).map(|m| m.len()).unwrap_or(0),
        }),
    );
}
