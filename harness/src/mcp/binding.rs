//! Which harness session an MCP request works in, and running its calls there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use runtime::Toolbox;
use serde_json::Value;
use tracing::Instrument;

use super::{McpUser, SESSION_HEADER, SESSION_TITLE, Shared, tools};
use crate::agent::{AgentError, Attached, Observer, SessionOptions};
use crate::event::Event;
use crate::store::{SessionId, Status, StoreError};

/// The title of a user's default session, used by stateless requests that name none.
const DEFAULT_TITLE: &str = "MCP client (default)";

/// The harness session an MCP session (stdio, or HTTP with the handshake) works
/// in, from its first tool call on. Calls of one MCP session run one at a time.
/// Only the user who opened an MCP session reaches it: the server's
/// authentication layer answers anyone else's requests naming it with 404.
#[derive(Clone, Default)]
pub(super) struct Binding(Arc<tokio::sync::Mutex<Option<Attached>>>);

/// Who makes a request, and what it asks for.
pub(super) struct Caller {
    owner: String,
    /// The session the request names, if any.
    requested: Option<SessionId>,
    /// A stateless request: there is no MCP session to bind to.
    per_request: bool,
    /// Whether the caller must own the sessions it names (not on stdio, whose
    /// user has the database itself).
    owns_only_own: bool,
}

impl Caller {
    /// The caller of `context`: the authenticated user over HTTP (with the
    /// `Harness-Session` header), the configured owner on stdio.
    pub fn of(shared: &Shared, context: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        let Some(parts) = context.extensions.get::<http::request::Parts>() else {
            return Ok(Caller {
                owner: shared.options.owner.clone(),
                requested: shared.options.session,
                per_request: false,
                owns_only_own: false,
            });
        };
        let McpUser(owner) = parts
            .extensions
            .get::<McpUser>()
            .cloned()
            .ok_or_else(|| McpError::internal_error("the request reached MCP without authentication", None))?;
        let requested = match parts.headers.get(SESSION_HEADER) {
            None => None,
            Some(value) => {
                let text = value.to_str().unwrap_or_default();
                Some(text.trim().parse::<SessionId>().map_err(|_| {
                    McpError::invalid_params(format!("the {SESSION_HEADER} header {text:?} is not a session id"), None)
                })?)
            }
        };
        // Requests of the stateless revision carry their protocol version in `_meta`.
        let per_request = context.meta.protocol_version().is_some();
        Ok(Caller { owner, requested, per_request, owns_only_own: true })
    }
}

/// The tools the caller's session offers (nothing is created to answer).
pub(super) async fn toolbox(
    shared: &Arc<Shared>,
    binding: &Binding,
    caller: &Caller,
) -> Result<Arc<Toolbox>, McpError> {
    if let Some(id) = caller.requested {
        return Ok(open(shared, caller, id).await?.toolbox().clone());
    }
    if !caller.per_request
        && let Some(attached) = binding.0.lock().await.as_ref()
    {
        return Ok(attached.toolbox().clone());
    }
    shared.agent.tools_for(&shared.options.settings).map_err(to_mcp)
}

/// Runs one `tools/call` in the caller's session.
pub(super) async fn call(
    shared: &Arc<Shared>,
    binding: &Binding,
    caller: &Caller,
    request: CallToolRequestParams,
) -> Result<CallToolResult, McpError> {
    let name = request.name.to_string();
    let input = Value::Object(request.arguments.unwrap_or_default());
    if caller.per_request {
        let mut attached = match caller.requested {
            Some(id) => open(shared, caller, id).await?,
            None => default_session(shared, caller).await?,
        };
        return run(shared, &mut attached, &name, input).await;
    }
    let mut slot = binding.0.lock().await;
    let rebind = match (slot.as_ref(), caller.requested) {
        (None, _) => true,
        (Some(attached), Some(id)) => *attached.id() != id,
        (Some(_), None) => false,
    };
    if rebind {
        *slot = Some(match caller.requested {
            Some(id) => open(shared, caller, id).await?,
            None => create(shared, caller, SESSION_TITLE).await?,
        });
    }
    let attached = slot.as_mut().expect("bound above");
    run(shared, attached, &name, input).await
}

