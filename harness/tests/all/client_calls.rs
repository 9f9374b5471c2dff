//! Tool calls made by a client (MCP) outside any run: each one a committed step
//! with the filesystem it left, on the session's own tools and policy.

use harness::agent::{AgentConfig, AgentError, Quiet, SessionOptions};
use harness::event::Event;
use harness::settings::SessionSettings;
use harness::store::{Status, Step};
use serde_json::json;

use crate::agent::{events, file, scripted};

#[tokio::test]
async fn each_client_call_is_a_committed_step_with_its_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, model) = scripted(dir.path(), vec![], AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let mut attached = agent.attach(&id).unwrap();

    let write = json!({"path": "notes/a.txt", "content": "alpha\n"});
    let written = agent.call_tool(&mut attached, "write_file", write.clone(), &Quiet).await.unwrap();
    assert!(!written.is_error, "{}", written.content);
    assert_eq!(written.seq, 1);
    let read = agent.call_tool(&mut attached, "read_file", json!({"path": "notes/a.txt"}), &Quiet).await.unwrap();
    assert!(!read.is_error && read.content.contains("alpha"), "{}", read.content);

    let session = agent.store().session(&id).unwrap();
    assert_eq!(session.status, Status::Idle, "client calls start no run");
    assert_eq!(session.head.last_step, 2, "one step per call");
    assert_eq!(agent.store().checkpoints(&id).unwrap().len(), 3);
    assert_eq!(file(&agent, &id, "notes/a.txt").as_deref(), Some("alpha\n"));
    let logged = events(&agent, &id);
    match &logged[0] {
        Event::ClientToolCall { name, input, is_error, .. } => {
            assert_eq!((name.as_str(), input, *is_error), ("write_file", &write, false));
        }
        other => panic!("expected a client call, got {other:?}"),
    }
    assert_eq!(model.calls.load(std::sync::atomic::Ordering::SeqCst), 0, "no model was asked");
}

#[tokio::test]
async fn bad_calls_are_error_results_and_the_session_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = scripted(dir.path(), vec![], AgentConfig::default()).await;
    let narrow = SessionSettings { tools: Some(["read_file".to_string()].into()), ..SessionSettings::default() };
    let id =
        agent.create_session("ann", SessionOptions { settings: narrow, ..SessionOptions::default() }, None).unwrap();
    let mut attached = agent.attach(&id).unwrap();
    assert_eq!(attached.toolbox().specs().map(|spec| spec.name.as_str()).collect::<Vec<_>>(), ["read_file"]);

    let cases = [
        (
            "write_file",
            json!({"path": "x", "content": "y"}),
            "there is no tool named `write_file`; the tools are: read_file",
        ),
        ("read_file", json!({"path": 5}), "5 is not of type \"string\""),
        ("read_file", json!("not an object"), "is not valid JSON"),
        ("read_file", json!([1, 2]), "must be a JSON object"),
        ("read_file", json!({"path": "missing.txt"}), "missing.txt"),
    ];
    for (tool, input, expected) in cases {
        let result = agent.call_tool(&mut attached, tool, input.clone(), &Quiet).await.unwrap();
        assert!(result.is_error, "{tool} {input}: {}", result.content);
        assert!(result.content.contains(expected), "{tool} {input}: expected {expected:?} in {:?}", result.content);
    }
    assert_eq!(events(&agent, &id).len(), 5, "failed calls are recorded too");
    assert_eq!(file(&agent, &id, "x"), None);
}

#[tokio::test]
async fn a_sandbox_moved_by_someone_else_is_restored_before_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = scripted(dir.path(), vec![], AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let (mut first, mut second) = (agent.attach(&id).unwrap(), agent.attach(&id).unwrap());
    let write = |text: &str| json!({"path": "shared.txt", "content": text});
    agent.call_tool(&mut first, "write_file", write("one"), &Quiet).await.unwrap();
    agent.call_tool(&mut second, "write_file", write("two"), &Quiet).await.unwrap();
    let read = agent.call_tool(&mut first, "read_file", json!({"path": "shared.txt"}), &Quiet).await.unwrap();
    assert!(read.content.contains("two"), "the first client sees the second's write: {}", read.content);
    agent.call_tool(&mut first, "write_file", write("three"), &Quiet).await.unwrap();
    assert_eq!(file(&agent, &id, "shared.txt").as_deref(), Some("three"));
}

#[tokio::test]
async fn sessions_with_an_unfinished_run_or_gone_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = scripted(dir.path(), vec![], AgentConfig::default()).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let mut attached = agent.attach(&id).unwrap();
    let started =
        Step { events: vec![Event::UserMessage { text: "go".into() }], snapshot: None, status: Some(Status::Running) };
    agent.store().commit_step(&id, &started).unwrap();
    match agent.attach(&id) {
        Err(AgentError::InvalidSettings(message)) => assert!(message.contains("unfinished run"), "{message}"),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got an attachment"),
    }

    agent.store().delete_session(&id).unwrap();
    let gone = agent.call_tool(&mut attached, "list_dir", json!({"path": "."}), &Quiet).await;
    assert!(matches!(gone, Err(AgentError::Store(harness::store::StoreError::SessionNotFound(_)))), "{gone:?}");
}
