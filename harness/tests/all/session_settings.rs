//! Per-session model, tools, network policy and limits: chosen at creation,
//! stored with the session, inherited by forks, applied to every run, and only
//! ever narrowing what the harness is configured with.

use std::collections::BTreeSet;
use std::sync::Arc;

use harness::agent::{Agent, AgentConfig, AgentError, Quiet, SessionOptions};
use harness::conversation::ModelAnswer;
use harness::event::{EndReason, Event};
use harness::settings::SessionSettings;
use reqwest::Method;
use runtime::net::Network;
use runtime::net::policy::{Policy, Rule};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::agent::{Counting, agent_over, answer, call, events, file, results};
use crate::server_util::{TestServer, config, error_message, replay};

/// What the model was asked, per request: the model name and the tools offered.
fn asked(provider: &Counting) -> Vec<(String, Vec<String>)> {
    let requests = provider.requests.lock().unwrap();
    requests.iter().map(|r| (r.model.clone(), r.tools.iter().map(|tool| tool.name.clone()).collect())).collect()
}

/// An agent whose default model is `scripted`, offering `other` too, answering `answers`.
async fn recording_agent(dir: &std::path::Path, answers: Vec<ModelAnswer>) -> (Agent, Arc<Counting>) {
    let provider = Arc::new(Counting::over(Arc::new(replay(dir, answers))));
    let config = AgentConfig { models: vec!["other".into()], ..AgentConfig::default() };
    (agent_over(dir, provider.clone(), config, Network::default()).await, provider)
}

fn tools(names: &[&str]) -> Option<BTreeSet<String>> {
    Some(names.iter().map(|name| name.to_string()).collect())
}

#[tokio::test]
async fn a_session_runs_its_own_model_and_offers_only_its_tools() {
    let dir = tempfile::tempdir().unwrap();
    let answers = vec![
        answer("Writing.", vec![call("w", "write_file", json!({"path": "x.txt", "content": "x"}))]),
        answer("Listing.", vec![call("l", "list_dir", json!({"path": "."}))]),
        answer("Done.", vec![]),
    ];
    let (agent, provider) = recording_agent(dir.path(), answers).await;
    let options = SessionOptions {
        model: Some("other".into()),
        settings: SessionSettings { tools: tools(&["list_dir", "read_file"]), ..SessionSettings::default() },
        ..SessionOptions::default()
    };
    let id = agent.create_session("ann", options, None).unwrap();
    let outcome = agent.send(&id, "go", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::EndTurn);

    let asked = asked(&provider);
    assert_eq!(asked.len(), 3);
    for (model, offered) in &asked {
        assert_eq!(model, "other");
        assert_eq!(offered.iter().cloned().collect::<BTreeSet<_>>(), tools(&["list_dir", "read_file"]).unwrap());
    }
    let results = results(&events(&agent, &id));
    assert!(results[0].1, "a tool outside the session's set is refused: {}", results[0].0);
    assert!(results[0].0.contains("there is no tool named `write_file`"), "{}", results[0].0);
    assert!(!results[1].1, "{}", results[1].0);
    assert_eq!(file(&agent, &id, "x.txt"), None, "the refused call wrote nothing");

    let stored = agent.store().session(&id).unwrap();
    assert_eq!(stored.model, "other");
    assert_eq!(stored.tool_versions.keys().collect::<Vec<_>>(), ["list_dir", "read_file"]);
}

#[tokio::test]
async fn settings_are_stored_survive_a_reopen_and_pass_to_forks() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SessionSettings {
        tools: tools(&["fetch"]),
        network: Some(Policy { allow: vec![serde_json::from_value::<Rule>(json!({"host": "docs.rs"})).unwrap()] }),
        max_turns: Some(3),
        max_tokens: Some(10_000),
        max_cost_usd: Some(0.5),
    };
    let id = {
        let (agent, _) = recording_agent(dir.path(), vec![]).await;
        let options = SessionOptions { settings: settings.clone(), ..SessionOptions::titled("narrow") };
        agent.create_session("ann", options, None).unwrap()
    };
    let store = harness::store::Store::open(dir.path().join("harness.redb")).unwrap();
    let session = store.session(&id).unwrap();
    assert_eq!(session.settings, settings);
    assert_eq!(session.model, "scripted", "the agent's model when none is chosen");
    let fork = store.fork(&id, 0, "ann").unwrap();
    assert_eq!(fork.settings, settings);
}

