//! Object ids, snapshots, lazy restores, forks, and corrupt or missing objects.

use proptest::prelude::*;

use super::*;
use crate::vfs::codec::{self, DirEncoder};

const C: u64 = CHUNK_SIZE as u64;

#[test]
fn object_id_text_forms() {
    let id = ObjectId::of(b"hello");
    let hex = id.to_string();
    assert_eq!(hex, blake3::hash(b"hello").to_hex().as_str());
    assert_eq!(hex.parse::<ObjectId>(), Ok(id));
    assert_eq!(hex.to_uppercase().parse::<ObjectId>(), Ok(id));
    assert_eq!(format!("{id:?}"), format!("ObjectId({}…)", &hex[..12]));
    for bad in ["", "abc", &hex[..63], &format!("{hex}0"), &format!("g{}", &hex[1..]), &format!("+{}", &hex[1..])] {
        assert_eq!(bad.parse::<ObjectId>(), Err(ParseObjectIdError), "{bad:?}");
    }
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{hex}\""));
    assert_eq!(serde_json::from_str::<ObjectId>(&json).unwrap(), id);
    assert!(serde_json::from_str::<ObjectId>("\"xyz\"").is_err());
    assert!(serde_json::from_str::<ObjectId>("42").is_err());
}

/// A tree with a bit of everything.
fn varied() -> Vfs {
    let mut vfs = vfs();
    let root = vfs.root();
    vfs.set_now(Timestamp { secs: 1_700_000_000, nanos: 123 });
    mkdir(&mut vfs, "src");
    mkdir(&mut vfs, "src/deep");
    mkdir(&mut vfs, "src/deep/er");
    mkdir(&mut vfs, "empty");
    file(&mut vfs, "src/main.rs", b"fn main() {}\n");
    file(&mut vfs, "src/deep/er/leaf", b"leaf");
    file(&mut vfs, "zero", b"");
    file(&mut vfs, "Ünïcødé ✓", "ü".as_bytes());
    let big: Vec<u8> = (0..2 * C + 77).map(|i| (i % 251) as u8).collect();
    file(&mut vfs, "big", &big);
    vfs.set_times_at(root, "src", TimeChange::Set(ts(42)), TimeChange::Set(ts(43))).unwrap();
    vfs
}

#[test]
fn snapshot_and_restore_reproduce_the_tree() {
    let mut vfs = varied();
    let (mut restored, store) = round_trip(&mut vfs);
    assert_eq!(describe(&mut restored), describe(&mut vfs));
    assert_eq!(restored.usage(), vfs.usage());
    let again = restored.snapshot().unwrap();
    assert_eq!(again.root, vfs.snapshot().unwrap().root, "reading doesn't change the tree");
    assert!(again.new_objects.is_empty());
    // Every object the tree needs is in the store, and nothing more:
    // 5 directories, 5 files and 6 chunks (`zero` has none, `big` has 3).
    assert_eq!(store.len(), 5 + 5 + 6);
}

#[test]
fn an_unchanged_tree_snapshots_to_the_same_root_with_no_objects() {
    let mut vfs = varied();
    let first = vfs.snapshot().unwrap();
    assert!(!first.new_objects.is_empty());
    let second = vfs.snapshot().unwrap();
    assert_eq!(second.root, first.root);
    assert!(second.new_objects.is_empty());
    assert_eq!(Vfs::new(Quota::default()).snapshot().unwrap().new_objects.len(), 1, "the empty root");
}

#[test]
fn equal_content_is_one_object() {
    let mut vfs = vfs();
    for name in ["a", "b", "c"] {
        file(&mut vfs, name, b"same");
    }
    // One chunk, one file object (same times), one root.
    assert_eq!(vfs.snapshot().unwrap().new_objects.len(), 3);
}

#[test]
fn a_small_write_in_a_large_tree_yields_only_the_path_to_the_root() {
    let mut vfs = vfs();
    for d in 0..100 {
        mkdir(&mut vfs, &format!("d{d}"));
        for f in 0..100 {
            file(&mut vfs, &format!("d{d}/f{f}"), format!("{d}/{f}").as_bytes());
        }
    }
    let first = vfs.snapshot().unwrap();
    let root = vfs.root();
    let target = vfs.lookup(root, "d42/f7").unwrap();
    vfs.write(target, 3, &[9; 1024]).unwrap();
    let second = vfs.snapshot().unwrap();
    assert_ne!(second.root, first.root);
    // The chunk, the file, `d42` and the root.
    assert_eq!(second.new_objects.len(), 4);
}

