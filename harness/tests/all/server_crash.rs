//! `harness serve` is durable end to end: the real binary on loopback runs a few
//! long scripted sessions at once while SSE clients watch them, and is stopped
//! mid-run, by SIGKILL or by SIGTERM. After a restart on the same database the
//! runs finish on their own, a client that reconnects with `Last-Event-ID` gets
//! exactly the events it had not seen, and every session ends with the event log
//! and the filesystem of a session that was never interrupted.
//!
//! Every stop point is chosen by events the clients have seen, never by a sleep,
//! so the tests mean the same on a fast machine and a loaded one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use harness::event::{EndReason, Event};
use harness::server::api::EventRecord;
use harness::store::{SessionId, Status, Store};
use reqwest::Method;
use runtime::vfs::Quota;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::agent::{answer, call, cassette};
use crate::server_util::assert_contiguous;

/// Model answers with `write_file` calls in each session's script (below the
/// default limit of 50 turns a run).
const STEPS: usize = 45;
/// `write_file` calls per answer, each its own committed step. With the answers,
/// enough steps that a stop after a client saw a few events lands mid-run with a
/// wide margin.
const CALLS: usize = 1;
/// Files the script writes.
const FILES: usize = STEPS * CALLS;
/// Sessions running at once when the server is stopped.
const SESSIONS: usize = 4;
/// Events every client must have seen before the server is stopped.
const SEEN_BEFORE_STOP: usize = 3;
/// The fixed clock every server runs under, so files are stamped alike in every run.
const CLOCK: &str = "1700000000";
/// How long any single wait may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// The distinct content of file `i`.
fn content(i: usize) -> String {
    format!("file {i} of {FILES}\n{}\n", "x".repeat(i))
}

fn file_path(i: usize) -> String {
    format!("out/f{i:02}.txt")
}

/// Events of a complete run of the script: the user message, each answer and its
/// results, the last answer and the end.
const RUN_EVENTS: usize = 1 + STEPS * (1 + CALLS) + 2;

/// A temporary home (its database and the compiled-component cache every
/// binary test of this process shares) holding the script as `cassette.json`.
struct Home {
    home: crate::cli_run::Home,
}

impl Home {
    fn new() -> Home {
        let home = crate::cli_run::Home::new();
        let mut answers: Vec<_> = (0..STEPS)
            .map(|step| {
                let calls = (step * CALLS..(step + 1) * CALLS)
                    .map(|i| call(&format!("w{i}"), "write_file", json!({"path": file_path(i), "content": content(i)})))
                    .collect();
                answer(&format!("Writing files, part {step}."), calls)
            })
            .collect();
        answers.push(answer("All written.", vec![]));
        let text = cassette(answers).to_json().expect("cassette JSON");
        std::fs::write(home.path("cassette.json"), text).expect("write the cassette");
        Home { home }
    }

    fn db(&self) -> PathBuf {
        self.home.db()
    }

    /// The binary on this home's database, with none of the caller's keys or
    /// config, under a fixed clock so every run stamps its files alike.
    fn command(&self) -> Command {
        let mut command = self.home.command();
        command.env("HARNESS_FIXED_CLOCK", CLOCK).env_remove("HARNESS_ADMIN_TOKEN").env_remove("HARNESS_LOG");
        command
    }

    /// `harness users add NAME`: the token it prints.
    fn add_user(&self, name: &str) -> String {
        let output = self.command().args(["users", "add", name]).output().expect("run harness users add");
        assert!(output.status.success(), "users add: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8 token").trim().to_owned()
    }
}

