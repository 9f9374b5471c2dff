//! The durable loop end to end: a replayed model, the real built-in tools, a real
//! redb file. Crash states are built the way a crash leaves them — committed
//! steps and nothing after — and then resumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::agent::{Agent, AgentConfig, Budget, Clock, Quiet, SessionOptions};
use harness::conversation::{Block, ModelAnswer, ModelRequest, StopReason, StreamEvent, Usage};
use harness::event::{EndReason, Event};
use harness::provider::{Cassette, Interaction, Provider, ProviderError, ReplayProvider};
use harness::store::{SessionId, Status, Step, Store};
use runtime::Limits;
use runtime::net::Network;
use runtime::net::policy::Policy;
use runtime::net::secrets::{SecretStore, SecretValue};
use runtime::vfs::{Quota, Timestamp};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A tool call block.
pub fn call(id: &str, name: &str, input: Value) -> Block {
    Block::ToolUse { id: id.into(), name: name.into(), input }
}

/// A model answer asking for `calls`, or ending the turn with `text` when there are none.
pub fn answer(text: &str, calls: Vec<Block>) -> ModelAnswer {
    let stop_reason = if calls.is_empty() { StopReason::EndTurn } else { StopReason::ToolUse };
    let mut content = vec![Block::Text { text: text.into() }];
    content.extend(calls);
    ModelAnswer {
        content,
        stop_reason,
        usage: Usage { input_tokens: 100, output_tokens: 20, ..Usage::default() },
        model: "scripted".into(),
    }
}

/// A cassette of `answers`, in order.
pub fn cassette(answers: Vec<ModelAnswer>) -> Cassette {
    let mut cassette = Cassette::new("scripted test run");
    cassette.interactions =
        answers.into_iter().map(|answer| Interaction { request: None, expect_last_user: None, answer }).collect();
    cassette
}

/// Counts the model calls a provider serves, and keeps what each asked.
pub struct Counting {
    inner: Arc<dyn Provider>,
    pub calls: AtomicUsize,
    pub requests: std::sync::Mutex<Vec<ModelRequest>>,
}

impl Counting {
    /// Counts the calls `inner` serves.
    pub fn over(inner: Arc<dyn Provider>) -> Counting {
        Counting { inner, calls: AtomicUsize::new(0), requests: Default::default() }
    }
}

#[async_trait::async_trait]
impl Provider for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.requests.lock().unwrap().push(request.clone());
        self.inner.complete(request, on_event).await
    }
}

/// An agent over every built-in tool, a fresh database and `answers`.
pub async fn scripted(dir: &std::path::Path, answers: Vec<ModelAnswer>, config: AgentConfig) -> (Agent, Arc<Counting>) {
    agent_with(dir, answers, config, Network::default()).await
}

pub async fn agent_with(
    dir: &std::path::Path,
    answers: Vec<ModelAnswer>,
    config: AgentConfig,
    network: Network,
) -> (Agent, Arc<Counting>) {
    let replay = ReplayProvider::new(cassette(answers), dir.join("cassette.json"));
    let counting = Arc::new(Counting::over(Arc::new(replay)));
    let config = AgentConfig { clock: Clock::Fixed(Timestamp { secs: 1_700_000_000, nanos: 0 }), ..config };
    (agent_over(dir, counting.clone(), config, network).await, counting)
}

/// An agent over every built-in tool and a fresh database in `dir`, asking `provider`.
pub async fn agent_over(
    dir: &std::path::Path,
    provider: Arc<dyn Provider>,
    config: AgentConfig,
    network: Network,
) -> Agent {
    let runtime = super::runtime();
    let tools = harness::toolset::load(&runtime, None).await;
    assert!(tools.rejected.is_empty(), "{:?}", tools.rejected);
    let store = Store::open(dir.join("harness.redb")).expect("store");
    let toolbox = Arc::new(tools.toolbox);
    Agent::new(runtime, toolbox, Limits::default(), Arc::new(network), store, provider, "scripted".into(), config)
}

