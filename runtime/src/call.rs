//! One call: a fresh store and instance, the limits wired in, the guest run,
//! and whatever went wrong turned into a [`CallError`] that names the limit.
//!
//! This is the hot path. Everything here runs once per call, so it allocates only
//! the store, the WASI context and two output buffers.

use std::time::{Duration, Instant};

use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{CallHook, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::ToolComponentPre;
use crate::bindings::exports::agent::tool::tool as guest;
use crate::engine::Runtime;
use crate::error::CallError;
use crate::fs::{CallFs, FsView};
use crate::limits::{Limits, Meter, Tripped};
use crate::net::outgoing::NetHooks;
use crate::output::{CappedOutput, truncate};
use crate::session::ToolOutput;

/// The data of one call's store.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    meter: Meter,
    fs: Option<CallFs>,
    http: WasiHttpCtx,
    net: NetHooks,
}

impl CallState {
    /// The call's filesystem view, for the `wasi:filesystem` bindings.
    pub fn fs_view(&mut self) -> FsView<'_> {
        FsView::new(&mut self.table, self.fs.as_ref())
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.net }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Captured stdio of one call.
struct Stdio {
    stdout: CappedOutput,
    stderr: CappedOutput,
}

/// What a call gets besides its input: stdin and args (commands), its
/// filesystem, and its network (none: every request is refused).
#[derive(Default)]
pub(crate) struct CallIo {
    pub stdin: Option<Vec<u8>>,
    pub args: Vec<String>,
    pub fs: Option<CallFs>,
    pub net: Option<NetHooks>,
}

fn new_store(runtime: &Runtime, limits: &Limits, deadline: Duration, io: CallIo) -> (Store<CallState>, Stdio) {
    let stdio =
        Stdio { stdout: CappedOutput::new(limits.stdout_bytes), stderr: CappedOutput::new(limits.stderr_bytes) };
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdio.stdout.clone()).stderr(stdio.stderr.clone()).args(&io.args);
    if let Some(stdin) = io.stdin {
        builder.stdin(MemoryInputPipe::new(stdin));
    }
    let mut table = ResourceTable::new();
    table.set_max_capacity(limits.resources);
    let net = io.net.unwrap_or_else(NetHooks::offline);
    let state =
        CallState { wasi: builder.build(), table, meter: Meter::new(limits), fs: io.fs, http: WasiHttpCtx::new(), net };

    runtime.0.instantiations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut store = Store::new(runtime.engine(), state);
    store.limiter(|state| &mut state.meter);
    store.call_hook(|mut ctx, hook| match hook {
        CallHook::CallingHost => ctx.data_mut().meter.host_call(),
        _ => Ok(()),
    });
    let deadline_at = Instant::now() + deadline;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        if Instant::now() >= deadline_at {
            ctx.data_mut().meter.tripped = Some(Tripped::Deadline);
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Not due yet: give the thread to other tasks and check again next tick.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    (store, stdio)
}

/// Waits for a free instance slot; the permit must outlive the call's store (declare
/// it first), since the pool takes the slot back only when the store is dropped.
async fn slot(runtime: &Runtime) -> Option<tokio::sync::SemaphorePermit<'_>> {
    // The semaphore is never closed, so this is always `Some`.
    runtime.0.slots.acquire().await.ok()
}

/// Runs `describe` once, at load time.
pub(crate) async fn describe(
    runtime: &Runtime,
    pre: &ToolComponentPre<CallState>,
    limits: &Limits,
) -> Result<Vec<guest::ToolSpec>, CallError> {
    let deadline = limits.deadline;
    let _slot = slot(runtime).await;
    let (mut store, stdio) = new_store(runtime, limits, deadline, CallIo::default());
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance.agent_tool_tool().call_describe(&mut store).await
    };
    let outcome = tokio::time::timeout(deadline, run).await;
    settle(outcome, &store, "describe", limits, deadline, &stdio)
}