/// A `harness serve` process.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Everything it printed on stderr, for failure messages.
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `harness serve` on 127.0.0.1:0 and reads the address it bound from stderr.
    fn start(home: &Home, grace_secs: u64) -> Server {
        // One start at a time: the first compiles every built-in tool into the shared
        // cache, and tests starting together would each compile them, competing for the cores.
        static STARTING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        let mut child = home
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", &grace_secs.to_string(), "--replay"])
            .arg(home.home.path("cassette.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn harness serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        let sink = log.clone();
        // Drained to the end, so a chatty server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("harness: serving on http://") {
                    let addr = rest.split_whitespace().next().unwrap_or_default().parse::<SocketAddr>();
                    let _ = found.send(addr);
                }
                let mut log = sink.lock().unwrap_or_else(PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), log };
        match address.recv_timeout(PATIENCE) {
            Ok(Ok(addr)) => server.addr = addr,
            other => panic!("the server printed no address ({other:?}); stderr:\n{}", server.log()),
        }
        server
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn api(&self, token: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: format!("http://{}", self.addr),
            token: token.to_owned(),
            log: self.log.clone(),
        }
    }

    /// SIGKILL, and reaps the process.
    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Sends SIGTERM.
    fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, failing after `limit`.
    async fn exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {limit:?}; stderr:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, expecting a clean exit.
    async fn stop(mut self) {
        self.sigterm();
        let status = self.exit(PATIENCE).await;
        assert!(status.success(), "the server exited with {status}; stderr:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A user's HTTP client of one server.
struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
    /// The server's stderr, for failure messages.
    log: Arc<Mutex<String>>,
}

impl Api {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, bytes::Bytes) {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|err| panic!("{path}: {err}"));
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body"))
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, bytes) = self.send(method, path, body).await;
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).expect("JSON answer")
    }

    /// A new session with its event stream open and its message posted, so the
    /// stream sees the run from its first event.
    async fn start_run(&self) -> (SessionId, Sse) {
        let (id, events) = self.watched_session().await;
        self.post(&id).await;
        (id, events)
    }

    /// A new session with its event stream open.
    async fn watched_session(&self) -> (SessionId, Sse) {
        let session = self.json(Method::POST, "/v1/sessions", Some(json!({})), 201).await;
        let id: SessionId = session["id"].as_str().expect("id").parse().expect("a session id");
        (id, self.events(&id, None).await)
    }

    /// Posts the message that starts the script.
    async fn post(&self, id: &SessionId) {
        let body = json!({"text": "write the files"});
        let accepted = self.json(Method::POST, &format!("/v1/sessions/{id}/messages"), Some(body), 202).await;
        assert_eq!(accepted["seq"], 1);
    }

    /// The session's event stream, after `last_event_id` if given.
    async fn events(&self, id: &SessionId, last_event_id: Option<u64>) -> Sse {
        let mut request = self.http.get(format!("{}/v1/sessions/{id}/events", self.url)).bearer_auth(&self.token);
        if let Some(seq) = last_event_id {
            request = request.header("Last-Event-ID", seq.to_string());
        }
        let response = request.send().await.expect("events request");
        assert_eq!(response.status().as_u16(), 200, "event stream status");
        Sse { stream: Box::pin(response.bytes_stream().eventsource()), log: self.log.clone() }
    }

    /// Checks the session finished and holds every file of the script.
    async fn assert_finished_with_files(&self, id: &SessionId) {
        let session = self.json(Method::GET, &format!("/v1/sessions/{id}"), None, 200).await;
        assert_eq!(session["status"], "finished", "{session}");
        assert_eq!(session["last_seq"], RUN_EVENTS as u64);
        for i in 0..FILES {
            let (status, bytes) =
                self.send(Method::GET, &format!("/v1/sessions/{id}/files/{}", file_path(i)), None).await;
            assert_eq!(status, 200, "{}: {}", file_path(i), String::from_utf8_lossy(&bytes));
            assert_eq!(bytes, content(i).as_bytes(), "{}", file_path(i));
        }
    }
}

type SseStream =
    Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<reqwest::Error>>> + Send>>;

/// A client's event stream that, unlike the in-process tests' one, expects the
/// server to go away: a broken stream is an outcome, not a panic.
struct Sse {
    stream: SseStream,
    /// The server's stderr, for failure messages.
    log: Arc<Mutex<String>>,
}

/// How an event stream ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The server closed it properly.
    Clean,
    /// The connection broke mid-stream.
    Broken,
}