#[test]
fn appending_to_a_100_mib_file_yields_a_handful_of_objects() {
    let mut vfs = vfs();
    let f = file(&mut vfs, "big", b"");
    let mut block = vec![0x5Au8; 1 << 20];
    for mib in 0..100u64 {
        for (k, chunk) in block.chunks_mut(CHUNK_SIZE).enumerate() {
            chunk[..8].copy_from_slice(&(mib * 16 + k as u64).to_le_bytes());
        }
        vfs.append(f, &block).unwrap();
    }
    vfs.append(f, &[1; 100]).unwrap();
    let first = vfs.snapshot().unwrap();
    assert!(first.new_objects.len() > 1600);
    assert_eq!(vfs.append(f, &[2; 1024]).unwrap(), (100 << 20) + 1124);
    // The last chunk, the file object (1,601 chunk ids) and the root.
    let second = vfs.snapshot().unwrap();
    assert_eq!(second.new_objects.len(), 3);
    let store = Arc::new(MemoryObjects::default());
    store.insert_snapshot(&first);
    store.insert_snapshot(&second);
    let mut restored = Vfs::restore(second.root, store, Quota::default()).unwrap();
    let big = restored.lookup(restored.root(), "big").unwrap();
    assert_eq!(restored.read(big, (100 << 20) + 98, 4).unwrap(), [1, 1, 2, 2]);
    assert_eq!(restored.read(big, 99 << 20, 8).unwrap(), (99u64 * 16).to_le_bytes());
}

#[test]
fn restore_loads_only_what_is_touched() {
    let mut vfs = vfs();
    mkdir(&mut vfs, "a");
    mkdir(&mut vfs, "a/b");
    let content: Vec<u8> = (0..3 * C).map(|i| (i % 7) as u8).collect();
    file(&mut vfs, "a/b/f", &content);
    for i in 0..10 {
        file(&mut vfs, &format!("a/sibling{i}"), &[i; 10]);
        mkdir(&mut vfs, &format!("other{i}"));
    }
    let store = Arc::new(MemoryObjects::default());
    let snapshot = vfs.snapshot().unwrap();
    store.insert_snapshot(&snapshot);
    let source = CountingSource::new(store);
    let mut lazy = Vfs::restore(snapshot.root, source.clone(), Quota::default()).unwrap();
    assert_eq!(source.take(), vec![snapshot.root]);
    let root = lazy.root();
    let f = lazy.lookup(root, "a/b/f").unwrap();
    assert_eq!(source.take().len(), 2, "a and a/b");
    assert_eq!(lazy.kind(f), Ok(NodeKind::File));
    assert_eq!(lazy.read(f, C + 5, 10).unwrap(), &content[(C + 5) as usize..][..10]);
    assert_eq!(source.take().len(), 2, "the file object and its second chunk");
    lazy.read(f, C, 100).unwrap();
    lazy.stat(f).unwrap();
    assert_eq!(source.take().len(), 0, "already loaded");
    lazy.write(f, 2 * C, &vec![1; CHUNK_SIZE]).unwrap();
    assert_eq!(source.take().len(), 0, "a fully overwritten chunk is never loaded");
    lazy.write(f, 10, b"partial").unwrap();
    assert_eq!(source.take().len(), 1, "a partly overwritten chunk is");
    assert_eq!(lazy.snapshot().unwrap().new_objects.len(), 2 + 1 + 3);
    assert_eq!(source.take().len(), 0, "a snapshot loads nothing");
}

#[test]
fn forks_from_one_root_diverge_independently() {
    let mut vfs = varied();
    let snapshot = vfs.snapshot().unwrap();
    let store = Arc::new(MemoryObjects::default());
    store.insert_snapshot(&snapshot);
    let original = describe(&mut vfs);
    let mut left = Vfs::restore(snapshot.root, store.clone(), Quota::default()).unwrap();
    let mut right = Vfs::restore(snapshot.root, store.clone(), Quota::default()).unwrap();
    let (l, r) = (left.root(), right.root());
    let big = left.lookup(l, "big").unwrap();
    left.write(big, 0, b"LEFT").unwrap();
    left.unlink_file_at(l, "zero").unwrap();
    let big = right.lookup(r, "big").unwrap();
    right.write(big, 0, b"RIGHT").unwrap();
    right.create_dir_at(r, "src/new").unwrap();
    assert_eq!(read_all(&mut left, "big")[..5], *b"LEFT\x04");
    assert_eq!(read_all(&mut right, "big")[..5], *b"RIGHT");
    assert_eq!(left.lookup(l, "src/new"), Err(FsError::NotFound));
    assert!(right.lookup(r, "zero").is_ok());
    let (ls, rs) = (left.snapshot().unwrap(), right.snapshot().unwrap());
    assert_ne!(ls.root, rs.root);
    store.insert_snapshot(&ls);
    store.insert_snapshot(&rs);
    let mut again = Vfs::restore(snapshot.root, store, Quota::default()).unwrap();
    assert_eq!(describe(&mut again), original);
    assert_eq!(describe(&mut vfs), original, "the source filesystem is untouched");
}