/// The events of a session, without their sequence numbers and times.
pub fn events(agent: &Agent, id: &SessionId) -> Vec<Event> {
    agent.store().events(id).expect("events").into_iter().map(|logged| logged.event).collect()
}

/// The text of a file in the session's filesystem at its head.
pub fn file(agent: &Agent, id: &SessionId, path: &str) -> Option<String> {
    let session = agent.store().session(id).expect("session");
    let mut vfs = agent.store().restore(id, session.head.last_step, Quota::default()).expect("restore");
    let root = vfs.root();
    let node = vfs.lookup(root, path).ok()?;
    let size = vfs.stat(node).ok()?.size;
    Some(String::from_utf8(vfs.read(node, 0, size as usize).ok()?).expect("utf-8"))
}

/// The (content, is_error) of every tool result in `events`.
pub fn results(events: &[Event]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::ToolResult { content, is_error, .. } => Some((content.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_scripted_run_calls_tools_and_commits_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let answers = vec![
        answer("Writing.", vec![call("w", "write_file", json!({"path": "notes/hello.txt", "content": "hi there\n"}))]),
        answer(
            "Checking.",
            vec![
                call("r", "read_file", json!({"path": "notes/hello.txt"})),
                call("l", "list_dir", json!({"path": "."})),
            ],
        ),
        answer("All done.", vec![]),
    ];
    let (agent, provider) = scripted(dir.path(), answers.clone(), AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::titled("hello"), None).unwrap();
    let outcome = agent.send(&id, "write a greeting", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::EndTurn);
    assert_eq!(outcome.usage.input_tokens, 300);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 3);

    let log = events(&agent, &id);
    assert!(matches!(&log[0], Event::UserMessage { text } if text == "write a greeting"));
    assert_eq!(log[1], Event::ModelAnswer(answers[0].clone()));
    assert!(matches!(&log[2], Event::ToolResult { call_id, is_error: false, .. } if call_id == "w"), "{:?}", log[2]);
    assert_eq!(log[3], Event::ModelAnswer(answers[1].clone()));
    assert!(
        matches!(&log[4], Event::ToolResult { call_id, content, .. } if call_id == "r" && content.contains("hi there"))
    );
    assert!(
        matches!(&log[5], Event::ToolResult { call_id, content, .. } if call_id == "l" && content.contains("notes"))
    );
    assert_eq!(log[6], Event::ModelAnswer(answers[2].clone()));
    assert_eq!(log[7], Event::RunEnded { reason: EndReason::EndTurn });
    assert_eq!(log.len(), 8);

    let session = agent.store().session(&id).unwrap();
    assert_eq!(session.status, Status::Finished);
    assert_eq!(session.usage.output_tokens, 60);
    assert_eq!(file(&agent, &id, "notes/hello.txt").as_deref(), Some("hi there\n"));
    // user, answer, write result, answer, read-only batch, answer + end.
    assert_eq!(agent.store().checkpoints(&id).unwrap().len(), 1 + 6);
}

#[tokio::test]
async fn start_creates_the_session_with_its_first_message_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = scripted(dir.path(), vec![answer("Hi.", vec![])], AgentConfig::default()).await;
    let (id, outcome) = agent
        .start("ann", SessionOptions::titled("t"), None, "hello", &Quiet, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.reason, EndReason::EndTurn);
    let checkpoints = agent.store().checkpoints(&id).unwrap();
    assert_eq!(checkpoints[1].last_seq, 1, "checkpoint 1 holds the user message and nothing else");
    assert_eq!(events(&agent, &id)[0], Event::UserMessage { text: "hello".into() });
    assert_eq!(agent.store().session(&id).unwrap().status, Status::Finished);
}

