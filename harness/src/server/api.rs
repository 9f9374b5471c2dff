//! The JSON bodies of the API. Requests refuse unknown fields, so a misspelt field
//! is an error rather than silently ignored. Times are milliseconds since the Unix
//! epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use runtime::net::policy::Policy;
use serde::{Deserialize, Serialize};

use crate::agent::SessionOptions;
use crate::conversation::{StreamEvent, Usage};
use crate::event::Event;
use crate::settings::SessionSettings;
use crate::store::{Checkpoint, ForkPoint, Session, SessionId, Status, User};

/// `POST /v1/sessions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// A title for listings.
    #[serde(default)]
    pub title: Option<String>,
    /// Files of the initial workspace: relative path → UTF-8 content. Parent
    /// directories are created.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The model, if not the server's default; the server lists which it offers.
    #[serde(default)]
    pub model: Option<String>,
    /// The tools the session offers the model (names); all of the server's if absent.
    #[serde(default)]
    pub tools: Option<BTreeSet<String>>,
    /// An allowlist every outbound request of the session's tools must pass, on
    /// top of the server's: it narrows the server's policy, never widens it.
    #[serde(default)]
    pub network: Option<Policy>,
    /// Most model calls per run, if fewer than the server's.
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// Most tokens over the session, if fewer than the server's budget.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Most US dollars over the session, if less than the server's budget.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
}

impl CreateSession {
    /// The session options this request asks for.
    pub fn options(&self) -> SessionOptions {
        SessionOptions {
            title: self.title.clone(),
            model: self.model.clone(),
            settings: SessionSettings {
                tools: self.tools.clone(),
                network: self.network.clone(),
                max_turns: self.max_turns,
                max_tokens: self.max_tokens,
                max_cost_usd: self.max_cost_usd,
            },
        }
    }
}

/// `POST /v1/sessions/{id}/messages`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The user message; it starts a run.
    pub text: String,
}

/// The answer to a posted message: the run started in the background.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageAccepted {
    /// The session.
    pub session: SessionId,
    /// The seq of the committed user message: stream events after `seq - 1` to see the run.
    pub seq: u64,
}

/// `POST /v1/sessions/{id}/fork`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The checkpoint to fork at; the session's latest if absent.
    #[serde(default)]
    pub at: Option<u64>,
}

/// The answer to `POST /v1/sessions/{id}/cancel`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// Whether a run was in progress (it ends with `run_ended: cancelled` at its next step).
    pub cancelled: bool,
}

/// A session as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// Its title.
    pub title: Option<String>,
    /// Its stored status.
    pub status: Status,
    /// Whether a run of it is in progress in this server now.
    pub running: bool,
    /// The model provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// When it was created.
    pub created_ms: u64,
    /// Where it was forked from, if it is a fork.
    pub parent: Option<ForkPoint>,
    /// Its last event's seq (0 before the first).
    pub last_seq: u64,
    /// Its last checkpoint's step.
    pub last_step: u64,
    /// Tokens its own runs used.
    pub usage: Usage,
    /// What it may use beyond the server's defaults: tools, network, limits.
    #[serde(flatten)]
    pub settings: SessionSettings,
}

impl SessionInfo {
    /// The view of `session`.
    pub fn of(session: &Session, running: bool) -> SessionInfo {
        SessionInfo {
            id: session.id,
            title: session.title.clone(),
            status: session.status,
            running,
            provider: session.provider.clone(),
            model: session.model.clone(),
            created_ms: millis(session.created),
            parent: session.parent,
            last_seq: session.head.last_seq,
            last_step: session.head.last_step,
            usage: session.usage,
            settings: session.settings.clone(),
        }
    }
}

/// A checkpoint as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Its step (0 is the session's initial state).
    pub step: u64,
    /// The last event it includes.
    pub last_seq: u64,
    /// The filesystem root (blake3, hex).
    pub root: String,
    /// When it was committed.
    pub time_ms: u64,
}

impl CheckpointInfo {
    /// The view of `checkpoint`.
    pub fn of(checkpoint: &Checkpoint) -> CheckpointInfo {
        CheckpointInfo {
            step: checkpoint.step,
            last_seq: checkpoint.last_seq,
            root: checkpoint.root.to_string(),
            time_ms: millis(checkpoint.time),
        }
    }
}

/// A directory at a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DirListing {
    /// The directory's path ("" for the workspace root).
    pub path: String,
    /// The checkpoint it was read at.
    pub step: u64,
    /// Its entries, sorted by name.
    pub entries: Vec<DirEntryInfo>,
}

/// One entry of a [`DirListing`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DirEntryInfo {
    /// The entry's name.
    pub name: String,
    /// `"file"` or `"dir"`.
    pub kind: String,
    /// A file's size in bytes; 0 for a directory.
    pub size: u64,
}

/// One committed event as streamed: its seq, then the event's own fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its place in the session's log.
    pub seq: u64,
    /// The event (tagged by its `event` field).
    #[serde(flatten)]
    pub event: Event,
}

/// Streamed model output, sent as SSE events named `delta` (display only, no id).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    /// More text of the answer.
    Text {
        /// The text.
        text: String,
    },
    /// The model started a tool call.
    ToolUseStart {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's input JSON.
    ToolInputDelta {
        /// The call's id.
        id: String,
        /// A fragment of the input JSON.
        partial_json: String,
    },
}

impl From<&StreamEvent> for Delta {
    fn from(event: &StreamEvent) -> Delta {
        match event.clone() {
            StreamEvent::Text(text) => Delta::Text { text },
            StreamEvent::ToolUseStart { id, name } => Delta::ToolUseStart { id, name },
            StreamEvent::ToolInputDelta { id, partial_json } => Delta::ToolInputDelta { id, partial_json },
        }
    }
}

/// `POST /admin/users`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user's name.
    pub name: String,
}

/// The answer to `POST /admin/users`: the token, shown this once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreatedUser {
    /// The user's name.
    pub name: String,
    /// The user's API token; only its hash is stored.
    pub token: String,
}

/// A user as listed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's name.
    pub name: String,
    /// When the user was added.
    pub created_ms: u64,
}

impl UserInfo {
    /// The view of `user`.
    pub fn of(user: &User) -> UserInfo {
        UserInfo { name: user.name.clone(), created_ms: millis(user.created) }
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