impl Sse {
    /// The next committed event (deltas skipped), or how the stream ended.
    async fn next(&mut self) -> Result<EventRecord, End> {
        loop {
            let Ok(next) = tokio::time::timeout(PATIENCE, self.stream.next()).await else {
                let log = self.log.lock().unwrap_or_else(PoisonError::into_inner).clone();
                panic!("no event within {PATIENCE:?}; server stderr:\n{log}");
            };
            let event = match next {
                None => return Err(End::Clean),
                Some(Err(_)) => return Err(End::Broken),
                Some(Ok(event)) => event,
            };
            if event.event == "delta" {
                continue;
            }
            let record: EventRecord = serde_json::from_str(&event.data).expect("event JSON");
            assert_eq!(event.id, record.seq.to_string(), "the SSE id is the seq");
            return Ok(record);
        }
    }

    /// Events up to and including the next `run_ended`.
    async fn until_run_ended(&mut self) -> Vec<EventRecord> {
        let mut seen = Vec::new();
        loop {
            let record = self.next().await.unwrap_or_else(|end| panic!("the stream ended ({end:?}) before run_ended"));
            let ended = matches!(record.event, Event::RunEnded { .. });
            seen.push(record);
            if ended {
                return seen;
            }
        }
    }

    /// Reads the stream in the background until it ends, publishing what it saw.
    fn watch(mut self) -> Watcher {
        let (sender, seen) = watch::channel(Vec::new());
        let task = tokio::spawn(async move {
            loop {
                match self.next().await {
                    Ok(record) => sender.send_modify(|seen| seen.push(record)),
                    Err(end) => return end,
                }
            }
        });
        Watcher { seen, task }
    }
}

/// An event stream read in the background.
struct Watcher {
    seen: watch::Receiver<Vec<EventRecord>>,
    task: JoinHandle<End>,
}

impl Watcher {
    /// Waits until the client has seen at least `count` events.
    async fn seen_at_least(&mut self, count: usize) {
        let wait = self.seen.wait_for(|seen| seen.len() >= count);
        let outcome = tokio::time::timeout(PATIENCE, wait).await.map(|waited| waited.is_ok());
        let seen = self.seen.borrow().len();
        match outcome {
            Ok(true) => {}
            Ok(false) => panic!("the stream ended after {seen} events"),
            Err(_) => panic!("only {seen} events within {PATIENCE:?}"),
        }
    }

    /// Waits for the stream to end; returns everything it saw and how it ended.
    async fn finish(self) -> (Vec<EventRecord>, End) {
        let end = tokio::time::timeout(PATIENCE, self.task).await.expect("the stream ends").expect("reader task");
        let seen = self.seen.borrow().clone();
        (seen, end)
    }
}

/// A run of the script on a session nobody interrupts: its events as a client
/// streamed them, and its id.
async fn reference_run(api: &Api) -> (SessionId, Vec<EventRecord>) {
    let (id, mut events) = api.start_run().await;
    let records = events.until_run_ended().await;
    assert_contiguous(&records, 1);
    assert_eq!(records.len(), RUN_EVENTS);
    assert_eq!(records.last().unwrap().event, Event::RunEnded { reason: EndReason::EndTurn });
    let written = records.iter().filter(|r| matches!(&r.event, Event::ToolResult { is_error: false, .. })).count();
    assert_eq!(written, FILES);
    (id, records)
}

/// Starts `SESSIONS` runs, each watched by a client from its first event, and
/// returns once every client has seen `SEEN_BEFORE_STOP` events.
async fn start_watched_runs(api: &Api) -> Vec<(SessionId, Watcher)> {
    let mut runs = Vec::new();
    for _ in 0..SESSIONS {
        let (id, events) = api.watched_session().await;
        runs.push((id, events.watch()));
    }
    // Started together, the runs share the commits and progress alike, so the
    // stop finds them all near their start rather than the first one near its end.
    futures_util::future::join_all(runs.iter().map(|(id, _)| api.post(id))).await;
    for (_, watcher) in &mut runs {
        watcher.seen_at_least(SEEN_BEFORE_STOP).await;
    }
    runs
}

/// The session's stored log as a client sees it.
fn stored(store: &Store, id: &SessionId) -> Vec<EventRecord> {
    let events = store.events(id).expect("events");
    events.into_iter().map(|logged| EventRecord { seq: logged.seq, event: logged.event }).collect()
}