#[tokio::test]
async fn a_session_limit_below_the_configured_one_binds() {
    let dir = tempfile::tempdir().unwrap();
    let looping: Vec<ModelAnswer> =
        (0..4).map(|n| answer("Again.", vec![call(&format!("l{n}"), "list_dir", json!({"path": "."}))])).collect();
    let (agent, provider) = recording_agent(dir.path(), looping).await;
    let turns = SessionSettings { max_turns: Some(2), ..SessionSettings::default() };
    let id =
        agent.create_session("ann", SessionOptions { settings: turns, ..SessionOptions::default() }, None).unwrap();
    let outcome = agent.send(&id, "go", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::MaxTurns);
    assert_eq!(asked(&provider).len(), 2);

    // Each scripted answer uses 120 tokens: a 150-token session stops after two.
    let tokens = SessionSettings { max_tokens: Some(150), ..SessionSettings::default() };
    let id =
        agent.create_session("ann", SessionOptions { settings: tokens, ..SessionOptions::default() }, None).unwrap();
    let before = asked(&provider).len();
    let outcome = agent.send(&id, "go", &Quiet, &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.reason, EndReason::Budget);
    assert_eq!(asked(&provider).len() - before, 2);
}

#[tokio::test]
async fn settings_that_are_not_allowed_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = recording_agent(dir.path(), vec![]).await;
    let refused = |options: SessionOptions| match agent.create_session("ann", options, None) {
        Err(AgentError::InvalidSettings(message)) => message,
        other => panic!("expected invalid settings, got {other:?}"),
    };
    let message = refused(SessionOptions { model: Some("gpt-9".into()), ..SessionOptions::default() });
    assert_eq!(message, "model `gpt-9` is not offered here; the models are: scripted, other");
    let unknown = SessionSettings { tools: tools(&["read_file", "rm_rf"]), ..SessionSettings::default() };
    let message = refused(SessionOptions { settings: unknown, ..SessionOptions::default() });
    assert!(message.starts_with("there is no tool named `rm_rf`; the tools are: "), "{message}");
    assert!(message.contains("read_file"), "{message}");
    let ftp: Policy = serde_json::from_value(json!({"allow": [{"host": "a.example", "scheme": "ftp"}]})).unwrap();
    let message = refused(SessionOptions {
        settings: SessionSettings { network: Some(ftp), ..SessionSettings::default() },
        ..SessionOptions::default()
    });
    assert!(message.starts_with("network.allow[0].scheme"), "{message}");
    let message = refused(SessionOptions { model: Some("bad\nname".into()), ..SessionOptions::default() });
    assert!(message.contains("is not a model name"), "{message}");
    assert!(agent.store().list_sessions(None).unwrap().is_empty(), "nothing was created");
}