#[tokio::test]
async fn bad_model_output_becomes_error_results_and_the_loop_continues() {
    let dir = tempfile::tempdir().unwrap();
    let answers = vec![
        answer(
            "Trying things.",
            vec![
                call("a", "no_such_tool", json!({})),
                call("b", "write_file", Value::String("{\"path\": \"x\", ".into())),
                call("c", "write_file", json!({"path": 7})),
                call("d", "read_file", json!([1, 2])),
            ],
        ),
        answer("Sorry.", vec![]),
    ];
    let (agent, _) = scripted(dir.path(), answers, AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let outcome = agent.send(&id, "go", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::EndTurn);
    let results = results(&events(&agent, &id));
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|(_, is_error)| *is_error), "{results:?}");
    assert!(results[0].0.contains("there is no tool named `no_such_tool`") && results[0].0.contains("read_file"));
    assert!(results[1].0.contains("is not valid JSON"), "{}", results[1].0);
    assert!(results[2].0.contains("write_file") && results[2].0.contains("7"), "{}", results[2].0);
    assert!(results[3].0.contains("must be a JSON object"), "{}", results[3].0);
}

#[tokio::test]
async fn max_turns_and_budgets_end_the_run() {
    let looping: Vec<ModelAnswer> =
        (0..5).map(|i| answer("again", vec![call(&format!("c{i}"), "list_dir", json!({"path": "."}))])).collect();
    let dir = tempfile::tempdir().unwrap();
    let (agent, provider) =
        scripted(dir.path(), looping.clone(), AgentConfig { max_turns: 2, ..AgentConfig::default() }).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let outcome = agent.send(&id, "loop", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::MaxTurns);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert_eq!(events(&agent, &id).last(), Some(&Event::RunEnded { reason: EndReason::MaxTurns }));

    let dir = tempfile::tempdir().unwrap();
    let budget = Budget { max_tokens: Some(250), max_cost_usd: None };
    let (agent, provider) = scripted(dir.path(), looping, AgentConfig { budget, ..AgentConfig::default() }).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let outcome = agent.send(&id, "loop", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::Budget);
    assert_eq!(outcome.error.as_deref(), Some("the session used 360 tokens, its budget is 250"));
    assert_eq!(provider.calls.load(Ordering::SeqCst), 3);
    assert_eq!(agent.store().session(&id).unwrap().status, Status::Finished);
}

/// Commits `events` as one step, the way a run would have before dying.
fn crashed_after(agent: &Agent, id: &SessionId, events: Vec<Event>, status: Option<Status>) {
    agent.store().commit_step(id, &Step { events, snapshot: None, status }).unwrap();
}