/// A store holding one hand-made object, and the id it is stored under.
fn store_with(bytes: &[u8]) -> (Arc<MemoryObjects>, ObjectId) {
    let store = Arc::new(MemoryObjects::default());
    let id = ObjectId::of(bytes);
    store.insert(id, bytes.into());
    (store, id)
}

#[track_caller]
fn assert_io(result: Result<impl std::fmt::Debug, FsError>, needle: &str) {
    match result {
        Err(FsError::Io(message)) => assert!(message.contains(needle), "{message:?} lacks {needle:?}"),
        other => panic!("expected an Io error about {needle:?}, got {other:?}"),
    }
}

fn restore(store: Arc<MemoryObjects>, root: ObjectId) -> Result<Vfs, FsError> {
    Vfs::restore(root, store, Quota::default())
}

#[test]
fn missing_mismatched_and_malformed_roots_are_io_errors() {
    let store = Arc::new(MemoryObjects::default());
    assert_io(restore(store.clone(), ObjectId([7; 32])), "missing");
    store.insert(ObjectId([7; 32]), b"D garbage".as_slice().into());
    assert_io(restore(store, ObjectId([7; 32])), "don't match its id");
    let cases: &[(&[u8], &str)] = &[
        (b"", "truncated"),
        (b"D", "truncated"),
        (b"D\x00\x00\x00\x00\x00\x00", "truncated"),
        (b"X\x00\x00\x00\x00\x00\x00\x00", "unexpected tag"),
        (b"F\x00\x00\x00\x00\x00", "unexpected tag"),
        (b"D\x00\x00\x00\x00\x00\x00\x00\x00", "trailing"),
        (b"D\x00\x80\x00\x00\x00\x00\x00\x00", "shortest form"),
        (b"D\x00\x80\x94\xeb\xdc\x03\x00\x00\x00\x00\x00", "nanoseconds"),
        (b"D\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "can't fit"),
        (b"D\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", "overflows"),
        (b"D\x00\x00\x00\x00\x05\x00\x00", "totals"),
    ];
    for (bytes, needle) in cases {
        let (store, id) = store_with(bytes);
        assert_io(restore(store, id), needle);
    }
}

/// Encodes a root directory with the given entries (name, kind, id, bytes, below).
fn dir_object(entries: &[(&str, NodeKind, ObjectId, u64, u64)]) -> Vec<u8> {
    let bytes = entries.iter().map(|entry| entry.3).sum();
    let below = entries.iter().map(|entry| entry.4 + 1).sum();
    let mut encoder = DirEncoder::new(ts(0), ts(0), bytes, below, entries.len());
    for (name, kind, id, bytes, below) in entries {
        encoder.entry(name, *kind, id, *bytes, *below);
    }
    encoder.finish()
}

#[test]
fn malformed_entries_are_io_errors() {
    let id = ObjectId([1; 32]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (dir_object(&[("b", NodeKind::File, id, 0, 0), ("a", NodeKind::File, id, 0, 0)]), "sorted"),
        (dir_object(&[("a", NodeKind::File, id, 0, 0), ("a", NodeKind::File, id, 0, 0)]), "sorted"),
        (dir_object(&[("a/b", NodeKind::File, id, 0, 0)]), "invalid entry name"),
        (dir_object(&[("..", NodeKind::Dir, id, 0, 0)]), "invalid entry name"),
        // An empty name makes the entry shorter than any valid one.
        (dir_object(&[("", NodeKind::File, id, 0, 0)]), "can't fit"),
        (
            dir_object(&[
                ("", NodeKind::File, id, 0, 0),
                ("z", NodeKind::File, id, 0, 0),
                ("zz", NodeKind::File, id, 0, 0),
            ]),
            "invalid entry name",
        ),
        (dir_object(&[("nul\0", NodeKind::File, id, 0, 0)]), "invalid entry name"),
    ];
    for (bytes, needle) in cases {
        let (store, root) = store_with(&bytes);
        assert_io(restore(store, root), needle);
    }
    let mut bad_kind = dir_object(&[("a", NodeKind::File, id, 0, 0)]);
    let kind_at = bad_kind.len() - 1 - 32 - 1;
    bad_kind[kind_at] = 7;
    let (store, root) = store_with(&bad_kind);
    assert_io(restore(store, root), "kind");
    let mut bad_utf8 = dir_object(&[("é", NodeKind::File, id, 0, 0)]);
    let name_at = bad_utf8.len() - 1 - 32 - 1 - 1;
    bad_utf8[name_at] = 0xff;
    let (store, root) = store_with(&bad_utf8);
    assert_io(restore(store, root), "UTF-8");
}

#[test]
fn bad_children_fail_when_touched_and_leave_the_rest_usable() {
    let chunk: Vec<u8> = [b"C".as_slice(), b"abc"].concat();
    let chunk_id = ObjectId::of(&chunk);
    let store = Arc::new(MemoryObjects::default());
    store.insert(chunk_id, chunk.into());
    let mut entries = Vec::new();
    let mut add = |name: &'static str, object: Vec<u8>, kind, bytes| {
        let id = ObjectId::of(&object);
        store.insert(id, object.into());
        entries.push((name, kind, id, bytes, 0));
    };
    // A file whose chunk is shorter than its size says.
    add("a_short", codec::encode_file(5, ts(0), ts(0), [chunk_id].into_iter()), NodeKind::File, 5);
    // A file whose size disagrees with its parent's entry.
    add("b_liar", codec::encode_file(3, ts(0), ts(0), [chunk_id].into_iter()), NodeKind::File, 4);
    // A file object with one chunk id too few, and a "file" that is a directory.
    add("c_ids", codec::encode_file(C + 1, ts(0), ts(0), [chunk_id].into_iter()), NodeKind::File, C + 1);
    add("d_dir", dir_object(&[]), NodeKind::File, 0);
    add("e_good", codec::encode_file(3, ts(0), ts(0), [chunk_id].into_iter()), NodeKind::File, 3);
    entries.push(("f_gone", NodeKind::File, ObjectId([9; 32]), 1, 0));
    let root_object = dir_object(&entries);
    let root_id = ObjectId::of(&root_object);
    store.insert(root_id, root_object.into());
    let mut vfs = restore(store, root_id).unwrap();
    let root = vfs.root();
    let short = vfs.lookup(root, "a_short").unwrap();
    assert_eq!(vfs.stat(short).unwrap().size, 5);
    assert_io(vfs.read(short, 0, 5), "holds 3 bytes where the file needs 5");
    assert_io(vfs.write(short, 1, b"x"), "holds 3 bytes");
    assert_io(vfs.stat_at(root, "b_liar"), "disagrees");
    assert_io(vfs.stat_at(root, "c_ids"), "chunk ids");
    assert_io(vfs.stat_at(root, "d_dir"), "unexpected tag");
    assert_io(vfs.stat_at(root, "f_gone"), "missing");
    assert_eq!(read_all(&mut vfs, "e_good"), b"abc");
    // A failed partial write changed nothing; a complete overwrite needs no old bytes.
    assert_eq!(vfs.stat(short).unwrap().size, 5);
    vfs.write(short, 0, b"fresh").unwrap();
    assert_eq!(read_all(&mut vfs, "a_short"), b"fresh");
    vfs.unlink_file_at(root, "f_gone").unwrap();
    assert_eq!(vfs.usage(), Usage { bytes: 5 + 4 + (C + 1) + 3, files: 5 });
}

