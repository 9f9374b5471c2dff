//! `/mcp`: the tools over MCP's Streamable HTTP, behind the API's bearer tokens.
//!
//! The authentication layer runs before rmcp sees a request: no token or a bad
//! one answers 401 like every other endpoint. The user it finds travels in the
//! request's extensions to the MCP handler, which creates and attaches that
//! user's sessions only. Client calls reach the live event streams and the
//! tool-call metrics like a run's.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use super::auth::AuthUser;
use crate::event::Event;
use crate::mcp::{Hooks, McpUser};
use crate::store::SessionId;

/// The `/mcp` routes, authenticated.
pub(super) fn router(state: &ServerState) -> Router<ServerState> {
    let hooks = Arc::new(ServerHooks { state: state.clone() });
    let service = crate::mcp::http_service(state.inner.agent.clone(), hooks, state.inner.shutdown.child_token());
    Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
}

/// Refuses requests without a valid user token; passes the user on to MCP.
async fn authenticate(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match AuthUser::from_request_parts(&mut parts, &state).await {
        Ok(AuthUser(name)) => {
            parts.extensions.insert(McpUser(name));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refused) => refused.into_response(),
    }
}

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
