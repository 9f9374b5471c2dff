//! Build-script helper that compiles a guest cargo workspace (tool components) for
//! `wasm32-wasip2`, so `cargo build` and `cargo test` build every component from
//! source and no binary is ever checked in.
//!
//! The nested cargo gets its own target directory next to the outer one: sharing
//! the outer directory would deadlock on cargo's build lock.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every guest is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds the workspace at `workspace` in release mode and returns the directory
/// holding its `.wasm` artifacts. Tells cargo to rerun the calling build script
/// when anything in `watch` (and the workspace itself) changes.
///
/// Panics with the nested build's exit status on failure: a build script has no
/// better way to report an error, and cargo prints the nested build's output.
pub fn build_workspace(workspace: &Path, watch: &[&Path]) -> PathBuf {
    for path in std::iter::once(workspace).chain(watch.iter().copied()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let target_dir = guest_target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--workspace")
        .args(["--target", TARGET])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir);
    // Settings meant for the host build must not leak into the guest build: host
    // RUSTFLAGS break wasm linking, and clippy's wrapper would lint the guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        command.env_remove(var);
    }
    let status =
        command.status().unwrap_or_else(|err| panic!("cannot run cargo to build {}: {err}", workspace.display()));
    assert!(
        status.success(),
        "building the guest workspace {} for {TARGET} failed ({status}): see the compiler \
         output above (if the target is missing, run `rustup target add {TARGET}`)",
        workspace.display()
    );
    target_dir.join(TARGET).join("release")
}

/// `<outer target dir>/guests`, derived from `OUT_DIR`
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`).
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set for build scripts"));
    let build_dir = out_dir
        .ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "build"))
        .expect("OUT_DIR lies under a `build` directory");
    let profile_dir = build_dir.parent().expect("build dir has a parent");
    profile_dir.parent().unwrap_or(profile_dir).join("guests")
}
