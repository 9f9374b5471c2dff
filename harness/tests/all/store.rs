//! The durable store: opening, session metadata and status, ids, deletion.
//! Every test uses a real redb file in a temporary directory.

use std::collections::BTreeMap;

use harness::store::{NewSession, SessionId, Status, Step, Store, StoreError};
use runtime::vfs::{NodeKind, OpenOptions, Quota, Vfs};

use crate::store_log::user;

/// A store in a fresh temporary directory (kept alive by the returned guard).
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("harness.redb")).expect("open store");
    (dir, store)
}

/// Session metadata for `owner`.
pub fn new_session(owner: &str) -> NewSession {
    NewSession {
        owner: owner.into(),
        provider: "anthropic".into(),
        model: "claude-test".into(),
        harness_version: "0.1.0".into(),
        tool_versions: BTreeMap::from([("read_file".into(), "blake3:aa".into()), ("grep".into(), "blake3:bb".into())]),
        ..NewSession::default()
    }
}

/// Writes `content` to `path` (creating parent directories), replacing what was there.
pub fn put(vfs: &mut Vfs, path: &str, content: &[u8]) {
    let root = vfs.root();
    if let Some((parents, _)) = path.rsplit_once('/') {
        let mut dir = String::new();
        for part in parents.split('/') {
            dir = if dir.is_empty() { part.to_owned() } else { format!("{dir}/{part}") };
            match vfs.create_dir_at(root, &dir) {
                Ok(_) | Err(runtime::vfs::FsError::Exists) => {}
                Err(err) => panic!("mkdir {dir}: {err}"),
            }
        }
    }
    let options = OpenOptions { create: true, truncate: true, ..Default::default() };
    let file = vfs.open_at(root, path, options).expect("create file");
    vfs.write(file, 0, content).expect("write file");
}

/// The content of the file at `path`, or `None` if there is no such file.
pub fn get(vfs: &mut Vfs, path: &str) -> Option<Vec<u8>> {
    let root = vfs.root();
    let node = vfs.lookup(root, path).ok()?;
    if vfs.kind(node).ok()? != NodeKind::File {
        return None;
    }
    let size = vfs.stat(node).ok()?.size;
    Some(vfs.read(node, 0, size as usize).expect("read a file that exists"))
}

#[test]
fn store_create_and_reopen_keeps_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let created = {
        let store = Store::open(&path).unwrap();
        let mut new = new_session("alice");
        new.title = Some("fix the parser".into());
        let session = store.create_session(new, None).unwrap();
        store.set_status(&session.id, Status::Running).unwrap();
        assert_eq!(store.path(), path);
        store.session(&session.id).unwrap()
    };
    assert_eq!(created.status, Status::Running);
    assert_eq!((created.head.last_seq, created.head.last_step), (0, 0));
    assert!(created.parent.is_none());

    let store = Store::open(&path).unwrap();
    let reopened = store.session(&created.id).unwrap();
    assert_eq!(reopened, created, "everything survives a reopen, times included");
    assert_eq!(reopened.title.as_deref(), Some("fix the parser"));
    assert_eq!(reopened.tool_versions["grep"], "blake3:bb");
    assert_eq!(reopened.owner, "alice");
    assert_eq!((reopened.provider.as_str(), reopened.model.as_str()), ("anthropic", "claude-test"));
    assert_eq!(store.checkpoint(&created.id, 0).unwrap().root, created.head.root);

    store.set_title(&created.id, None).unwrap();
    assert_eq!(store.session(&created.id).unwrap().title, None);
}

#[test]
fn store_new_session_starts_from_the_initial_snapshot() {
    let (_dir, store) = temp_store();
    let empty = store.create_session(new_session("alice"), None).unwrap();
    let mut vfs = store.restore(&empty.id, 0, Quota::default()).unwrap();
    assert!(vfs.read_dir(vfs.root()).unwrap().is_empty(), "no initial snapshot: an empty filesystem");

    let mut seed = Vfs::new(Quota::default());
    put(&mut seed, "src/main.rs", b"fn main() {}\n");
    let snapshot = seed.snapshot().unwrap();
    let seeded = store.create_session(new_session("alice"), Some(&snapshot)).unwrap();
    assert_eq!(seeded.head.root, snapshot.root);
    let mut vfs = store.restore(&seeded.id, 0, Quota::default()).unwrap();
    assert_eq!(get(&mut vfs, "src/main.rs").as_deref(), Some(&b"fn main() {}\n"[..]));
}

