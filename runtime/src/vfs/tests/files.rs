//! File contents across chunk boundaries, checked against a plain `Vec<u8>`.

use proptest::prelude::*;

use super::*;

const C: u64 = CHUNK_SIZE as u64;

#[test]
fn reads_are_short_at_eof_and_empty_past_it() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "f", b"hello");
    assert_eq!(vfs.read(f, 0, 100).unwrap(), b"hello");
    assert_eq!(vfs.read(f, 3, 100).unwrap(), b"lo");
    assert_eq!(vfs.read(f, 5, 100).unwrap(), b"");
    assert_eq!(vfs.read(f, 500, 100).unwrap(), b"");
    assert_eq!(vfs.read(f, 1, 0).unwrap(), b"");
    assert_eq!(vfs.read(f, u64::MAX, usize::MAX).unwrap(), b"");
}

#[test]
fn content_operations_on_a_directory_are_is_directory() {
    let mut vfs = vfs();
    let d = mkdir(&mut vfs, "d");
    assert_eq!(vfs.read(d, 0, 1), Err(FsError::IsDirectory));
    assert_eq!(vfs.write(d, 0, b"x"), Err(FsError::IsDirectory));
    assert_eq!(vfs.append(d, b"x"), Err(FsError::IsDirectory));
    assert_eq!(vfs.set_size(d, 1), Err(FsError::IsDirectory));
}

#[test]
fn a_gap_past_eof_is_zero_filled() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "f", b"ab");
    vfs.write(f, 5, b"cd").unwrap();
    assert_eq!(vfs.read(f, 0, 100).unwrap(), b"ab\0\0\0cd");
    vfs.write(f, 3 * C + 10, b"far").unwrap();
    let all = vfs.read(f, 0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, 3 * C + 13);
    assert_eq!(&all[..7], b"ab\0\0\0cd");
    assert!(all[7..(3 * C + 10) as usize].iter().all(|byte| *byte == 0));
    assert_eq!(&all[(3 * C + 10) as usize..], b"far");
    assert_eq!(vfs.usage().bytes, 3 * C + 13);
}

#[test]
fn append_returns_the_new_size_and_set_size_cuts_or_extends() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "f", b"");
    assert_eq!(vfs.append(f, b"abc").unwrap(), 3);
    assert_eq!(vfs.append(f, b"").unwrap(), 3);
    let big = vec![7u8; CHUNK_SIZE + 5];
    assert_eq!(vfs.append(f, &big).unwrap(), 3 + C + 5);
    vfs.set_size(f, C + 1).unwrap();
    let all = vfs.read(f, 0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, C + 1);
    assert_eq!(&all[..3], b"abc");
    vfs.set_size(f, 2).unwrap();
    assert_eq!(vfs.read(f, 0, 10).unwrap(), b"ab");
    vfs.set_size(f, 2 * C).unwrap();
    let all = vfs.read(f, 0, usize::MAX).unwrap();
    assert_eq!(&all[..2], b"ab");
    assert!(all[2..].iter().all(|byte| *byte == 0));
    assert_eq!(vfs.usage().bytes, 2 * C);
    vfs.set_size(f, 0).unwrap();
    assert_eq!(vfs.stat(f).unwrap().size, 0);
    assert_eq!(vfs.usage().bytes, 0);
}

#[test]
fn a_snapshot_keeps_its_chunks_when_the_file_changes_later() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "f", &[1u8; 100]);
    let snapshot = vfs.snapshot().unwrap();
    let before: Vec<Vec<u8>> = snapshot.new_objects.iter().map(|(_, bytes)| bytes.to_vec()).collect();
    vfs.write(f, 10, b"changed").unwrap();
    vfs.append(f, b"more").unwrap();
    vfs.set_size(f, 50).unwrap();
    let after: Vec<Vec<u8>> = snapshot.new_objects.iter().map(|(_, bytes)| bytes.to_vec()).collect();
    assert_eq!(before, after);
    for (id, bytes) in &snapshot.new_objects {
        assert_eq!(ObjectId::of(bytes), *id);
    }
    let store = Arc::new(MemoryObjects::default());
    store.insert_snapshot(&snapshot);
    let mut old = Vfs::restore(snapshot.root, store, Quota::default()).unwrap();
    assert_eq!(read_all(&mut old, "f"), vec![1u8; 100]);
}

