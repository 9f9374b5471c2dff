//! TypeScript.

use super::*;

/// Lists, writes and reads back, and calls a tool that isn't there, on one client.
fn typescript_round_trip(script: &mut Script, client: usize) -> [usize; 4] {
    let listed = script.list(client);
    let write = script.call(client, "write_file", json!({"path": "ts/out.txt", "content": "from typescript\n"}));
    let read = script.call(client, "read_file", json!({"path": "ts/out.txt"}));
    let unknown = script.call(client, "no_such_tool", json!({}));
    [listed, write, read, unknown]
}

/// Checks [`typescript_round_trip`]'s results; answers the session it used.
async fn assert_typescript_round_trip(
    out: &Outcome,
    client: usize,
    [listed, write, read, unknown]: [usize; 4],
) -> SessionId {
    assert_eq!(out.protocol(client), HANDSHAKE, "{out:?}");
    assert_eq!(out.server_name(client), "agent-harness");
    assert_lists_the_builtins(out, listed).await;
    assert!(out.ok(write).contains("ts/out.txt"), "{out:?}");
    assert!(out.ok(read).contains("from typescript"), "{out:?}");
    assert_unknown_tool(out, unknown, "no_such_tool", &BUILTINS);
    let id = out.session(write);
    assert_eq!((out.recorded(write), out.recorded(read)), ((id, 1), (id, 2)), "{out:?}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_over_stdio_lists_calls_and_refuses_unknown_tools() {
    let home = Home::new();
    let mut script = Script::default();
    let client = script.client(stdio(&home, &[], "session"));
    let steps = typescript_round_trip(&mut script, client);
    let out = script.run(Sdk::TypeScript).await;
    let id = assert_typescript_round_trip(&out, client, steps).await;

    let store = Store::open(home.db()).expect("store");
    let session = store.session(&id).expect("session");
    assert_eq!(session.owner, "tester", "stdio sessions are $USER's by default");
    let calls: Vec<(u64, String, bool)> = client_calls(&store, &id).into_iter().map(|c| (c.0, c.1, c.4)).collect();
    assert_eq!(calls, [(1, "write_file".to_owned(), false), (2, "read_file".to_owned(), false)]);
    assert_eq!(file(&store, &id, "ts/out.txt").as_deref(), Some("from typescript\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_over_http_lists_calls_and_refuses_unknown_tools() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, ann, _) = server_with_users(dir.path()).await;
    let mut script = Script::default();
    let client = script.client(http(&server, &ann, None, "session"));
    let steps = typescript_round_trip(&mut script, client);
    let out = script.run(Sdk::TypeScript).await;
    let id = assert_typescript_round_trip(&out, client, steps).await;

    let stored = server.state.store().session(&id).expect("session");
    assert_eq!((stored.owner.as_str(), stored.title.as_deref()), ("ann", Some("MCP client")));
    let path = format!("/v1/sessions/{id}/files/ts/out.txt");
    assert_eq!(server.call(Method::GET, &path, Some(&ann), None).await, (200, "from typescript\n".to_owned()));
    let mut events = events_from_start(&server, &ann, &id).await;
    let names: Vec<String> = calls_in(&next_events(&mut events, 2).await).into_iter().map(|c| c.1).collect();
    assert_eq!(names, ["write_file", "read_file"]);
    drop(events);
    server.shutdown().await;
}
