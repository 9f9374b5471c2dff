//! Every quota trips with its own error and leaves the tree exactly as it was.

use super::*;
use FsError::*;

fn with_quota(quota: Quota) -> (Vfs, NodeId) {
    let vfs = Vfs::new(quota);
    let root = vfs.root();
    (vfs, root)
}

/// Runs `op`, expects `error`, and checks that nothing observable changed: usage, every
/// path, content and time, and the snapshot (same root, no new objects).
#[track_caller]
fn refused<T: std::fmt::Debug>(vfs: &mut Vfs, error: FsError, op: impl FnOnce(&mut Vfs) -> Result<T, FsError>) {
    let before = (vfs.usage(), describe(vfs), vfs.snapshot().unwrap().root);
    vfs.set_now(ts(1_000_000));
    assert_eq!(op(vfs).unwrap_err(), error);
    vfs.set_now(ts(0));
    let snapshot = vfs.snapshot().unwrap();
    assert_eq!((vfs.usage(), describe(vfs), snapshot.root), before);
    assert!(snapshot.new_objects.is_empty());
}

#[test]
fn total_bytes() {
    let (mut vfs, root) = with_quota(Quota { max_bytes: 100, ..Quota::default() });
    let f = file(&mut vfs, "f", &[1; 90]);
    let g = file(&mut vfs, "g", b"");
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.write(f, 90, &[2; 11]));
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.write(g, 5, &[2; 6]));
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.append(g, &[2; 11]));
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.set_size(g, 11));
    // Overwrites and exact fits are fine.
    vfs.write(f, 0, &[3; 90]).unwrap();
    vfs.append(g, &[4; 10]).unwrap();
    assert_eq!(vfs.usage(), Usage { bytes: 100, files: 2 });
    // Freed bytes can be used again.
    vfs.unlink_file_at(root, "g").unwrap();
    vfs.set_size(f, 100).unwrap();
    assert_eq!(vfs.usage().bytes, 100);
}

#[test]
fn node_count() {
    let (mut vfs, root) = with_quota(Quota { max_files: 3, ..Quota::default() });
    mkdir(&mut vfs, "d");
    file(&mut vfs, "d/f", b"x");
    file(&mut vfs, "g", b"y");
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.open_at(root, "h", CREATE));
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.create_dir_at(root, "e"));
    // Opening existing files and renaming need no new node.
    vfs.open_at(root, "g", CREATE).unwrap();
    vfs.rename_at(root, "g", root, "d/g").unwrap();
    vfs.unlink_file_at(root, "d/f").unwrap();
    vfs.create_dir_at(root, "e").unwrap();
    assert_eq!(vfs.usage().files, 3);
}

#[test]
fn single_file_size() {
    let (mut vfs, _) = with_quota(Quota { max_file_size: 1000, max_bytes: 500, ..Quota::default() });
    let f = file(&mut vfs, "f", &[1; 10]);
    // Past the file-size limit is FileTooLarge even when the byte quota would also trip.
    refused(&mut vfs, FileTooLarge, |vfs| vfs.write(f, 995, &[0; 6]));
    refused(&mut vfs, FileTooLarge, |vfs| vfs.set_size(f, 1001));
    refused(&mut vfs, FileTooLarge, |vfs| vfs.write(f, u64::MAX, b"x"));
    refused(&mut vfs, InsufficientSpace, |vfs| vfs.set_size(f, 501));
    let (mut vfs, _) = with_quota(Quota { max_file_size: 1000, ..Quota::default() });
    let f = file(&mut vfs, "f", &[1; 999]);
    refused(&mut vfs, FileTooLarge, |vfs| vfs.append(f, b"ab"));
    assert_eq!(vfs.append(f, b"a"), Ok(1000));
}

#[test]
fn path_length() {
    let (mut vfs, root) = with_quota(Quota { max_path_bytes: 10, ..Quota::default() });
    file(&mut vfs, "abcdefghij", b"");
    refused(&mut vfs, NameTooLong, |vfs| vfs.open_at(root, "abcdefghijk", CREATE));
    mkdir(&mut vfs, "d");
    mkdir(&mut vfs, "d/eeeeeeee");
    refused(&mut vfs, NameTooLong, |vfs| vfs.create_dir_at(root, "d/fffffffff"));
    refused(&mut vfs, NameTooLong, |vfs| vfs.rename_at(root, "abcdefghij", root, "d/abcdefghij"));
    // Renaming `d` to a longer name would push `d/eeeeeeee` past the limit.
    refused(&mut vfs, NameTooLong, |vfs| vfs.rename_at(root, "d", root, "dd"));
    vfs.rename_at(root, "d/eeeeeeee", root, "e").unwrap();
    vfs.rename_at(root, "d", root, "dd").unwrap();
}

#[test]
fn depth() {
    let (mut vfs, root) = with_quota(Quota { max_depth: 3, ..Quota::default() });
    mkdir(&mut vfs, "a");
    mkdir(&mut vfs, "a/b");
    mkdir(&mut vfs, "a/b/c");
    refused(&mut vfs, NameTooLong, |vfs| vfs.create_dir_at(root, "a/b/c/d"));
    refused(&mut vfs, NameTooLong, |vfs| vfs.open_at(root, "a/b/c/f", CREATE));
    mkdir(&mut vfs, "x");
    mkdir(&mut vfs, "x/y");
    // x/y would end up at depth 4.
    refused(&mut vfs, NameTooLong, |vfs| vfs.rename_at(root, "x", root, "a/b/x"));
    vfs.rename_at(root, "x", root, "a/x").unwrap();
    vfs.rename_at(root, "a/b/c", root, "c").unwrap();
    assert_eq!(vfs.usage().files, 5);
}

#[test]
fn usage_is_tracked_through_every_operation_and_restored_without_a_walk() {
    let mut vfs = vfs();
    let root = vfs.root();
    mkdir(&mut vfs, "d");
    let f = file(&mut vfs, "d/f", &[1; 1000]);
    file(&mut vfs, "g", &[1; 10]);
    vfs.set_size(f, 3 * CHUNK_SIZE as u64).unwrap();
    vfs.write(f, 10, &[5; 10]).unwrap();
    vfs.rename_at(root, "g", root, "d/f2").unwrap();
    let expected = Usage { bytes: 3 * CHUNK_SIZE as u64 + 10, files: 3 };
    assert_eq!(vfs.usage(), expected);
    let store = Arc::new(MemoryObjects::default());
    store.insert_snapshot(&vfs.snapshot().unwrap());
    let source = CountingSource::new(store);
    let restored = Vfs::restore(vfs.snapshot().unwrap().root, source.clone(), Quota::default()).unwrap();
    assert_eq!(restored.usage(), expected);
    assert_eq!(source.take().len(), 1);
}
