//! A load driver for the HTTP API: many clients, each running one scripted
//! session after another over loopback, and checking that every session's event
//! stream delivered its whole log, once, in order.
//!
//! Each client creates a session, opens its event stream, posts the message,
//! reads its status, reads the stream through `run_ended`, reads its status
//! again, and compares what it saw with the store's log. The script is
//! [`TURNS`] model answers that each write a file and read it back, then an
//! answer that ends the turn. Clients keep starting sessions until the duration
//! is over, so `clients` sessions are in flight the whole time.
//!
//! This file is shared: the test suite runs it small (`server_load.rs`), and
//! `benches/benches/server_load.rs` includes it by path and runs it at full
//! size. So it uses nothing else of the test crate, and reads SSE itself (the
//! benches crate has no SSE client).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use harness::conversation::{Block, ModelAnswer, StopReason, Usage};
use harness::event::{EndReason, Event};
use harness::provider::{Cassette, Interaction};
use harness::server::api::EventRecord;
use harness::store::{SessionId, Store};
use serde_json::{Value, json};

/// Model answers with tool calls in a session's script.
pub const TURNS: usize = 5;
/// Tool calls in a session: a write and a read per turn.
pub const TOOL_CALLS: u64 = 2 * TURNS as u64;
/// Events of a session: the user message, each answer with its two results, the
/// last answer and the end.
pub const EVENTS: u64 = 1 + 3 * TURNS as u64 + 2;
/// Durable commits of a session: its creation, the message, each answer and each
/// result (a write and a read-only batch of one), the last answer with the end.
pub const COMMITS: u64 = 1 + 1 + 3 * TURNS as u64 + 1;
/// Most errors kept as examples in the report.
const ERROR_SAMPLES: usize = 10;

/// What file turn `i` writes.
fn content(turn: usize) -> String {
    format!("turn {turn}: the load test wrote this\n")
}

/// The script every session plays.
pub fn cassette() -> Cassette {
    let usage = Usage { input_tokens: 100, output_tokens: 20, ..Usage::default() };
    let answer = |text: &str, calls: Vec<Block>| {
        let stop_reason = if calls.is_empty() { StopReason::EndTurn } else { StopReason::ToolUse };
        let mut content = vec![Block::Text { text: text.into() }];
        content.extend(calls);
        ModelAnswer { content, stop_reason, usage, model: "scripted".into() }
    };
    let tool = |id: String, name: &str, input: Value| Block::ToolUse { id, name: name.into(), input };
    let mut answers: Vec<ModelAnswer> = (0..TURNS)
        .map(|turn| {
            let path = format!("notes/turn{turn}.txt");
            let calls = vec![
                tool(format!("w{turn}"), "write_file", json!({"path": path, "content": content(turn)})),
                tool(format!("r{turn}"), "read_file", json!({"path": path})),
            ];
            answer(&format!("Turn {turn}: writing and reading back."), calls)
        })
        .collect();
    answers.push(answer("Done.", vec![]));
    let mut cassette = Cassette::new("server load: a write and a read per turn");
    cassette.interactions =
        answers.into_iter().map(|answer| Interaction { request: None, expect_last_user: None, answer }).collect();
    cassette
}

/// How hard to push.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// A user's API token.
    pub token: String,
    /// Clients, each with one session in flight at a time.
    pub clients: usize,
    /// How long clients keep starting sessions; each then finishes the one it has.
    pub duration: Duration,
    /// Longest wait for any one answer or event before it counts as an error.
    pub patience: Duration,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// From the first request to the last client's end.
    pub elapsed: Duration,
    /// The configured duration (the steady window).
    pub window: Duration,
    /// Clients.
    pub clients: usize,
    /// Sessions that ran through and checked out.
    pub sessions_completed: u64,
    /// Tool results streamed, in all.
    pub tool_calls: u64,
    /// Tool results streamed within the window, for the rate at full concurrency.
    pub tool_calls_in_window: u64,
    /// Sessions completed within the window.
    pub sessions_in_window: u64,
    /// Failed requests, broken or late streams, wrong answers.
    pub errors: u64,
    /// The first few errors.
    pub error_samples: Vec<String>,
    /// Logged events a stream never delivered.
    pub lost_events: u64,
    /// Events a stream delivered more than once.
    pub duplicate_events: u64,
    /// Delivered events that differ from the log.
    pub mismatched_events: u64,
    /// Most sessions in flight at once.
    pub peak_in_flight: usize,
    /// `POST /v1/sessions`.
    pub create: Vec<Duration>,
    /// `POST /v1/sessions/{id}/messages` (answers once the message is committed).
    pub post_message: Vec<Duration>,
    /// `GET /v1/sessions/{id}`.
    pub get_status: Vec<Duration>,
    /// From posting the message to seeing `run_ended`.
    pub run: Vec<Duration>,
}