/// Checks what a stopped server left of a session and says whether it was left
/// mid-run. Either way: everything a client saw was committed first, the log is
/// a prefix of the uninterrupted one, and the head holds every file it wrote.
fn check_left(store: &Store, id: &SessionId, seen: &[EventRecord], reference: &[EventRecord]) -> bool {
    assert_contiguous(seen, 1);
    let log = stored(store, id);
    assert!(log.starts_with(seen), "session {id}: a client saw an event that was not committed");
    assert!(reference.starts_with(&log), "session {id}: the log left is not a prefix of an uninterrupted run's");
    let session = store.session(id).expect("session");
    assert_eq!(session.head.last_seq, log.len() as u64, "session {id}: the head is the last committed event");
    let mut vfs = store.restore(id, session.head.last_step, Quota::default()).expect("restore the head");
    let root = vfs.root();
    for (i, record) in log.iter().filter(|r| matches!(r.event, Event::ToolResult { .. })).enumerate() {
        let node = vfs.lookup(root, &file_path(i)).unwrap_or_else(|err| panic!("{} at the head: {err}", file_path(i)));
        let size = vfs.stat(node).expect("stat").size as usize;
        assert_eq!(vfs.read(node, 0, size).expect("read"), content(i).as_bytes(), "after seq {}", record.seq);
    }
    match session.status {
        Status::Running => {
            assert!(log.len() < reference.len());
            true
        }
        Status::Finished => {
            assert_eq!(log, reference, "session {id} finished before the stop");
            false
        }
        other => panic!("session {id}: a stop must leave it running or finished, not {other:?}"),
    }
}

/// After a restart: each client reconnects with the last id it saw and must get
/// exactly the rest through `run_ended`. Then the server stops, and the stored
/// logs and filesystem roots must equal the uninterrupted run's.
async fn check_resumed(
    server: Server,
    token: &str,
    home: &Home,
    left: Vec<(SessionId, Vec<EventRecord>)>,
    reference: (SessionId, Vec<EventRecord>),
) {
    let api = server.api(token);
    for (id, mut seen) in left {
        let last = seen.last().map(|record| record.seq).expect("a client saw events before the stop");
        // A client that saw the end already has nothing to wait for.
        if !matches!(seen.last().map(|record| &record.event), Some(Event::RunEnded { .. })) {
            let rest = api.events(&id, Some(last)).await.until_run_ended().await;
            assert_contiguous(&rest, last + 1);
            seen.extend(rest);
        }
        assert_eq!(seen, reference.1, "session {id}: what the client saw differs from an uninterrupted run");
        api.assert_finished_with_files(&id).await;
    }
    server.stop().await;

    // Down to the filesystem root: the fixed clock stamps files alike in every run.
    let store = Store::open(home.db()).expect("the database opens");
    let expected_root = store.session(&reference.0).expect("reference").head.root;
    let sessions = store.list_sessions(None).expect("sessions");
    assert_eq!(sessions.len(), 1 + SESSIONS);
    for session in sessions {
        assert_eq!(session.status, Status::Finished);
        assert_eq!(stored(&store, &session.id), reference.1);
        assert_eq!(session.head.root, expected_root, "session {}: the final filesystem differs", session.id);
    }
}

#[tokio::test]
async fn sigkill_during_runs_then_a_restart_finishes_them_and_streams_resume_without_gaps() {
    let home = Home::new();
    let token = home.add_user("ann");
    let mut server = Server::start(&home, 30);
    let api = server.api(&token);
    let reference = reference_run(&api).await;
    let runs = start_watched_runs(&api).await;
    server.sigkill();

    let mut left = Vec::new();
    for (id, watcher) in runs {
        let (seen, _end) = watcher.finish().await;
        left.push((id, seen));
    }
    let store = Store::open(home.db()).unwrap_or_else(|err| panic!("the database must open after SIGKILL: {err}"));
    let interrupted = left.iter().filter(|(id, seen)| check_left(&store, id, seen, &reference.1)).count();
    eprintln!("SIGKILL left {interrupted} of {SESSIONS} sessions mid-run");
    assert!(interrupted >= 1, "every run had ended before the kill; the test proved nothing");
    drop(store);

    check_resumed(Server::start(&home, 30), &token, &home, left, reference).await;
}

