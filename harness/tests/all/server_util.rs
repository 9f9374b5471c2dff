//! A real server for the server tests: 127.0.0.1:0, a temp redb file, the built-in
//! tools, a replayed (or stalled, or gated) model, and a reqwest client.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use harness::agent::{Agent, AgentConfig, Clock};
use harness::conversation::{ModelAnswer, ModelRequest, StreamEvent};
use harness::provider::{Provider, ProviderError, ReplayProvider};
use harness::server::api::EventRecord;
use harness::server::{ServerConfig, ServerState};
use harness::store::{Store, TokenHash};
use reqwest::{Method, RequestBuilder, Response};
use runtime::Limits;
use runtime::net::Network;
use runtime::vfs::Timestamp;
use serde_json::Value;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::agent::cassette;

/// The admin token of every test server.
pub const ADMIN: &str = "test-admin-token";

/// A model that never answers, so a run stays in progress until cancelled.
pub struct Stalled;

#[async_trait::async_trait]
impl Provider for Stalled {
    fn name(&self) -> &str {
        "stalled"
    }
    async fn complete(
        &self,
        _request: &ModelRequest,
        _on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        std::future::pending().await
    }
}

/// A replayed model that answers only when the test adds a permit.
pub struct Gated {
    pub inner: ReplayProvider,
    pub permits: Semaphore,
}

#[async_trait::async_trait]
impl Provider for Gated {
    fn name(&self) -> &str {
        "replay"
    }
    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        self.permits.acquire().await.expect("never closed").forget();
        self.inner.complete(request, on_event).await
    }
}

/// A replay provider for `answers`.
pub fn replay(dir: &std::path::Path, answers: Vec<ModelAnswer>) -> ReplayProvider {
    ReplayProvider::new(cassette(answers), dir.join("cassette.json"))
}

/// An agent over every built-in tool, the store at `store` and `provider`.
pub async fn agent(store: Store, provider: Arc<dyn Provider>) -> Agent {
    let runtime = crate::runtime();
    let tools = harness::toolset::load(&runtime, None).await;
    assert!(tools.rejected.is_empty(), "{:?}", tools.rejected);
    let config =
        AgentConfig { clock: Clock::Fixed(Timestamp { secs: 1_700_000_000, nanos: 0 }), ..AgentConfig::default() };
    Agent::new(
        runtime,
        Arc::new(tools.toolbox),
        Limits::default(),
        Arc::new(Network::default()),
        store,
        provider,
        "scripted".into(),
        config,
    )
}

/// The server config of the tests: the admin token above, a short shutdown grace.
pub fn config() -> ServerConfig {
    ServerConfig {
        admin_token_hash: Some(TokenHash::of(ADMIN)),
        shutdown_grace: Duration::from_millis(300),
        ..ServerConfig::default()
    }
}

/// A server running in this process.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's state (runs, store).
    pub state: ServerState,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Serves `agent` with `config`.
    pub async fn start(agent: Agent, config: ServerConfig) -> TestServer {
        let state = ServerState::new(Arc::new(agent), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(harness::server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer { url, state, client: reqwest::Client::new(), stop: Some(stop), task: Some(task) }
    }

    /// A server over a fresh database in `dir` replaying `answers`.
    pub async fn replaying(dir: &std::path::Path, answers: Vec<ModelAnswer>) -> TestServer {
        let store = Store::open(dir.join("harness.redb")).expect("store");
        TestServer::start(agent(store, Arc::new(replay(dir, answers))).await, config()).await
    }

    /// Shuts down and waits for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("serve returns after shutdown")
                .expect("serve task")
                .expect("serve");
        }
    }

    /// A request to `path` with `token` as bearer, if any.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request with an optional JSON body; answers status and body text.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, String) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Like [`call`](Self::call), expecting `status` and a JSON answer.
    pub async fn json(&self, method: Method, path: &str, token: &str, body: Option<Value>, status: u16) -> Value {
        let (got, text) = self.call(method.clone(), path, Some(token), body).await;
        assert_eq!(got, status, "{method} {path}: {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON answer") }
    }

    /// Adds a user through the admin API and returns their token.
    pub async fn add_user(&self, name: &str) -> String {
        let created =
            self.json(Method::POST, "/admin/users", ADMIN, Some(serde_json::json!({"name": name})), 201).await;
        created["token"].as_str().expect("token").to_owned()
    }

    /// Creates a session for `token` and returns its id.
    pub async fn create_session(&self, token: &str, body: Value) -> String {
        let session = self.json(Method::POST, "/v1/sessions", token, Some(body), 201).await;
        session["id"].as_str().expect("id").to_owned()
    }

    /// Polls the session until no run of it is in progress; returns it.
    pub async fn wait_idle(&self, token: &str, id: &str) -> Value {
        for _ in 0..400 {
            let session = self.json(Method::GET, &format!("/v1/sessions/{id}"), token, None, 200).await;
            if session["running"] == false {
                return session;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("session {id} still running");
    }

    /// Opens the session's event stream, resuming after `last_event_id` if given.
    pub async fn events(&self, token: &str, id: &str, last_event_id: Option<u64>) -> Events {
        let mut request = self.request(Method::GET, &format!("/v1/sessions/{id}/events"), Some(token));
        if let Some(seq) = last_event_id {
            request = request.header("Last-Event-ID", seq.to_string());
        }
        Events::open(request.send().await.expect("events request"))
    }
}

type SseStream =
    Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>> + Send>>;

/// A client's view of an event stream.
pub struct Events {
    stream: SseStream,
    /// `delta` events seen so far.
    pub deltas: usize,
}

impl Events {
    /// Reads `response` as an event stream.
    pub fn open(response: Response) -> Events {
        assert_eq!(response.status().as_u16(), 200, "event stream status");
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Events { stream: Box::pin(response.bytes_stream().eventsource()), deltas: 0 }
    }

    /// The next committed event, or `None` when the stream ended (skipping deltas).
    pub async fn next(&mut self) -> Option<EventRecord> {
        loop {
            let next =
                tokio::time::timeout(Duration::from_secs(20), self.stream.next()).await.expect("an event in time");
            let event = next?.expect("a well-formed event stream");
            if event.event == "delta" {
                let delta: Value = serde_json::from_str(&event.data).expect("delta JSON");
                assert!(delta["type"].is_string(), "{delta}");
                self.deltas += 1;
                continue;
            }
            let record: EventRecord = serde_json::from_str(&event.data).expect("event JSON");
            assert_eq!(event.id, record.seq.to_string(), "the SSE id is the seq");
            return Some(record);
        }
    }

    /// Events up to and including the next `run_ended`.
    pub async fn until_run_ended(&mut self) -> Vec<EventRecord> {
        let mut seen = Vec::new();
        loop {
            let record = self.next().await.expect("the stream ended before run_ended");
            let ended = matches!(record.event, harness::event::Event::RunEnded { .. });
            seen.push(record);
            if ended {
                return seen;
            }
        }
    }
}

/// Asserts the seqs run from `first` without gaps or repeats.
pub fn assert_contiguous(records: &[EventRecord], first: u64) {
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    let expected: Vec<u64> = (first..first + records.len() as u64).collect();
    assert_eq!(seqs, expected, "seqs must be contiguous");
}

/// The `error` message of a JSON error body, failing if the body isn't one.
pub fn error_message(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("error body is not JSON: {body:?}"));
    value["error"].as_str().unwrap_or_else(|| panic!("no `error` string in {body}")).to_owned()
}
