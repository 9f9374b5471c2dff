//! Python over HTTP.

use super::*;

/// A server in this process with users ann and bob; answers it and their tokens.
pub(super) async fn server_with_users(dir: &Path) -> (TestServer, String, String) {
    let server = TestServer::replaying(dir, vec![]).await;
    let ann = server.add_user("ann").await;
    let bob = server.add_user("bob").await;
    (server, ann, bob)
}

/// A raw JSON-RPC message POSTed to `/mcp` as the user of `token` (if any), within MCP
/// session `mcp_session` if given: the status, the `Mcp-Session-Id` answered, and
/// the response message (null for a notification).
async fn raw_mcp(
    server: &TestServer,
    token: Option<&str>,
    mcp_session: Option<&str>,
    message: Value,
) -> (u16, Option<String>, Value) {
    let mut request = server
        .request(Method::POST, "/mcp", token)
        .header("Accept", "application/json, text/event-stream")
        .json(&message);
    if let Some(id) = mcp_session {
        request = request.header("Mcp-Session-Id", id).header("MCP-Protocol-Version", HANDSHAKE);
    }
    let response = request.send().await.expect("POST /mcp");
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (session, content_type) = (header("mcp-session-id"), header("content-type").unwrap_or_default());
    let body = response.text().await.expect("body");
    let answer = if content_type.starts_with("text/event-stream") {
        // SSE: the answer is the data line holding a JSON-RPC message.
        body.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|value| value.get("jsonrpc").is_some())
            .unwrap_or(Value::Null)
    } else if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({content_type}): {body}"))
    };
    (status, session, answer)
}

/// An `initialize` request of the handshake revision.
fn raw_initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    })
}

