//! Cassettes: replay picks answers by the conversation's length, reports broken
//! cassettes clearly, and recording through a real (local) Anthropic-format server
//! writes a cassette that replays the same answers with secrets redacted.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use harness::conversation::{Block, Message, ModelAnswer, ModelRequest, Role, StopReason, StreamEvent, Usage};
use harness::provider::{
    ApiKey, Cassette, Interaction, Provider, ProviderConfig, ProviderError, ProviderKind, Recorder, ReplayProvider,
};
use serde_json::json;

use crate::wire_server::{Reply, WireServer, ask, complete};

fn answer(content: Vec<Block>, stop_reason: StopReason) -> ModelAnswer {
    ModelAnswer {
        content,
        stop_reason,
        usage: Usage { input_tokens: 7, output_tokens: 3, ..Usage::default() },
        model: "m".into(),
    }
}

fn text(text: &str) -> ModelAnswer {
    answer(vec![Block::Text { text: text.into() }], StopReason::EndTurn)
}

fn tool_call() -> ModelAnswer {
    let call = Block::ToolUse { id: "toolu_1".into(), name: "read_file".into(), input: json!({ "path": "a.txt" }) };
    answer(vec![Block::Text { text: "Reading.".into() }, call], StopReason::ToolUse)
}

/// `request` continued by the model's `answer` and a user message `then`.
fn continued(request: &ModelRequest, answer: &ModelAnswer, then: Block) -> ModelRequest {
    let mut next = request.clone();
    next.messages.push(Message { role: Role::Assistant, content: answer.content.clone() });
    next.messages.push(Message { role: Role::User, content: vec![then] });
    next
}

fn result(content: &str) -> Block {
    Block::ToolResult { tool_use_id: "toolu_1".into(), content: content.into(), is_error: false }
}

fn write_cassette(dir: &Path, interactions: Vec<Interaction>) -> std::path::PathBuf {
    let cassette = Cassette { interactions, ..Cassette::new("two steps") };
    let path = dir.join("steps.json");
    std::fs::write(&path, cassette.to_json().expect("serialize")).expect("write");
    path
}

fn plain(answer: ModelAnswer) -> Interaction {
    Interaction { request: None, expect_last_user: None, answer }
}

fn replay(path: &Path) -> Arc<dyn Provider> {
    ProviderConfig { cassette: Some(path.to_path_buf()), ..ProviderConfig::new(ProviderKind::Replay) }
        .build()
        .expect("replay")
}

#[tokio::test]
async fn replay_picks_the_answer_by_the_number_of_model_answers_so_far() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_cassette(dir.path(), vec![plain(tool_call()), plain(text("It says alpha."))]);
    let provider = replay(&path);
    assert_eq!(provider.name(), "replay");

    let first = ask("what is in a.txt?");
    let (got, events) = complete(provider.as_ref(), &first).await;
    assert_eq!(got.expect("first"), tool_call());
    assert_eq!(
        events,
        vec![
            StreamEvent::Text("Reading.".into()),
            StreamEvent::ToolUseStart { id: "toolu_1".into(), name: "read_file".into() },
            StreamEvent::ToolInputDelta { id: "toolu_1".into(), partial_json: r#"{"path":"a.txt"}"#.into() },
        ]
    );
    let second = continued(&first, &tool_call(), result("alpha"));
    let (got, events) = complete(provider.as_ref(), &second).await;
    assert_eq!(got.expect("second"), text("It says alpha."));
    assert_eq!(events, vec![StreamEvent::Text("It says alpha.".into())]);

    // A resumed session asking for the first step again gets the same answer.
    assert_eq!(complete(provider.as_ref(), &first).await.0.expect("again"), tool_call());
}

#[tokio::test]
async fn an_exhausted_cassette_names_the_file_and_the_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_cassette(dir.path(), vec![plain(tool_call())]);
    let provider = replay(&path);
    let request = continued(&ask("go"), &tool_call(), result("alpha"));
    let err = complete(provider.as_ref(), &request).await.0.expect_err("exhausted");
    let message = err.to_string();
    assert!(matches!(err, ProviderError::Cassette { .. }), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("exhausted") && message.contains("holds 1 interactions") && message.contains("answer 2"),
        "{message}"
    );
}

