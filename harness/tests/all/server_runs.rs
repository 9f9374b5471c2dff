//! Background runs over HTTP: a message runs while its events stream, a stream
//! resumes exactly where it left off, cancel, resume at start, and shutdown that
//! leaves runs to resume.

use std::sync::Arc;
use std::time::Duration;

use harness::agent::SessionOptions;
use harness::event::{EndReason, Event};
use harness::server::api::EventRecord;
use harness::store::{Status, Step, Store};
use reqwest::Method;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::agent::{answer, call};
use crate::server_util::{Gated, Stalled, TestServer, agent, assert_contiguous, config, replay};

fn kinds(records: &[EventRecord]) -> Vec<&'static str> {
    records
        .iter()
        .map(|record| match &record.event {
            Event::UserMessage { .. } => "user",
            Event::ModelAnswer(_) => "answer",
            Event::ToolStarted { .. } => "started",
            Event::ToolResult { .. } => "result",
            Event::ClientToolCall { .. } => "client",
            Event::Error { .. } => "error",
            Event::RunEnded { .. } => "end",
        })
        .collect()
}

#[tokio::test]
async fn a_message_runs_in_the_background_and_a_reconnected_stream_gets_exactly_the_rest() {
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
    let gate = Arc::new(Gated { inner: replay(dir.path(), answers), permits: Semaphore::new(0) });
    let store = Store::open(dir.path().join("harness.redb")).unwrap();
    let server = TestServer::start(agent(store, gate.clone()).await, config()).await;
    let ann = server.add_user("ann").await;
    let id = server.create_session(&ann, json!({"title": "greeting"})).await;

    let mut first = server.events(&ann, &id, None).await;
    let path = format!("/v1/sessions/{id}/messages");
    let accepted = server.json(Method::POST, &path, &ann, Some(json!({"text": "write a greeting"})), 202).await;
    assert_eq!(accepted["seq"], 1);
    assert_eq!(accepted["session"], id.as_str());
    let busy = server.call(Method::POST, &path, Some(&ann), Some(json!({"text": "again"}))).await;
    assert_eq!(busy.0, 409, "{}", busy.1);
    let session = server.json(Method::GET, &format!("/v1/sessions/{id}"), &ann, None, 200).await;
    assert_eq!((session["running"].as_bool(), session["status"].as_str()), (Some(true), Some("running")));

    let user = first.next().await.unwrap();
    assert_eq!((user.seq, &user.event), (1, &Event::UserMessage { text: "write a greeting".into() }));
    gate.permits.add_permits(1);
    let mut seen = vec![user, first.next().await.unwrap(), first.next().await.unwrap()];
    assert_eq!(kinds(&seen), ["user", "answer", "result"]);
    assert!(first.deltas > 0, "streamed model output arrives as delta events");
    drop(first);

    // Reconnect mid-run, as a browser would after a dropped connection.
    let mut second = server.events(&ann, &id, Some(3)).await;
    gate.permits.add_permits(2);
    let rest = second.until_run_ended().await;
    assert_contiguous(&rest, 4);
    assert_eq!(kinds(&rest), ["answer", "result", "result", "answer", "end"]);
    seen.extend(rest);

    // The whole log again from the store, and a resumption from the backlog alone.
    let mut replayed = server.events(&ann, &id, None).await;
    let all = replayed.until_run_ended().await;
    assert_contiguous(&all, 1);
    assert_eq!(all, seen, "what was streamed live is what the log holds");
    let tail = server.events(&ann, &id, Some(5)).await.until_run_ended().await;
    assert_eq!(tail, seen[5..].to_vec());
    let by_query =
        server.request(Method::GET, &format!("/v1/sessions/{id}/events?after=6"), Some(&ann)).send().await.unwrap();
    let by_query = crate::server_util::Events::open(by_query).until_run_ended().await;
    assert_eq!(by_query, seen[6..].to_vec());

    let session = server.wait_idle(&ann, &id).await;
    assert_eq!(session["status"], "finished");
    assert_eq!(session["usage"]["input_tokens"], 300);
    assert_eq!(session["last_seq"], 8);
    assert_eq!(session["title"], "greeting");
    drop((replayed, second));
    server.shutdown().await;
}