#[test]
fn a_failing_source_is_an_io_error() {
    struct Broken;
    impl ObjectSource for Broken {
        fn load(&self, _: &ObjectId) -> std::io::Result<Option<Arc<[u8]>>> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    assert_io(Vfs::restore(ObjectId([0; 32]), Arc::new(Broken), Quota::default()), "disk on fire");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = codec::decode_dir(&bytes);
        let _ = codec::decode_file(&bytes);
        let _ = codec::check_chunk(&bytes, 3);
    }

    #[test]
    fn decoders_never_panic_on_damaged_objects(at in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let id = ObjectId([3; 32]);
        let mut dir = dir_object(&[("a", NodeKind::Dir, id, 10, 2), ("bé", NodeKind::File, id, 5, 0)]);
        let file = codec::encode_file(2 * C, ts(1), ts(2), [id, id].into_iter());
        for mut bytes in [dir.clone(), file] {
            if let Some(slot) = bytes.get_mut(at) {
                *slot = byte;
            }
            bytes.truncate(cut.max(1));
            let _ = codec::decode_dir(&bytes);
            let _ = codec::decode_file(&bytes);
        }
        let full = dir.len();
        dir.truncate(cut);
        prop_assert!(cut >= full || codec::decode_dir(&dir).is_err());
    }
}