#[test]
fn store_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("notes.txt", &b"just some notes, not a database\n"[..]),
        ("short.bin", &b"r"[..]),
        ("binary.bin", &[0u8, 159, 146, 150, 1, 2, 3, 4, 5, 6, 7, 8][..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = Store::open(&path).expect_err(name);
        assert!(matches!(&err, StoreError::NotADatabase { path: p } if *p == path), "{name}: {err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains("not a harness database"),
            "{message}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), content, "{name} is left untouched");
    }
}

#[test]
fn store_reports_a_corrupt_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    drop(Store::open(&path).unwrap());
    // Keep the magic number, destroy the header and commit slots behind it.
    let mut bytes = std::fs::read(&path).unwrap();
    for byte in &mut bytes[9..512] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path).expect_err("a damaged header can't be opened");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "the error names the file: {message}");
    assert!(matches!(&err, StoreError::CorruptDatabase { path: p, .. } if *p == path), "{err:?}");
    assert!(message.contains("is corrupt"), "{message}");
}

#[test]
fn store_reports_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let first = Store::open(&path).unwrap();
    // redb takes an exclusive file lock per open file, so a second open in this process
    // meets the same lock another process would.
    let err = Store::open(&path).expect_err("the file is locked");
    assert!(matches!(&err, StoreError::Locked { path: p } if *p == path), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "database {} is locked by another harness process; stop that process or use another file",
            path.display()
        )
    );
    drop(first);
    Store::open(&path).expect("the lock goes with the first handle");
}

#[test]
fn store_session_ids_parse_and_reject_malformed_ones() {
    let id = SessionId::new();
    let text = id.to_string();
    assert_eq!(text.len(), 36);
    assert_eq!(text.parse::<SessionId>().unwrap(), id);
    assert_eq!(text.to_uppercase().parse::<SessionId>().unwrap(), id);
    assert_ne!(SessionId::new(), id, "fresh ids differ");
    assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<SessionId>(&format!("\"{text}\"")).unwrap(), id);

    let long = "z".repeat(10_000);
    for bad in ["", "not-a-session", &text[..35], &format!("{text}0"), "0193b5c4-7e1a-7c3d-9f00-1234567890ag", &long] {
        let err = bad.parse::<SessionId>().expect_err(bad);
        let message = err.to_string();
        assert!(message.contains("is not a session id") && message.contains("expected a UUID"), "{message}");
        assert!(message.len() < 400, "a huge input is not echoed whole: {} bytes", message.len());
    }
    let err = serde_json::from_str::<SessionId>("\"nope\"").unwrap_err();
    assert!(err.to_string().contains("is not a session id"), "{err}");
}

#[test]
fn store_lists_sessions_by_owner_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let (a1, a2, b1) = {
        let store = Store::open(&path).unwrap();
        let a1 = store.create_session(new_session("alice"), None).unwrap().id;
        let b1 = store.create_session(new_session("bob"), None).unwrap().id;
        let a2 = store.create_session(new_session("alice"), None).unwrap().id;
        store.set_status(&a1, Status::Running).unwrap();
        store.set_status(&b1, Status::Running).unwrap();
        store.set_status(&a2, Status::Running).unwrap();
        // A status set by a step moves the session out of `Running` too.
        let finished = Step { events: vec![user("done")], snapshot: None, status: Some(Status::Finished) };
        store.commit_step(&a2, &finished).unwrap();
        (a1, a2, b1)
    };
    let store = Store::open(&path).unwrap();
    let ids = |sessions: Vec<harness::store::Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.sessions_with_status(Status::Running).unwrap()), [a1, b1], "what a restart resumes");
    assert_eq!(ids(store.sessions_with_status(Status::Finished).unwrap()), [a2]);
    assert!(store.sessions_with_status(Status::Idle).unwrap().is_empty());
    assert_eq!(ids(store.list_sessions(Some("alice")).unwrap()), [a1, a2], "oldest first");
    assert_eq!(ids(store.list_sessions(Some("bob")).unwrap()), [b1]);
    assert!(store.list_sessions(Some("mallory")).unwrap().is_empty());
    assert!(store.list_sessions(Some("ali")).unwrap().is_empty(), "owners match exactly, not by prefix");
    assert_eq!(ids(store.list_sessions(None).unwrap()), [a1, b1, a2]);

    store.set_status(&a1, Status::Cancelled).unwrap();
    assert_eq!(ids(store.sessions_with_status(Status::Running).unwrap()), [b1]);
    assert_eq!(store.session(&a1).unwrap().status, Status::Cancelled);
}

