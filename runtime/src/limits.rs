//! Per-call limits and the store-side machinery that enforces them.
//!
//! Each limit, when hit, is recorded in [`Tripped`] before the guest is stopped,
//! so the call's error can name the limit instead of a bare trap.

use std::collections::HashMap;
use std::time::Duration;

/// Limits applied to every call of a session. [`Limits::default`] suits an
/// interactive agent; an operator tightens or loosens them per session or tool.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock deadline of one call, unless `tool_deadlines` names the tool.
    pub deadline: Duration,
    /// Per-tool deadlines that override `deadline`.
    pub tool_deadlines: HashMap<String, Duration>,
    /// Largest linear memory a call may grow to, in bytes.
    pub memory_bytes: usize,
    /// Bytes of stdout kept per call; the rest is dropped and marked.
    pub stdout_bytes: usize,
    /// Bytes of stderr kept per call; the rest is dropped and marked.
    pub stderr_bytes: usize,
    /// Bytes of result content kept per call; the rest is dropped and marked.
    pub result_bytes: usize,
    /// Calls from the guest into the host (WASI functions) per call.
    pub host_calls: u64,
    /// Host resources (streams, pollables, descriptors) a call may hold at once.
    pub resources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(30),
            tool_deadlines: HashMap::new(),
            memory_bytes: 256 << 20,
            stdout_bytes: 256 << 10,
            stderr_bytes: 64 << 10,
            result_bytes: 256 << 10,
            host_calls: 10_000_000,
            resources: 10_000,
        }
    }
}

impl Limits {
    /// The deadline that applies to `tool`.
    pub fn deadline_for(&self, tool: &str) -> Duration {
        self.tool_deadlines.get(tool).copied().unwrap_or(self.deadline)
    }
}

/// Which limit stopped a call, recorded where it was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    Deadline,
    Memory,
    HostCalls,
}

/// Store-side limit state: the memory limiter and the host-call counter.
pub(crate) struct Meter {
    pub memory_bytes: usize,
    pub host_calls_left: u64,
    pub tripped: Option<Tripped>,
}

impl Meter {
    pub fn new(limits: &Limits) -> Self {
        Meter { memory_bytes: limits.memory_bytes, host_calls_left: limits.host_calls, tripped: None }
    }

    /// Counts one call into the host; errors (trapping the guest) when none are left.
    pub fn host_call(&mut self) -> wasmtime::Result<()> {
        match self.host_calls_left.checked_sub(1) {
            Some(left) => {
                self.host_calls_left = left;
                Ok(())
            }
            None => {
                self.tripped = Some(Tripped::HostCalls);
                Err(wasmtime::format_err!("host-call limit reached"))
            }
        }
    }
}

impl wasmtime::ResourceLimiter for Meter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.tripped = Some(Tripped::Memory);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a tool that needs more than this is broken.
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        // A component instantiates a handful of core modules (main module, WASI
        // adapter, shims); this is well above any real component.
        64
    }

    fn memories(&self) -> usize {
        8
    }

    fn tables(&self) -> usize {
        16
    }
}