#[tokio::test]
async fn resume_never_repeats_a_committed_answer_and_reruns_an_idempotent_call() {
    let dir = tempfile::tempdir().unwrap();
    let answers = vec![
        answer("Writing.", vec![call("w", "write_file", json!({"path": "a.txt", "content": "A"}))]),
        answer("Done.", vec![]),
    ];
    let (agent, provider) = scripted(dir.path(), answers.clone(), AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    crashed_after(&agent, &id, vec![Event::UserMessage { text: "write".into() }], Some(Status::Running));
    crashed_after(&agent, &id, vec![Event::ModelAnswer(answers[0].clone())], None);
    assert_eq!(agent.interrupted_sessions().unwrap(), vec![id]);

    let outcome = agent.resume(&id, &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::EndTurn);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1, "only the answer after the tool result was requested");
    assert_eq!(file(&agent, &id, "a.txt").as_deref(), Some("A"), "the in-flight idempotent call ran again");
    let log = events(&agent, &id);
    assert_eq!(log.iter().filter(|e| matches!(e, Event::ModelAnswer(_))).count(), 2);
    assert!(agent.interrupted_sessions().unwrap().is_empty());

    // Resuming a finished session does nothing.
    let again = agent.resume(&id, &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(again.reason, EndReason::EndTurn);
    assert_eq!(events(&agent, &id), log);
}

#[tokio::test]
async fn a_started_non_idempotent_call_is_reported_interrupted_not_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let edit = call("e", "edit_file", json!({"path": "a.txt", "old_string": "A", "new_string": "AA"}));
    let answers = vec![answer("Editing.", vec![edit]), answer("Checked.", vec![])];
    let (agent, provider) = scripted(dir.path(), answers.clone(), AgentConfig::default()).await;
    let mut seed = runtime::vfs::Vfs::new(Quota::default());
    let root = seed.root();
    let node = seed.open_at(root, "a.txt", runtime::vfs::OpenOptions { create: true, ..Default::default() }).unwrap();
    seed.write(node, 0, b"A").unwrap();
    // One snapshot for both stores: a second snapshot of an unchanged tree has no new objects.
    let seeded = seed.snapshot().unwrap();
    let id = agent.create_session("ann", SessionOptions::default(), Some(&seeded)).unwrap();
    crashed_after(&agent, &id, vec![Event::UserMessage { text: "edit".into() }], Some(Status::Running));
    crashed_after(&agent, &id, vec![Event::ModelAnswer(answers[0].clone())], None);
    crashed_after(&agent, &id, vec![Event::ToolStarted { call_id: "e".into(), name: "edit_file".into() }], None);

    let outcome = agent.resume(&id, &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::EndTurn);
    let log = events(&agent, &id);
    let (content, is_error) = results(&log).pop().unwrap();
    assert!(is_error && content.contains("was interrupted") && content.contains("not idempotent"), "{content}");
    assert_eq!(file(&agent, &id, "a.txt").as_deref(), Some("A"), "the edit was not run again");
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);

    // Without the `ToolStarted`, the same call runs: it never started.
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = scripted(dir.path(), answers.clone(), AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), Some(&seeded)).unwrap();
    crashed_after(&agent, &id, vec![Event::UserMessage { text: "edit".into() }], Some(Status::Running));
    crashed_after(&agent, &id, vec![Event::ModelAnswer(answers[0].clone())], None);
    agent.resume(&id, &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(file(&agent, &id, "a.txt").as_deref(), Some("AA"));
    assert!(matches!(&events(&agent, &id)[2], Event::ToolStarted { call_id, .. } if call_id == "e"));
}

#[tokio::test]
async fn provider_failure_and_cancel_end_the_run_with_a_clear_record() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = scripted(dir.path(), vec![], AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let outcome = agent.send(&id, "hello?", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::Failed);
    let error = outcome.error.unwrap();
    assert!(error.contains("cassette"), "{error}");
    let log = events(&agent, &id);
    assert!(matches!(&log[1], Event::Error { message } if *message == error));
    assert_eq!(log[2], Event::RunEnded { reason: EndReason::Failed });
    assert_eq!(agent.store().session(&id).unwrap().status, Status::Failed);

    let dir = tempfile::tempdir().unwrap();
    let answers = vec![answer("Listing.", vec![call("l", "list_dir", json!({"path": "."}))]), answer("x", vec![])];
    let (agent, provider) = scripted(dir.path(), answers, AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let outcome = agent.send(&id, "hello", &Quiet, &cancel).await.unwrap();
    assert_eq!(outcome.reason, EndReason::Cancelled);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 0);
    assert_eq!(agent.store().session(&id).unwrap().status, Status::Cancelled);
}

#[tokio::test]
async fn secrets_never_reach_the_log_or_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut secrets = SecretStore::new();
    secrets.insert("TOKEN", SecretValue::new("tok-1f2e3d4c5b6a7988"));
    let network = Network::new(Policy::default(), secrets, vec![]).unwrap();
    let answers = vec![answer("ok", vec![])];
    let (agent, _) = agent_with(dir.path(), answers, AgentConfig::default(), network).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    agent.send(&id, "my token is tok-1f2e3d4c5b6a7988, keep it", &Quiet, &CancellationToken::new()).await.unwrap();
    let log = events(&agent, &id);
    assert_eq!(log[0], Event::UserMessage { text: "my token is [REDACTED:TOKEN], keep it".into() });
    let bytes = std::fs::read(dir.path().join("harness.redb")).unwrap();
    let secret: &[u8] = b"tok-1f2e3d4c5b6a7988";
    assert!(!bytes.windows(secret.len()).any(|w| w == secret), "the secret is not in the database file");
}

