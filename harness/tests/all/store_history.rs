//! Time travel in the store: checkpoints, restores, diffs, forks, pruning and
//! garbage collection, and the file size staying bounded.

use harness::store::{Change, DiffEntry, Status, Step, Store, StoreError, StoreOptions};
use runtime::vfs::{NodeKind, Quota, Vfs};

use crate::store::{get, new_session, put, temp_store};
use crate::store_log::{answer, user};

/// Commits the filesystem's changes with one user event.
fn commit(store: &Store, id: &harness::store::SessionId, vfs: &mut Vfs, text: &str) -> harness::store::Checkpoint {
    let step = Step { events: vec![user(text)], snapshot: Some(vfs.snapshot().unwrap()), status: None };
    store.commit_step(id, &step).unwrap()
}

/// Pseudo-random bytes, different for every `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn store_restores_every_checkpoint_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let id = {
        let store = Store::open(&path).unwrap();
        let id = store.create_session(new_session("alice"), None).unwrap().id;
        let mut vfs = Vfs::new(Quota::default());
        for step in 1..=5u64 {
            put(&mut vfs, "notes.md", format!("version {step}\n").as_bytes());
            put(&mut vfs, &format!("steps/{step}.bin"), &noise(step, 100_000));
            commit(&store, &id, &mut vfs, &format!("step {step}"));
        }
        id
    };
    // A fresh handle: every object comes from the file, loaded when touched.
    let store = Store::open(&path).unwrap();
    let checkpoints = store.checkpoints(&id).unwrap();
    assert_eq!(checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    assert!(checkpoints.windows(2).all(|pair| pair[0].time <= pair[1].time));
    assert_eq!(checkpoints[5].root, store.session(&id).unwrap().head.root);
    for checkpoint in &checkpoints[1..] {
        let step = checkpoint.step;
        let mut vfs = store.restore(&id, step, Quota::default()).unwrap();
        assert_eq!(get(&mut vfs, "notes.md").unwrap(), format!("version {step}\n").as_bytes());
        let steps = vfs.lookup(vfs.root(), "steps").unwrap();
        let names: Vec<String> = vfs.read_dir(steps).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, (1..=step).map(|s| format!("{s}.bin")).collect::<Vec<_>>());
        assert_eq!(get(&mut vfs, &format!("steps/{step}.bin")).unwrap(), noise(step, 100_000));
        assert_eq!(get(&mut vfs, &format!("steps/{}.bin", step + 1)), None);
    }
    let mut empty = store.restore(&id, 0, Quota::default()).unwrap();
    assert!(empty.read_dir(empty.root()).unwrap().is_empty());
    let err = store.restore(&id, 6, Quota::default()).unwrap_err();
    assert!(matches!(err, StoreError::CheckpointNotFound { step: 6, .. }), "{err:?}");
    assert!(err.to_string().contains("has no checkpoint for step 6"), "{err}");
}