/// An MCP session (the handshake) opened by the user of `token`; answers its id.
async fn open_mcp_session(server: &TestServer, token: &str) -> String {
    let (status, session, answer) = raw_mcp(server, Some(token), None, raw_initialize()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["protocolVersion"], HANDSHAKE, "{answer}");
    let session = session.expect("an Mcp-Session-Id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = raw_mcp(server, Some(token), Some(&session), initialized).await;
    assert_eq!(status, 202);
    session
}

fn raw_call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_http_clients_are_isolated_and_a_token_is_required() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, bob) = server_with_users(dir.path()).await;

    // No token, or a wrong one: 401 before MCP sees anything; the same request
    // with a valid token is answered.
    for token in [None, Some("not-a-token")] {
        let (status, session, answer) = raw_mcp(&server, token, None, raw_initialize()).await;
        assert_eq!((status, session), (401, None), "{token:?}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|message| !message.is_empty()), "{answer}");
    }
    let (status, session, answer) = raw_mcp(&server, Some(&ann), None, raw_initialize()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(session.is_some(), "the handshake opens an MCP session");
    assert_eq!(answer["result"]["serverInfo"]["name"], "agent-harness", "{answer}");

    // A session of ann's that bob tries to attach to.
    let private = server.create_session(&ann, json!({"files": {"secret.txt": "ann only"}})).await;

    let mut script = Script::default();
    let ann_a = script.client(http(&server, &ann, None, "session"));
    let ann_b = script.client(http(&server, &ann, None, "legacy"));
    let bob_c = script.client(http(&server, &bob, None, "session"));
    let bob_in_ann = script.client(http(&server, &bob, Some(&private), "session"));
    let garbled = script.client(http(&server, &bob, Some("not-a-session"), "session"));
    let listed = script.list(ann_a);
    let mut writes = Vec::new();
    for (client, content) in [(ann_a, "from ann, client A"), (ann_b, "from ann, client B"), (bob_c, "from bob")] {
        writes.push(script.call(client, "write_file", json!({"path": "shared.txt", "content": content})));
    }
    let reads: Vec<usize> =
        [ann_a, ann_b, bob_c].map(|client| script.call(client, "read_file", json!({"path": "shared.txt"}))).into();
    let unknown = script.call(ann_b, "no_such_tool", json!({}));
    let invalid = script.call(bob_c, "write_file", json!({"path": "x"}));
    let foreign_list = script.list(bob_in_ann);
    let foreign_read = script.call(bob_in_ann, "read_file", json!({"path": "secret.txt"}));
    let garbled_call = script.call(garbled, "list_dir", json!({"path": "."}));
    let out = script.run(Sdk::Python).await;

    for client in [ann_a, ann_b, bob_c] {
        assert_eq!(out.protocol(client), HANDSHAKE, "{out:?}");
    }
    assert_lists_the_builtins(&out, listed).await;
    for (read, content) in reads.iter().zip(["from ann, client A", "from ann, client B", "from bob"]) {
        assert!(out.ok(*read).contains(content), "each client reads its own write: {out:?}");
    }
    let sessions: Vec<SessionId> = writes.iter().map(|write| out.session(*write)).collect();
    assert_eq!(sessions.iter().collect::<BTreeSet<_>>().len(), 3, "one session per MCP session: {sessions:?}");
    for (write, read) in writes.iter().zip(&reads) {
        assert_eq!(out.recorded(*write).1, 1, "{out:?}");
        assert_eq!(out.recorded(*read), (out.session(*write), 2), "{out:?}");
    }
    assert_unknown_tool(&out, unknown, "no_such_tool", &BUILTINS);
    let message = out.tool_error(invalid);
    assert!(message.contains("does not match its schema") && message.contains("content"), "{message}");
    let refused = format!("there is no session {private}");
    for step in [foreign_list, foreign_read] {
        let (code, message) = out.rpc_error(step);
        assert_eq!((code, message), (-32602, refused.as_str()), "another user's session is not there: {out:?}");
    }
    let (code, message) = out.rpc_error(garbled_call);
    assert_eq!(code, -32602);
    assert!(message.contains("\"not-a-session\" is not a session id"), "{message}");

    // What the server made of it: each session its client's user's, holding its own file.
    let store = server.state.store();
    for (session, owner, content) in [
        (sessions[0], "ann", "from ann, client A"),
        (sessions[1], "ann", "from ann, client B"),
        (sessions[2], "bob", "from bob"),
    ] {
        let stored = store.session(&session).expect("session");
        assert_eq!((stored.owner.as_str(), stored.title.as_deref()), (owner, Some("MCP client")));
        let (other, token) = if owner == "ann" { (&bob, &ann) } else { (&ann, &bob) };
        let path = format!("/v1/sessions/{session}/files/shared.txt");
        assert_eq!(server.call(Method::GET, &path, Some(token), None).await, (200, content.to_owned()));
        let (status, body) = server.call(Method::GET, &path, Some(other), None).await;
        assert_eq!(status, 404, "{body}");
    }
    assert_eq!(client_calls(store, &sessions[2]).len(), 3, "bob's write, read and invalid call");
    let untouched = server.json(Method::GET, &format!("/v1/sessions/{private}"), &ann, None, 200).await;
    assert_eq!(untouched["last_seq"], 0, "bob's attempts left nothing in ann's session: {untouched}");
    let listed = server.json(Method::GET, "/v1/sessions", &bob, None, 200).await;
    let bobs: Vec<&str> = listed.as_array().expect("a list").iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(bobs, [sessions[2].to_string()], "bob sees his session only: {listed}");
    // Committed calls count in the metrics (refusals commit nothing): 3 writes and
    // 3 reads, and bob's invalid call.
    let (status, metrics) = server.call(Method::GET, "/metrics", Some(crate::server_util::ADMIN), None).await;
    assert_eq!(status, 200, "{metrics}");
    for line in ["harness_tool_calls_total{outcome=\"ok\"} 6", "harness_tool_calls_total{outcome=\"error\"} 1"] {
        assert!(metrics.lines().any(|l| l == line), "{line:?} in\n{metrics}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_http_attaches_to_a_rest_session_with_its_tools_and_files_and_events_stream_live() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, _) = server_with_users(dir.path()).await;
    let created = json!({"tools": ["read_file", "list_dir"], "files": {"seed.txt": "seeded"}});
    let id: SessionId = server.create_session(&ann, created).await.parse().expect("a session id");
    let mut live = server.events(&ann, &id.to_string(), None).await;

    let mut script = Script::default();
    let legacy = script.client(http(&server, &ann, Some(&id.to_string()), "session"));
    let stateless = script.client(http(&server, &ann, Some(&id.to_string()), STATELESS));
    let listed = script.list(legacy);
    let read = script.call(legacy, "read_file", json!({"path": "seed.txt"}));
    let write = script.call(legacy, "write_file", json!({"path": "seed.txt", "content": "overwritten"}));
    let listed_stateless = script.list(stateless);
    let dir_listing = script.call(stateless, "list_dir", json!({"path": "."}));
    let out = script.run(Sdk::Python).await;

    assert_eq!((out.protocol(legacy), out.protocol(stateless)), (HANDSHAKE, STATELESS), "{out:?}");
    for step in [listed, listed_stateless] {
        assert_eq!(out.tool_names(step), names(&["list_dir", "read_file"]), "the session's tools only: {out:?}");
    }
    assert!(out.ok(read).contains("seeded"), "{out:?}");
    assert_unknown_tool(&out, write, "write_file", &["list_dir", "read_file"]);
    assert!(out.ok(dir_listing).contains("seed.txt"), "{out:?}");
    assert_eq!(out.recorded(read), (id, 1));
    assert_eq!(out.recorded(dir_listing), (id, 2), "both revisions work in the named session");

    // The calls reached the stream opened before them, and a stream opened now
    // replays them from the start.
    let expected = vec![
        (1, "read_file".to_owned(), json!({"path": "seed.txt"})),
        (2, "list_dir".to_owned(), json!({"path": "."})),
    ];
    assert_eq!(calls_in(&next_events(&mut live, 2).await), expected, "live");
    let mut replay = events_from_start(&server, &ann, &id).await;
    assert_eq!(calls_in(&next_events(&mut replay, 2).await), expected, "?after=0");
    assert_eq!(
        server.call(Method::GET, &format!("/v1/sessions/{id}/files/seed.txt"), Some(&ann), None).await,
        (200, "seeded".to_owned()),
        "the refused write changed nothing"
    );
    assert_eq!(server.state.store().list_sessions(None).expect("sessions").len(), 1, "no session was created");
    drop((live, replay));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_http_stateless_requests_share_the_users_default_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, bob) = server_with_users(dir.path()).await;

    let mut script = Script::default();
    let first = script.client(http(&server, &ann, None, STATELESS));
    // Negotiates: picks the stateless revision only if the server's discovery offers it.
    let second = script.client(http(&server, &ann, None, "auto"));
    let bobs = script.client(http(&server, &bob, None, STATELESS));
    let listed = script.list(first);
    let write = script.call(first, "write_file", json!({"path": "notes.txt", "content": "stateless"}));
    let read = script.call(second, "read_file", json!({"path": "notes.txt"}));
    let bob_read = script.call(bobs, "read_file", json!({"path": "notes.txt"}));
    let unknown = script.call(second, "no_such_tool", json!({}));
    let out = script.run(Sdk::Python).await;

    for client in [first, second, bobs] {
        assert_eq!(out.protocol(client), STATELESS, "{out:?}");
    }
    assert_lists_the_builtins(&out, listed).await;
    assert!(out.ok(write).contains("notes.txt"), "{out:?}");
    assert!(out.ok(read).contains("stateless"), "another client of ann's sees her default session: {out:?}");
    let id = out.session(write);
    assert_eq!((out.recorded(write), out.recorded(read)), ((id, 1), (id, 2)));
    let (bob_session, _) = out.recorded(bob_read);
    assert_ne!(bob_session, id);
    assert!(out.tool_error(bob_read).contains("notes.txt"), "bob's default session is his own: {out:?}");
    assert_unknown_tool(&out, unknown, "no_such_tool", &BUILTINS);

    let store = server.state.store();
    for (session, owner) in [(id, "ann"), (bob_session, "bob")] {
        let stored = store.session(&session).expect("session");
        assert_eq!((stored.owner.as_str(), stored.title.as_deref()), (owner, Some("MCP client (default)")));
    }
    assert_eq!(store.list_sessions(None).expect("sessions").len(), 2, "one default session per user");
    let mut events = events_from_start(&server, &ann, &id).await;
    let expected = vec![
        (1, "write_file".to_owned(), json!({"path": "notes.txt", "content": "stateless"})),
        (2, "read_file".to_owned(), json!({"path": "notes.txt"})),
    ];
    assert_eq!(calls_in(&next_events(&mut events, 2).await), expected);
    drop(events);
    server.shutdown().await;
}

/// Calls of one session sent all at once: each is committed, one at a time.
async fn parallel_calls_are_committed_one_by_one(mode: &str) {
    const CALLS: usize = 6;
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, _) = server_with_users(dir.path()).await;
    let mut script = Script::default();
    let client = script.client(http(&server, &ann, None, mode));
    let first = script.call(client, "write_file", json!({"path": "first.txt", "content": "first"}));
    let writes = (0..CALLS)
        .map(|i| (client, "write_file", json!({"path": format!("f{i}.txt"), "content": format!("file {i}")})))
        .collect();
    let parallel = script.parallel(writes);
    let out = script.run(Sdk::Python).await;

    let id = out.session(first);
    let mut seqs = Vec::new();
    for (i, result) in out.results(parallel).iter().enumerate() {
        assert_eq!(result["isError"], false, "call {i} of {CALLS} at once: {out:?}");
        assert_eq!(result["_meta"]["harness/session"], json!(id.to_string()), "{out:?}");
        seqs.push(result["_meta"]["harness/seq"].as_u64().expect("a seq"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..2 + CALLS as u64).collect::<Vec<_>>(), "one step each: {out:?}");
    let store = server.state.store();
    assert_eq!(client_calls(store, &id).len(), 1 + CALLS);
    assert_eq!(store.checkpoints(&id).expect("checkpoints").len(), 2 + CALLS);
    for i in 0..CALLS {
        assert_eq!(file(store, &id, &format!("f{i}.txt")), Some(format!("file {i}")), "every write is at the head");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_http_parallel_calls_of_one_mcp_session_are_committed_one_by_one() {
    parallel_calls_are_committed_one_by_one("session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_http_parallel_stateless_calls_to_one_session_are_committed_one_by_one() {
    parallel_calls_are_committed_one_by_one(STATELESS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_cannot_call_tools_in_an_mcp_session_whose_id_they_learned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, bob) = server_with_users(dir.path()).await;
    let mcp_session = open_mcp_session(&server, &ann).await;
    let write = raw_call(2, "write_file", json!({"path": "mine.txt", "content": "ann's"}));
    let (status, _, answer) = raw_mcp(&server, Some(&ann), Some(&mcp_session), write).await;
    assert_eq!((status, &answer["result"]["isError"]), (200, &json!(false)), "{answer}");

    let read = raw_call(3, "read_file", json!({"path": "mine.txt"}));
    let (status, _, refused) = raw_mcp(&server, Some(&bob), Some(&mcp_session), read.clone()).await;
    assert_eq!((status, &refused["error"]), (404, &json!("no such MCP session")), "{refused}");
    let (_, _, answer) = raw_mcp(&server, Some(&ann), Some(&mcp_session), read).await;
    assert!(answer["result"]["content"][0]["text"].as_str().is_some_and(|t| t.contains("ann's")), "{answer}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused_everything_in_an_mcp_session_they_did_not_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, bob) = server_with_users(dir.path()).await;
    let mcp_session = open_mcp_session(&server, &ann).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, _, answer) = raw_mcp(&server, Some(&bob), Some(&mcp_session), list).await;
    assert_eq!(status, 404, "bob may not list ann's MCP session's tools: {answer}");
    let bobs_call = raw_call(3, "list_dir", json!({"path": "."}));
    let (status, _, answer) = raw_mcp(&server, Some(&bob), Some(&mcp_session), bobs_call).await;
    assert_eq!(status, 404, "bob may not call tools in ann's MCP session: {answer}");
    // Nor open its event stream, nor end it.
    for method in [Method::GET, Method::DELETE] {
        let response = server
            .request(method.clone(), "/mcp", Some(&bob))
            .header("Accept", "application/json, text/event-stream")
            .header("Mcp-Session-Id", &mcp_session)
            .header("MCP-Protocol-Version", HANDSHAKE)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 404, "bob's {method} of ann's MCP session");
    }
    let anns_call = raw_call(4, "list_dir", json!({"path": "."}));
    let (_, _, answer) = raw_mcp(&server, Some(&ann), Some(&mcp_session), anns_call).await;
    assert_eq!(answer["result"]["isError"], false, "ann's MCP session is still hers: {answer}");
    assert!(server.state.store().list_sessions(Some("bob")).expect("sessions").is_empty());

    // Ann ends it; the id is then unknown to everyone.
    let ended = server
        .request(Method::DELETE, "/mcp", Some(&ann))
        .header("Mcp-Session-Id", &mcp_session)
        .header("MCP-Protocol-Version", HANDSHAKE)
        .send()
        .await
        .expect("DELETE /mcp");
    assert!(ended.status().is_success(), "{}", ended.status());
    let again = server
        .request(Method::POST, "/mcp", Some(&ann))
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &mcp_session)
        .header("MCP-Protocol-Version", HANDSHAKE)
        .json(&raw_call(5, "list_dir", json!({"path": "."})))
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(again.status().as_u16(), 404, "an ended MCP session is gone");
    server.shutdown().await;
}
