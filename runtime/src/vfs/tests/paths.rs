//! Path resolution and the namespace operations' error rules.

use super::*;
use FsError::*;

/// A tree used by most tests: `d/` with `d/f` ("data") and `d/sub/`, plus `top` ("x").
fn sample() -> (Vfs, NodeId) {
    let mut vfs = vfs();
    mkdir(&mut vfs, "d");
    mkdir(&mut vfs, "d/sub");
    file(&mut vfs, "d/f", b"data");
    file(&mut vfs, "top", b"x");
    let root = vfs.root();
    (vfs, root)
}

#[test]
fn empty_path_is_not_found_everywhere() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.lookup(root, ""), Err(NotFound));
    assert_eq!(vfs.open_at(root, "", CREATE), Err(NotFound));
    assert_eq!(vfs.create_dir_at(root, ""), Err(NotFound));
    assert_eq!(vfs.remove_dir_at(root, ""), Err(NotFound));
    assert_eq!(vfs.unlink_file_at(root, ""), Err(NotFound));
    assert_eq!(vfs.rename_at(root, "", root, "x"), Err(NotFound));
    assert_eq!(vfs.rename_at(root, "top", root, ""), Err(NotFound));
}

#[test]
fn absolute_paths_are_not_permitted() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.lookup(root, "/"), Err(NotPermitted));
    assert_eq!(vfs.lookup(root, "/top"), Err(NotPermitted));
    assert_eq!(vfs.open_at(root, "/new", CREATE), Err(NotPermitted));
    assert_eq!(vfs.create_dir_at(root, "//d2"), Err(NotPermitted));
    assert_eq!(vfs.unlink_file_at(root, "/top"), Err(NotPermitted));
    assert_eq!(vfs.rename_at(root, "top", root, "/moved"), Err(NotPermitted));
}

#[test]
fn dotdot_may_not_climb_above_the_base_of_the_call() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.lookup(root, ".."), Err(NotPermitted));
    assert_eq!(vfs.lookup(root, "d/../.."), Err(NotPermitted));
    assert_eq!(vfs.lookup(root, "d/../../d"), Err(NotPermitted));
    let d = vfs.lookup(root, "d").unwrap();
    // The root is above `d`, but `d` is the base of these calls.
    assert_eq!(vfs.lookup(d, ".."), Err(NotPermitted));
    assert_eq!(vfs.lookup(d, "../top"), Err(NotPermitted));
    assert_eq!(vfs.lookup(d, "sub/../../top"), Err(NotPermitted));
    assert_eq!(vfs.open_at(d, "../new", CREATE), Err(NotPermitted));
    assert_eq!(vfs.create_dir_at(d, "../new"), Err(NotPermitted));
    assert_eq!(vfs.remove_dir_at(d, ".."), Err(NotPermitted));
    assert_eq!(vfs.rename_at(d, "f", d, "../f"), Err(NotPermitted));
    assert!(vfs.lookup(root, "new").is_err(), "nothing was created");
}

#[test]
fn dotdot_inside_the_base_is_fine() {
    let (mut vfs, root) = sample();
    let f = vfs.lookup(root, "d/f").unwrap();
    assert_eq!(vfs.lookup(root, "d/sub/../f"), Ok(f));
    assert_eq!(vfs.lookup(root, "d/../d/./f"), Ok(f));
    let d = vfs.lookup(root, "d").unwrap();
    assert_eq!(vfs.lookup(d, "sub/../f"), Ok(f));
    assert_eq!(vfs.lookup(root, "d/sub/.."), Ok(d));
    assert_eq!(vfs.lookup(root, "d/.."), Ok(root));
    assert_eq!(vfs.lookup(root, "."), Ok(root));
}

#[test]
fn slashes_collapse_and_dots_are_skipped() {
    let (mut vfs, root) = sample();
    let f = vfs.lookup(root, "d/f").unwrap();
    let sub = vfs.lookup(root, "d/sub").unwrap();
    assert_eq!(vfs.lookup(root, "d//f"), Ok(f));
    assert_eq!(vfs.lookup(root, "./d/./f"), Ok(f));
    assert_eq!(vfs.lookup(root, "d///sub//"), Ok(sub));
    assert_eq!(vfs.lookup(root, "d/sub/."), Ok(sub));
}

