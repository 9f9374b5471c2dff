//! `rename_at`: POSIX replacement rules, Linux error order, identity and accounting.

use super::*;
use FsError::*;

/// `a/` holding `a/f` ("f") and `a/in/` holding `a/in/g` ("gg"); `b/` empty; `c/` holding `c/x`; `top` ("top").
fn sample() -> (Vfs, NodeId) {
    let mut vfs = vfs();
    mkdir(&mut vfs, "a");
    mkdir(&mut vfs, "a/in");
    mkdir(&mut vfs, "b");
    mkdir(&mut vfs, "c");
    file(&mut vfs, "a/f", b"f");
    file(&mut vfs, "a/in/g", b"gg");
    file(&mut vfs, "c/x", b"");
    file(&mut vfs, "top", b"top");
    let root = vfs.root();
    (vfs, root)
}

#[test]
fn file_over_file_replaces_and_retires_the_target() {
    let (mut vfs, root) = sample();
    let f = vfs.lookup(root, "a/f").unwrap();
    let top = vfs.lookup(root, "top").unwrap();
    let before = vfs.usage();
    vfs.rename_at(root, "a/f", root, "top").unwrap();
    assert_eq!(vfs.lookup(root, "top"), Ok(f), "the moved node keeps its id");
    assert_eq!(vfs.lookup(root, "a/f"), Err(NotFound));
    assert_eq!(vfs.stat(top), Err(BadDescriptor));
    assert_eq!(read_all(&mut vfs, "top"), b"f");
    assert_eq!(vfs.usage(), Usage { bytes: before.bytes - 3, files: before.files - 1 });
}

#[test]
fn dir_over_empty_dir_replaces_it() {
    let (mut vfs, root) = sample();
    let a = vfs.lookup(root, "a").unwrap();
    let b = vfs.lookup(root, "b").unwrap();
    let g = vfs.lookup(root, "a/in/g").unwrap();
    vfs.rename_at(root, "a", root, "b").unwrap();
    assert_eq!(vfs.lookup(root, "b"), Ok(a));
    assert_eq!(vfs.lookup(root, "b/in/g"), Ok(g), "descendants keep their ids");
    assert_eq!(vfs.kind(b), Err(BadDescriptor));
    assert_eq!(vfs.usage().files, 7);
}

#[test]
fn replacement_rules() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.rename_at(root, "b", root, "a"), Err(NotEmpty));
    assert_eq!(vfs.rename_at(root, "top", root, "b"), Err(IsDirectory));
    assert_eq!(vfs.rename_at(root, "b", root, "top"), Err(NotDirectory));
    assert_eq!(vfs.rename_at(root, "missing", root, "x"), Err(NotFound));
    assert_eq!(vfs.rename_at(root, "top", root, "missing/x"), Err(NotFound));
    assert_eq!(vfs.rename_at(root, "top", root, "a/f/x"), Err(NotDirectory));
}

#[test]
fn a_directory_cannot_move_into_its_own_subtree() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.rename_at(root, "a", root, "a/x"), Err(Invalid));
    assert_eq!(vfs.rename_at(root, "a", root, "a/in/x"), Err(Invalid));
    assert_eq!(vfs.rename_at(root, "a", root, "a/in"), Err(Invalid));
    let a = vfs.lookup(root, "a").unwrap();
    assert_eq!(vfs.rename_at(root, "a", a, "in/deeper"), Err(Invalid));
}

#[test]
fn replacing_an_ancestor_of_the_source_is_not_empty() {
    // Linux: the target is the rename's "trap" (an ancestor of the source's parent).
    let (mut vfs, root) = sample();
    assert_eq!(vfs.rename_at(root, "a/in", root, "a"), Err(NotEmpty));
    assert_eq!(vfs.rename_at(root, "a/f", root, "a"), Err(NotEmpty));
    assert_eq!(vfs.rename_at(root, "a/in/g", root, "a"), Err(NotEmpty));
}

