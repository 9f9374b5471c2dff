//! Python over stdio.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_stdio_lists_calls_refuses_and_every_call_is_durable() {
    let home = Home::new();
    let mut script = Script::default();
    let client = script.client(stdio(&home, &["--owner", "ann"], "session"));
    let listed = script.list(client);
    let write_args = json!({"path": "notes/hello.txt", "content": "hello from python\n"});
    let write = script.call(client, "write_file", write_args.clone());
    let read = script.call(client, "read_file", json!({"path": "notes/hello.txt"}));
    let invalid = script.call(client, "read_file", json!({"path": 5}));
    let unknown = script.call(client, "no_such_tool", json!({}));
    let out = script.run(Sdk::Python).await;

    assert_eq!(out.protocol(client), HANDSHAKE, "{out:?}");
    assert_eq!(out.server_name(client), "agent-harness");
    assert_lists_the_builtins(&out, listed).await;
    assert!(out.ok(write).contains("notes/hello.txt"), "{out:?}");
    assert!(out.ok(read).contains("hello from python"), "{out:?}");
    let message = out.tool_error(invalid);
    assert!(message.contains("does not match its schema") && message.contains("is not of type"), "{message}");
    assert_unknown_tool(&out, unknown, "no_such_tool", &BUILTINS);

    let id = out.session(write);
    for (step, seq) in [(write, 1), (read, 2), (invalid, 3)] {
        assert_eq!(out.recorded(step), (id, seq), "every call in the one session, in order: {out:?}");
    }

    // The client has exited (and with it the server): everything is in the database.
    let store = Store::open(home.db()).expect("the database opens after the client is gone");
    let sessions = store.list_sessions(None).expect("sessions");
    assert_eq!(
        sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        [id],
        "one process, one session; listing created none"
    );
    let session = store.session(&id).expect("session");
    assert_eq!(session.owner, "ann");
    assert_eq!(session.title.as_deref(), Some("MCP client"));
    assert_eq!(session.status, Status::Idle, "client calls start no run");
    let calls = client_calls(&store, &id);
    let expected = [
        (1, "write_file", write_args, out.ok(write), false),
        (2, "read_file", json!({"path": "notes/hello.txt"}), out.ok(read), false),
        (3, "read_file", json!({"path": 5}), out.tool_error(invalid), true),
    ];
    assert_eq!(calls.len(), expected.len(), "{calls:?}");
    for (call, (seq, name, input, content, is_error)) in calls.iter().zip(expected) {
        assert_eq!(call, &(seq, name.to_owned(), input, content.to_owned(), is_error), "the event is the call");
    }
    let checkpoints = store.checkpoints(&id).expect("checkpoints");
    assert_eq!(
        checkpoints.iter().map(|c| (c.step, c.last_seq)).collect::<Vec<_>>(),
        [(0, 0), (1, 1), (2, 2), (3, 3)],
        "the initial state and one checkpoint per call"
    );
    assert_eq!(session.head.last_step, 3);
    assert_eq!(file_at(&store, &id, 0, "notes/hello.txt"), None, "not there before the write");
    assert_eq!(file_at(&store, &id, 1, "notes/hello.txt").as_deref(), Some("hello from python\n"));
    assert_eq!(file(&store, &id, "notes/hello.txt").as_deref(), Some("hello from python\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_over_stdio_speaks_2026_and_a_second_process_reattaches_with_session() {
    let home = Home::new();

    // The stateless revision: no handshake, every request says its version.
    let mut first = Script::default();
    let client = first.client(stdio(&home, &[], STATELESS));
    let listed = first.list(client);
    let write = first.call(client, "write_file", json!({"path": "plan.md", "content": "step one\n"}));
    let read = first.call(client, "read_file", json!({"path": "plan.md"}));
    let unknown = first.call(client, "nope", json!({}));
    let out = first.run(Sdk::Python).await;
    assert_eq!(out.protocol(client), STATELESS, "{out:?}");
    assert_eq!(out.tool_names(listed), names(&BUILTINS));
    assert!(out.ok(read).contains("step one"), "{out:?}");
    assert_unknown_tool(&out, unknown, "nope", &BUILTINS);
    let id = out.session(write);
    assert_eq!(out.recorded(read), (id, 2), "one session for the process, though no request names it");

    // Another process, on the handshake revision, picks the session up where it was.
    let mut second = Script::default();
    let client = second.client(stdio(&home, &["--session", &id.to_string()], "session"));
    let read = second.call(client, "read_file", json!({"path": "plan.md"}));
    let append = second.call(client, "write_file", json!({"path": "plan.md", "content": "step one\nstep two\n"}));
    let out = second.run(Sdk::Python).await;
    assert_eq!(out.protocol(client), HANDSHAKE);
    assert!(out.ok(read).contains("step one"), "the second process sees the first's file: {out:?}");
    assert_eq!(out.recorded(read), (id, 3), "{out:?}");
    assert_eq!(out.recorded(append), (id, 4), "{out:?}");

    // `--tools` narrows the session a process creates.
    let mut narrow = Script::default();
    let client = narrow.client(stdio(&home, &["--tools", "read_file,list_dir", "--allow-host", "docs.rs"], "session"));
    let listed = narrow.list(client);
    let write = narrow.call(client, "write_file", json!({"path": "x", "content": "y"}));
    let dir = narrow.call(client, "list_dir", json!({"path": "."}));
    let out = narrow.run(Sdk::Python).await;
    assert_eq!(out.tool_names(listed), names(&["list_dir", "read_file"]), "{out:?}");
    assert_unknown_tool(&out, write, "write_file", &["list_dir", "read_file"]);
    let narrow_id = out.session(dir);
    assert_ne!(narrow_id, id, "without --session a process gets a session of its own");
    assert!(!out.ok(dir).contains("plan.md"), "a new session starts empty: {out:?}");

    let store = Store::open(home.db()).expect("store");
    let calls: Vec<(u64, String)> = client_calls(&store, &id).into_iter().map(|c| (c.0, c.1)).collect();
    let expected = [(1, "write_file"), (2, "read_file"), (3, "read_file"), (4, "write_file")];
    assert_eq!(calls, expected.map(|(seq, name)| (seq, name.to_owned())), "both processes' calls, in order");
    assert_eq!(store.checkpoints(&id).expect("checkpoints").len(), 5);
    assert_eq!(file(&store, &id, "plan.md").as_deref(), Some("step one\nstep two\n"));
    let settings = store.session(&narrow_id).expect("session").settings;
    assert_eq!(settings.tools, Some(names(&["list_dir", "read_file"])), "the narrowing is the session's own");
    assert_eq!(store.list_sessions(None).expect("sessions").len(), 2);
    drop(store);

    // The CLI shows the narrowing and the client calls.
    let show = crate::cli_run::success(&home.run(&["sessions", "show", &narrow_id.to_string()]));
    assert!(show.contains("tools:       list_dir, read_file"), "{show}");
    assert!(show.contains("network:     only https://docs.rs/ (within the configured policy)"), "{show}");
    let log = crate::cli_run::success(&home.run(&["sessions", "log", &id.to_string()]));
    let first = log.lines().next().unwrap_or_default();
    assert!(first.contains(" client ") && first.contains("write_file") && first.contains(" ok: "), "{log}");

    // A session that isn't there, or isn't an id, is refused before any client connects.
    let missing = "01234567-89ab-7cde-8f01-23456789abcd";
    assert!(missing.parse::<SessionId>().is_ok_and(|missing| missing != id && missing != narrow_id));
    for (session, expected) in [(missing, "cannot attach to session"), ("not-an-id", "is not a session id")] {
        let output = home.command().args(["mcp", "--session", session]).stdin(Stdio::null()).output().expect("run");
        assert!(!output.status.success(), "--session {session} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "--session {session}: expected {expected:?} in {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_tool_is_listed_and_called_like_a_built_in() {
    let home = Home::new();
    let tools_dir = home.path("tools");
    std::fs::create_dir_all(&tools_dir).expect("tools dir");
    std::fs::copy(crate::cli::build_template(), tools_dir.join("line_count.wasm")).expect("install the tool");
    let mut script = Script::default();
    let client = script.client(stdio(&home, &["--tools-dir", tools_dir.to_str().expect("UTF-8")], "session"));
    let listed = script.list(client);
    script.call(client, "write_file", json!({"path": "notes.txt", "content": "one\ntwo\n"}));
    let counted = script.call(client, "line_count", json!({"path": "notes.txt"}));
    let out = script.run(Sdk::Python).await;

    let mut expected: Vec<&str> = BUILTINS.to_vec();
    expected.push("line_count");
    assert_eq!(out.tool_names(listed), names(&expected), "{out:?}");
    let tool = out.tools(listed).remove("line_count").expect("line_count is listed");
    assert_eq!(tool["description"], "Counts the lines of a text file in /workspace. Input: a relative path.");
    let hints = &tool["annotations"];
    assert_eq!(
        (&hints["readOnlyHint"], &hints["idempotentHint"], &hints["destructiveHint"], &hints["openWorldHint"]),
        (&json!(true), &json!(true), &json!(false), &json!(false)),
        "{tool}"
    );
    assert_eq!(out.ok(counted), "notes.txt has 2 lines");
}
