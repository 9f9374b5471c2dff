//! The durable agent loop: model → tool calls → results → model, one committed
//! step at a time.
//!
//! A run keeps no state of its own beyond what it committed. It starts by reading
//! the session's log back ([`transcript`]), restores the filesystem at the head
//! checkpoint, and continues at the first uncommitted step. So a run after a crash
//! is the same code path as a fresh one: a committed model answer is never
//! requested again, a committed tool result never re-run; an idempotent call
//! without a result re-runs on the restored filesystem, a non-idempotent one that
//! may have started is reported to the model as interrupted.
//!
//! Steps and their transactions:
//! - the user message (status `Running`);
//! - each model answer, and with it the run's end when it asks for no tools;
//! - before a non-idempotent call, `ToolStarted`;
//! - each tool result with the filesystem root and new objects (a batch of
//!   concurrent read-only calls commits as one step: they can't change files);
//! - the run's end (`RunEnded`, with an `Error` first when it failed).

mod calls;
mod client;
mod price;
mod scope;
mod transcript;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use runtime::net::Network;
use runtime::vfs::{Quota, Snapshot, Timestamp};
use runtime::{DEFAULT_MOUNT, Limits, Runtime, Toolbox, Workspace};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::conversation::{StreamEvent, ToolDef, Usage};
use crate::event::{EndReason, Event};
use crate::provider::Provider;
use crate::store::{SessionId, Status, Step, Store, StoreError};

pub use client::{Attached, ClientCallResult};
pub use price::{Budget, Price, PriceTable};
pub use scope::SessionOptions;
use scope::{Scope, definitions, request};
use transcript::{Next, Transcript};

/// How runs behave.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The system prompt.
    pub system: Option<String>,
    /// Most model calls in one run.
    pub max_turns: u32,
    /// Most tokens of one answer.
    pub max_answer_tokens: u32,
    /// What a session may spend.
    pub budget: Budget,
    /// Model prices, for cost and the cost budget.
    pub prices: PriceTable,
    /// The filesystem quota of every session.
    pub quota: Quota,
    /// The time tools see when they write files.
    pub clock: Clock,
    /// Models a session may choose besides the agent's own; `*` allows any.
    pub models: Vec<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            system: None,
            max_turns: 50,
            max_answer_tokens: crate::provider::DEFAULT_MAX_TOKENS,
            budget: Budget::default(),
            prices: PriceTable::default(),
            quota: Quota::default(),
            clock: Clock::System,
            models: Vec::new(),
        }
    }
}

/// The clock tool calls see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The commit time of the model answer that asked for the call: real time,
    /// and the same again when a call is re-run after a crash.
    System,
    /// A fixed instant, so two separate runs of one script build identical
    /// filesystems (tests, reproducible demos).
    Fixed(Timestamp),
}

/// Receives a run's progress: streamed model output (display only) and every
/// committed event with its sequence number.
pub trait Observer: Send + Sync {
    /// Part of a model answer as it streams in.
    fn stream(&self, _event: &StreamEvent) {}
    /// Events just committed; the first has sequence number `first_seq`.
    fn committed(&self, _first_seq: u64, _events: &[Event]) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOutcome {
    /// Why it ended.
    pub reason: EndReason,
    /// What went wrong, when it failed.
    pub error: Option<String>,
    /// The session's usage so far.
    pub usage: Usage,
    /// The session's cost so far, in US dollars.
    pub cost_usd: f64,
    /// The run stopped because the agent is shutting down, before its end: the
    /// session stays `Running` and resumes at the next start.
    pub stopped: bool,
}

/// Why a run could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The store failed; the run stopped at its last committed step.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another run of the session is in progress in this process.
    #[error("session {0} is already running")]
    Busy(SessionId),
    /// The settings asked for at creation are not allowed or make no sense.
    #[error("{0}")]
    InvalidSettings(String),
    /// The session's filesystem could not be restored or snapshotted.
    #[error("session {session} filesystem: {reason}")]
    Filesystem {
        /// The session.
        session: SessionId,
        /// What failed.
        reason: String,
    },
}