#[test]
fn store_diff_reports_changes_between_checkpoints() {
    let (_dir, store) = temp_store();
    let id = store.create_session(new_session("alice"), None).unwrap().id;
    let mut vfs = Vfs::new(Quota::default());
    put(&mut vfs, "src/a.rs", b"fn a() {}");
    put(&mut vfs, "src/b.rs", b"fn b() {}");
    put(&mut vfs, "docs/guide/intro.md", b"# Intro");
    put(&mut vfs, "vendor/lib/big.rs", &noise(1, 200_000));
    put(&mut vfs, "shape", b"a file that becomes a directory");
    let before = commit(&store, &id, &mut vfs, "first").step;

    put(&mut vfs, "src/a.rs", b"fn a() { changed() }");
    let root = vfs.root();
    vfs.unlink_file_at(root, "src/b.rs").unwrap();
    put(&mut vfs, "src/c.rs", b"fn c() {}");
    vfs.unlink_file_at(root, "docs/guide/intro.md").unwrap();
    vfs.remove_dir_at(root, "docs/guide").unwrap();
    vfs.remove_dir_at(root, "docs").unwrap();
    put(&mut vfs, "new/deep/file.txt", b"new");
    vfs.unlink_file_at(root, "shape").unwrap();
    put(&mut vfs, "shape/inner.txt", b"now a directory");
    let after = commit(&store, &id, &mut vfs, "second").step;

    let entry = |path: &str, kind, change| DiffEntry { path: path.into(), kind, change };
    use {Change::*, NodeKind::*};
    let expected = vec![
        entry("docs", Dir, Removed),
        entry("new", Dir, Added),
        entry("shape", File, Removed),
        entry("shape", Dir, Added),
        entry("src/a.rs", File, Modified),
        entry("src/b.rs", File, Removed),
        entry("src/c.rs", File, Added),
    ];
    assert_eq!(store.diff(&id, before, after).unwrap(), expected, "vendor/ is unchanged and not reported");

    let reversed = store.diff(&id, after, before).unwrap();
    assert_eq!(reversed.len(), expected.len());
    assert!(reversed.contains(&entry("docs", Dir, Added)) && reversed.contains(&entry("src/c.rs", File, Removed)));
    assert!(store.diff(&id, after, after).unwrap().is_empty());
    let from_empty = store.diff(&id, 0, before).unwrap();
    assert_eq!(from_empty.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["docs", "shape", "src", "vendor"]);
    assert!(from_empty.iter().all(|e| e.change == Added));

    // Only the content of a deep file changed: the one path is reported, nothing else.
    put(&mut vfs, "vendor/lib/big.rs", &noise(2, 200_000));
    let last = commit(&store, &id, &mut vfs, "third").step;
    assert_eq!(store.diff(&id, after, last).unwrap(), [entry("vendor/lib/big.rs", File, Modified)]);
}

