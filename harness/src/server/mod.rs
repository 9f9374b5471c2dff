//! `harness serve`: a multi-user HTTP API over one [`Agent`] and its store.
//!
//! JSON in and out, Server-Sent Events for a session's events. Users authenticate
//! with bearer tokens (`Store::add_user`); each sees only their own sessions, and
//! another user's session answers 404 exactly like a missing one. The admin API
//! (users, `/metrics`) takes the token whose hash is in [`ServerConfig`].
//! `/openapi.json` is public: it describes the API and holds no data.
//!
//! Runs happen in the background: a posted message is committed, answered with 202
//! and run by a task, whose events reach every open event stream of the session.
//! [`serve`] first resumes the sessions the last process left running. On shutdown
//! it stops accepting, ends event streams, gives runs a grace period to finish and
//! then drops the rest between awaits: as every step is committed before the next
//! begins, those sessions stay `Running` and resume at the next start.
//!
//! A session may choose, at creation, a model the server offers, a subset of its
//! tools, a network policy and limits ([`SessionSettings`](crate::settings::SessionSettings)):
//! they narrow the server's configuration and never widen it.

mod admin;
pub mod api;
mod auth;
pub mod error;
mod events;
mod files;
mod hub;
mod mcp;
mod metrics;
mod openapi;
mod runs;
mod sessions;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use runtime::vfs::Quota;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::agent::Agent;
use crate::store::{Store, TokenHash};
use error::ApiError;
use hub::Hub;
use metrics::Metrics;
use runs::Runs;

pub use auth::AuthUser;
pub use openapi::openapi;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Hash of the admin token ([`TokenHash::of`]); `None` disables the admin API.
    pub admin_token_hash: Option<TokenHash>,
    /// Largest request body; larger ones answer 413.
    pub max_body_bytes: usize,
    /// How long shutdown waits, from the signal, for open requests to end and runs
    /// to commit their current step before dropping them.
    pub shutdown_grace: Duration,
    /// Interval of keep-alive comments on idle event streams.
    pub keep_alive: Duration,
    /// Quota for a new session's initial files (use the agent's own quota).
    pub quota: Quota,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            admin_token_hash: None,
            max_body_bytes: 1 << 20,
            shutdown_grace: Duration::from_secs(30),
            keep_alive: Duration::from_secs(15),
            quota: Quota::default(),
        }
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct ServerState {
    inner: Arc<Inner>,
}

struct Inner {
    agent: Arc<Agent>,
    store: Store,
    config: ServerConfig,
    runs: Runs,
    hub: Arc<Hub>,
    metrics: Metrics,
    /// Cancelled when shutdown begins: event streams end, new runs are refused.
    shutdown: CancellationToken,
}