#[tokio::test]
async fn the_api_creates_sessions_with_their_own_settings_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, provider) = recording_agent(dir.path(), vec![answer("Hi.", vec![])]).await;
    let server = TestServer::start(agent, config()).await;
    let ann = server.add_user("ann").await;
    let body = json!({
        "title": "narrow",
        "model": "other",
        "tools": ["read_file", "grep"],
        "network": {"allow": [{"host": "api.github.com", "methods": ["GET"]}]},
        "max_turns": 5,
        "max_tokens": 1000,
        "max_cost_usd": 0.25,
    });
    let created = server.json(Method::POST, "/v1/sessions", &ann, Some(body), 201).await;
    assert_eq!(created["model"], "other");
    assert_eq!(created["tools"], json!(["grep", "read_file"]));
    assert_eq!(created["network"]["allow"][0]["host"], "api.github.com");
    assert_eq!(created["network"]["allow"][0]["scheme"], "https", "defaults are filled in");
    assert_eq!((created["max_turns"].clone(), created["max_cost_usd"].clone()), (json!(5), json!(0.25)));
    let id = created["id"].as_str().unwrap().to_string();
    let shown = server.json(Method::GET, &format!("/v1/sessions/{id}"), &ann, None, 200).await;
    assert_eq!(shown["tools"], created["tools"]);

    server.json(Method::POST, &format!("/v1/sessions/{id}/messages"), &ann, Some(json!({"text": "hi"})), 202).await;
    server.wait_idle(&ann, &id).await;
    let asked = asked(&provider);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].0, "other");
    assert_eq!(asked[0].1.iter().cloned().collect::<BTreeSet<_>>(), tools(&["grep", "read_file"]).unwrap());

    let plain = server.json(Method::POST, "/v1/sessions", &ann, Some(json!({})), 201).await;
    assert_eq!(plain["model"], "scripted");
    assert!(plain.get("tools").is_none() && plain.get("network").is_none(), "{plain}");

    let bad = [
        (json!({"model": "gpt-9"}), 400, "model `gpt-9` is not offered here"),
        (json!({"tools": ["nope"]}), 400, "there is no tool named `nope`"),
        (json!({"tools": "read_file"}), 422, "invalid type"),
        (json!({"network": {"allow": [{"host": "a b"}]}}), 400, "network.allow[0].host"),
        (json!({"network": {"allow": [{"host": "x", "methods": ["get"]}]}}), 400, "network.allow[0].methods"),
        (json!({"network": {"allow": [{"hots": "x"}]}}), 422, "unknown field `hots`"),
        (json!({"max_turns": 0}), 400, "max_turns must be at least 1"),
        (json!({"max_turns": -1}), 422, "invalid value"),
        (json!({"max_cost_usd": -1.0}), 400, "max_cost_usd"),
        (json!({"model": "other", "files": {"../x": "y"}}), 400, "file `../x`"),
    ];
    for (body, status, expected) in bad {
        let (got, answer) = server.call(Method::POST, "/v1/sessions", Some(&ann), Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {answer}");
        let message = error_message(&answer);
        assert!(message.contains(expected), "{body}: expected {expected:?} in {message:?}");
    }
    let listed = server.json(Method::GET, "/v1/sessions", &ann, None, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "no refused request created a session");
    server.shutdown().await;
}

#[tokio::test]
async fn a_session_network_policy_narrows_what_its_fetch_calls_reach() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move { format!("served {}", uri.path()) });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let loopback = |path: &str| -> Rule {
        serde_json::from_value(json!({"scheme": "http", "host": "127.0.0.1", "port": port, "path_prefix": path}))
            .unwrap()
    };
    let host = Network::new(Policy { allow: vec![loopback("/")] }, Default::default(), vec![]).unwrap();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let answers = vec![
        answer(
            "Both.",
            vec![
                call("a", "fetch", json!({"url": url("/public/a")})),
                call("b", "fetch", json!({"url": url("/private/b")})),
            ],
        ),
        answer("Done.", vec![]),
    ];
    let provider = Arc::new(replay(dir.path(), answers.clone()));
    let agent = agent_over(dir.path(), provider, AgentConfig::default(), host).await;
    let narrow =
        SessionSettings { network: Some(Policy { allow: vec![loopback("/public")] }), ..SessionSettings::default() };
    let id =
        agent.create_session("ann", SessionOptions { settings: narrow, ..SessionOptions::default() }, None).unwrap();
    agent.send(&id, "fetch both", &Quiet, &CancellationToken::new()).await.unwrap();
    let results = results(&events(&agent, &id));
    assert!(!results[0].1 && results[0].0.contains("served /public/a"), "{:?}", results[0]);
    assert!(results[1].1, "{:?}", results[1]);
    assert!(results[1].0.contains("in this session's network policy"), "{}", results[1].0);

    // The same call in a session without its own policy gets what the host allows.
    let id = agent.create_session("ann", SessionOptions::default(), None).unwrap();
    agent.send(&id, "fetch both", &Quiet, &CancellationToken::new()).await.unwrap();
    let private = events(&agent, &id).into_iter().find_map(|event| match event {
        Event::ToolResult { call_id, content, is_error, .. } if call_id == "b" => Some((content, is_error)),
        _ => None,
    });
    let (content, is_error) = private.expect("a result for the private fetch");
    assert!(!is_error && content.contains("served /private/b"), "{content}");
    server.abort();
}
