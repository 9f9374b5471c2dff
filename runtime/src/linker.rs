//! The WASI surface a tool sees, linked interface by interface.
//!
//! Tools get clocks, random, stdio, environment (empty unless an operator adds
//! non-secret variables), exit, and the filesystem: the host's own
//! implementation over the session VFS (`crate::fs`), never a host directory. `wasi:sockets` is left out on
//! purpose: outbound network access goes through `wasi:http` and the host's policy
//! (`crate::net`) only, so a component importing sockets is refused at load time.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::call::CallState;

/// Interfaces (package/interface, without version) that [`build`] links.
pub(crate) const PROVIDED: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

/// Whether an import name (`wasi:io/poll@0.2.6`) is one the linker provides.
pub(crate) fn is_provided(import: &str) -> bool {
    let unversioned = import.split('@').next().unwrap_or(import);
    PROVIDED.contains(&unversioned)
}

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

fn table(state: &mut CallState) -> &mut ResourceTable {
    state.ctx().table
}

/// Builds the linker every tool component is instantiated with.
pub(crate) fn build(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    let l = &mut linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<_, HasIo>(l, table)?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<_, HasIo>(l, table)?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<_, HasIo>(l, table)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, CallState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, CallState::clocks)?;
    random::random::add_to_linker::<_, WasiRandom>(l, random_ctx)?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, random_ctx)?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, random_ctx)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, CallState::cli)?;
    crate::fs::link(l, CallState::fs_view)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
    Ok(linker)
}

fn random_ctx(state: &mut CallState) -> &mut wasmtime_wasi::random::WasiRandomCtx {
    let WasiCtxView { ctx, .. } = state.ctx();
    ctx.random()
}