async fn run(
    shared: &Arc<Shared>,
    attached: &mut Attached,
    name: &str,
    input: Value,
) -> Result<CallToolResult, McpError> {
    if attached.toolbox().spec(name).is_none() {
        let known: Vec<&str> = attached.toolbox().specs().map(|spec| spec.name.as_str()).collect();
        return Err(McpError::invalid_params(
            format!("there is no tool named `{name}`; the tools are: {}", known.join(", ")),
            None,
        ));
    }
    let id = *attached.id();
    // Clients of one session (stateless requests, several MCP sessions attached
    // to it) take turns rather than being refused as busy.
    let turn = shared.session_lock(id);
    let _turn = turn.lock().await;
    let observer = Hooked { shared: shared.clone(), session: id, started: Instant::now() };
    let span = tracing::info_span!("mcp_call", session = %id, tool = %name);
    match shared.agent.call_tool(attached, name, input, &observer).instrument(span).await {
        Ok(result) => Ok(tools::result(&id, result)),
        Err(err) => Err(to_mcp(err)),
    }
}

/// Session `id` opened for the caller; another user's answers like a missing one.
async fn open(shared: &Arc<Shared>, caller: &Caller, id: SessionId) -> Result<Attached, McpError> {
    let (agent, owner, check) = (shared.agent.clone(), caller.owner.clone(), caller.owns_only_own);
    blocking(move || {
        let session = agent.store().session(&id)?;
        if check && session.owner != owner {
            return Err(AgentError::Store(StoreError::SessionNotFound(id)));
        }
        agent.attach(&id)
    })
    .await
}

/// A new session for the caller, with the configured settings.
async fn create(shared: &Arc<Shared>, caller: &Caller, title: &str) -> Result<Attached, McpError> {
    let (agent, owner) = (shared.agent.clone(), caller.owner.clone());
    let options = SessionOptions { settings: shared.options.settings.clone(), ..SessionOptions::titled(title) };
    blocking(move || {
        let id = agent.create_session(&owner, options, None)?;
        tracing::info!(session = %id, owner, "session created for an MCP client");
        agent.attach(&id)
    })
    .await
}

/// The caller's default session: the latest idle one titled [`DEFAULT_TITLE`],
/// created if there is none.
async fn default_session(shared: &Arc<Shared>, caller: &Caller) -> Result<Attached, McpError> {
    let _one_at_a_time = shared.defaults.lock().await;
    let (agent, owner) = (shared.agent.clone(), caller.owner.clone());
    let existing = blocking(move || {
        let sessions = agent.store().list_sessions(Some(&owner))?;
        Ok(sessions
            .into_iter()
            .filter(|s| s.title.as_deref() == Some(DEFAULT_TITLE) && s.status != Status::Running)
            .max_by_key(|s| s.created)
            .map(|s| s.id))
    })
    .await?;
    match existing {
        Some(id) => open(shared, caller, id).await,
        None => create(shared, caller, DEFAULT_TITLE).await,
    }
}

/// Runs store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, McpError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(to_mcp),
        Err(err) => Err(McpError::internal_error(format!("the store task failed: {err}"), None)),
    }
}

/// The MCP error for a call that could not be made or recorded.
fn to_mcp(err: AgentError) -> McpError {
    match err {
        AgentError::Busy(id) => {
            McpError::invalid_request(format!("session {id} has a run in progress; call again when it has ended"), None)
        }
        AgentError::InvalidSettings(message) => McpError::invalid_request(message, None),
        AgentError::Store(StoreError::SessionNotFound(id)) => {
            McpError::invalid_params(format!("there is no session {id}"), None)
        }
        other => {
            tracing::error!(error = %other, "an MCP call failed");
            McpError::internal_error(other.to_string(), None)
        }
    }
}

/// Passes a call's committed events to the hooks.
struct Hooked {
    shared: Arc<Shared>,
    session: SessionId,
    started: Instant,
}

impl Observer for Hooked {
    fn committed(&self, first_seq: u64, events: &[Event]) {
        let took: Duration = self.started.elapsed();
        self.shared.hooks.committed(&self.session, first_seq, events, took);
    }
}