#[test]
fn trailing_slash_requires_a_directory() {
    let (mut vfs, root) = sample();
    let d = vfs.lookup(root, "d").unwrap();
    assert_eq!(vfs.lookup(root, "d/"), Ok(d));
    assert_eq!(vfs.lookup(root, "top/"), Err(NotDirectory));
    assert_eq!(vfs.lookup(root, "top/."), Err(NotDirectory));
    assert_eq!(vfs.stat_at(root, "d/f/"), Err(NotDirectory));
    assert_eq!(vfs.open_at(root, "top/", OpenOptions::default()), Err(NotDirectory));
    assert_eq!(vfs.lookup(root, "missing/"), Err(NotFound));
}

#[test]
fn intermediate_components_must_be_existing_directories() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.lookup(root, "top/x"), Err(NotDirectory));
    assert_eq!(vfs.lookup(root, "top/.."), Err(NotDirectory));
    assert_eq!(vfs.lookup(root, "missing/x"), Err(NotFound));
    assert_eq!(vfs.lookup(root, "missing/.."), Err(NotFound));
    assert_eq!(vfs.open_at(root, "top/new", CREATE), Err(NotDirectory));
    assert_eq!(vfs.open_at(root, "missing/new", CREATE), Err(NotFound));
    assert_eq!(vfs.create_dir_at(root, "missing/new"), Err(NotFound));
    assert_eq!(vfs.create_dir_at(root, "d/f/new"), Err(NotDirectory));
    // Errors come in path order: the missing component is reported before the escape.
    assert_eq!(vfs.lookup(root, "missing/../.."), Err(NotFound));
}

#[test]
fn nul_is_invalid_and_long_names_are_too_long() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.lookup(root, "d/\0"), Err(Invalid));
    assert_eq!(vfs.open_at(root, "a\0b", CREATE), Err(Invalid));
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    assert_eq!(vfs.lookup(root, &long), Err(NameTooLong));
    assert_eq!(vfs.open_at(root, &long, CREATE), Err(NameTooLong));
    assert_eq!(vfs.create_dir_at(root, &format!("d/{long}")), Err(NameTooLong));
    let longest = "n".repeat(MAX_NAME_BYTES);
    assert!(vfs.open_at(root, &longest, CREATE).is_ok());
}

#[test]
fn base_must_be_a_live_directory() {
    let (mut vfs, root) = sample();
    let top = vfs.lookup(root, "top").unwrap();
    assert_eq!(vfs.lookup(top, "x"), Err(NotDirectory));
    assert_eq!(vfs.create_dir_at(top, "x"), Err(NotDirectory));
    assert_eq!(vfs.read_dir(top), Err(NotDirectory));
    let sub = vfs.lookup(root, "d/sub").unwrap();
    vfs.remove_dir_at(root, "d/sub").unwrap();
    assert_eq!(vfs.lookup(sub, "."), Err(BadDescriptor));
    assert_eq!(vfs.open_at(sub, "x", CREATE), Err(BadDescriptor));
    assert_eq!(vfs.stat(sub), Err(BadDescriptor));
    assert_eq!(vfs.kind(sub), Err(BadDescriptor));
    assert_eq!(vfs.read_dir(sub), Err(BadDescriptor));
}

#[test]
fn unicode_names_work_and_sort_by_bytes() {
    let mut vfs = vfs();
    let root = vfs.root();
    for name in ["zeta", "Ähre", "日本語.txt", "crab 🦀", "naïve", "a b\tc", "-", "~"] {
        file(&mut vfs, name, name.as_bytes());
    }
    mkdir(&mut vfs, "κατάλογος");
    file(&mut vfs, "κατάλογος/файл", b"inside");
    let names: Vec<String> = vfs.read_dir(root).unwrap().into_iter().map(|entry| entry.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 9);
    assert_eq!(read_all(&mut vfs, "日本語.txt"), "日本語.txt".as_bytes());
    assert_eq!(read_all(&mut vfs, "κατάλογος/файл"), b"inside");
    vfs.rename_at(root, "crab 🦀", root, "κατάλογος/🦀").unwrap();
    assert_eq!(read_all(&mut vfs, "κατάλογος/🦀"), "crab 🦀".as_bytes());
    let (mut restored, _) = round_trip(&mut vfs);
    assert_eq!(describe(&mut restored), describe(&mut vfs));
}