/// Runs tool `tool` of a tool-world component on `input`.
pub(crate) async fn call_tool(
    runtime: &Runtime,
    pre: &ToolComponentPre<CallState>,
    tool: &str,
    input: &str,
    limits: &Limits,
    io: CallIo,
) -> Result<ToolOutput, CallError> {
    let deadline = limits.deadline_for(tool);
    let _slot = slot(runtime).await;
    let (mut store, stdio) = new_store(runtime, limits, deadline, io);
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        instance.agent_tool_tool().call_call(&mut store, tool, input).await
    };
    let outcome = tokio::time::timeout(deadline, run).await;
    let output = settle(outcome, &store, tool, limits, deadline, &stdio)?;
    Ok(ToolOutput {
        content: truncate(output.content, "result", limits.result_bytes),
        is_error: output.is_error,
        stdout: stdio.stdout.text("stdout"),
        stderr: stdio.stderr.text("stderr"),
        exit_code: None,
    })
}

/// Runs a plain command with `args` and `stdin`.
pub(crate) async fn call_command(
    runtime: &Runtime,
    pre: &CommandPre<CallState>,
    tool: &str,
    args: Vec<String>,
    stdin: String,
    limits: &Limits,
    io: CallIo,
) -> Result<ToolOutput, CallError> {
    let deadline = limits.deadline_for(tool);
    // argv[0] is the program name, as a native program would see it.
    let argv: Vec<String> = std::iter::once(tool.to_string()).chain(args).collect();
    let io = CallIo { stdin: Some(stdin.into_bytes()), args: argv, ..io };
    let _slot = slot(runtime).await;
    let (mut store, stdio) = new_store(runtime, limits, deadline, io);
    let run = async {
        let command = pre.instantiate_async(&mut store).await?;
        match command.wasi_cli_run().call_run(&mut store).await {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(err) => match err.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(err),
            },
        }
    };
    let outcome = tokio::time::timeout(deadline, run).await;
    let exit_code = settle(outcome, &store, tool, limits, deadline, &stdio)?;
    let stdout = stdio.stdout.text("stdout");
    let stderr = stdio.stderr.text("stderr");
    let mut content = stdout.clone();
    if !stderr.is_empty() {
        content.push_str("\n[stderr]\n");
        content.push_str(&stderr);
    }
    if exit_code != 0 {
        content.push_str(&format!("\n[exit code {exit_code}]"));
    }
    Ok(ToolOutput {
        content: truncate(content, "result", limits.result_bytes),
        is_error: exit_code != 0,
        stdout,
        stderr,
        exit_code: Some(exit_code),
    })
}

/// Turns the outcome of a guest run into a value or a [`CallError`] naming the
/// limit that stopped it.
fn settle<T>(
    outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    store: &Store<CallState>,
    tool: &str,
    limits: &Limits,
    deadline: Duration,
    stdio: &Stdio,
) -> Result<T, CallError> {
    let tool_name = || tool.to_string();
    let err = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(err)) => err,
        Err(_elapsed) => return Err(CallError::Deadline { tool: tool_name(), deadline }),
    };
    match store.data().meter.tripped {
        Some(Tripped::Deadline) => return Err(CallError::Deadline { tool: tool_name(), deadline }),
        Some(Tripped::Memory) => return Err(CallError::Memory { tool: tool_name(), limit: limits.memory_bytes }),
        Some(Tripped::HostCalls) => return Err(CallError::HostCalls { tool: tool_name(), limit: limits.host_calls }),
        None => {}
    }
    if let Some(ResourceTableError::Full) = err.downcast_ref::<ResourceTableError>() {
        return Err(CallError::Resources { tool: tool_name(), limit: limits.resources });
    }
    let reason = match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow".to_string(),
        Some(Trap::MemoryOutOfBounds) => "out-of-bounds memory access".to_string(),
        Some(Trap::UnreachableCodeReached) => "executed `unreachable` (a panic or abort)".to_string(),
        Some(Trap::Interrupt) => return Err(CallError::Deadline { tool: tool_name(), deadline }),
        Some(trap) => trap.to_string().trim_start_matches("wasm trap: ").to_string(),
        None => format!("{err:#}"),
    };
    let stderr = stdio.stderr.text("stderr");
    Err(CallError::Trap {
        tool: tool_name(),
        reason: truncate(reason, "reason", 2048),
        stderr: truncate(stderr, "stderr", 2048),
    })
}
