//! The sandboxed tools over the Model Context Protocol, for agents built on other
//! harnesses (Claude Code, Codex, goose, IDEs).
//!
//! Built on `rmcp`, the official Rust SDK, which speaks both revisions it knows:
//! `2025-11-25` with its `initialize` handshake and sessions, and the stateless
//! `2026-07-28`, where every request stands alone. Two transports: stdio
//! ([`serve_stdio`], `harness mcp`) and Streamable HTTP (`/mcp` on `harness serve`,
//! behind the API's bearer tokens).
//!
//! Every MCP client works in a harness session of its own: a durable filesystem,
//! network policy and limits, like any other session. Each `tools/call` is
//! committed as one step ([`Agent::call_tool`]). Which session a request uses:
//! - the one named by the `Harness-Session` header (HTTP) or `--session` (stdio),
//!   if the caller owns it;
//! - else, within an MCP session (stdio, or HTTP with the handshake), the one
//!   created for it at its first tool call;
//! - else (a stateless request without the header) the caller's default MCP
//!   session, created at its first use: stateless requests carry no identity of
//!   their own, so the session is the user's.

mod binding;
mod tools;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::event::Event;
use crate::settings::SessionSettings;
use crate::store::SessionId;
use binding::{Binding, Caller};

/// The header naming the session an HTTP request attaches to.
pub const SESSION_HEADER: &str = "harness-session";

/// How long an MCP session over HTTP may stay idle before it is closed (its
/// harness session stays, and can be attached to again).
pub const MCP_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// The title of sessions created for MCP clients (and of a user's default one).
pub const SESSION_TITLE: &str = "MCP client";

/// The authenticated user of an HTTP request, put in its extensions by the
/// server's authentication layer before the request reaches MCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpUser(pub String);

/// How MCP clients' sessions are set up.
#[derive(Clone, Debug, Default)]
pub struct McpOptions {
    /// The settings of the sessions created for MCP clients.
    pub settings: SessionSettings,
    /// Over stdio: who owns the sessions (over HTTP, the authenticated user does).
    pub owner: String,
    /// Over stdio: the session to attach to instead of creating one.
    pub session: Option<SessionId>,
}

/// Told about every committed client call: the server feeds its live event
/// streams and metrics from here.
pub trait Hooks: Send + Sync {
    /// `events` were committed to `session` (the first with `first_seq`) by a
    /// call that took `took`.
    fn committed(&self, session: &SessionId, first_seq: u64, events: &[Event], took: Duration);
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {
    fn committed(&self, _: &SessionId, _: u64, _: &[Event], _: Duration) {}
}

/// What every handler instance shares.
struct Shared {
    agent: Arc<Agent>,
    options: McpOptions,
    hooks: Arc<dyn Hooks>,
    /// Serializes the creation of users' default sessions, so two first requests
    /// don't create two.
    defaults: tokio::sync::Mutex<()>,
    /// One lock per session with client calls in flight, so they take turns.
    turns: std::sync::Mutex<HashMap<SessionId, Weak<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    fn new(agent: Arc<Agent>, options: McpOptions, hooks: Arc<dyn Hooks>) -> Arc<Shared> {
        Arc::new(Shared { agent, options, hooks, defaults: Default::default(), turns: Default::default() })
    }

    /// The lock client calls to session `id` take turns on.
    fn session_lock(&self, id: SessionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = turns.get(&id).and_then(Weak::upgrade) {
            return lock;
        }
        // Entries of sessions nobody is calling are dropped as new ones come.
        turns.retain(|_, lock| lock.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        turns.insert(id, Arc::downgrade(&lock));
        lock
    }
}

/// The MCP server: one instance per MCP session (or per stateless request).
#[derive(Clone)]
pub struct McpServer {
    shared: Arc<Shared>,
    binding: Binding,
}

impl McpServer {
    fn new(shared: Arc<Shared>) -> McpServer {
        McpServer { shared, binding: Binding::default() }
    }
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve_stdio(agent: Arc<Agent>, options: McpOptions) -> anyhow::Result<()> {
    let service =
        match McpServer::new(Shared::new(agent, options, Arc::new(NoHooks))).serve(rmcp::transport::stdio()).await {
            Ok(service) => service,
            // A host that starts the command and closes it without connecting.
            Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
    service.waiting().await?;
    Ok(())
}

/// The Streamable HTTP service, to mount at `/mcp` behind a layer that
/// authenticates each request and inserts its [`McpUser`]. It stops its streams
/// when `shutdown` is cancelled.
pub fn http_service(
    agent: Arc<Agent>,
    hooks: Arc<dyn Hooks>,
    shutdown: CancellationToken,
) -> StreamableHttpService<McpServer, LocalSessionManager> {
    let shared = Shared::new(agent, McpOptions::default(), hooks);
    // Host checks guard unauthenticated local servers against DNS rebinding; this
    // endpoint takes a bearer token, which a rebinding page can't present, and
    // operators reach it by names we can't know.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts().with_cancellation_token(shutdown);
    // rmcp closes an MCP session idle for 5 minutes by default; a client back from a
    // longer pause would then start over in a new harness session, its files out of
    // sight. Half an hour covers a break; `Harness-Session` covers the rest.
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(MCP_SESSION_IDLE);
    StreamableHttpService::new(move || Ok(McpServer::new(shared.clone())), Arc::new(sessions), config)
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agent-harness", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools run in a WebAssembly sandbox on a durable filesystem of this session's own; \
                 every call is checkpointed. Outbound requests pass the host's network policy, and \
                 credentials are added by the host, never seen by tools.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let toolbox = binding::toolbox(&self.shared, &self.binding, &Caller::of(&self.shared, &context)?).await?;
        Ok(ListToolsResult::with_all_items(tools::list(&toolbox)))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::describe(self.shared.agent.toolbox(), name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = Caller::of(&self.shared, &context)?;
        binding::call(&self.shared, &self.binding, &caller, request).await.map(Into::into)
    }
}