impl ServerState {
    /// The state of a server over `agent`.
    pub fn new(agent: Arc<Agent>, config: ServerConfig) -> ServerState {
        let store = agent.store().clone();
        ServerState {
            inner: Arc::new(Inner {
                agent,
                store,
                config,
                runs: Runs::default(),
                hub: Arc::new(Hub::default()),
                metrics: Metrics::default(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Runs in progress now.
    pub fn active_runs(&self) -> usize {
        self.inner.runs.active()
    }

    /// Sessions with an open live channel (an event stream) now.
    pub fn live_channels(&self) -> usize {
        self.inner.hub.channels()
    }
}

/// An HTTP method an endpoint answers.
#[derive(Clone, Copy)]
enum Verb {
    Get,
    Post,
    Delete,
}

/// The router and the list of its routes, built together so the list (which the
/// OpenAPI test checks) can't miss a route.
struct Table {
    router: Router<ServerState>,
    routes: Vec<(Method, &'static str)>,
}

impl Table {
    fn add<H: Handler<T, ServerState>, T: 'static>(mut self, verb: Verb, path: &'static str, handler: H) -> Table {
        let (filter, method) = match verb {
            Verb::Get => (MethodFilter::GET, Method::GET),
            Verb::Post => (MethodFilter::POST, Method::POST),
            Verb::Delete => (MethodFilter::DELETE, Method::DELETE),
        };
        // A second method on a path merges into its method router.
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path));
        self
    }
}

fn table() -> Table {
    use Verb::{Delete, Get, Post};
    Table { router: Router::new(), routes: Vec::new() }
        .add(Get, "/openapi.json", openapi::document)
        .add(Get, "/metrics", admin::metrics)
        .add(Post, "/admin/users", admin::add_user)
        .add(Get, "/admin/users", admin::list_users)
        .add(Delete, "/admin/users/{name}", admin::remove_user)
        .add(Post, "/v1/sessions", sessions::create)
        .add(Get, "/v1/sessions", sessions::list)
        .add(Get, "/v1/sessions/{id}", sessions::show)
        .add(Delete, "/v1/sessions/{id}", sessions::delete)
        .add(Post, "/v1/sessions/{id}/messages", sessions::post_message)
        .add(Post, "/v1/sessions/{id}/cancel", sessions::cancel)
        .add(Post, "/v1/sessions/{id}/fork", sessions::fork)
        .add(Get, "/v1/sessions/{id}/events", events::stream)
        .add(Get, "/v1/sessions/{id}/checkpoints", files::checkpoints)
        .add(Get, "/v1/sessions/{id}/files", files::root)
        .add(Get, "/v1/sessions/{id}/files/{*path}", files::path)
}

/// Every (method, path) the router answers, paths in axum's syntax.
pub fn routes() -> Vec<(Method, &'static str)> {
    let mut routes = table().routes;
    // Served by rmcp's service as a whole, not routed per method.
    routes.extend([Method::POST, Method::GET, Method::DELETE].map(|method| (method, "/mcp")));
    routes
}

/// The API as an axum router.
pub fn app(state: ServerState) -> Router {
    table()
        .router
        .merge(mcp::router(&state))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this endpoint doesn't take that method; see /openapi.json")
        })
        .layer(DefaultBodyLimit::max(state.inner.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// One span per request (the user is added once authenticated), a log line with
/// status and latency, and the request counter.
async fn observe(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        user = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    state.inner.metrics.http(status);
    tracing::info!(parent: &span, status, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "answered");
    response
}

/// Serves the API on `listener` until `shutdown` completes: resumes interrupted
/// sessions first; on shutdown stops accepting, ends event streams, lets every run
/// commit its current step and stop there ([`Agent::stop`](crate::agent::Agent::stop)),
/// and waits up to [`ServerConfig::shutdown_grace`] from the signal for open
/// requests and runs to end, then drops the rest. Either way the sessions stay
/// `Running` and resume at the next start.
pub async fn serve(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Err(err) = state.resume_interrupted() {
        tracing::error!(error = %err, "could not list interrupted sessions; they resume at the next start");
    }
    let stop = state.inner.shutdown.clone();
    let agent = state.inner.agent.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; event streams end; runs stop at their next step");
        stop.cancel();
        // At the signal, not once every connection has closed: runs would otherwise
        // keep taking steps (and paying for model calls) while clients disconnect.
        agent.stop();
    };
    let stopping = state.inner.shutdown.clone();
    let mut server =
        std::pin::pin!(axum::serve(listener, app(state.clone())).with_graceful_shutdown(signal).into_future());
    let drained = tokio::select! {
        result = &mut server => {
            result?;
            true
        }
        () = stopping.cancelled() => false,
    };
    // The grace runs from the signal and bounds the whole shutdown: axum waits for
    // every connection to close, and a client that keeps a request unfinished (or
    // stops reading) would otherwise hold the process forever.
    let deadline = tokio::time::Instant::now() + state.inner.config.shutdown_grace;
    if !drained {
        match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!("connections still open at the end of the grace period are dropped"),
        }
    }
    state.inner.agent.stop();
    state.inner.runs.drain(deadline.saturating_duration_since(tokio::time::Instant::now())).await;
    tracing::info!("server stopped");
    Ok(())
}