#[tokio::test]
async fn cancel_ends_the_run_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("harness.redb")).unwrap();
    let server = TestServer::start(agent(store, Arc::new(Stalled)).await, config()).await;
    let ann = server.add_user("ann").await;
    let id = server.create_session(&ann, json!({})).await;
    let cancel = format!("/v1/sessions/{id}/cancel");
    assert_eq!(server.json(Method::POST, &cancel, &ann, None, 200).await["cancelled"], false);

    let mut events = server.events(&ann, &id, None).await;
    server.json(Method::POST, &format!("/v1/sessions/{id}/messages"), &ann, Some(json!({"text": "hang"})), 202).await;
    let (status, body) = server.call(Method::DELETE, &format!("/v1/sessions/{id}"), Some(&ann), None).await;
    assert_eq!(status, 409, "a running session can't be deleted: {body}");
    assert_eq!(server.state.active_runs(), 1);

    assert_eq!(server.json(Method::POST, &cancel, &ann, None, 200).await["cancelled"], true);
    let records = events.until_run_ended().await;
    assert_eq!(records.last().unwrap().event, Event::RunEnded { reason: EndReason::Cancelled });
    assert_contiguous(&records, 1);
    let session = server.wait_idle(&ann, &id).await;
    assert_eq!(session["status"], "cancelled");
    assert_eq!(server.json(Method::POST, &cancel, &ann, None, 200).await["cancelled"], false);
    assert_eq!(server.state.active_runs(), 0);
    drop(events);
    server.shutdown().await;
}

#[tokio::test]
async fn serve_resumes_the_sessions_a_crash_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("harness.redb")).unwrap();
    let token = store.add_user("ann").unwrap();
    let agent = agent(store.clone(), Arc::new(replay(dir.path(), vec![answer("Resumed.", vec![])]))).await;
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    let step =
        Step { events: vec![Event::UserMessage { text: "go".into() }], snapshot: None, status: Some(Status::Running) };
    store.commit_step(&id, &step).unwrap();

    let server = TestServer::start(agent, config()).await;
    let records = server.events(&token, &id.to_string(), None).await.until_run_ended().await;
    assert_eq!(kinds(&records), ["user", "answer", "end"]);
    let session = server.wait_idle(&token, &id.to_string()).await;
    assert_eq!(session["status"], "finished");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_streams_and_leaves_runs_to_resume_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let server = TestServer::start(agent(Store::open(&path).unwrap(), Arc::new(Stalled)).await, config()).await;
    let ann = server.add_user("ann").await;
    let id = server.create_session(&ann, json!({})).await;
    let mut events = server.events(&ann, &id, None).await;
    server.json(Method::POST, &format!("/v1/sessions/{id}/messages"), &ann, Some(json!({"text": "hang"})), 202).await;
    assert_eq!(events.next().await.unwrap().seq, 1);

    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(events.next().await.is_none(), "event streams end at shutdown");

    // Everything of the first server is dropped, so the database opens again.
    let store = Store::open(&path).unwrap();
    let session = store.session(&id.parse().unwrap()).unwrap();
    assert_eq!(session.status, Status::Running, "a stopped run is neither cancelled nor ended");
    let provider = Arc::new(replay(dir.path(), vec![answer("Back.", vec![])]));
    let server = TestServer::start(agent(store, provider).await, config()).await;
    let records = server.events(&ann, &id, None).await.until_run_ended().await;
    assert_eq!(kinds(&records), ["user", "answer", "end"]);
    assert_eq!(records[2].event, Event::RunEnded { reason: EndReason::EndTurn });
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_falls_behind_still_gets_every_event_once() {
    // One answer asking for 400 reads of a 4 KiB file: one burst of 400 large live
    // events, more than the live channel buffers for a client that isn't reading.
    let dir = tempfile::tempdir().unwrap();
    let reads = (0..400).map(|i| call(&format!("r{i}"), "read_file", json!({"path": "big.txt"}))).collect();
    let answers = vec![answer("Reading a lot.", reads), answer("Done.", vec![])];
    let server = TestServer::replaying(dir.path(), answers).await;
    let ann = server.add_user("ann").await;
    let id = server.create_session(&ann, json!({"files": {"big.txt": "x".repeat(4096)}})).await;
    let mut events = server.events(&ann, &id, None).await;
    server.json(Method::POST, &format!("/v1/sessions/{id}/messages"), &ann, Some(json!({"text": "read"})), 202).await;
    server.wait_idle(&ann, &id).await;

    let records = events.until_run_ended().await;
    assert_contiguous(&records, 1);
    assert_eq!(records.len(), 1 + 1 + 400 + 2);
    let results = records.iter().filter(|r| matches!(&r.event, Event::ToolResult { is_error: false, .. })).count();
    assert_eq!(results, 400);
    drop(events);
    server.shutdown().await;
}
