//! Differential filesystem conformance: one guest script, real directory vs VFS.
//!
//! The `fs_script` fixture runs a fixed list of filesystem operations under
//! `/workspace` and prints one `NN description: result` line per step. This half
//! runs it with plain wasmtime-wasi against a real (temporary) directory, the
//! reference behaviour; the VFS half runs the same script through the runtime and
//! compares transcripts.

use std::path::Path;
use std::sync::OnceLock;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

/// Where the guest sees its base directory.
pub const GUEST_BASE: &str = "/workspace";

/// Fewest step lines a full transcript has.
pub const MIN_STEPS: usize = 45;

/// Caps captured stdout (the transcript is a few KiB).
const STDOUT_CAP: usize = 1 << 20;

/// Store data for plain wasmtime-wasi.
struct RealDirState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for RealDirState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// The engine and pre-instantiated script, compiled once per test process.
fn real_dir_command() -> &'static (Engine, CommandPre<RealDirState>) {
    static PRE: OnceLock<(Engine, CommandPre<RealDirState>)> = OnceLock::new();
    PRE.get_or_init(|| {
        let engine = Engine::default();
        let path = fixtures::component("fs_script");
        let component =
            Component::from_file(&engine, &path).unwrap_or_else(|err| panic!("compiling {}: {err:?}", path.display()));
        let mut linker = Linker::<RealDirState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("link wasi");
        let pre = CommandPre::new(linker.instantiate_pre(&component).expect("instantiate_pre"))
            .expect("fs_script is a wasi:cli/command");
        (engine, pre)
    })
}

/// Runs the script with plain wasmtime-wasi, `host_dir` preopened read-write at
/// [`GUEST_BASE`], and returns its stdout (the transcript).
pub async fn run_script_in(host_dir: &Path) -> String {
    let (engine, pre) = real_dir_command();
    let stdout = MemoryOutputPipe::new(STDOUT_CAP);
    let stderr = MemoryOutputPipe::new(STDOUT_CAP);
    let mut builder = WasiCtx::builder();
    builder
        .args(&["fs-script", GUEST_BASE])
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .preopened_dir(host_dir, GUEST_BASE, FsPerms::ReadWrite)
        .expect("preopen the temp dir");
    let mut store = Store::new(engine, RealDirState { ctx: builder.build(), table: ResourceTable::new() });
    let command = pre.instantiate_async(&mut store).await.expect("instantiate fs_script");
    let result = command.wasi_cli_run().call_run(&mut store).await;
    let transcript = String::from_utf8_lossy(&stdout.contents()).into_owned();
    match result {
        Ok(Ok(())) => transcript,
        other => panic!(
            "fs_script did not exit cleanly: {other:?}\nstderr:\n{}\nstdout:\n{transcript}",
            String::from_utf8_lossy(&stderr.contents())
        ),
    }
}

/// Runs the script in a fresh temporary directory and returns its transcript.
pub async fn run_against_real_dir() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    run_script_in(dir.path()).await
}

/// The transcript's step lines (`NN description: result`).
pub fn step_lines(transcript: &str) -> Vec<&str> {
    transcript.lines().filter(|line| line.split_once(' ').is_some_and(|(n, _)| n.parse::<u32>().is_ok())).collect()
}

/// The result (`ok …` / `err …`) of the step with this exact description.
pub fn step_result<'a>(transcript: &'a str, description: &str) -> Option<&'a str> {
    step_lines(transcript).into_iter().find_map(|line| {
        let (_, rest) = line.split_once(' ')?;
        let (desc, result) = rest.split_once(": ")?;
        (desc == description).then_some(result)
    })
}

