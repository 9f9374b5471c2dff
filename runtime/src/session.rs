//! Sessions: the unit of isolation. A session owns its limits, its filesystem and
//! its network; each of its calls runs in a fresh instance.

use std::sync::Arc;

use crate::call::{self, CallIo};
use crate::component::Pre;
use crate::engine::Runtime;
use crate::error::CallError;
use crate::fs::{CallFs, DEFAULT_MOUNT, Workspace};
use crate::limits::Limits;
use crate::net::Network;
use crate::net::outgoing::NetHooks;
use crate::toolbox::Toolbox;
use crate::vfs::{Quota, Timestamp, Vfs};

/// What a call returns to the caller (and, as `content`, to the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text for the model, capped at [`Limits::result_bytes`].
    pub content: String,
    /// The tool reported failure.
    pub is_error: bool,
    /// Captured stdout, capped at [`Limits::stdout_bytes`].
    pub stdout: String,
    /// Captured stderr, capped at [`Limits::stderr_bytes`].
    pub stderr: String,
    /// Exit code, for plain commands.
    pub exit_code: Option<i32>,
}

/// One agent session's sandbox: its tools, limits, filesystem and network.
#[derive(Debug, Clone)]
pub struct Session {
    runtime: Runtime,
    toolbox: Arc<Toolbox>,
    limits: Limits,
    workspace: Workspace,
    network: Arc<Network>,
    clock: Option<Timestamp>,
}

/// Input of a plain command tool.
#[derive(serde::Deserialize)]
struct CommandInput {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    stdin: String,
}

impl Session {
    /// A session over `toolbox` with `limits`.
    pub fn new(runtime: &Runtime, toolbox: Arc<Toolbox>, limits: Limits) -> Self {
        let workspace = Workspace::new(Vfs::new(Quota::default()), DEFAULT_MOUNT);
        Session { runtime: runtime.clone(), toolbox, limits, workspace, network: Arc::default(), clock: None }
    }

    /// The same session with outbound HTTP under `network` (the default refuses
    /// every request).
    pub fn with_network(mut self, network: Arc<Network>) -> Self {
        self.network = network;
        self
    }

    /// The session's network, whose redactor also covers tool output.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The same session over another filesystem (restored, forked, imported).
    pub fn with_workspace(mut self, workspace: Workspace) -> Self {
        self.workspace = workspace;
        self
    }

    /// Stamps every write with `now` instead of the system clock, so a re-run of a
    /// call produces the same filesystem (and the same snapshot root).
    pub fn with_clock(mut self, now: Timestamp) -> Self {
        self.clock = Some(now);
        self
    }

    /// The session's filesystem.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The tools this session offers.
    pub fn toolbox(&self) -> &Toolbox {
        &self.toolbox
    }

    /// The limits every call of this session runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Validates `input` against the tool's schema, then runs the tool in a fresh
    /// instance. Invalid input never instantiates anything.
    pub async fn call(&self, tool: &str, input: &str) -> Result<ToolOutput, CallError> {
        let (component, spec) =
            self.toolbox.lookup(tool).ok_or_else(|| CallError::UnknownTool { tool: tool.to_string() })?;
        let parsed: serde_json::Value = serde_json::from_str(input)
            .map_err(|err| CallError::InputNotJson { tool: tool.to_string(), reason: err.to_string() })?;
        let violations = spec.violations(&parsed);
        if !violations.is_empty() {
            return Err(CallError::InputSchema { tool: tool.to_string(), violations });
        }
        self.workspace.set_now(self.clock.unwrap_or_else(system_now));
        let io = CallIo {
            fs: Some(CallFs { workspace: self.workspace.clone(), read_only: spec.spec.read_only }),
            net: Some(NetHooks::new(self.network.clone(), tool)),
            ..CallIo::default()
        };
        let output = match &component.pre {
            Pre::Tool(pre) => call::call_tool(&self.runtime, pre, tool, input, &self.limits, io).await,
            Pre::Command(pre) => {
                let input: CommandInput = serde_json::from_value(parsed).map_err(|err| CallError::InputSchema {
                    tool: tool.to_string(),
                    violations: vec![err.to_string()],
                })?;
                call::call_command(&self.runtime, pre, tool, input.args, input.stdin, &self.limits, io).await
            }
        };
        match output {
            Ok(output) => Ok(self.redact(output)),
            Err(CallError::Trap { tool, reason, stderr }) => {
                let redactor = self.network.redactor();
                Err(CallError::Trap {
                    tool,
                    reason: redactor.redact_str(&reason),
                    stderr: redactor.redact_str(&stderr),
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Defense in depth: a guest never receives a secret, but its output passes the
    /// redactor anyway before anyone (a model, the store, a log) sees it.
    fn redact(&self, mut output: ToolOutput) -> ToolOutput {
        let redactor = self.network.redactor();
        if !redactor.is_empty() {
            for text in [&mut output.content, &mut output.stdout, &mut output.stderr] {
                if redactor.finds(text.as_bytes()) {
                    *text = redactor.redact_str(text);
                }
            }
        }
        output
    }
}

/// The system clock as a VFS timestamp (the epoch if the clock is before it).
fn system_now() -> Timestamp {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp { secs: since.as_secs(), nanos: since.subsec_nanos() }
}