#[test]
fn broken_cassettes_are_refused_with_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |name: &str, text: &str, expected: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let err = ReplayProvider::open(&path).expect_err(name);
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        for part in expected {
            assert!(message.contains(part), "{name}: expected {part:?} in {message}");
        }
    };
    check(
        "truncated.json",
        "{\n  \"version\": 1,\n  \"interactions\": [\n    {\"answer\": ",
        &["not a valid cassette", "line 4"],
    );
    check("newer.json", r#"{"version": 2, "exchanges": []}"#, &["version 2 is not supported", "reads version 1"]);
    check("unversioned.json", r#"{"interactions": []}"#, &["no `version` field"]);
    check("wrong-shape.json", "{\"version\": 1,\n\"interactions\": [{\"answer\": {\"content\": 5}}]}", &["line 2"]);
    let missing = dir.path().join("missing.json");
    let err = ReplayProvider::open(&missing).expect_err("missing");
    assert!(err.to_string().contains("cannot read it") && err.to_string().contains("missing.json"), "{err}");
}

#[tokio::test]
async fn expect_last_user_catches_a_conversation_that_drifted() {
    let interaction = Interaction { expect_last_user: Some("a.txt".into()), ..plain(tool_call()) };
    let provider =
        ReplayProvider::new(Cassette { interactions: vec![interaction], ..Cassette::new("check") }, "check.json");
    assert!(complete(&provider, &ask("what is in a.txt?")).await.0.is_ok());
    let err = complete(&provider, &ask("what is in b.txt?")).await.0.expect_err("drifted");
    let message = err.to_string();
    assert!(message.contains("check.json") && message.contains("\"a.txt\"") && message.contains("b.txt"), "{message}");
}

const KEY: &str = "sk-ant-record-4e8d2a61b9c03f57";
const EXTRA: &str = "hunter2-extra-secret-value";

fn sse(data: serde_json::Value) -> String {
    format!("event: {}\ndata: {data}\n\n", data["type"].as_str().expect("type"))
}

/// An Anthropic stream with the given blocks (already as `content_block_start` payloads
/// plus their deltas).
fn anthropic_stream(blocks: Vec<(serde_json::Value, serde_json::Value)>, stop_reason: &str) -> Vec<String> {
    let mut events = vec![sse(json!({ "type": "message_start",
        "message": { "model": "claude-rec", "usage": { "input_tokens": 11, "cache_read_input_tokens": 4 } } }))];
    for (index, (start, delta)) in blocks.into_iter().enumerate() {
        events.push(sse(json!({ "type": "content_block_start", "index": index, "content_block": start })));
        events.push(sse(json!({ "type": "content_block_delta", "index": index, "delta": delta })));
        events.push(sse(json!({ "type": "content_block_stop", "index": index })));
    }
    events.push(sse(json!({ "type": "message_delta", "delta": { "stop_reason": stop_reason },
                            "usage": { "output_tokens": 6 } })));
    events.push(sse(json!({ "type": "message_stop" })));
    events
}

#[tokio::test]
async fn recording_writes_a_cassette_that_replays_the_answers_without_secrets() {
    let key_base64 = base64::engine::general_purpose::STANDARD.encode(KEY);
    let leaky = format!("Your key is {KEY}, encoded {key_base64}, and the password {EXTRA}.");
    let server = WireServer::start(vec![
        Reply::Stream(anthropic_stream(
            vec![(
                json!({ "type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {} }),
                json!({ "type": "input_json_delta", "partial_json": "{\"path\": \"a.txt\"}" }),
            )],
            "tool_use",
        )),
        Reply::Stream(anthropic_stream(
            vec![(json!({ "type": "text", "text": "" }), json!({ "type": "text_delta", "text": leaky }))],
            "end_turn",
        )),
    ])
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("recorded.json");
    let config = ProviderConfig {
        model: Some("claude-rec".into()),
        base_url: Some(server.url.clone()),
        api_key: Some(ApiKey::new(KEY)),
        record: Some(path.clone()),
        ..ProviderConfig::new(ProviderKind::Anthropic)
    };
    let recorder = config.build_with_secrets(&[("EXTRA", EXTRA)]).expect("recorder");
    assert_eq!(recorder.name(), "anthropic");

    let first = ask(&format!("Read a.txt. The password is {EXTRA}."));
    let live_first = complete(recorder.as_ref(), &first).await.0.expect("first");
    assert_eq!(live_first.tool_calls().next().map(|(_, _, input)| input.clone()), Some(json!({ "path": "a.txt" })));
    let second = continued(&first, &live_first, result("alpha"));
    let live_second = complete(recorder.as_ref(), &second).await.0.expect("second");
    assert!(live_second.text().contains(KEY), "the live answer is not redacted");

    let file = std::fs::read_to_string(&path).expect("cassette written");
    for secret in [KEY, key_base64.trim_end_matches('='), EXTRA] {
        assert!(!file.contains(secret), "{secret} leaked into the cassette:\n{file}");
    }
    assert!(file.contains("[REDACTED:ANTHROPIC_API_KEY]") && file.contains("[REDACTED:EXTRA]"), "{file}");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(entries, ["recorded.json"], "no temporary files are left behind");

    let cassette = Cassette::load(&path).expect("load");
    assert_eq!(cassette.interactions.len(), 2);
    let summary = cassette.interactions[1].request.as_ref().expect("summary");
    assert_eq!((summary.messages, summary.last_user.as_str()), (3, "alpha"));

    let replay = replay(&path);
    let (replayed_first, events) = complete(replay.as_ref(), &first).await;
    assert_eq!(replayed_first.expect("replay first"), live_first, "an answer without secrets replays identically");
    assert!(events.contains(&StreamEvent::ToolUseStart { id: "toolu_1".into(), name: "read_file".into() }));
    let replayed_second = complete(replay.as_ref(), &second).await.0.expect("replay second");
    assert_eq!(
        (&replayed_second.stop_reason, replayed_second.usage, &replayed_second.model),
        (&live_second.stop_reason, live_second.usage, &live_second.model)
    );
    let replayed_text = replayed_second.text();
    assert!(replayed_text.starts_with("Your key is [REDACTED:ANTHROPIC_API_KEY], encoded "), "{replayed_text}");
    assert!(replayed_text.ends_with("and the password [REDACTED:EXTRA]."), "{replayed_text}");
}

/// Hands out scripted answers, counting calls.
struct Scripted {
    answers: Mutex<VecDeque<ModelAnswer>>,
}

impl Scripted {
    fn new(answers: Vec<ModelAnswer>) -> Arc<Self> {
        Arc::new(Scripted { answers: Mutex::new(answers.into()) })
    }

    fn left(&self) -> usize {
        self.answers.lock().expect("lock").len()
    }
}

#[async_trait::async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn complete(
        &self,
        _request: &ModelRequest,
        _on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        self.answers.lock().expect("lock").pop_front().ok_or_else(|| ProviderError::Config("script ran out".into()))
    }
}

fn recorded_texts(path: &Path) -> Vec<String> {
    Cassette::load(path).expect("load").interactions.iter().map(|i| i.answer.text()).collect()
}

#[tokio::test]
async fn recording_replaces_a_re_requested_step_and_continues_an_existing_cassette() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("session.json");
    let first = ask("start");
    let second = continued(&first, &text("A"), Block::Text { text: "more".into() });

    let recorder = Recorder::new(Scripted::new(vec![text("A"), text("B"), text("C")]), &path, &[]).expect("recorder");
    complete(&recorder, &first).await.0.expect("A");
    complete(&recorder, &second).await.0.expect("B");
    assert_eq!(recorded_texts(&path), ["A", "B"]);
    // The process died before step 0 was committed; the resumed session asks again.
    complete(&recorder, &first).await.0.expect("C");
    assert_eq!(recorded_texts(&path), ["C"], "the re-requested step replaces the old one and what followed it");

    let inner = Scripted::new(vec![text("D"), text("E")]);
    let resumed = Recorder::new(inner.clone(), &path, &[]).expect("recorder on the existing cassette");
    complete(&resumed, &second).await.0.expect("D");
    assert_eq!(recorded_texts(&path), ["C", "D"]);

    let far = continued(&continued(&second, &text("D"), Block::Text { text: "x".into() }), &text("?"), result("y"));
    let err = complete(&resumed, &far).await.0.expect_err("a gap");
    assert!(err.to_string().contains("cannot record answer 4 after only 2"), "{err}");
    assert_eq!(inner.left(), 1, "no model call is made for a step that can't be recorded");
}
