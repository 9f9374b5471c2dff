//! The store's event log and `commit_step`: numbering, round trips, atomicity.

use harness::conversation::{Block, ModelAnswer, StopReason, Usage};
use harness::event::{EndReason, Event};
use harness::store::{Status, Step, Store, StoreError};
use runtime::vfs::{Quota, Snapshot, Vfs};
use serde_json::json;

use crate::store::{get, new_session, put, temp_store};

/// A user message event.
pub fn user(text: &str) -> Event {
    Event::UserMessage { text: text.into() }
}

/// A model answer calling one tool, with the given usage.
pub fn answer(call_id: &str, input_tokens: u64, output_tokens: u64) -> Event {
    Event::ModelAnswer(ModelAnswer {
        content: vec![
            Block::Text { text: "Let me look.".into() },
            Block::ToolUse { id: call_id.into(), name: "read_file".into(), input: json!({"path": "src/main.rs"}) },
        ],
        stop_reason: StopReason::ToolUse,
        usage: Usage { input_tokens, output_tokens, ..Usage::default() },
        model: "claude-test".into(),
    })
}

/// One event of every variant, with awkward content.
fn every_variant() -> Vec<Event> {
    vec![
        user("héllo \u{1F600} \"quoted\"\n\0nul"),
        Event::ModelAnswer(ModelAnswer {
            content: vec![
                Block::Text { text: String::new() },
                Block::ToolUse {
                    id: "toolu_1".into(),
                    name: "grep".into(),
                    input: json!({"pattern": "a.*b", "nested": {"list": [1, 2.5, null, true]}, "big": u64::MAX}),
                },
                Block::ToolResult { tool_use_id: "toolu_0".into(), content: "ok".into(), is_error: false },
            ],
            stop_reason: StopReason::Other("model_context_window_exceeded".into()),
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
                cache_creation_input_tokens: 3,
                cache_read_input_tokens: 4,
            },
            model: "claude-test-2".into(),
        }),
        Event::ToolStarted { call_id: "toolu_1".into(), name: "grep".into() },
        Event::ToolResult {
            call_id: "toolu_1".into(),
            name: "grep".into(),
            content: "x".repeat(100_000),
            is_error: true,
        },
        Event::Error { message: "provider said 529".into() },
        Event::RunEnded { reason: EndReason::EndTurn },
        Event::RunEnded { reason: EndReason::MaxTurns },
        Event::RunEnded { reason: EndReason::Budget },
        Event::RunEnded { reason: EndReason::Cancelled },
        Event::RunEnded { reason: EndReason::Failed },
        Event::ModelAnswer(ModelAnswer {
            content: vec![],
            stop_reason: StopReason::EndTurn,
            usage: Usage::default(),
            model: String::new(),
        }),
    ]
}

/// A snapshot after writing `content` to `path`.
fn change(vfs: &mut Vfs, path: &str, content: &[u8]) -> Snapshot {
    put(vfs, path, content);
    vfs.snapshot().unwrap()
}

#[test]
fn store_commit_step_numbers_seqs_and_steps() {
    let (_dir, store) = temp_store();
    let id = store.create_session(new_session("alice"), None).unwrap().id;
    let step = |events: Vec<Event>| Step { events, snapshot: None, status: None };
    let one = store.commit_step(&id, &step(vec![user("a"), answer("c1", 10, 1)])).unwrap();
    let two = store.commit_step(&id, &step(vec![])).unwrap();
    let three = store.commit_step(&id, &step(vec![user("b"), user("c"), user("d")])).unwrap();
    assert_eq!(
        [(one.step, one.last_seq), (two.step, two.last_seq), (three.step, three.last_seq)],
        [(1, 2), (2, 2), (3, 5)]
    );
    assert!(one.time <= two.time && two.time <= three.time);

    let session = store.session(&id).unwrap();
    assert_eq!((session.head.last_seq, session.head.last_step), (5, 3));
    let events = store.events(&id).unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(events[0].time, one.time, "an event carries its step's commit time");
    assert_eq!(events[4].time, three.time);
    assert_eq!(
        store.checkpoints(&id).unwrap().iter().map(|c| (c.step, c.last_seq)).collect::<Vec<_>>(),
        [(0, 0), (1, 2), (2, 2), (3, 5)]
    );
}

#[test]
fn store_events_round_trip_every_variant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let events = every_variant();
    let id = {
        let store = Store::open(&path).unwrap();
        let id = store.create_session(new_session("alice"), None).unwrap().id;
        store.commit_step(&id, &Step { events: events[..3].to_vec(), snapshot: None, status: None }).unwrap();
        store.commit_step(&id, &Step { events: events[3..].to_vec(), snapshot: None, status: None }).unwrap();
        id
    };
    let store = Store::open(&path).unwrap();
    let logged = store.events(&id).unwrap();
    assert_eq!(logged.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), events);
    assert_eq!(logged.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=events.len() as u64).collect::<Vec<_>>());
    assert!(logged.windows(2).all(|pair| pair[0].time <= pair[1].time));
    assert_eq!(logged[0].time, logged[2].time, "one step, one commit time");

    let tail = store.events_since(&id, 9).unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [10, 11]);
    assert_eq!(tail[1].event, events[10]);
    assert!(store.events_since(&id, 11).unwrap().is_empty());
    assert!(store.events_since(&id, u64::MAX).unwrap().is_empty());
    assert_eq!(store.events_since(&id, 0).unwrap(), logged);
}

