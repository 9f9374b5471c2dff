//! A scripted HTTP server on 127.0.0.1 for the provider tests: each request gets the
//! next scripted reply, and every request is kept for assertions. Shared helpers for
//! building conversations live here too.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use harness::conversation::{Block, Message, ModelRequest, Role, StreamEvent, ToolDef};
use harness::provider::{Provider, ProviderError};
use serde_json::{Value, json};

/// What the server answers to one request.
pub enum Reply {
    /// Status 200 with an event stream of these chunks, then a clean end.
    Stream(Vec<String>),
    /// Status 200, these chunks, then the connection is torn down mid-body.
    Abort(Vec<String>),
    /// Status 200, these chunks, then silence that never ends.
    Stall(Vec<String>),
    /// A plain response with a JSON body.
    Status { status: u16, headers: Vec<(&'static str, String)>, body: Value },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request path.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body, parsed as JSON (`Null` if it wasn't).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
}

impl Seen {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running scripted server.
pub struct WireServer {
    /// `http://127.0.0.1:port`.
    pub url: String,
    shared: Arc<Shared>,
}

impl WireServer {
    /// Starts a server that answers requests with `replies`, in order.
    pub async fn start(replies: Vec<Reply>) -> Self {
        let shared = Arc::new(Shared { replies: Mutex::new(replies.into()), seen: Mutex::new(Vec::new()) });
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        WireServer { url, shared }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    shared.seen.lock().unwrap().push(Seen {
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    let reply = shared.replies.lock().unwrap().pop_front();
    let stream =
        |body: Body| Response::builder().status(200).header("content-type", "text/event-stream").body(body).unwrap();
    let chunks = |chunks: Vec<String>| futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    match reply {
        Some(Reply::Stream(parts)) => stream(Body::from_stream(chunks(parts))),
        Some(Reply::Abort(parts)) => {
            // The pause lets the status and the first chunks reach the client first, so
            // the cut lands mid-body rather than before the response.
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("cut by the test server"))
            });
            stream(Body::from_stream(chunks(parts).chain(cut)))
        }
        Some(Reply::Stall(parts)) => stream(Body::from_stream(chunks(parts).chain(futures_util::stream::pending()))),
        Some(Reply::Status { status, headers, body }) => {
            let mut response = Response::builder().status(status).header("content-type", "application/json");
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body.to_string())).unwrap()
        }
        // A status no provider retries, so a test that sends too many requests fails fast.
        None => Response::builder()
            .status(StatusCode::IM_A_TEAPOT)
            .body(Body::from(r#"{"error":{"type":"script_exhausted","message":"no scripted reply left"}}"#))
            .unwrap(),
    }
}

/// A JSON error body in the `{"error": {"type", "message"}}` shape both APIs use.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}

/// A plain error reply.
pub fn status(status: u16, kind: &str, message: &str) -> Reply {
    Reply::Status { status, headers: Vec::new(), body: error_body(kind, message) }
}

/// A request with one user message and no tools.
pub fn ask(text: &str) -> ModelRequest {
    ModelRequest {
        model: String::new(),
        system: None,
        messages: vec![Message { role: Role::User, content: vec![Block::Text { text: text.into() }] }],
        tools: Vec::new().into(),
        max_tokens: 0,
    }
}

/// Two tools, for request-shape assertions.
pub fn tools() -> Vec<ToolDef> {
    ["read_file", "write_file"]
        .into_iter()
        .map(|name| ToolDef {
            name: name.into(),
            description: format!("{name} does its job"),
            input_schema: json!({ "type": "object", "properties": { "path": { "type": "string" } } }),
        })
        .collect()
}

/// A conversation that has been through one round of tool calls: user text, an
/// assistant answer with text and two calls, and the results (one failed).
pub fn after_tool_round() -> ModelRequest {
    ModelRequest {
        model: "test-model".into(),
        system: Some("You are terse.".into()),
        messages: vec![
            Message { role: Role::User, content: vec![Block::Text { text: "Look at a.txt and b.txt".into() }] },
            Message {
                role: Role::Assistant,
                content: vec![
                    Block::Text { text: "Reading both.".into() },
                    Block::ToolUse { id: "call_a".into(), name: "read_file".into(), input: json!({ "path": "a.txt" }) },
                    Block::ToolUse { id: "call_b".into(), name: "read_file".into(), input: json!({ "path": "b.txt" }) },
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    Block::ToolResult { tool_use_id: "call_a".into(), content: "alpha".into(), is_error: false },
                    Block::ToolResult { tool_use_id: "call_b".into(), content: "no such file".into(), is_error: true },
                ],
            },
        ],
        tools: tools().into(),
        max_tokens: 1024,
    }
}

/// Runs one call and returns its result and the stream events it reported.
pub async fn complete(
    provider: &dyn Provider,
    request: &ModelRequest,
) -> (Result<harness::conversation::ModelAnswer, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let result = provider.complete(request, &mut |event| events.push(event)).await;
    (result, events)
}

/// The text of all `Text` events, joined.
pub fn streamed_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Fails unless `elapsed` is at least `at_least`.
pub fn assert_waited(elapsed: Duration, at_least: Duration) {
    assert!(elapsed >= at_least, "waited {elapsed:?}, expected at least {at_least:?}");
}
