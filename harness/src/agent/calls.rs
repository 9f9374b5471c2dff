//! Running the tool calls of one model answer.
//!
//! Consecutive read-only calls run concurrently and commit as one step (they
//! can't change files, so no snapshot is needed); every other call runs alone, in
//! the order the model gave, and commits its result with the filesystem it left.
//! A non-idempotent call commits `ToolStarted` first, so a resume knows it may
//! have run and reports it as interrupted instead of running it twice.

use futures_util::future::join_all;
use runtime::vfs::{ObjectId, Timestamp};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::transcript::PendingCall;
use super::{Agent, AgentError, Observer};
use crate::event::Event;
use crate::store::SessionId;

/// Runs `calls` in order, committing as it goes; returns the committed events.
/// Stops early (leaving the rest pending) when `cancel` fires.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    agent: &Agent,
    id: &SessionId,
    session: &runtime::Session,
    now: Timestamp,
    root: &mut ObjectId,
    calls: Vec<PendingCall>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Vec<Event>, AgentError> {
    let session = session.clone().with_clock(now);
    let read_only = |call: &PendingCall| session.toolbox().spec(&call.name).is_none_or(|spec| spec.read_only);
    let mut committed = Vec::new();
    let mut i = 0;
    // A stop ends the batch between calls: what ran is committed, the rest resumes.
    while i < calls.len() && !cancel.is_cancelled() && !agent.stopping.is_cancelled() {
        let call = &calls[i];
        if read_only(call) {
            let batch: Vec<&PendingCall> = calls[i..].iter().take_while(|call| read_only(call)).collect();
            let results = tokio::select! {
                results = join_all(batch.iter().map(|call| execute(id, &session, call))) => results,
                () = cancel.cancelled() => break,
            };
            let events: Vec<Event> =
                batch.iter().zip(results).map(|(call, (content, is_error))| result(call, content, is_error)).collect();
            agent.commit(id, events.clone(), None, None, observer)?;
            committed.extend(events);
            i += batch.len();
            continue;
        }
        let idempotent = session.toolbox().spec(&call.name).is_some_and(|spec| spec.idempotent);
        if call.started && !idempotent {
            let event = interrupted(call);
            agent.commit(id, vec![event.clone()], None, None, observer)?;
            committed.push(event);
            i += 1;
            continue;
        }
        if !idempotent {
            let started = Event::ToolStarted { call_id: call.id.clone(), name: call.name.clone() };
            agent.commit(id, vec![started.clone()], None, None, observer)?;
            committed.push(started);
        }
        let event = tokio::select! {
            (content, is_error) = execute(id, &session, call) => result(call, content, is_error),
            () = cancel.cancelled() => cancelled(call, "while it ran"),
        };
        let snapshot = session
            .workspace()
            .snapshot()
            .map_err(|err| AgentError::Filesystem { session: *id, reason: err.to_string() })?;
        let changed = (snapshot.root != *root).then(|| {
            *root = snapshot.root;
            snapshot
        });
        agent.commit(id, vec![event.clone()], changed, None, observer)?;
        committed.push(event);
        i += 1;
    }
    Ok(committed)
}

/// Runs one call: the model's input is checked before anything is instantiated,
/// and every failure becomes an error result for the model.
pub(super) async fn execute(id: &SessionId, session: &runtime::Session, call: &PendingCall) -> (String, bool) {
    let input = match &call.input {
        Value::Object(_) => call.input.to_string(),
        Value::String(raw) => return (format!("the input for `{}` is not valid JSON: {raw}", call.name), true),
        other => return (format!("the input for `{}` must be a JSON object, got: {other}", call.name), true),
    };
    let span = tracing::info_span!("tool_call", session = %id, tool = %call.name, call = %call.id);
    match session.call(&call.name, &input).instrument(span).await {
        Ok(output) => (output.content, output.is_error),
        Err(runtime::CallError::UnknownTool { tool }) => {
            let known: Vec<&str> = session.toolbox().specs().map(|spec| spec.name.as_str()).collect();
            (format!("there is no tool named `{tool}`; the tools are: {}", known.join(", ")), true)
        }
        Err(err) => (err.to_string(), true),
    }
}

fn result(call: &PendingCall, content: String, is_error: bool) -> Event {
    Event::ToolResult { call_id: call.id.clone(), name: call.name.clone(), content, is_error }
}

/// The result of a non-idempotent call that may have run before a crash.
fn interrupted(call: &PendingCall) -> Event {
    let content = format!(
        "The call to `{}` was interrupted: the harness stopped while it ran, and it was not run again because \
         it is not idempotent. It may or may not have taken effect; check before retrying.",
        call.name
    );
    result(call, content, true)
}

/// The result of a call cut short by a cancel.
pub(super) fn cancelled(call: &PendingCall, when: &str) -> Event {
    result(call, format!("The call to `{}` was cancelled {when}.", call.name), true)
}