#[test]
fn renaming_onto_itself_does_nothing() {
    let (mut vfs, root) = sample();
    vfs.snapshot().unwrap();
    vfs.set_now(ts(99));
    vfs.rename_at(root, "a", root, "a").unwrap();
    vfs.rename_at(root, "top", root, "./top").unwrap();
    let a = vfs.lookup(root, "a").unwrap();
    vfs.rename_at(root, "a/f", a, "f").unwrap();
    assert_eq!(vfs.snapshot().unwrap().new_objects.len(), 0);
}

#[test]
fn dots_and_trailing_slashes() {
    let (mut vfs, root) = sample();
    // Linux answers EBUSY for "." and "..".
    assert_eq!(vfs.rename_at(root, ".", root, "x"), Err(Busy));
    assert_eq!(vfs.rename_at(root, "a/..", root, "x"), Err(Busy));
    assert_eq!(vfs.rename_at(root, "top", root, "a/."), Err(Busy));
    assert_eq!(vfs.rename_at(root, "top/", root, "x"), Err(NotDirectory));
    assert_eq!(vfs.rename_at(root, "top", root, "x/"), Err(NotDirectory));
    let b = vfs.lookup(root, "b").unwrap();
    vfs.rename_at(root, "b/", root, "b2/").unwrap();
    assert_eq!(vfs.lookup(root, "b2"), Ok(b));
    assert_eq!(vfs.rename_at(root, "..", root, "x"), Err(NotPermitted));
}

#[test]
fn moves_across_directories_update_both_parents() {
    let (mut vfs, root) = sample();
    vfs.set_now(ts(77));
    let g = vfs.lookup(root, "a/in/g").unwrap();
    let a = vfs.lookup(root, "a").unwrap();
    let c = vfs.lookup(root, "c").unwrap();
    vfs.rename_at(a, "in/g", c, "moved").unwrap();
    assert_eq!(vfs.lookup(root, "c/moved"), Ok(g));
    assert_eq!(read_all(&mut vfs, "c/moved"), b"gg");
    let old_parent = vfs.lookup(root, "a/in").unwrap();
    assert_eq!(vfs.stat(old_parent).unwrap().mtime, ts(77));
    assert_eq!(vfs.stat(c).unwrap().mtime, ts(77));
    assert_eq!(vfs.read_dir(old_parent).unwrap(), vec![]);
    assert_eq!(vfs.usage(), Usage { bytes: 6, files: 8 });
    // Aggregates moved with the file: removing `a/in` now works and the root totals add up.
    vfs.remove_dir_at(root, "a/in").unwrap();
    let (mut restored, _) = round_trip(&mut vfs);
    assert_eq!(restored.usage(), Usage { bytes: 6, files: 7 });
    assert_eq!(describe(&mut restored), describe(&mut vfs));
}

#[test]
fn renaming_a_clean_subtree_reencodes_only_the_parents() {
    let mut vfs = vfs();
    mkdir(&mut vfs, "big");
    for i in 0..20u8 {
        file(&mut vfs, &format!("big/{i}"), &[i; 1000]);
    }
    let root = vfs.root();
    mkdir(&mut vfs, "dst");
    vfs.snapshot().unwrap();
    vfs.rename_at(root, "big", root, "dst/big").unwrap();
    // The root and `dst` change; `big` and everything in it keep their objects.
    assert_eq!(vfs.snapshot().unwrap().new_objects.len(), 2);
}

#[test]
fn renames_of_lazily_restored_nodes_load_nothing_below_them() {
    let (mut vfs, _) = sample();
    let store = Arc::new(MemoryObjects::default());
    store.insert_snapshot(&vfs.snapshot().unwrap());
    let source = CountingSource::new(store);
    let mut restored = Vfs::restore(vfs.snapshot().unwrap().root, source.clone(), Quota::default()).unwrap();
    assert_eq!(source.take().len(), 1, "the root");
    let root = restored.root();
    restored.rename_at(root, "a", root, "z").unwrap();
    restored.rename_at(root, "top", root, "b").unwrap_err();
    restored.unlink_file_at(root, "top").unwrap();
    restored.remove_dir_at(root, "b").unwrap();
    assert_eq!(source.take().len(), 0, "stubs move and go away without loading");
    assert_eq!(restored.usage(), Usage { bytes: 3, files: 6 });
    assert_eq!(read_all(&mut restored, "z/in/g"), b"gg");
}