#[test]
fn store_unknown_sessions_are_clear_errors() {
    let (_dir, store) = temp_store();
    store.create_session(new_session("alice"), None).unwrap();
    let before = store.counts().unwrap();
    let ghost = SessionId::new();
    let expect_not_found = |err: StoreError| {
        assert!(matches!(err, StoreError::SessionNotFound(id) if id == ghost), "{err:?}");
        assert_eq!(err.to_string(), format!("session {ghost} not found"));
    };
    expect_not_found(store.session(&ghost).unwrap_err());
    expect_not_found(store.set_status(&ghost, Status::Running).unwrap_err());
    expect_not_found(store.events(&ghost).unwrap_err());
    expect_not_found(store.checkpoints(&ghost).unwrap_err());
    expect_not_found(store.fork(&ghost, 0, "alice").unwrap_err());
    expect_not_found(store.prune(&ghost, 1).unwrap_err());
    expect_not_found(store.delete_session(&ghost).unwrap_err());
    let mut vfs = Vfs::new(Quota::default());
    put(&mut vfs, "a.txt", b"a");
    let step = Step { events: vec![user("hello")], snapshot: Some(vfs.snapshot().unwrap()), status: None };
    expect_not_found(store.commit_step(&ghost, &step).unwrap_err());
    assert_eq!(store.counts().unwrap(), before, "a refused commit writes nothing, objects included");
}

#[test]
fn store_delete_session_refuses_while_forks_depend_on_it() {
    let (_dir, store) = temp_store();
    let parent = store.create_session(new_session("alice"), None).unwrap().id;
    let mut vfs = Vfs::new(Quota::default());
    put(&mut vfs, "only-parent.txt", &[7u8; 5000]);
    store
        .commit_step(
            &parent,
            &Step { events: vec![user("one")], snapshot: Some(vfs.snapshot().unwrap()), status: None },
        )
        .unwrap();
    let fork = store.fork(&parent, 1, "bob").unwrap().id;
    let err = store.delete_session(&parent).unwrap_err();
    assert!(matches!(&err, StoreError::HasForks { forks, .. } if *forks == [fork]), "{err:?}");
    assert_eq!(err.to_string(), format!("session {parent} has forks ({fork}); delete them first"));
    assert_eq!(store.events(&fork).unwrap().len(), 1, "the refused delete left the parent's log alone");

    store.delete_session(&fork).unwrap();
    assert!(matches!(store.session(&fork), Err(StoreError::SessionNotFound(_))));
    let objects_before = store.counts().unwrap().objects;
    store.delete_session(&parent).unwrap();
    let counts = store.counts().unwrap();
    assert_eq!((counts.sessions, counts.events, counts.checkpoints), (0, 0, 0), "events and checkpoints go with it");
    assert_eq!(counts.objects, objects_before, "objects wait for a collection");
    let stats = store.collect_garbage().unwrap();
    assert_eq!(stats.objects_removed, objects_before);
    assert!(stats.bytes_freed > 5000);
    assert_eq!(store.counts().unwrap().objects, 0);
    assert!(store.list_sessions(None).unwrap().is_empty());
    assert!(store.sessions_with_status(Status::Idle).unwrap().is_empty(), "the status index forgets it too");
}