#[test]
fn open_at_follows_linux_open_rules() {
    let (mut vfs, root) = sample();
    let excl = OpenOptions { create: true, exclusive: true, ..Default::default() };
    let dir = OpenOptions { directory: true, ..Default::default() };
    let trunc = OpenOptions { truncate: true, ..Default::default() };
    assert_eq!(vfs.open_at(root, "top", excl), Err(Exists));
    assert_eq!(vfs.open_at(root, "d", excl), Err(Exists));
    assert_eq!(vfs.open_at(root, "nope", OpenOptions::default()), Err(NotFound));
    assert_eq!(vfs.open_at(root, "top", dir), Err(NotDirectory));
    assert_eq!(vfs.open_at(root, "d", trunc), Err(IsDirectory));
    assert_eq!(vfs.open_at(root, "d", CREATE), Err(IsDirectory));
    // O_CREAT with a trailing slash is EISDIR on Linux, existing or not.
    assert_eq!(vfs.open_at(root, "new/", CREATE), Err(IsDirectory));
    assert_eq!(vfs.open_at(root, "top/", CREATE), Err(IsDirectory));
    assert_eq!(vfs.open_at(root, ".", CREATE), Err(IsDirectory));
    assert_eq!(vfs.open_at(root, "d/..", excl), Err(Exists));
    assert_eq!(vfs.open_at(root, ".", trunc), Err(IsDirectory));
    // wasmtime-wasi refuses `directory` together with create, exclusive or truncate.
    for bad in [
        OpenOptions { create: true, directory: true, ..Default::default() },
        OpenOptions { exclusive: true, directory: true, ..Default::default() },
        OpenOptions { truncate: true, directory: true, ..Default::default() },
    ] {
        assert_eq!(vfs.open_at(root, "d", bad), Err(Invalid));
    }
    let d = vfs.lookup(root, "d").unwrap();
    assert_eq!(vfs.open_at(root, "d", dir), Ok(d));
    assert_eq!(vfs.open_at(root, "d/", OpenOptions::default()), Ok(d));
    assert_eq!(vfs.open_at(root, ".", dir), Ok(root));
    // `exclusive` without `create` is ignored, as in wasmtime-wasi.
    let top = vfs.lookup(root, "top").unwrap();
    assert_eq!(vfs.open_at(root, "top", OpenOptions { exclusive: true, ..Default::default() }), Ok(top));
    assert_eq!(vfs.open_at(root, "top", CREATE), Ok(top));
    let new = vfs.open_at(root, "fresh", excl).unwrap();
    assert_eq!(vfs.stat(new).unwrap().size, 0);
    assert_eq!(vfs.usage(), Usage { bytes: 5, files: 5 });
}

#[test]
fn truncate_empties_the_file_and_marks_it_modified() {
    let (mut vfs, root) = sample();
    vfs.set_now(ts(50));
    let opts = OpenOptions { truncate: true, ..Default::default() };
    let f = vfs.open_at(root, "d/f", opts).unwrap();
    let stat = vfs.stat(f).unwrap();
    assert_eq!((stat.size, stat.mtime), (0, ts(50)));
    assert_eq!(vfs.usage().bytes, 1);
    vfs.set_now(ts(60));
    vfs.open_at(root, "d/f", opts).unwrap();
    assert_eq!(vfs.stat(f).unwrap().mtime, ts(60), "even an empty file");
}

#[test]
fn create_dir_at_rules() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.create_dir_at(root, "d"), Err(Exists));
    assert_eq!(vfs.create_dir_at(root, "top"), Err(Exists));
    assert_eq!(vfs.create_dir_at(root, "top/"), Err(Exists));
    assert_eq!(vfs.create_dir_at(root, "."), Err(Exists));
    assert_eq!(vfs.create_dir_at(root, "d/sub/.."), Err(Exists));
    assert_eq!(vfs.create_dir_at(root, "new/."), Err(NotFound));
    let made = vfs.create_dir_at(root, "made//").unwrap();
    assert_eq!(vfs.lookup(root, "made"), Ok(made));
    assert_eq!(vfs.kind(made), Ok(NodeKind::Dir));
    assert_eq!(vfs.read_dir(made), Ok(vec![]));
}

#[test]
fn remove_dir_at_rules() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.remove_dir_at(root, "d"), Err(NotEmpty));
    assert_eq!(vfs.remove_dir_at(root, "top"), Err(NotDirectory));
    assert_eq!(vfs.remove_dir_at(root, "d/f"), Err(NotDirectory));
    assert_eq!(vfs.remove_dir_at(root, "nope"), Err(NotFound));
    assert_eq!(vfs.remove_dir_at(root, "."), Err(Invalid));
    assert_eq!(vfs.remove_dir_at(root, "d/sub/.."), Err(Invalid));
    assert_eq!(vfs.remove_dir_at(root, "d/sub/."), Err(Invalid));
    // cap-std opens "x/" as a directory and removes "." in it: EINVAL.
    assert_eq!(vfs.remove_dir_at(root, "d/sub/"), Err(Invalid));
    assert_eq!(vfs.remove_dir_at(root, "top/"), Err(NotDirectory));
    let sub = vfs.lookup(root, "d/sub").unwrap();
    vfs.remove_dir_at(root, "d/sub").unwrap();
    assert_eq!(vfs.lookup(root, "d/sub"), Err(NotFound));
    assert_eq!(vfs.stat(sub), Err(BadDescriptor));
    assert_eq!(vfs.usage(), Usage { bytes: 5, files: 3 });
}