#[tokio::test]
async fn sigterm_during_runs_exits_cleanly_and_the_runs_resume_at_the_next_start() {
    const GRACE: Duration = Duration::from_secs(20);
    let home = Home::new();
    let token = home.add_user("ann");
    let mut server = Server::start(&home, GRACE.as_secs());
    let api = server.api(&token);
    let reference = reference_run(&api).await;
    let runs = start_watched_runs(&api).await;
    let signalled = Instant::now();
    server.sigterm();

    let mut left = Vec::new();
    for (id, watcher) in runs {
        let (seen, end) = watcher.finish().await;
        assert_eq!(end, End::Clean, "session {id}: shutdown ends event streams properly");
        left.push((id, seen));
    }
    let status = server.exit(GRACE).await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}; stderr:\n{}", server.log());
    assert!(signalled.elapsed() < GRACE, "the server took {:?} to stop", signalled.elapsed());
    let refused = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).expect_err("nothing listens");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");

    let store = Store::open(home.db()).unwrap_or_else(|err| panic!("the database must open after SIGTERM: {err}"));
    let interrupted = left.iter().filter(|(id, seen)| check_left(&store, id, seen, &reference.1)).count();
    eprintln!("SIGTERM left {interrupted} of {SESSIONS} sessions mid-run");
    assert!(interrupted >= 1, "every run had ended before SIGTERM; the test proved nothing");
    drop(store);

    check_resumed(Server::start(&home, GRACE.as_secs()), &token, &home, left, reference).await;
}

#[tokio::test]
async fn sigterm_exits_after_the_grace_period_even_with_a_request_left_unfinished() {
    let home = Home::new();
    let token = home.add_user("ann");
    let mut server = Server::start(&home, 1);
    // A client that sends a request's head and never its body: axum waits for
    // every connection to close, so the grace period must bound that wait. The
    // `100 Continue` shows the handler is in flight, reading the body.
    let mut stalled = TcpStream::connect(server.addr).expect("connect");
    stalled.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).expect("a request's head");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        stalled.read_exact(&mut byte).expect("an interim answer");
        answer.push(byte[0]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&answer));
    // And a run, which must stop at the signal rather than run on while the
    // server waits for that client (the whole script takes well under the grace).
    let api = server.api(&token);
    let (id, events) = api.start_run().await;
    let mut watcher = events.watch();
    watcher.seen_at_least(SEEN_BEFORE_STOP).await;

    let signalled = Instant::now();
    server.sigterm();
    let (seen, end) = watcher.finish().await;
    assert_eq!(end, End::Clean, "shutdown ends event streams at once");
    let status = server.exit(PATIENCE).await;
    assert!(status.success(), "SIGTERM must exit 0, got {status}; stderr:\n{}", server.log());
    assert!(signalled.elapsed() >= Duration::from_millis(900), "the open request was given its grace period");
    assert!(signalled.elapsed() < Duration::from_secs(10), "exited {:?} after SIGTERM", signalled.elapsed());
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the unfinished request got no answer: {}", String::from_utf8_lossy(&rest));

    let store = Store::open(home.db()).expect("the database opens");
    let log = stored(&store, &id);
    assert!(log.starts_with(&seen), "a client saw an event that was not committed");
    assert_eq!(store.session(&id).expect("session").status, Status::Running, "the run stopped at the signal");
    assert!(log.len() < RUN_EVENTS, "{} of {RUN_EVENTS} events: the run went on after the signal", log.len());
}

#[tokio::test]
async fn sigterm_as_soon_as_the_address_is_printed_is_a_graceful_stop() {
    // The handlers must be installed before the server says it is up; otherwise
    // an early SIGTERM kills the process instead of stopping it.
    let home = Home::new();
    for _ in 0..3 {
        let mut server = Server::start(&home, 5);
        server.sigterm();
        let status = server.exit(PATIENCE).await;
        assert!(status.success(), "SIGTERM must exit 0, got {status}; stderr:\n{}", server.log());
    }
}
