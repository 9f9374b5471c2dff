//! `/mcp`: the tools over MCP's Streamable HTTP, behind the API's bearer tokens.
//!
//! The authentication layer runs before rmcp sees a request: no token or a bad
//! one answers 401 like every other endpoint, and an MCP session opened by
//! another user answers 404. The user it finds travels in the request's
//! extensions to the MCP handler, which creates and attaches that user's
//! sessions only. Client calls reach the live event streams and the
//! tool-call metrics like a run's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use super::auth::AuthUser;
use super::error::ApiError;
use crate::event::Event;
use crate::mcp::{Hooks, McpUser};
use crate::store::SessionId;

/// The `/mcp` routes, authenticated.
pub(super) fn router(state: &ServerState) -> Router<ServerState> {
    let hooks = Arc::new(ServerHooks { state: state.clone() });
    let service = crate::mcp::http_service(state.inner.agent.clone(), hooks, state.inner.shutdown.child_token());
    let gate = Gate { state: state.clone(), owners: Arc::default() };
    Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn_with_state(gate, authenticate))
}

/// What the authentication layer needs: the server, and who opened each MCP
/// session, so no one else can use, stream or end it.
#[derive(Clone)]
struct Gate {
    state: ServerState,
    /// `Mcp-Session-Id` → the user who opened it.
    owners: Arc<Mutex<HashMap<String, String>>>,
}

/// Refuses requests without a valid user token, and requests naming an MCP
/// session another user opened (404, as for one that doesn't exist); passes the
/// user on to MCP and remembers who opens which MCP session.
async fn authenticate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let user = match AuthUser::from_request_parts(&mut parts, &gate.state).await {
        Ok(AuthUser(name)) => name,
        Err(refused) => return refused.into_response(),
    };
    let named = parts.headers.get(MCP_SESSION_ID).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let owners = || gate.owners.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(id) = &named
        && owners().get(id).is_some_and(|owner| *owner != user)
    {
        return ApiError::new(StatusCode::NOT_FOUND, "no such MCP session").into_response();
    }
    let ending = parts.method == Method::DELETE;
    parts.extensions.insert(McpUser(user.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    match &named {
        None => {
            if let Some(opened) = response.headers().get(MCP_SESSION_ID).and_then(|value| value.to_str().ok()) {
                owners().insert(opened.to_owned(), user);
            }
        }
        // Ended, or expired in rmcp (it answers 404 for a session it no longer has).
        Some(id) if (ending && response.status().is_success()) || response.status() == StatusCode::NOT_FOUND => {
            owners().remove(id);
        }
        Some(_) => {}
    }
    response
}

/// The header naming an MCP session (Streamable HTTP, 2025-11-25).
const MCP_SESSION_ID: &str = "mcp-session-id";

/// Feeds client calls to the live channels and the metrics.
struct ServerHooks {
    state: ServerState,
}

impl Hooks for ServerHooks {
    fn committed(&self, session: &SessionId, first_seq: u64, events: &[Event], took: Duration) {
        for event in events {
            if let Event::ClientToolCall { is_error, .. } = event {
                self.state.inner.metrics.tool_call(took, *is_error);
            }
        }
        self.state.inner.hub.committed(session, first_seq, events);
    }
}