impl LoadReport {
    /// Tool calls per second at full concurrency (within the window).
    pub fn tool_calls_per_s(&self) -> f64 {
        self.tool_calls_in_window as f64 / self.window.as_secs_f64()
    }

    /// The figures as JSON; latencies in milliseconds.
    pub fn to_json(&self) -> Value {
        let window = self.window.as_secs_f64();
        json!({
            "clients": self.clients,
            "window_s": window,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "sessions_completed": self.sessions_completed,
            "sessions_completed_in_window": self.sessions_in_window,
            "sessions_per_s": self.sessions_in_window as f64 / window,
            "tool_calls": self.tool_calls,
            "tool_calls_per_s": self.tool_calls_per_s(),
            "durable_commits_per_s": (self.sessions_in_window * COMMITS) as f64 / window,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "lost_events": self.lost_events,
            "duplicate_events": self.duplicate_events,
            "mismatched_events": self.mismatched_events,
            "peak_sessions_in_flight": self.peak_in_flight,
            "latency_ms": {
                "post_message": percentiles(&self.post_message),
                "get_status": percentiles(&self.get_status),
                "create_session": percentiles(&self.create),
                "session_run": percentiles(&self.run),
            },
        })
    }
}

/// p50, p99, max and mean in milliseconds, and the count.
fn percentiles(samples: &[Duration]) -> Value {
    if samples.is_empty() {
        return json!({"count": 0});
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    let mean = sorted.iter().sum::<Duration>().as_secs_f64() * 1e3 / sorted.len() as f64;
    json!({"count": sorted.len(), "p50": at(0.5), "p99": at(0.99), "max": at(1.0), "mean": mean})
}

/// What the clients share while running.
struct Shared {
    config: LoadConfig,
    http: reqwest::Client,
    store: Store,
    started: Instant,
    in_flight: AtomicUsize,
    tool_calls_in_window: AtomicU64,
    report: Mutex<LoadReport>,
}

impl Shared {
    fn report(&self) -> std::sync::MutexGuard<'_, LoadReport> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn in_window(&self) -> bool {
        self.started.elapsed() < self.config.duration
    }
}

/// Runs the load against a server whose log is in `store`.
pub async fn run(config: LoadConfig, store: Store) -> LoadReport {
    let clients = config.clients;
    let window = config.duration;
    let shared = Arc::new(Shared {
        config,
        http: reqwest::Client::new(),
        store,
        started: Instant::now(),
        in_flight: AtomicUsize::new(0),
        tool_calls_in_window: AtomicU64::new(0),
        report: Mutex::new(LoadReport::default()),
    });
    let tasks: Vec<_> = (0..clients).map(|_| tokio::spawn(client(shared.clone()))).collect();
    for task in tasks {
        if let Err(err) = task.await {
            let mut report = shared.report();
            report.errors += 1;
            report.error_samples.push(format!("a client task failed: {err}"));
        }
    }
    let mut report = std::mem::take(&mut *shared.report());
    report.elapsed = shared.started.elapsed();
    report.window = window;
    report.clients = clients;
    report.tool_calls_in_window = shared.tool_calls_in_window.load(Ordering::Relaxed);
    report
}

/// One client: sessions one after another until the window closes.
async fn client(shared: Arc<Shared>) {
    while shared.in_window() {
        let in_flight = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let outcome = session(&shared).await;
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let finished_in_window = shared.in_window();
        let mut report = shared.report();
        report.peak_in_flight = report.peak_in_flight.max(in_flight);
        match outcome {
            Ok(done) => {
                report.sessions_completed += 1;
                report.sessions_in_window += u64::from(finished_in_window);
                report.tool_calls += done.tool_calls;
                report.create.push(done.create);
                report.post_message.push(done.post_message);
                report.get_status.extend(done.get_status);
                report.run.push(done.run);
            }
            Err(failure) => {
                report.errors += 1;
                report.lost_events += failure.lost;
                report.duplicate_events += failure.duplicates;
                report.mismatched_events += failure.mismatched;
                if report.error_samples.len() < ERROR_SAMPLES {
                    report.error_samples.push(failure.message);
                }
            }
        }
    }
}