#[test]
fn sparse_growth_shares_one_zero_chunk() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "f", b"");
    vfs.set_size(f, 40 * C).unwrap();
    let snapshot = vfs.snapshot().unwrap();
    // One zero chunk, the file and the root.
    assert_eq!(snapshot.new_objects.len(), 3);
    assert_eq!(vfs.read(f, 39 * C, 3).unwrap(), [0, 0, 0]);
}

#[derive(Debug, Clone)]
enum Op {
    Write(u64, Vec<u8>),
    Append(Vec<u8>),
    SetSize(u64),
    Snapshot,
}

/// Offsets near chunk boundaries, where the bugs live.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![0..40u64, (C - 20)..(C + 20), (2 * C - 10)..(2 * C + 30), (3 * C)..(3 * C + 5)]
}

fn op() -> impl Strategy<Value = Op> {
    let data = prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        4 => (offset(), data.clone()).prop_map(|(at, data)| Op::Write(at, data)),
        1 => (offset(), Just(())).prop_map(|(len, ())| Op::Write(0, vec![0xAB; len as usize])),
        2 => data.prop_map(Op::Append),
        2 => offset().prop_map(Op::SetSize),
        1 => Just(Op::Snapshot),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn file_contents_match_a_vec(ops in prop::collection::vec(op(), 1..25)) {
        let store = Arc::new(MemoryObjects::default());
        let mut vfs = vfs();
        let mut f = file(&mut vfs, "f", b"");
        let mut model: Vec<u8> = Vec::new();
        for op in ops {
            match op {
                Op::Write(at, data) => {
                    prop_assert_eq!(vfs.write(f, at, &data).unwrap(), data.len());
                    if !data.is_empty() {
                        let end = at as usize + data.len();
                        if model.len() < end {
                            model.resize(end, 0);
                        }
                        model[at as usize..end].copy_from_slice(&data);
                    }
                }
                Op::Append(data) => {
                    model.extend_from_slice(&data);
                    prop_assert_eq!(vfs.append(f, &data).unwrap(), model.len() as u64);
                }
                Op::SetSize(size) => {
                    vfs.set_size(f, size).unwrap();
                    model.resize(size as usize, 0);
                }
                Op::Snapshot => {
                    // Continue on a lazily restored copy, so later ops hit unloaded chunks.
                    let snapshot = vfs.snapshot().unwrap();
                    store.insert_snapshot(&snapshot);
                    vfs = Vfs::restore(snapshot.root, store.clone(), Quota::default()).unwrap();
                    f = vfs.lookup(vfs.root(), "f").unwrap();
                }
            }
            prop_assert_eq!(vfs.stat(f).unwrap().size, model.len() as u64);
            prop_assert_eq!(vfs.usage().bytes, model.len() as u64);
        }
        let all = vfs.read(f, 0, usize::MAX).unwrap();
        prop_assert!(all == model, "content differs");
        let mid = model.len() as u64 / 3;
        let part = vfs.read(f, mid, CHUNK_SIZE + 7).unwrap();
        let end = model.len().min(mid as usize + CHUNK_SIZE + 7);
        prop_assert!(part == model[mid as usize..end], "partial read differs");
        let snapshot = vfs.snapshot().unwrap();
        store.insert_snapshot(&snapshot);
        let mut restored = Vfs::restore(snapshot.root, store, Quota::default()).unwrap();
        prop_assert!(read_all(&mut restored, "f") == model, "restored content differs");
    }
}

#[derive(Debug, Clone)]
enum BigOp {
    Write(u64, u8),
    SetSize(u64),
    Append(usize),
    Touch,
}

