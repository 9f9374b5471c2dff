//! Crash injection: the real `harness` binary runs a scripted session and is
//! killed with SIGKILL at random moments, then restarted (and sometimes killed
//! again while resuming). Every session must finish with the same event log and
//! the same final filesystem root as an uninterrupted run, and the database must
//! open cleanly after every kill.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::event::Event;
use harness::store::{Status, Store};
use runtime::vfs::ObjectId;

/// Kills per test run; each is a full scripted session.
const KILLS: usize = 16;
/// The fixed clock every process runs under, so files are stamped alike.
const CLOCK: &str = "1700000000";

struct Setup {
    cache: tempfile::TempDir,
    cassette: PathBuf,
    workspace: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf();
        Setup {
            cache: tempfile::tempdir().expect("cache dir"),
            cassette: repo.join("fixtures/cassettes/demo.json"),
            workspace: repo.join("fixtures/demo-workspace"),
        }
    }

    fn command(&self, db: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command
            .arg("--cache-dir")
            .arg(self.cache.path())
            .arg("--db")
            .arg(db)
            .env("HARNESS_FIXED_CLOCK", CLOCK)
            .env_remove("HARNESS_TOOLS_DIR")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, db: &Path) -> Child {
        let mut command = self.command(db);
        command.arg("run").arg("--replay").arg(&self.cassette).arg("--workspace").arg(&self.workspace);
        command.arg("Add a CONTRIBUTING.md summarizing how to build and test this project");
        command.spawn().expect("spawn harness run")
    }

    fn resume(&self, db: &Path) -> Child {
        let mut command = self.command(db);
        command.args(["sessions", "resume", "--replay"]).arg(&self.cassette);
        command.spawn().expect("spawn harness sessions resume")
    }
}

/// Waits for `child` to exit successfully, showing its stderr if it didn't.
fn finish(child: Child, what: &str) {
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Kills `child` with SIGKILL once it has printed `lines` lines of progress (each
/// streamed tool call and result is a line) and `delay` more has passed, unless it
/// exits first. Counting lines spreads the kills over the run's steps, whatever
/// the machine's speed.
fn kill_after(mut child: Child, lines: u64, delay: Duration) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    for _ in 0..lines {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
    }
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
}

/// Lines a finished child printed.
fn lines_of(child: Child, what: &str) -> u64 {
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().count() as u64
}

/// The single session's events and final root, after checking the database opens.
fn outcome(db: &Path) -> Option<(Status, Vec<Event>, ObjectId)> {
    let store = Store::open(db).unwrap_or_else(|err| panic!("the database must open cleanly after a kill: {err}"));
    let sessions = store.list_sessions(None).expect("list sessions");
    assert!(sessions.len() <= 1, "one scripted session per database, found {}", sessions.len());
    let session = sessions.into_iter().next()?;
    let events = store.events(&session.id).expect("events").into_iter().map(|logged| logged.event).collect();
    Some((session.status, events, session.head.root))
}

/// A tiny deterministic generator, so a failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

#[test]
fn sigkill_at_random_points_never_changes_the_outcome() {
    let setup = Setup::new();
    let dir = tempfile::tempdir().unwrap();

    // A first run fills the compiled-component cache, so the timed reference run
    // (whose length sets the kill window) is as fast as the runs that get killed.
    finish(setup.run(&dir.path().join("warm-up.redb")), "the warm-up run");
    let reference_db = dir.path().join("reference.redb");
    let printed = lines_of(setup.run(&reference_db), "the reference run");
    let (status, reference_events, reference_root) = outcome(&reference_db).expect("the reference session");
    assert_eq!(status, Status::Finished);
    assert!(reference_events.iter().filter(|e| matches!(e, Event::ToolResult { .. })).count() >= 4);

    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_c0de);
    let mut rng = Rng(seed);
    let pick = |rng: &mut Rng| (rng.below(printed + 1), Duration::from_micros(rng.below(2000)));
    // How the first kill of each session left it: not created, mid-run, finished.
    let (mut before, mut during, mut after) = (0, 0, 0);
    for kill in 0..KILLS {
        let db = dir.path().join(format!("crash-{kill}.redb"));
        // Every fourth kill lands in process start: opening (or creating) the database.
        let (lines, delay) = if kill % 4 == 0 { (0, Duration::from_micros(rng.below(50_000))) } else { pick(&mut rng) };
        kill_after(setup.run(&db), lines, delay);
        match outcome(&db) {
            None => before += 1,
            Some((Status::Running, _, _)) => during += 1,
            Some(_) => after += 1,
        }
        // Restart until the session has finished, sometimes killing the restart too.
        for attempt in 0.. {
            match outcome(&db) {
                // Killed before the session was created: the run never started; start it again.
                None => finish(setup.run(&db), "a fresh run"),
                Some((Status::Finished, events, root)) => {
                    assert_eq!(events, reference_events, "kill {kill} (seed {seed:#x}): the event log differs");
                    assert_eq!(root, reference_root, "kill {kill} (seed {seed:#x}): the final filesystem differs");
                    break;
                }
                Some((Status::Running, _, _)) if attempt < 3 && rng.below(2) == 0 => {
                    let (lines, delay) = pick(&mut rng);
                    kill_after(setup.resume(&db), lines, delay);
                }
                Some((Status::Running, _, _)) => finish(setup.resume(&db), "resume"),
                Some((status, events, _)) => panic!("kill {kill}: unexpected status {status:?} with {events:?}"),
            }
        }
    }
    eprintln!(
        "{KILLS} kills (seed {seed:#x}): {before} before the session existed, {during} mid-run, {after} after it ended"
    );
    assert!(during >= KILLS / 4, "too few kills landed mid-run ({during}) for the test to mean much");
}