#[tokio::test]
async fn a_secret_in_the_system_prompt_or_repeated_by_the_model_never_reaches_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut secrets = SecretStore::new();
    secrets.insert("TOKEN", SecretValue::new("tok-1f2e3d4c5b6a7988"));
    let network = Network::new(Policy::default(), secrets, vec![]).unwrap();
    // The model "knows" the secret (it could only guess it): every later request must hide it.
    let answers = vec![
        answer("Using tok-1f2e3d4c5b6a7988.", vec![call("l1", "list_dir", json!({"path": "."}))]),
        answer("Again.", vec![call("l2", "list_dir", json!({"path": "."}))]),
        answer("Done.", vec![]),
    ];
    let replay = ReplayProvider::new(cassette(answers), dir.path().join("cassette.json"));
    let seen = Arc::new(Counting::over(Arc::new(replay)));
    let config =
        AgentConfig { system: Some("The deploy token is tok-1f2e3d4c5b6a7988.".into()), ..AgentConfig::default() };
    let agent = agent_over(dir.path(), seen.clone(), config, network).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    agent.send(&id, "go", &Quiet, &CancellationToken::new()).await.unwrap();
    let requests: Vec<String> =
        seen.requests.lock().unwrap().iter().map(|request| serde_json::to_string(request).unwrap()).collect();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert!(!request.contains("tok-1f2e3d4c5b6a7988"), "{request}");
        assert!(request.contains("The deploy token is [REDACTED:TOKEN]."), "{request}");
    }
    // The repeated secret is caught when it enters the conversation, and stays redacted.
    assert!(requests[1].contains("Using [REDACTED:TOKEN]."), "{}", requests[1]);
    assert!(requests[2].contains("Using [REDACTED:TOKEN]."), "{}", requests[2]);
}

/// A model that never answers.
struct Silent;

#[async_trait::async_trait]
impl Provider for Silent {
    fn name(&self) -> &str {
        "silent"
    }
    async fn complete(
        &self,
        _request: &ModelRequest,
        _on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn one_session_runs_once_at_a_time_and_a_cancel_stops_a_waiting_model_call() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Arc::new(agent_over(dir.path(), Arc::new(Silent), AgentConfig::default(), Network::default()).await);
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let cancel = CancellationToken::new();
    let first = tokio::spawn({
        let (agent, cancel) = (agent.clone(), cancel.clone());
        async move { agent.send(&id, "one", &Quiet, &cancel).await }
    });
    while agent.store().session(&id).unwrap().status != Status::Running {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let second = agent.send(&id, "two", &Quiet, &CancellationToken::new()).await;
    assert!(matches!(second, Err(harness::agent::AgentError::Busy(busy)) if busy == id), "{second:?}");
    cancel.cancel();
    let outcome = first.await.unwrap().unwrap();
    assert_eq!(outcome.reason, EndReason::Cancelled);
    assert_eq!(events(&agent, &id).last(), Some(&Event::RunEnded { reason: EndReason::Cancelled }));
}

#[tokio::test]
async fn stop_leaves_the_run_to_resume_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Arc::new(agent_over(dir.path(), Arc::new(Silent), AgentConfig::default(), Network::default()).await);
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let run = tokio::spawn({
        let agent = agent.clone();
        async move { agent.send(&id, "hello", &Quiet, &CancellationToken::new()).await }
    });
    while agent.running() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    agent.stop();
    let outcome = run.await.unwrap().unwrap();
    assert!(outcome.stopped);
    assert_eq!(agent.store().session(&id).unwrap().status, Status::Running);
    assert_eq!(events(&agent, &id), vec![Event::UserMessage { text: "hello".into() }]);
    drop(agent);

    // The next process picks it up where it stopped.
    let (agent, provider) = scripted(dir.path(), vec![answer("Hello!", vec![])], AgentConfig::default()).await;
    assert_eq!(agent.interrupted_sessions().unwrap(), vec![id]);
    let outcome = agent.resume(&id, &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!((outcome.reason, outcome.stopped), (EndReason::EndTurn, false));
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
}