/// A session that checked out.
struct Done {
    tool_calls: u64,
    create: Duration,
    post_message: Duration,
    get_status: [Duration; 2],
    run: Duration,
}

/// Why a session didn't check out, with its event counts.
#[derive(Default)]
struct Failure {
    message: String,
    lost: u64,
    duplicates: u64,
    mismatched: u64,
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, ..Failure::default() }
    }
}

/// Sends a request, timed; answers the status, the body and the time.
async fn call(shared: &Shared, request: reqwest::RequestBuilder, what: &str) -> Result<(u16, Value, Duration), String> {
    let started = Instant::now();
    let exchange = async {
        let response = request.bearer_auth(&shared.config.token).send().await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    let (status, body) = match tokio::time::timeout(shared.config.patience, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => return Err(format!("{what}: {err}")),
        Err(_) => return Err(format!("{what}: no answer within {:?}", shared.config.patience)),
    };
    let elapsed = started.elapsed();
    let value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    Ok((status, value, elapsed))
}

/// Expects `status`.
fn expect(
    what: &str,
    (status, body, elapsed): (u16, Value, Duration),
    expected: u16,
) -> Result<(Value, Duration), String> {
    if status == expected { Ok((body, elapsed)) } else { Err(format!("{what}: status {status}, body {body}")) }
}

/// One session, start to end, checked against the store.
async fn session(shared: &Shared) -> Result<Done, Failure> {
    let url = &shared.config.url;
    let http = &shared.http;
    let created = call(shared, http.post(format!("{url}/v1/sessions")).json(&json!({})), "create").await?;
    let (session, create) = expect("create", created, 201)?;
    let id = session["id"].as_str().ok_or_else(|| format!("create: no id in {session}"))?.to_owned();

    // Opened before the message is posted, so it sees the run from its first event.
    let events = http.get(format!("{url}/v1/sessions/{id}/events")).bearer_auth(&shared.config.token).send();
    let events = match tokio::time::timeout(shared.config.patience, events).await {
        Ok(Ok(response)) if response.status().as_u16() == 200 => response,
        Ok(Ok(response)) => return Err(format!("events of {id}: status {}", response.status()).into()),
        Ok(Err(err)) => return Err(format!("events of {id}: {err}").into()),
        Err(_) => return Err(format!("events of {id}: no answer").into()),
    };
    let mut stream = Sse::new(events);

    let message = json!({"text": "write and read some notes"});
    let posted = call(shared, http.post(format!("{url}/v1/sessions/{id}/messages")).json(&message), "post").await?;
    let run_started = Instant::now();
    let (accepted, post_message) = expect("post message", posted, 202)?;
    if accepted["seq"] != 1 {
        return Err(format!("post message: {accepted}").into());
    }
    let status_url = format!("{url}/v1/sessions/{id}");
    let (_, first_status) = expect("status", call(shared, http.get(&status_url), "status").await?, 200)?;

    let mut seen: Vec<EventRecord> = Vec::new();
    loop {
        let record = match tokio::time::timeout(shared.config.patience, stream.next()).await {
            Ok(Ok(Some(record))) => record,
            Ok(Ok(None)) => break,
            Ok(Err(err)) => return Err(format!("events of {id} after {} events: {err}", seen.len()).into()),
            Err(_) => {
                return Err(format!(
                    "events of {id}: nothing for {:?} after {} events",
                    shared.config.patience,
                    seen.len()
                )
                .into());
            }
        };
        if matches!(record.event, Event::ToolResult { .. }) && shared.in_window() {
            shared.tool_calls_in_window.fetch_add(1, Ordering::Relaxed);
        }
        let ended = matches!(record.event, Event::RunEnded { .. });
        seen.push(record);
        if ended {
            break;
        }
    }
    let run = run_started.elapsed();
    drop(stream);

    let (info, last_status) = expect("status", call(shared, http.get(&status_url), "status").await?, 200)?;
    if info["status"] != "finished" {
        return Err(format!("session {id} after run_ended: {info}").into());
    }
    let tool_calls = check(shared, &id, &seen).await?;
    Ok(Done { tool_calls, create, post_message, get_status: [first_status, last_status], run })
}

/// Compares what a stream delivered with the store's log and checks the script
/// ran as written; answers the tool calls seen.
async fn check(shared: &Shared, id: &str, seen: &[EventRecord]) -> Result<u64, Failure> {
    let parsed: SessionId = id.parse().map_err(|_| format!("bad session id {id}"))?;
    let store = shared.store.clone();
    let log = tokio::task::spawn_blocking(move || store.events(&parsed))
        .await
        .map_err(|err| format!("reading the log of {id}: {err}"))?
        .map_err(|err| format!("reading the log of {id}: {err}"))?;
    let mut failure = Failure::default();
    let mut delivered = vec![0u32; log.len()];
    for record in seen {
        match usize::try_from(record.seq).ok().and_then(|seq| seq.checked_sub(1)).filter(|at| *at < log.len()) {
            Some(at) => {
                delivered[at] += 1;
                if log[at].event != record.event {
                    failure.mismatched += 1;
                }
            }
            None => failure.mismatched += 1,
        }
    }
    failure.lost = delivered.iter().filter(|count| **count == 0).count() as u64;
    failure.duplicates = delivered.iter().map(|count| u64::from(count.saturating_sub(1))).sum();
    let in_order = seen.iter().zip(1u64..).all(|(record, seq)| record.seq == seq);
    if failure.lost + failure.duplicates + failure.mismatched > 0 || !in_order {
        failure.message = format!(
            "session {id}: the stream delivered seqs {:?}, the log holds 1..={} ({} lost, {} duplicated, {} differ)",
            seen.iter().map(|record| record.seq).collect::<Vec<_>>(),
            log.len(),
            failure.lost,
            failure.duplicates,
            failure.mismatched
        );
        return Err(failure);
    }
    if log.len() as u64 != EVENTS
        || log.last().map(|logged| &logged.event) != Some(&Event::RunEnded { reason: EndReason::EndTurn })
    {
        return Err(format!(
            "session {id}: the log holds {} events, ending {:?}",
            log.len(),
            log.last().map(|l| &l.event)
        )
        .into());
    }
    let mut tool_calls = 0;
    for logged in &log {
        if let Event::ToolResult { name, content, is_error, .. } = &logged.event {
            tool_calls += 1;
            let turn = (tool_calls - 1) / 2;
            if *is_error || (name == "read_file" && !content.contains(self::content(turn as usize).trim_end())) {
                return Err(format!("session {id}: {name} answered {content:?} (error: {is_error})").into());
            }
        }
    }
    Ok(tool_calls)
}

/// A minimal SSE reader: committed events (`id:` and JSON `data:`); `delta`
/// events and keep-alive comments are skipped.
struct Sse {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl Sse {
    fn new(response: reqwest::Response) -> Sse {
        Sse { body: Box::pin(response.bytes_stream()), buffer: Vec::new() }
    }

    /// The next committed event; `None` when the server closed the stream.
    async fn next(&mut self) -> Result<Option<EventRecord>, String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(record) = parse(&block)? {
                    return Ok(Some(record));
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(err)) => return Err(err.to_string()),
                None => return Ok(None),
            }
        }
    }
}

/// One SSE block: a committed event, or `None` for a delta or a comment.
fn parse(block: &[u8]) -> Result<Option<EventRecord>, String> {
    let text = std::str::from_utf8(block).map_err(|_| "an SSE block is not UTF-8".to_owned())?;
    let (mut id, mut name, mut data) = (None, None, String::new());
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim_start().to_owned());
        } else if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim_start().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if name.as_deref() == Some("delta") || data.is_empty() {
        return Ok(None);
    }
    let record: EventRecord = serde_json::from_str(&data).map_err(|err| format!("event JSON: {err}: {data}"))?;
    if id.as_deref() != Some(record.seq.to_string().as_str()) {
        return Err(format!("SSE id {id:?} is not the seq {}", record.seq));
    }
    Ok(Some(record))
}