#[test]
fn unlink_file_at_rules() {
    let (mut vfs, root) = sample();
    assert_eq!(vfs.unlink_file_at(root, "d"), Err(IsDirectory));
    assert_eq!(vfs.unlink_file_at(root, "d/sub"), Err(IsDirectory));
    assert_eq!(vfs.unlink_file_at(root, "d/"), Err(IsDirectory));
    assert_eq!(vfs.unlink_file_at(root, "."), Err(IsDirectory));
    assert_eq!(vfs.unlink_file_at(root, "top/"), Err(NotDirectory));
    assert_eq!(vfs.unlink_file_at(root, "nope"), Err(NotFound));
    let f = vfs.lookup(root, "d/f").unwrap();
    vfs.unlink_file_at(root, "d/f").unwrap();
    assert_eq!(vfs.read(f, 0, 10), Err(BadDescriptor));
    assert_eq!(vfs.write(f, 0, b"x"), Err(BadDescriptor));
    assert_eq!(vfs.usage(), Usage { bytes: 1, files: 3 });
}

#[test]
fn read_dir_lists_sorted_entries_without_dots() {
    let (mut vfs, root) = sample();
    let d = vfs.lookup(root, "d").unwrap();
    let entries = vfs.read_dir(d).unwrap();
    let expected =
        vec![DirEntry { name: "f".into(), kind: NodeKind::File }, DirEntry { name: "sub".into(), kind: NodeKind::Dir }];
    assert_eq!(entries, expected);
}

#[test]
fn times_follow_writes_and_set_times() {
    let mut vfs = vfs();
    let root = vfs.root();
    vfs.set_now(ts(10));
    let d = mkdir(&mut vfs, "d");
    let f = file(&mut vfs, "d/f", b"abc");
    assert_eq!(vfs.stat(f).unwrap().atime, ts(10));
    assert_eq!(vfs.stat(d).unwrap().mtime, ts(10));
    vfs.set_now(ts(20));
    vfs.read(f, 0, 3).unwrap();
    assert_eq!(vfs.stat(f).unwrap().atime, ts(10), "reads don't touch atime");
    vfs.write(f, 0, b"").unwrap();
    assert_eq!(vfs.stat(f).unwrap().mtime, ts(10), "an empty write changes nothing");
    vfs.write(f, 1, b"X").unwrap();
    assert_eq!(vfs.stat(f).unwrap().mtime, ts(20));
    assert_eq!(vfs.stat(d).unwrap().mtime, ts(10), "content changes don't touch the parent");
    vfs.set_now(ts(30));
    file(&mut vfs, "d/g", b"");
    assert_eq!(vfs.stat(d).unwrap().mtime, ts(30), "new entries do");
    let exact = Timestamp { secs: 5, nanos: 999_999_999 };
    vfs.set_times(f, TimeChange::Set(exact), TimeChange::Keep).unwrap();
    let stat = vfs.stat(f).unwrap();
    assert_eq!((stat.atime, stat.mtime), (exact, ts(20)));
    vfs.set_times_at(root, "d/f", TimeChange::Keep, TimeChange::Now).unwrap();
    assert_eq!(vfs.stat(f).unwrap().mtime, ts(30));
    vfs.set_times_at(root, "d/", TimeChange::Now, TimeChange::Set(ts(1))).unwrap();
    assert_eq!(vfs.stat(d).unwrap().mtime, ts(1));
    let bad = Timestamp { secs: 1, nanos: 1_000_000_000 };
    assert_eq!(vfs.set_times(f, TimeChange::Keep, TimeChange::Set(bad)), Err(FsError::Invalid));
    assert_eq!(vfs.set_times_at(root, "d/f/", TimeChange::Now, TimeChange::Now), Err(NotDirectory));
    assert_eq!(vfs.set_times_at(root, "nope", TimeChange::Now, TimeChange::Now), Err(NotFound));
}
