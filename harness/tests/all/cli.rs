//! The `harness` binary as tool authors and operators use it: `tools list`,
//! `tools check` and `tools run`, against a real tools directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harness(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env_remove("HARNESS_TOOLS_DIR")
        .output()
        .expect("run harness")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn tools_directory_loads_beside_builtins_and_bad_components_are_skipped() {
    let cache = tempfile::tempdir().unwrap();
    let tools = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures::component("noop"), tools.path().join("noop.wasm")).unwrap();
    std::fs::copy(fixtures::tool("example"), tools.path().join("duplicate.wasm")).unwrap();
    std::fs::write(tools.path().join("broken.wasm"), b"not a component").unwrap();
    std::fs::write(tools.path().join("notes.txt"), b"ignored: not a .wasm").unwrap();

    let out = harness(cache.path(), &["--tools-dir", tools.path().to_str().unwrap(), "tools", "list"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("word_count ") && l.ends_with("built-in")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("noop ") && l.ends_with("noop.wasm")), "{stdout}");
    assert!(stderr.contains("broken.wasm") && stderr.contains("not a WebAssembly file"), "{stderr}");
    assert!(stderr.contains("duplicate.wasm") && stderr.contains("collides"), "{stderr}");
    assert!(!stdout.contains("duplicate.wasm"), "the colliding component is not loaded: {stdout}");
}

#[test]
fn check_reports_tools_or_the_reason_for_refusal() {
    let cache = tempfile::tempdir().unwrap();
    let out = harness(cache.path(), &["tools", "check", fixtures::component("hostile").to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("echo [read-only, idempotent]"), "{}", text(&out.stdout));

    let out = harness(cache.path(), &["tools", "check", fixtures::component("sockets").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("wasi:sockets"), "{}", text(&out.stderr));
}

/// Builds `tools-wasm/template` the way a tool author does.
pub fn build_template() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let target = repo.join("target/guests");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(repo.join("tools-wasm/template/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "the template builds");
    target.join("wasm32-wasip2/release/template.wasm")
}

#[test]
fn the_template_goes_from_build_to_check_to_run() {
    let component = build_template();
    let cache = tempfile::tempdir().unwrap();
    let out = harness(cache.path(), &["tools", "check", component.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("line_count [read-only, idempotent]"), "{}", text(&out.stdout));

    let seed = tempfile::tempdir().unwrap();
    std::fs::write(seed.path().join("a.txt"), "one\ntwo\n").unwrap();
    let seed_arg = seed.path().to_str().unwrap();
    let run = |input: &str| {
        harness(
            cache.path(),
            &["tools", "run", component.to_str().unwrap(), "line_count", input, "--workspace", seed_arg],
        )
    };
    let out = run(r#"{"path": "a.txt"}"#);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "a.txt has 2 lines");

    let out = run(r#"{"path": "../etc/passwd"}"#);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("must be a relative path inside /workspace"), "{}", text(&out.stdout));

    let out = run(r#"{"file": "a.txt"}"#);
    assert!(!out.status.success(), "schema violations are refused before the tool runs");
    assert!(text(&out.stderr).contains("does not match its schema"), "{}", text(&out.stderr));
}

#[test]
fn run_exports_the_workspace() {
    let cache = tempfile::tempdir().unwrap();
    let export = tempfile::tempdir().unwrap();
    let target = export.path().join("out");
    let out = harness(
        cache.path(),
        &[
            "tools",
            "run",
            fixtures::component("hostile").to_str().unwrap(),
            "fs_write",
            r#"{"path": "/workspace/made.txt", "text": "from the sandbox"}"#,
            "--export",
            target.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(target.join("made.txt")).unwrap(), "from the sandbox");
}
