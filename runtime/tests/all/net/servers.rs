//! Loopback HTTP servers for the network tests: an "api" server the injection
//! rule covers and an "elsewhere" server it doesn't, both recording every request.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use runtime::net::policy::{Policy, Rule};

/// Every request a server received, as text (request line, headers, body).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// All recorded requests, joined.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[derive(Clone)]
struct Ctx {
    log: Log,
    /// The other server's port, for redirects.
    other: u16,
}

/// A running loopback server.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// What it received.
    pub log: Log,
}

/// The two servers of a test.
pub struct Servers {
    /// The server the injection rule covers.
    pub api: Server,
    /// A server on another port, which no injection rule covers.
    pub elsewhere: Server,
}

impl Servers {
    /// Starts both servers.
    pub async fn start() -> Servers {
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (api_port, other_port) =
            (api_listener.local_addr().unwrap().port(), other_listener.local_addr().unwrap().port());
        let api = serve(api_listener, Ctx { log: Log::default(), other: other_port });
        let elsewhere = serve(other_listener, Ctx { log: Log::default(), other: api_port });
        Servers { api: Server { port: api_port, log: api }, elsewhere: Server { port: other_port, log: elsewhere } }
    }

    /// A policy allowing plain HTTP to both servers (loopback, so named by address).
    pub fn policy(&self) -> Policy {
        Policy { allow: vec![allow(self.api.port), allow(self.elsewhere.port)] }
    }

    /// A URL on the api server.
    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api.port)
    }

    /// A URL on the other server.
    pub fn elsewhere(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.elsewhere.port)
    }
}

/// A rule allowing every path and method of `http://127.0.0.1:port`.
pub fn allow(port: u16) -> Rule {
    Rule { scheme: "http".into(), host: "127.0.0.1".into(), port: Some(port), path_prefix: "/".into(), methods: vec![] }
}

fn serve(listener: tokio::net::TcpListener, ctx: Ctx) -> Log {
    let log = ctx.log.clone();
    let app = Router::new()
        .route("/redirect-elsewhere", any(redirect_elsewhere))
        .route("/redirect", any(redirect))
        .route("/big", any(big))
        .route("/slow-head", any(slow_head))
        .route("/slow-body", any(slow_body))
        .route("/binary", any(binary))
        .route("/loop", any(redirect_loop))
        .fallback(echo)
        .with_state(ctx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    log
}

fn record(ctx: &Ctx, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let mut text = format!("{method} {uri}\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(body));
    ctx.log.0.lock().unwrap().push(text.clone());
    text
}

/// Reflects the whole request in the body (in 3-byte chunks, so a secret spans
/// chunk boundaries) and the credential and query in response headers.
async fn echo(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let text = record(&ctx, &method, &uri, &headers, &body);
    let chunks: Vec<Result<Bytes, Infallible>> =
        text.into_bytes().chunks(3).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    let reflected = response.headers_mut();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        reflected.insert("x-echo-authorization", auth.clone());
    }
    if let Some(query) = uri.query().and_then(|q| q.parse().ok()) {
        reflected.insert("x-echo-query", query);
    }
    response
}

/// Redirects to the other server, carrying the request's credential in the URL.
async fn redirect_elsewhere(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    record(&ctx, &method, &uri, &headers, b"");
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let encoded = percent_encoding::percent_encode(&auth, percent_encoding::NON_ALPHANUMERIC);
    let location = format!("http://127.0.0.1:{}/steal?auth={encoded}", ctx.other);
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

async fn redirect(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(to): Query<To>,
) -> Response {
    record(&ctx, &method, &uri, &headers, b"");
    (StatusCode::FOUND, [(header::LOCATION, to.to)]).into_response()
}

#[derive(serde::Deserialize)]
struct Big {
    n: usize,
    #[serde(default)]
    chunked: bool,
}

/// `n` bytes of `x`, with a content length or streamed without one.
async fn big(Query(big): Query<Big>) -> Response {
    let body = vec![b'x'; big.n];
    if big.chunked {
        let chunks: Vec<Result<Bytes, Infallible>> =
            body.chunks(1024).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
        Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
    } else {
        Response::new(Body::from(body))
    }
}

async fn slow_head() -> Response {
    tokio::time::sleep(Duration::from_secs(3)).await;
    Response::new(Body::from("late"))
}

/// Sends the head at once, then one byte every 100 ms for 3 s.
async fn slow_body() -> Response {
    let stream = futures_util::stream::unfold(0u32, |n| async move {
        if n >= 30 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, Infallible>(Bytes::from_static(b".")), n + 1))
    });
    Response::new(Body::from_stream(stream))
}

/// Bytes that are not UTF-8.
async fn binary() -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], vec![0u8, 159, 146, 150, 255, 0, 1]).into_response()
}

/// Redirects to itself, forever.
async fn redirect_loop() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response()
}
