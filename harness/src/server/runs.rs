//! Background runs: one task per session run, started by a message or by resuming
//! after a restart, and what the server knows about them (cancel tokens, metrics,
//! the live event feed).
//!
//! The server keeps its own table of running sessions, checked and filled under one
//! lock, so a second message answers 409 at once rather than after a task spawned.
//! A task's table entry is removed by a guard that also runs when the task is
//! aborted at shutdown, so the table never names a run that is gone.
//!
//! Aborting a run is safe at any await point: every step is committed in one
//! transaction before the next begins, and a commit is synchronous, so it is never
//! cut in half. The session stays `Running` in the store and resumes at the next start.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::ServerState;
use super::error::ApiError;
use crate::agent::{AgentError, Observer};
use crate::conversation::StreamEvent;
use crate::event::{EndReason, Event};
use crate::store::SessionId;

/// What a run starts with.
pub enum RunKind {
    /// Append this user message, then run.
    Message(String),
    /// Continue from the last committed step (after a restart).
    Resume,
}

/// What the server is doing with a session now.
enum Slot {
    /// A background run.
    Run {
        /// Cancels the run: it commits `RunEnded { Cancelled }` at its next step.
        cancel: CancellationToken,
        /// Stops the task outright (shutdown only).
        abort: AbortHandle,
    },
    /// The session is being deleted; no run may start.
    Deleting,
}

/// The sessions with a run or a deletion in progress.
#[derive(Default)]
pub struct Runs {
    slots: Mutex<HashMap<SessionId, Slot>>,
    /// Woken whenever a slot is freed, so shutdown can wait for runs to end.
    freed: Notify,
}

impl Runs {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs in progress now.
    pub fn active(&self) -> usize {
        self.slots().values().filter(|slot| matches!(slot, Slot::Run { .. })).count()
    }

    /// Whether the session has a run in progress.
    pub fn is_running(&self, id: &SessionId) -> bool {
        matches!(self.slots().get(id), Some(Slot::Run { .. }))
    }

    /// Cancels the session's run, if it has one; says whether it had.
    pub fn cancel(&self, id: &SessionId) -> bool {
        match self.slots().get(id) {
            Some(Slot::Run { cancel, .. }) => {
                cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Marks the session as being deleted, refusing if a run is in progress; the
    /// mark goes when the returned guard drops.
    pub fn begin_delete(&self, id: SessionId) -> Result<DeleteGuard<'_>, ApiError> {
        let mut slots = self.slots();
        if slots.contains_key(&id) {
            return Err(ApiError::conflict(format!(
                "session {id} has a run in progress; cancel it and wait for it to end before deleting"
            )));
        }
        slots.insert(id, Slot::Deleting);
        Ok(DeleteGuard { runs: self, id })
    }

    fn free(&self, id: &SessionId) {
        self.slots().remove(id);
        self.freed.notify_waiters();
    }

    /// Waits up to `grace` for every run to end, then aborts the rest and waits
    /// (briefly) for their tasks to be dropped.
    pub async fn drain(&self, grace: Duration) {
        if !self.wait_idle(grace).await {
            // Collected first: a task may be dropped, and free its slot, as it is aborted.
            let running: Vec<(SessionId, AbortHandle)> = self
                .slots()
                .iter()
                .filter_map(|(id, slot)| match slot {
                    Slot::Run { abort, .. } => Some((*id, abort.clone())),
                    Slot::Deleting => None,
                })
                .collect();
            let aborted: Vec<SessionId> = running.iter().map(|(id, _)| *id).collect();
            for (_, abort) in running {
                abort.abort();
            }
            tracing::info!(?aborted, "shutdown stopped runs still in progress; they resume at the next start");
            self.wait_idle(Duration::from_secs(5)).await;
        }
    }

    /// Whether every run ended within `limit`.
    async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before checking, so a run ending in between still wakes us.
            freed.as_mut().enable();
            if self.active() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.active() == 0;
            }
        }
    }
}

/// Holds a session's deletion mark.
pub struct DeleteGuard<'a> {
    runs: &'a Runs,
    id: SessionId,
}

impl Drop for DeleteGuard<'_> {
    fn drop(&mut self) {
        self.runs.free(&self.id);
    }
}

/// Frees a run's slot and records its metrics when its task ends or is aborted.
struct RunEntry {
    state: ServerState,
    id: SessionId,
    started: Instant,
    reason: &'static str,
}

impl Drop for RunEntry {
    fn drop(&mut self) {
        self.state.inner.metrics.run_ended(self.started.elapsed(), self.reason);
        self.state.inner.runs.free(&self.id);
    }
}

/// What a message's sender learns: the seq of the committed user message, or why
/// the run could not start.
pub type Accepted = oneshot::Receiver<Result<u64, AgentError>>;