/// Positions in a file of about 64–72 chunks, where a snapshot resumes a saved hash state.
fn big_offset() -> impl Strategy<Value = u64> {
    (0..72u64, prop_oneof![Just(0u64), Just(C - 1), 1..100u64]).prop_map(|(chunk, within)| chunk * C + within)
}

fn big_op() -> impl Strategy<Value = BigOp> {
    prop_oneof![
        3 => (big_offset(), any::<u8>()).prop_map(|(at, byte)| BigOp::Write(at, byte)),
        2 => big_offset().prop_map(BigOp::SetSize),
        3 => (1..3000usize).prop_map(BigOp::Append),
        1 => Just(BigOp::Touch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn large_file_snapshots_hash_correctly(ops in prop::collection::vec(big_op(), 1..12)) {
        let store = Arc::new(MemoryObjects::default());
        let mut vfs = vfs();
        let f = file(&mut vfs, "f", b"start");
        vfs.set_size(f, 66 * C + 3).unwrap();
        let mut model = b"start".to_vec();
        model.resize((66 * C + 3) as usize, 0);
        for (step, op) in ops.into_iter().enumerate() {
            vfs.set_now(ts(step as u64 + 1));
            match op {
                BigOp::Write(at, byte) => {
                    vfs.write(f, at, &[byte; 10]).unwrap();
                    let end = at as usize + 10;
                    model.resize(model.len().max(end), 0);
                    model[at as usize..end].fill(byte);
                }
                BigOp::SetSize(size) => {
                    vfs.set_size(f, size).unwrap();
                    model.resize(size as usize, 0);
                }
                BigOp::Append(len) => {
                    model.extend(std::iter::repeat_n(step as u8, len));
                    vfs.append(f, &vec![step as u8; len]).unwrap();
                }
                BigOp::Touch => vfs.set_times(f, TimeChange::Now, TimeChange::Keep).unwrap(),
            }
            let snapshot = vfs.snapshot().unwrap();
            for (id, bytes) in &snapshot.new_objects {
                prop_assert_eq!(ObjectId::of(bytes), *id);
            }
            store.insert_snapshot(&snapshot);
            let mut restored = Vfs::restore(snapshot.root, store.clone(), Quota::default()).unwrap();
            prop_assert_eq!(restored.stat_at(restored.root(), "f").unwrap().size, model.len() as u64);
        }
        prop_assert!(read_all(&mut vfs, "f") == model, "content differs");
    }
}

#[test]
fn a_held_file_outlives_its_removal() {
    let mut vfs = Vfs::new(Quota { max_bytes: 100, ..Quota::default() });
    let root = vfs.root();
    let f = file(&mut vfs, "victim", b"victim");
    vfs.hold(f);
    vfs.unlink_file_at(root, "victim").unwrap();
    assert_eq!(vfs.lookup(root, "victim"), Err(FsError::NotFound), "gone from the tree");
    assert_eq!(vfs.read(f, 0, 100).unwrap(), b"victim", "still readable through the handle");
    vfs.write(f, 0, b"V").unwrap();
    assert_eq!(vfs.stat(f).unwrap().size, 6);
    assert_eq!(vfs.usage().bytes, 0, "the tree no longer holds it");
    assert_eq!(vfs.write(f, 6, &[0; 95]), Err(FsError::InsufficientSpace), "but the quota still counts it");
    let recreated = file(&mut vfs, "victim", b"new");
    assert_ne!(recreated, f, "the name now names a new file");
    let before = vfs.snapshot().unwrap();
    vfs.release(f);
    assert_eq!(vfs.read(f, 0, 1), Err(FsError::BadDescriptor), "the last release forgets it");
    assert_eq!(vfs.write(recreated, 3, &[1; 97]), Ok(97), "and frees its quota");
    assert_ne!(vfs.snapshot().unwrap().root, before.root);
}

#[test]
fn a_released_file_that_was_never_removed_stays() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "kept", b"kept");
    vfs.hold(f);
    vfs.hold(f);
    vfs.release(f);
    vfs.release(f);
    vfs.release(f);
    assert_eq!(read_all(&mut vfs, "kept"), b"kept");
}