#[test]
fn store_fork_shares_history_and_diverges() {
    let (_dir, store) = temp_store();
    let parent = store.create_session(new_session("alice"), None).unwrap().id;
    let mut vfs = Vfs::new(Quota::default());
    for step in 1..=3u64 {
        put(&mut vfs, "state.txt", format!("parent step {step}").as_bytes());
        let step = Step {
            events: vec![user("go"), answer(&format!("c{step}"), 10, 1)],
            snapshot: Some(vfs.snapshot().unwrap()),
            status: None,
        };
        store.commit_step(&parent, &step).unwrap();
    }
    store.set_status(&parent, Status::Running).unwrap();
    let at = store.checkpoint(&parent, 2).unwrap();
    let before = store.counts().unwrap();

    let fork = store.fork(&parent, 2, "bob").unwrap();
    let after = store.counts().unwrap();
    assert_eq!((after.events, after.objects), (before.events, before.objects), "a fork copies no events or objects");
    assert_eq!((after.sessions, after.checkpoints), (before.sessions + 1, before.checkpoints + 1));
    assert_eq!(fork.owner, "bob");
    assert_eq!(fork.status, Status::Idle);
    assert_eq!(fork.parent.map(|p| (p.session, p.step, p.seq)), Some((parent, 2, at.last_seq)));
    assert_eq!((fork.head.last_seq, fork.head.last_step, fork.head.root), (4, 0, at.root));
    assert_eq!(store.checkpoint(&fork.id, 0).unwrap().root, at.root);
    assert_eq!(fork.model, "claude-test");

    let parent_events = store.events(&parent).unwrap();
    assert_eq!(store.events(&fork.id).unwrap(), parent_events[..4], "the parent's log up to the fork point");

    // The fork's filesystem is its own.
    let mut forked = store.restore(&fork.id, 0, Quota::default()).unwrap();
    assert_eq!(get(&mut forked, "state.txt").unwrap(), b"parent step 2");
    put(&mut forked, "state.txt", b"fork step 1");
    put(&mut forked, "fork-only.txt", b"mine");
    let mine = store
        .commit_step(
            &fork.id,
            &Step { events: vec![user("fork says hi")], snapshot: Some(forked.snapshot().unwrap()), status: None },
        )
        .unwrap();
    assert_eq!((mine.step, mine.last_seq), (1, 5));
    let events = store.events(&fork.id).unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(events[4].event, user("fork says hi"));
    assert_eq!(store.events_since(&fork.id, 3).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(store.events(&parent).unwrap(), parent_events, "the parent's log is untouched");
    let mut parent_fs = store.restore(&parent, 3, Quota::default()).unwrap();
    assert_eq!(get(&mut parent_fs, "state.txt").unwrap(), b"parent step 3");
    assert_eq!(get(&mut parent_fs, "fork-only.txt"), None);
    assert_eq!(store.session(&parent).unwrap().status, Status::Running);
    assert_eq!(store.session(&fork.id).unwrap().usage.input_tokens, 0, "a fork counts its own usage");

    // A fork of the fork reads through both.
    let grandchild = store.fork(&fork.id, 1, "carol").unwrap();
    let inherited = store.events(&grandchild.id).unwrap();
    assert_eq!(inherited, events);
    let mut fs = store.restore(&grandchild.id, 0, Quota::default()).unwrap();
    assert_eq!(get(&mut fs, "fork-only.txt").unwrap(), b"mine");

    let err = store.fork(&parent, 9, "bob").unwrap_err();
    assert!(matches!(err, StoreError::CheckpointNotFound { step: 9, .. }), "{err:?}");
}

#[test]
fn store_prune_keeps_what_is_reachable_and_collects_the_rest() {
    let (_dir, store) = temp_store();
    let mut vfs = Vfs::new(Quota::default());
    put(&mut vfs, "shared/constant.bin", &noise(999, 150_000));
    let id = store.create_session(new_session("alice"), Some(&vfs.snapshot().unwrap())).unwrap().id;
    // The objects each step added; none of them is shared with another step.
    let mut added = vec![Vec::new()];
    for step in 1..=10u64 {
        put(&mut vfs, "work/current.bin", &noise(step, 80_000));
        let snapshot = vfs.snapshot().unwrap();
        added.push(snapshot.new_objects.iter().map(|(object, _)| *object).collect::<Vec<_>>());
        store.commit_step(&id, &Step { events: vec![user("step")], snapshot: Some(snapshot), status: None }).unwrap();
    }
    let fork = store.fork(&id, 3, "bob").unwrap().id;
    let objects_before = store.counts().unwrap().objects;
    let stored = |step: usize| added[step].iter().filter(|object| store.object(object).unwrap().is_some()).count();

    let stats = store.prune(&id, 2).unwrap();
    assert_eq!(stats.checkpoints_removed, 9, "steps 0 to 8 go, 9 and 10 stay");
    assert_eq!(store.checkpoints(&id).unwrap().iter().map(|c| c.step).collect::<Vec<_>>(), [9, 10]);
    assert!(stats.bytes_freed >= 6 * 80_000, "{stats:?}");
    let only_pruned_steps: u64 = [1, 2, 4, 5, 6, 7, 8].map(|step| added[step].len() as u64).iter().sum();
    assert_eq!(stats.objects_removed, only_pruned_steps + 1, "and step 0's root directory");
    assert_eq!(store.counts().unwrap().objects, objects_before - stats.objects_removed);
    for step in [1, 2, 4, 8] {
        assert_eq!(stored(step), 0, "what only step {step} reached is gone");
    }
    for step in [3, 9, 10] {
        assert_eq!(stored(step), added[step].len(), "step {step} is still reachable");
    }
    assert_eq!(store.events(&id).unwrap().len(), 10, "events are never pruned");

    // Every kept checkpoint of every session restores completely.
    for (session, step, seed) in [(id, 9, 9), (id, 10, 10), (fork, 0, 3)] {
        let mut vfs = store.restore(&session, step, Quota::default()).unwrap();
        assert_eq!(get(&mut vfs, "work/current.bin").unwrap(), noise(seed, 80_000), "{session} step {step}");
        assert_eq!(get(&mut vfs, "shared/constant.bin").unwrap(), noise(999, 150_000));
    }
    assert!(matches!(store.checkpoint(&id, 3), Err(StoreError::CheckpointNotFound { step: 3, .. })));
    assert_eq!(store.events(&fork).unwrap().len(), 3, "the fork's inherited log survives the parent's prune");

    assert_eq!(store.prune(&id, 2).unwrap(), Default::default(), "a second prune has nothing to do");
    let stats = store.prune(&id, 0).unwrap();
    assert_eq!(
        (stats.checkpoints_removed, stats.objects_removed),
        (1, added[9].len() as u64),
        "the head is always kept"
    );
    assert_eq!(store.checkpoints(&id).unwrap().iter().map(|c| c.step).collect::<Vec<_>>(), [10]);

    // Deleting the fork and collecting lets its content go too.
    store.delete_session(&fork).unwrap();
    let stats = store.collect_garbage().unwrap();
    assert_eq!(stats.objects_removed, added[3].len() as u64);
    assert_eq!(stored(3), 0);
    let mut vfs = store.restore(&id, 10, Quota::default()).unwrap();
    assert_eq!(get(&mut vfs, "work/current.bin").unwrap(), noise(10, 80_000));
    assert_eq!(get(&mut vfs, "shared/constant.bin").unwrap(), noise(999, 150_000));
}

/// Runs 300 steps that each rewrite a 64 KiB file with new content, pruning to the
/// last 3 checkpoints every `prune_every` steps (never if `None`); returns the largest
/// file size seen after any step.
fn long_session(prune_every: Option<u64>) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let store = Store::open_with(&path, StoreOptions { durable: true }).unwrap();
    let id = store.create_session(new_session("alice"), None).unwrap().id;
    let mut vfs = Vfs::new(Quota::default());
    put(&mut vfs, "README.md", b"a long session");
    let mut largest = 0;
    for step in 1..=300u64 {
        put(&mut vfs, "data.bin", &noise(step, 64 * 1024));
        commit(&store, &id, &mut vfs, "rewrite data.bin");
        if prune_every.is_some_and(|every| step % every == 0) {
            store.prune(&id, 3).unwrap();
        }
        largest = largest.max(std::fs::metadata(&path).unwrap().len());
    }
    let mut vfs = store.restore(&id, 300, Quota::default()).unwrap();
    assert_eq!(get(&mut vfs, "data.bin").unwrap(), noise(300, 64 * 1024));
    assert_eq!(store.events(&id).unwrap().len(), 300);
    largest
}