#[test]
fn store_commit_step_is_atomic_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let mut vfs = Vfs::new(Quota::default());
    let (id, checkpoint, snapshot) = {
        let store = Store::open(&path).unwrap();
        let id = store.create_session(new_session("alice"), None).unwrap().id;
        let snapshot = change(&mut vfs, "src/lib.rs", &[b'x'; 70_000]);
        let events = vec![
            answer("c1", 100, 20),
            Event::ToolResult {
                call_id: "c1".into(),
                name: "write_file".into(),
                content: "wrote 70000 bytes".into(),
                is_error: false,
            },
        ];
        let step = Step { events, snapshot: Some(snapshot.clone()), status: Some(Status::Running) };
        let checkpoint = store.commit_step(&id, &step).unwrap();
        (id, checkpoint, snapshot)
        // Dropped without any shutdown step: what is on disk is what the commit wrote.
    };
    let store = Store::open(&path).unwrap();
    let session = store.session(&id).unwrap();
    assert_eq!((session.head.last_seq, session.head.last_step, session.head.root), (2, 1, snapshot.root));
    assert_eq!(session.status, Status::Running);
    assert_eq!(session.usage, Usage { input_tokens: 100, output_tokens: 20, ..Usage::default() });
    assert_eq!(store.checkpoint(&id, 1).unwrap(), checkpoint);
    assert_eq!(store.events(&id).unwrap().len(), 2);
    for (object, bytes) in &snapshot.new_objects {
        assert_eq!(store.object(object).unwrap().as_deref(), Some(&bytes[..]), "object {object} was committed");
    }
    let mut restored = store.restore(&id, 1, Quota::default()).unwrap();
    assert_eq!(get(&mut restored, "src/lib.rs").unwrap(), vec![b'x'; 70_000]);
}

#[test]
fn store_refused_commit_writes_nothing() {
    let (_dir, store) = temp_store();
    let id = store.create_session(new_session("alice"), None).unwrap().id;
    let mut vfs = Vfs::new(Quota::default());
    store
        .commit_step(
            &id,
            &Step { events: vec![user("a")], snapshot: Some(change(&mut vfs, "a.txt", b"a")), status: None },
        )
        .unwrap();
    let before = (store.session(&id).unwrap(), store.counts().unwrap(), store.events(&id).unwrap());

    // A snapshot taken after one the store never received: its new objects are there
    // but the unchanged ones it relies on are not. Here, drop the root itself.
    let mut snapshot = change(&mut vfs, "b.txt", &[1u8; 3000]);
    let root = snapshot.root;
    snapshot.new_objects.retain(|(object, _)| *object != root);
    let step =
        Step { events: vec![user("b"), answer("c", 5, 5)], snapshot: Some(snapshot), status: Some(Status::Running) };
    let err = store.commit_step(&id, &step).unwrap_err();
    assert!(matches!(err, StoreError::MissingRoot(r) if r == root), "{err:?}");
    assert!(err.to_string().contains(&root.to_string()));

    let after = (store.session(&id).unwrap(), store.counts().unwrap(), store.events(&id).unwrap());
    assert_eq!(after, before, "no event, object, checkpoint, status or usage change");
    assert!(store.sessions_with_status(Status::Running).unwrap().is_empty());
    let next = store.commit_step(&id, &Step { events: vec![user("c")], ..Step::default() }).unwrap();
    assert_eq!((next.step, next.last_seq), (2, 2), "numbering continues from what was committed");
}

#[test]
fn store_usage_and_status_follow_the_steps() {
    let (_dir, store) = temp_store();
    let id = store.create_session(new_session("alice"), None).unwrap().id;
    store.commit_step(&id, &Step { events: vec![user("go")], snapshot: None, status: Some(Status::Running) }).unwrap();
    store.commit_step(&id, &Step { events: vec![answer("a", 1000, 50)], ..Step::default() }).unwrap();
    store
        .commit_step(&id, &Step { events: vec![answer("b", 1200, 70), answer("c", 1, 1)], ..Step::default() })
        .unwrap();
    assert_eq!(store.sessions_with_status(Status::Running).unwrap().len(), 1);
    let end = Step {
        events: vec![Event::RunEnded { reason: EndReason::EndTurn }],
        snapshot: None,
        status: Some(Status::Finished),
    };
    store.commit_step(&id, &end).unwrap();
    let session = store.session(&id).unwrap();
    assert_eq!(session.usage, Usage { input_tokens: 2201, output_tokens: 121, ..Usage::default() });
    assert_eq!(session.status, Status::Finished);
    assert!(store.sessions_with_status(Status::Running).unwrap().is_empty());
    assert_eq!(store.sessions_with_status(Status::Finished).unwrap()[0].id, id);
}
