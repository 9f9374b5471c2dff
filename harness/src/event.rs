//! The session event log: what the store appends and what resume replays.
//!
//! The conversation lives here once; a model request is rebuilt from the log, never
//! stored per turn.

use serde::{Deserialize, Serialize};

use crate::conversation::ModelAnswer;

/// One entry of a session's append-only log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A user message, which starts a run.
    UserMessage {
        /// The message text.
        text: String,
    },
    /// A complete model answer (text, tool calls, stop reason and usage), committed
    /// before any of its tool calls run so it is never requested again.
    ModelAnswer(ModelAnswer),
    /// A tool call is about to run. Committed before a non-idempotent call, so a
    /// resume can tell a call that may have run from one that never started.
    ToolStarted {
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        name: String,
    },
    /// A tool call's result, including validation failures and interruptions.
    ToolResult {
        /// The model's id for the call.
        call_id: String,
        /// The tool's name as the model gave it.
        name: String,
        /// The result text sent back to the model.
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
    /// A tool call a client made directly, outside any run (over MCP), with its
    /// result. Not part of the model's conversation: the client holds its own.
    ClientToolCall {
        /// The harness's id for the call.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The input as the client sent it (secrets redacted).
        input: serde_json::Value,
        /// The result text returned to the client.
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
    /// The run failed (a provider error, for instance) and stopped.
    Error {
        /// What went wrong.
        message: String,
    },
    /// The run ended.
    RunEnded {
        /// Why it ended.
        reason: EndReason,
    },
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The model ended its turn.
    EndTurn,
    /// The run reached its maximum number of model calls.
    MaxTurns,
    /// The run reached its token or cost budget.
    Budget,
    /// The run was cancelled.
    Cancelled,
    /// The run failed; the preceding [`Event::Error`] says why.
    Failed,
}