#[test]
fn store_file_size_is_bounded_by_what_is_kept() {
    // 300 × 64 KiB = 18.75 MiB of content is written either way; pruned, at most 13
    // versions are live (3 kept + 10 since the last prune). redb grows its file in
    // steps and reuses freed pages, so the pruned file levels off (1.2 MiB when
    // measured, over 900 steps too) while the other keeps growing (27 MiB).
    const BOUND: u64 = 4 << 20;
    let pruned = long_session(Some(10));
    let unpruned = long_session(None);
    assert!(pruned < BOUND, "pruned every 10 steps: the file reached {pruned} bytes, bound {BOUND}");
    assert!(unpruned > 4 * BOUND, "never pruned: {unpruned} bytes");
}

#[test]
fn store_full_chunks_take_no_padding() {
    let (_dir, store) = temp_store();
    let mut vfs = Vfs::new(Quota::default());
    // 8 MiB in full 64 KiB chunks. Stored whole, each chunk (64 KiB and a tag byte)
    // would take a 128 KiB redb page: 33.7 MB once redb has grown its file for them,
    // against 16.8 MB for one 64 KiB page each (both measured).
    for file in 0..128u64 {
        put(&mut vfs, &format!("chunks/{file:03}.bin"), &noise(file, 64 * 1024));
    }
    let id = store.create_session(new_session("alice"), Some(&vfs.snapshot().unwrap())).unwrap().id;
    let size = std::fs::metadata(store.path()).unwrap().len();
    assert!(size < 24 << 20, "8 MiB of chunks took a {size}-byte file");
    let mut restored = store.restore(&id, 0, Quota::default()).unwrap();
    for file in [0u64, 77, 127] {
        assert_eq!(get(&mut restored, &format!("chunks/{file:03}.bin")).unwrap(), noise(file, 64 * 1024));
    }
}
