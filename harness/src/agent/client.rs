//! Tool calls made by a client directly, outside any run: an MCP client using a
//! session's sandbox without our loop.
//!
//! Each call is one committed step: a [`Event::ClientToolCall`] with the input and
//! the result, and the filesystem the call left. A crash during a call commits
//! nothing, so the session is exactly as before it; the client sees its request
//! fail. Between calls the restored filesystem stays in memory; a call first checks
//! that the session's head is still the root it holds, and restores again if
//! something else (a run, another client) moved it.

use std::sync::Arc;
use std::time::SystemTime;

use runtime::Toolbox;
use runtime::vfs::ObjectId;
use serde_json::Value;

use super::transcript::PendingCall;
use super::{Agent, AgentError, Observer, Scope, calls, timestamp};
use crate::event::Event;
use crate::store::{SessionId, Status};

/// A session opened for client calls: its sandbox, kept between calls.
pub struct Attached {
    id: SessionId,
    scope: Scope,
    sandbox: Option<(runtime::Session, ObjectId)>,
}

/// The result of a client call.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientCallResult {
    /// The tool's output, or what went wrong.
    pub content: String,
    /// Whether the call failed.
    pub is_error: bool,
    /// The sequence number of the committed event.
    pub seq: u64,
}

impl Attached {
    /// The session.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The tools this session offers (its settings may narrow the agent's).
    pub fn toolbox(&self) -> &Arc<Toolbox> {
        &self.scope.toolbox
    }
}

impl Agent {
    /// Opens session `id` for client calls. A session with an unfinished run is
    /// refused: its run must resume first, or the two would interleave.
    pub fn attach(&self, id: &SessionId) -> Result<Attached, AgentError> {
        let meta = self.store.session(id)?;
        if meta.status == Status::Running {
            return Err(AgentError::InvalidSettings(format!(
                "session {id} has an unfinished run; resume it (or let the server resume it) before attaching"
            )));
        }
        Ok(Attached { id: *id, scope: self.scope(&meta.settings), sandbox: None })
    }

    /// Runs `name` with `input` in the attached session's sandbox and commits the
    /// call as one step. A bad input, an unknown tool or a failing tool is an error
    /// result, as for the model; an `Err` means the call could not be recorded (the
    /// store failed, the session is busy or gone) and nothing was committed.
    pub async fn call_tool(
        &self,
        attached: &mut Attached,
        name: &str,
        input: Value,
        observer: &dyn Observer,
    ) -> Result<ClientCallResult, AgentError> {
        let id = attached.id;
        let _guard = self.claim(&id)?;
        let head = self.store.session(&id)?.head;
        // Taken out for the call and put back once it is committed: if this future
        // is dropped halfway (the client went away), the half-changed filesystem
        // goes with it and the next call restores the committed one.
        let (sandbox, root) = match attached.sandbox.take() {
            Some((sandbox, root)) if root == head.root => (sandbox, root),
            _ => (self.sandbox(&id, head.last_step, &attached.scope)?, head.root),
        };
        let now = match self.config.clock {
            super::Clock::Fixed(now) => now,
            super::Clock::System => timestamp(SystemTime::now()),
        };
        let call = PendingCall {
            // The seq its event will have: calls of a session are serialized by the claim.
            id: format!("client-{}", head.last_seq + 1),
            name: name.to_string(),
            input,
            started: false,
        };
        let (content, is_error) = calls::execute(&id, &sandbox.clone().with_clock(now), &call).await;
        let snapshot = sandbox
            .workspace()
            .snapshot()
            .map_err(|err| AgentError::Filesystem { session: id, reason: err.to_string() })?;
        let new_root = snapshot.root;
        let changed = (new_root != root).then_some(snapshot);
        // The log is persisted: a secret in the client's input must not be.
        let redactor = attached.scope.network.redactor();
        let input = if redactor.is_empty() {
            call.input
        } else {
            let text = redactor.redact_str(&call.input.to_string());
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        let event =
            Event::ClientToolCall { call_id: call.id, name: call.name, input, content: content.clone(), is_error };
        // On an error the sandbox is dropped: it is ahead of the store.
        let seq = self.commit(&id, vec![event], changed, None, observer)?;
        attached.sandbox = Some((sandbox, new_root));
        Ok(ClientCallResult { content, is_error, seq })
    }
}