/// Line-by-line differences between two transcripts, for failure messages.
pub fn transcript_diff(left: &str, right: &str) -> String {
    let (left, right): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let mut out = String::new();
    for i in 0..left.len().max(right.len()) {
        let (l, r) = (left.get(i).copied(), right.get(i).copied());
        if l != r {
            out.push_str(&format!("- {}\n+ {}\n", l.unwrap_or("<none>"), r.unwrap_or("<none>")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn script_is_deterministic_on_a_real_dir() {
    let first = run_against_real_dir().await;
    let second = run_against_real_dir().await;
    println!("{first}");

    assert_eq!(first, second, "two runs differ:\n{}", transcript_diff(&first, &second));
    let steps = step_lines(&first);
    assert!(steps.len() >= MIN_STEPS, "only {} steps:\n{first}", steps.len());
    assert_eq!(steps.len(), first.lines().count(), "every line is a step:\n{first}");
    assert!(!first.contains("(DUPLICATE)"), "step descriptions must be unique:\n{first}");
    for (i, line) in steps.iter().enumerate() {
        let number: usize = line.split_once(' ').and_then(|(n, _)| n.parse().ok()).unwrap_or(0);
        assert_eq!(number, i + 1, "steps are numbered in order: {line}\n{first}");
    }

    let expect = |description: &str, prefix: &str| {
        let result = step_result(&first, description)
            .unwrap_or_else(|| panic!("no step {description:?} in transcript:\n{first}"));
        assert!(result.starts_with(prefix), "step {description:?}: expected {prefix:?}, got {result:?}\n{first}");
    };
    let expect_errno = |description: &str, errno: i32| {
        let result = step_result(&first, description)
            .unwrap_or_else(|| panic!("no step {description:?} in transcript:\n{first}"));
        assert!(
            result.starts_with("err ") && result.ends_with(&format!(" {errno}")),
            "step {description:?}: expected errno {errno}, got {result:?}\n{first}"
        );
    };
    expect("read file.txt", "ok \"hello world\"");
    expect("append after seek to start", "ok seek=0 content=\"bye appended!\"");
    expect("create_new on existing file.txt", "err AlreadyExists");
    expect("open missing file for reading", "err NotFound");
    expect("read back zero-filled gap", "ok \"0123456789\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0X\"");
    expect("set_len shrink to 5", "ok len=5 content=\"01234\"");
    // Rust std on wasip2 has no ErrorKind for ENOTEMPTY (wasi errno 55): `Uncategorized`.
    expect_errno("remove_dir non-empty deep", 55);
    expect("rename dir over empty dir", "ok old_exists=false target=[f.txt:file]");
    expect_errno("rename dir over non-empty dir", 55);
    expect_errno("rename dir over file", 54);
    expect_errno("rename file over empty dir", 31);
    expect("rename dir into its own subdirectory", "err InvalidInput 28");
    expect("rename missing source", "err NotFound 44");
    expect("read via dir/../dot.txt", "ok \"dot\"");
    // `..` out of the preopen: cap-std refuses, wasmtime-wasi answers `not-permitted`.
    for escape in [
        "write ../escape.txt",
        "read dir/../../x escape",
        "create_dir a/../../x escape",
        "metadata of base/..",
        "read_dir base/..",
    ] {
        expect(escape, "err PermissionDenied 63");
    }
    // Absolute paths outside every preopen never reach the host: wasi-libc says ENOENT.
    for outside in ["read absolute /etc/passwd", "read_dir absolute /tmp", "write absolute /tmp/fs-script.txt"] {
        expect(outside, "err NotFound 44");
    }
    expect("write 255-byte name", "ok \"long\"");
    expect("write 256-byte name", "err InvalidFilename 37");
    let written = step_result(&first, "write 1 MiB in 4 KiB pieces").expect("1 MiB write step");
    let fnv = written.rsplit_once("fnv=").map(|(_, fnv)| fnv).expect("fnv in the write step");
    expect("write 1 MiB in 4 KiB pieces", "ok len=1048576 ");
    expect("read 1 MiB back", &format!("ok len=1048576 fnv={fnv} match=true"));
    expect("set_modified to fixed time", "ok 1234567890.");
}

/// Runs the script through the runtime against a fresh session VFS.
pub async fn run_against_vfs() -> String {
    let runtime = crate::runtime();
    let script = crate::fixture(&runtime, "fs_script").await;
    let session = crate::session(&runtime, &[script], runtime::Limits::default());
    let input = serde_json::json!({ "args": [GUEST_BASE] }).to_string();
    let output = session.call("fs_script", &input).await.expect("the script runs");
    assert!(!output.is_error, "the script failed: {}", output.content);
    output.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn vfs_matches_a_real_directory() {
    let real = run_against_real_dir().await;
    let vfs = run_against_vfs().await;
    assert!(step_lines(&vfs).len() >= MIN_STEPS, "the VFS run completed:\n{vfs}");
    assert!(real == vfs, "the VFS differs from a real directory:\n{}", transcript_diff(&real, &vfs));
}
