//! Checks shared by the tests.

use super::*;

/// The built-in tools as the harness declares them, by name.
pub(super) async fn declared_tools() -> BTreeMap<String, runtime::ToolSpec> {
    let tools = harness::toolset::load(&crate::runtime(), None).await;
    assert!(tools.rejected.is_empty(), "{:?}", tools.rejected);
    tools.toolbox.specs().map(|spec| (spec.name.clone(), spec.clone())).collect()
}

pub(super) fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

/// Checks a full listing: every built-in, with the schema and description it
/// declares, and hints that say what it does.
pub(super) async fn assert_lists_the_builtins(outcome: &Outcome, step: usize) {
    let tools = outcome.tools(step);
    assert_eq!(tools.keys().cloned().collect::<BTreeSet<_>>(), names(&BUILTINS), "{outcome:?}");
    let declared = declared_tools().await;
    for (name, tool) in &tools {
        let spec = &declared[name];
        assert_eq!(tool["inputSchema"], spec.input_schema, "{name}'s schema is the one it declares");
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
        assert_eq!(tool["description"], json!(spec.description), "{name}");
        assert!(tool["annotations"].is_object(), "{name} has annotations: {tool}");
    }
    let hints = |name: &str| {
        let annotations = &tools[name]["annotations"];
        ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"].map(|hint| {
            annotations[hint].as_bool().unwrap_or_else(|| panic!("{name} has no boolean {hint}: {annotations}"))
        })
    };
    // [read-only, destructive, idempotent, open world]
    assert_eq!(hints("read_file"), [true, false, true, false]);
    assert_eq!(hints("list_dir"), [true, false, true, false]);
    let [read_only, destructive, _, open_world] = hints("write_file");
    assert_eq!([read_only, destructive, open_world], [false, true, false]);
    let [read_only, _, _, open_world] = hints("fetch");
    assert_eq!([read_only, open_world], [false, true], "fetch reaches the network");
}

/// Checks an unknown tool was refused with a protocol error naming the tools there are.
pub(super) fn assert_unknown_tool(outcome: &Outcome, step: usize, name: &str, tools: &[&str]) {
    let (code, message) = outcome.rpc_error(step);
    assert_eq!(code, -32602, "invalid params: {outcome:?}");
    let prefix = format!("there is no tool named `{name}`; the tools are: ");
    let listed = message.strip_prefix(&prefix).unwrap_or_else(|| panic!("{message:?} should start with {prefix:?}"));
    assert_eq!(listed.split(", ").map(str::to_owned).collect::<BTreeSet<_>>(), names(tools), "{message}");
}

/// The client calls of `id`: (seq, name, input, content, is_error), oldest first,
/// failing on any other event.
pub(super) fn client_calls(store: &Store, id: &SessionId) -> Vec<(u64, String, Value, String, bool)> {
    let logged = store.events(id).expect("events");
    logged
        .into_iter()
        .map(|logged| match logged.event {
            Event::ClientToolCall { name, input, content, is_error, .. } => {
                (logged.seq, name, input, content, is_error)
            }
            other => panic!("only client calls were made, found {other:?}"),
        })
        .collect()
}

/// The text of `path` in `id`'s filesystem after step `step`.
pub(super) fn file_at(store: &Store, id: &SessionId, step: u64, path: &str) -> Option<String> {
    let mut vfs = store.restore(id, step, Quota::default()).expect("restore");
    let root = vfs.root();
    let node = vfs.lookup(root, path).ok()?;
    let size = vfs.stat(node).ok()?.size;
    Some(String::from_utf8(vfs.read(node, 0, size as usize).ok()?).expect("utf-8"))
}

/// The text of `path` at `id`'s head.
pub(super) fn file(store: &Store, id: &SessionId, path: &str) -> Option<String> {
    file_at(store, id, store.session(id).expect("session").head.last_step, path)
}

/// Reads `count` committed events from a session's event stream.
pub(super) async fn next_events(events: &mut Events, count: usize) -> Vec<EventRecord> {
    let mut seen = Vec::new();
    for _ in 0..count {
        seen.push(events.next().await.unwrap_or_else(|| panic!("the stream ended after {seen:?}")));
    }
    seen
}

/// The (seq, tool name, input) of client-call events, failing on any other event.
pub(super) fn calls_in(records: &[EventRecord]) -> Vec<(u64, String, Value)> {
    records
        .iter()
        .map(|record| match &record.event {
            Event::ClientToolCall { name, input, .. } => (record.seq, name.clone(), input.clone()),
            other => panic!("expected client calls, got {other:?}"),
        })
        .collect()
}

/// A session's event stream from its first event (`?after=0`).
pub(super) async fn events_from_start(server: &TestServer, token: &str, id: &SessionId) -> Events {
    let request = server.request(Method::GET, &format!("/v1/sessions/{id}/events?after=0"), Some(token));
    Events::open(request.send().await.expect("events request"))
}