/// Feeds a run's progress to the live channel and the metrics.
struct RunObserver {
    state: ServerState,
    id: SessionId,
    /// When the run last committed, for the tool-call histogram.
    last_commit: Mutex<Instant>,
    /// Told about the first commit (the user message), then emptied.
    accepted: Mutex<Option<oneshot::Sender<Result<u64, AgentError>>>>,
}

impl RunObserver {
    fn take_accepted(&self) -> Option<oneshot::Sender<Result<u64, AgentError>>> {
        self.accepted.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Observer for RunObserver {
    fn stream(&self, event: &StreamEvent) {
        self.state.inner.hub.stream(&self.id, event);
    }

    fn committed(&self, first_seq: u64, events: &[Event]) {
        let now = Instant::now();
        let since = std::mem::replace(&mut *self.last_commit.lock().unwrap_or_else(PoisonError::into_inner), now);
        let metrics = &self.state.inner.metrics;
        for event in events {
            match event {
                Event::ToolResult { is_error, .. } => metrics.tool_call(now - since, *is_error),
                Event::ModelAnswer(answer) => metrics.tokens(&answer.usage),
                _ => {}
            }
        }
        self.state.inner.hub.committed(&self.id, first_seq, events);
        if let Some(accepted) = self.take_accepted() {
            let _ = accepted.send(Ok(first_seq));
        }
    }
}

fn reason_label(reason: &EndReason) -> &'static str {
    match reason {
        EndReason::EndTurn => "end_turn",
        EndReason::MaxTurns => "max_turns",
        EndReason::Budget => "budget",
        EndReason::Cancelled => "cancelled",
        EndReason::Failed => "failed",
    }
}

impl ServerState {
    /// Starts a background run of session `id`. Refused with 409 while the session
    /// has a run (or a deletion) in progress, with 503 once shutdown began. The
    /// receiver learns when the run's first step is committed.
    pub(super) fn spawn_run(&self, id: SessionId, kind: RunKind) -> Result<Accepted, ApiError> {
        let mut slots = self.inner.runs.slots();
        if self.inner.shutdown.is_cancelled() {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down; send the message again once it is back",
            ));
        }
        match slots.get(&id) {
            Some(Slot::Run { .. }) => {
                return Err(ApiError::conflict(format!(
                    "session {id} has a run in progress; wait for it to end or cancel it"
                )));
            }
            Some(Slot::Deleting) => return Err(ApiError::session_not_found(&id)),
            None => {}
        }
        let (accepted, receiver) = oneshot::channel();
        let cancel = CancellationToken::new();
        let kind_label = match kind {
            RunKind::Message(_) => "message",
            RunKind::Resume => "resume",
        };
        // A root span: the run outlives the request that started it, which it only follows.
        let span = tracing::info_span!(parent: None, "run", session = %id, kind = kind_label);
        span.follows_from(tracing::Span::current());
        let state = self.clone();
        let token = cancel.clone();
        // The slot is inserted before this lock is released, and the task's guard
        // takes the lock to free it, so the slot can't be freed before it exists.
        let task = tokio::spawn(
            async move {
                let mut entry = RunEntry { state: state.clone(), id, started: Instant::now(), reason: "interrupted" };
                let observer = RunObserver {
                    state: state.clone(),
                    id,
                    last_commit: Mutex::new(Instant::now()),
                    accepted: Mutex::new(Some(accepted)),
                };
                let agent = &state.inner.agent;
                let result = match &kind {
                    RunKind::Message(text) => agent.send(&id, text, &observer, &token).await,
                    RunKind::Resume => agent.resume(&id, &observer, &token).await,
                };
                match result {
                    Ok(outcome) => {
                        entry.reason = reason_label(&outcome.reason);
                        tracing::info!(reason = entry.reason, error = outcome.error, "run ended");
                    }
                    Err(err) => {
                        entry.reason = "error";
                        tracing::warn!(error = %err, "run stopped");
                        if let Some(accepted) = observer.take_accepted() {
                            let _ = accepted.send(Err(err));
                        }
                    }
                }
            }
            .instrument(span),
        );
        slots.insert(id, Slot::Run { cancel, abort: task.abort_handle() });
        Ok(receiver)
    }

    /// Resumes, in the background, every session the store says was running when
    /// the last process stopped. Returns how many runs it started.
    pub fn resume_interrupted(&self) -> Result<usize, AgentError> {
        let mut started = 0;
        for id in self.inner.agent.interrupted_sessions()? {
            match self.spawn_run(id, RunKind::Resume) {
                Ok(_) => started += 1,
                Err(err) => tracing::warn!(session = %id, error = %err.message, "could not resume"),
            }
        }
        tracing::info!(started, "resumed interrupted sessions");
        Ok(started)
    }
}