/// The harness: a runtime with its tools, a store, a provider and a config.
/// Cheap to share; it holds no per-session state except which sessions run now.
pub struct Agent {
    runtime: Runtime,
    toolbox: Arc<Toolbox>,
    tool_defs: Arc<[ToolDef]>,
    limits: Limits,
    network: Arc<Network>,
    store: Store,
    provider: Arc<dyn Provider>,
    model: String,
    config: AgentConfig,
    running: Mutex<HashSet<SessionId>>,
    stopping: CancellationToken,
}

impl Agent {
    /// An agent running `model` on `provider` with `toolbox`'s tools.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        runtime: Runtime,
        toolbox: Arc<Toolbox>,
        limits: Limits,
        network: Arc<Network>,
        store: Store,
        provider: Arc<dyn Provider>,
        model: String,
        config: AgentConfig,
    ) -> Agent {
        let tool_defs = definitions(&toolbox);
        Agent {
            runtime,
            toolbox,
            tool_defs,
            limits,
            network,
            store,
            provider,
            model,
            config,
            running: Mutex::new(HashSet::new()),
            stopping: CancellationToken::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops every run at its next step boundary without ending it: a model call
    /// in flight is dropped (it was never committed), a tool call finishes and
    /// commits. The sessions stay `Running` and resume at the next start. For a
    /// graceful shutdown.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Sessions with a run in progress in this process.
    pub fn running(&self) -> usize {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The filesystem quota every session runs under.
    pub fn quota(&self) -> Quota {
        self.config.quota
    }

    /// The tools every session may use (a session's settings may narrow them).
    pub fn toolbox(&self) -> &Arc<Toolbox> {
        &self.toolbox
    }

    /// The model sessions run unless they choose another.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// A new idle session for `owner`, starting from `workspace` (empty if `None`).
    pub fn create_session(
        &self,
        owner: &str,
        options: SessionOptions,
        workspace: Option<&Snapshot>,
    ) -> Result<SessionId, AgentError> {
        Ok(self.store.create_session(self.new_session(owner, options)?, workspace)?.id)
    }

    /// Creates a session with its first user message in one transaction, then
    /// runs it: after a crash the session either doesn't exist or resumes.
    pub async fn start(
        &self,
        owner: &str,
        options: SessionOptions,
        workspace: Option<&Snapshot>,
        text: &str,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<(SessionId, RunOutcome), AgentError> {
        let text = self.network.redactor().redact_str(text);
        let events = vec![Event::UserMessage { text }];
        let step = Step { events: events.clone(), snapshot: None, status: Some(Status::Running) };
        let id = self.store.create_session_with(self.new_session(owner, options)?, workspace, Some(&step))?.id;
        let _guard = self.claim(&id)?;
        observer.committed(1, &events);
        let outcome = self.drive(&id, observer, cancel).await?;
        Ok((id, outcome))
    }

    /// Appends a user message (one committed step, status `Running`) and runs
    /// until the run ends.
    pub async fn send(
        &self,
        id: &SessionId,
        text: &str,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, AgentError> {
        let _guard = self.claim(id)?;
        // Persisted and sent to the model: neither may hold a secret.
        let text = self.network.redactor().redact_str(text);
        self.commit(id, vec![Event::UserMessage { text }], None, Some(Status::Running), observer)?;
        self.drive(id, observer, cancel).await
    }

    /// Continues a session from its last committed step (after a crash, a deploy
    /// or a cancel of the process). A session with no open run just reports idle.
    pub async fn resume(
        &self,
        id: &SessionId,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, AgentError> {
        let _guard = self.claim(id)?;
        self.drive(id, observer, cancel).await
    }

    /// Every session whose status says a run was in progress.
    pub fn interrupted_sessions(&self) -> Result<Vec<SessionId>, AgentError> {
        Ok(self.store.sessions_with_status(Status::Running)?.into_iter().map(|s| s.id).collect())
    }

    fn claim(&self, id: &SessionId) -> Result<RunGuard<'_>, AgentError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if !running.insert(*id) {
            return Err(AgentError::Busy(*id));
        }
        Ok(RunGuard { agent: self, id: *id })
    }

    /// A sandbox for session `id` in `scope`, on its filesystem at `step`.
    fn sandbox(&self, id: &SessionId, step: u64, scope: &Scope) -> Result<runtime::Session, AgentError> {
        let vfs = self
            .store
            .restore(id, step, self.config.quota)
            .map_err(|err| AgentError::Filesystem { session: *id, reason: err.to_string() })?;
        Ok(runtime::Session::new(&self.runtime, scope.toolbox.clone(), self.limits.clone())
            .with_workspace(Workspace::new(vfs, DEFAULT_MOUNT))
            .with_network(scope.network.clone()))
    }

    /// Commits one step and tells the observer; returns the first event's seq.
    fn commit(
        &self,
        id: &SessionId,
        events: Vec<Event>,
        snapshot: Option<Snapshot>,
        status: Option<Status>,
        observer: &dyn Observer,
    ) -> Result<u64, AgentError> {
        let count = events.len() as u64;
        let step = Step { events, snapshot, status };
        let checkpoint = off_the_workers(|| self.store.commit_step(id, &step))?;
        let first = checkpoint.last_seq + 1 - count;
        observer.committed(first, &step.events);
        Ok(first)
    }

    /// The loop: reads the log, then takes steps until the run ends.
    async fn drive(
        &self,
        id: &SessionId,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, AgentError> {
        let span = tracing::info_span!("session_run", session = %id);
        self.drive_steps(id, observer, cancel).instrument(span).await
    }

    async fn drive_steps(
        &self,
        id: &SessionId,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, AgentError> {
        let meta = self.store.session(id)?;
        let mut transcript = Transcript::from_log(&self.store.events(id)?);
        let mut usage = meta.usage;
        if transcript.next() == Next::Idle {
            // Nothing to run: don't restore a filesystem or build a sandbox session.
            let reason = transcript.last_end().cloned().unwrap_or(EndReason::EndTurn);
            let cost_usd = self.config.prices.cost(&meta.model, &usage);
            return Ok(RunOutcome { reason, error: None, usage, cost_usd, stopped: false });
        }
        let scope = self.scope(&meta.settings);
        let session = self.sandbox(id, meta.head.last_step, &scope)?;
        let mut root = meta.head.root;
        let model = meta.model.clone();
        // Messages before this index have been checked for secrets.
        let mut scanned = 0;

        let stopped = |usage: Usage| {
            let cost_usd = self.config.prices.cost(&model, &usage);
            let reason = EndReason::Cancelled;
            Ok(RunOutcome { reason, error: None, usage, cost_usd, stopped: true })
        };
        loop {
            // A run whose model and tools answer without waiting (a replay, quick
            // tools) would otherwise hold its runtime thread from start to end:
            // signals, event streams and API requests are served between steps.
            tokio::task::yield_now().await;
            if self.stopping.is_cancelled() && transcript.next() != Next::Idle {
                return stopped(usage);
            }
            let end = |reason: EndReason, error: Option<String>| (reason, error);
            let ended = match transcript.next() {
                Next::Idle => {
                    let cost_usd = self.config.prices.cost(&model, &usage);
                    let reason = transcript.last_end().cloned().unwrap_or(EndReason::EndTurn);
                    return Ok(RunOutcome { reason, error: None, usage, cost_usd, stopped: false });
                }
                _ if cancel.is_cancelled() => Some(end(EndReason::Cancelled, None)),
                Next::End => Some(end(EndReason::EndTurn, None)),
                Next::Tools(calls) => {
                    let now = match self.config.clock {
                        Clock::Fixed(now) => now,
                        Clock::System => timestamp(transcript.answer_time().unwrap_or_else(SystemTime::now)),
                    };
                    let ran = calls::run(self, id, &session, now, &mut root, calls, observer, cancel).await?;
                    for event in &ran {
                        transcript.apply(event, SystemTime::now());
                    }
                    continue;
                }
                Next::Model => {
                    let cost = self.config.prices.cost(&model, &usage);
                    if transcript.turns_in_run >= scope.max_turns {
                        Some(end(EndReason::MaxTurns, None))
                    } else {
                        scope.budget.exhausted(&usage, cost).map(|why| end(EndReason::Budget, Some(why)))
                    }
                }
            };
            if let Some((reason, error)) = ended {
                // Every call the model asked for gets a result, or the next request
                // would be refused by the provider.
                let mut events: Vec<Event> = match transcript.next() {
                    Next::Tools(calls) => calls.iter().map(|call| calls::cancelled(call, "before it ran")).collect(),
                    _ => Vec::new(),
                };
                if let Some(message) = &error
                    && reason != EndReason::Budget
                {
                    events.push(Event::Error { message: message.clone() });
                }
                events.push(Event::RunEnded { reason: reason.clone() });
                self.commit(id, events.clone(), None, Some(final_status(&reason)), observer)?;
                for event in &events {
                    transcript.apply(event, SystemTime::now());
                }
                let cost_usd = self.config.prices.cost(&model, &usage);
                return Ok(RunOutcome { reason, error, usage, cost_usd, stopped: false });
            }

            let turn = tracing::info_span!("turn", n = transcript.turns_in_run + 1, model = %model);
            let messages = std::mem::take(&mut transcript.messages);
            let request = request(&model, &scope, messages, &mut scanned, self.config.max_answer_tokens);
            let mut on_event = |event: StreamEvent| observer.stream(&event);
            let answer = tokio::select! {
                answer = self.provider.complete(&request, &mut on_event).instrument(turn) => Some(answer),
                () = cancel.cancelled() => None,
                () = self.stopping.cancelled() => None,
            };
            transcript.messages = request.messages;
            let answer = match answer {
                Some(answer) => answer,
                None if self.stopping.is_cancelled() => return stopped(usage),
                None => continue,
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(err) => {
                    let message = self.network.redactor().redact_str(&err.to_string());
                    tracing::warn!(session = %id, error = %message, "model call failed");
                    let events =
                        vec![Event::Error { message: message.clone() }, Event::RunEnded { reason: EndReason::Failed }];
                    self.commit(id, events, None, Some(Status::Failed), observer)?;
                    let cost_usd = self.config.prices.cost(&model, &usage);
                    return Ok(RunOutcome {
                        reason: EndReason::Failed,
                        error: Some(message),
                        usage,
                        cost_usd,
                        stopped: false,
                    });
                }
            };
            usage += answer.usage;
            let mut events = vec![Event::ModelAnswer(answer)];
            transcript.apply(&events[0], SystemTime::now());
            let mut status = None;
            if transcript.next() == Next::End {
                events.push(Event::RunEnded { reason: EndReason::EndTurn });
                status = Some(Status::Finished);
            }
            self.commit(id, events.clone(), None, status, observer)?;
            if status.is_some() {
                transcript.apply(&events[1], SystemTime::now());
            }
        }
    }
}

/// Runs `commit` where it doesn't hold up other tasks: a durable commit waits for
/// the disk (an fsync) and for other sessions' commits (redb takes one write
/// transaction at a time), and on a multi-thread runtime `block_in_place` lets
/// the worker's other tasks (API requests, event streams, other runs' tool calls)
/// move to another thread meanwhile. A current-thread runtime has nowhere to move
/// them, so there it simply runs.
fn off_the_workers<T>(commit: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(commit)
        }
        _ => commit(),
    }
}

/// Releases a session's run claim when the run returns, however it returns.
struct RunGuard<'a> {
    agent: &'a Agent,
    id: SessionId,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.agent.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

fn final_status(reason: &EndReason) -> Status {
    match reason {
        EndReason::Failed => Status::Failed,
        EndReason::Cancelled => Status::Cancelled,
        _ => Status::Finished,
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp { secs: since.as_secs(), nanos: since.subsec_nanos() }
}
