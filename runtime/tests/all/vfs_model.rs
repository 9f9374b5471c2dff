//! Property tests: the VFS against a simple model.
//!
//! Random operations over three names (so paths collide, nest and replace each other)
//! run against [`Vfs`] and a `BTreeMap` of paths. Every result
//! (which error, or which value) must agree, usage must agree after every step, and
//! node ids must survive renames and die with their node. Snapshot → restore must
//! reproduce the exact tree, and an unchanged tree must snapshot to no new objects.
//! The filesystem sometimes gets the same path spelled differently (`./a`, `a//b`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proptest::prelude::*;
use runtime::vfs::{
    CHUNK_SIZE, FsError, MemoryObjects, NodeId, NodeKind, OpenOptions, Quota, Stat, Timestamp, Usage, Vfs,
};

const C: u64 = CHUNK_SIZE as u64;

/// Small enough that the generated operations trip every size and count quota now and then.
const QUOTA: Quota =
    Quota { max_bytes: 150_000, max_files: 8, max_file_size: 100_000, max_path_bytes: 4096, max_depth: 64 };

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Dir,
}

#[derive(Debug, Clone)]
enum Op {
    Create { path: PathChoice, exclusive: bool },
    Mkdir(PathChoice),
    Write { path: PathChoice, offset: u64, data: Vec<u8> },
    Append { path: PathChoice, data: Vec<u8> },
    SetSize { path: PathChoice, size: u64 },
    Read { path: PathChoice, offset: u64, len: usize },
    Rmdir(PathChoice),
    Unlink(PathChoice),
    Rename { from: PathChoice, to: PathChoice },
    HandleWrite { slot: usize, offset: u64, data: Vec<u8> },
    HandleStat { slot: usize },
    SnapshotRestore,
}

/// A path, chosen so that parents usually exist and names collide: a random path over
/// three names, an existing node, or a name inside an existing directory. The indices are
/// resolved against the model when the operation runs, which keeps shrinking meaningful.
#[derive(Debug, Clone)]
enum PathChoice {
    Random(String),
    Existing(usize),
    Under(usize, &'static str),
}

/// An [`Op`] with its paths resolved.
#[derive(Debug)]
enum Resolved {
    Create { path: String, exclusive: bool },
    Mkdir(String),
    Write { path: String, offset: u64, data: Vec<u8> },
    Append { path: String, data: Vec<u8> },
    SetSize { path: String, size: u64 },
    Read { path: String, offset: u64, len: usize },
    Rmdir(String),
    Unlink(String),
    Rename { from: String, to: String },
    HandleWrite { slot: usize, offset: u64, data: Vec<u8> },
    HandleStat { slot: usize },
    SnapshotRestore,
}

/// Paths with the given weights of random, existing and new-under-a-directory choices.
fn path(random: u32, existing: u32, under: u32) -> impl Strategy<Value = PathChoice> {
    let name = || prop::sample::select(vec!["a", "b", "c"]);
    prop_oneof![
        random => prop::collection::vec(name(), 1..=3).prop_map(|names| PathChoice::Random(names.join("/"))),
        existing => any::<usize>().prop_map(PathChoice::Existing),
        under => (any::<usize>(), name()).prop_map(|(i, name)| PathChoice::Under(i, name)),
    ]
}

/// Mostly small, sometimes across the first chunk boundary, sometimes past the file-size quota.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0..64u64, 3 => (C - 8)..(C + 8), 1 => (2 * C - 40)..(2 * C)]
}

/// Spells `path` another way that means the same: `./a/b`, `a//b`, or unchanged.
fn spell(path: &str, style: u8) -> String {
    match style {
        0 => format!("./{path}"),
        1 => path.replace('/', "//"),
        _ => path.to_owned(),
    }
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

fn op() -> impl Strategy<Value = Op> {
    let new = || path(1, 1, 4);
    let some = || path(1, 4, 1);
    prop_oneof![
        4 => (new(), any::<bool>()).prop_map(|(path, exclusive)| Op::Create { path, exclusive }),
        3 => new().prop_map(Op::Mkdir),
        4 => (some(), offset(), data()).prop_map(|(path, offset, data)| Op::Write { path, offset, data }),
        2 => (some(), data()).prop_map(|(path, data)| Op::Append { path, data }),
        2 => (some(), offset()).prop_map(|(path, size)| Op::SetSize { path, size }),
        2 => (some(), offset(), 0..100usize).prop_map(|(path, offset, len)| Op::Read { path, offset, len }),
        1 => some().prop_map(Op::Rmdir),
        1 => some().prop_map(Op::Unlink),
        4 => (some(), path(1, 2, 2)).prop_map(|(from, to)| Op::Rename { from, to }),
        2 => (any::<usize>(), offset(), data()).prop_map(|(slot, offset, data)| Op::HandleWrite { slot, offset, data }),
        1 => any::<usize>().prop_map(|slot| Op::HandleStat { slot }),
        1 => Just(Op::SnapshotRestore),
    ]
}

/// The model: every path with its node identity and content.
#[derive(Default)]
struct Model {
    entries: BTreeMap<String, (u64, Entry)>,
    next_id: u64,
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// Whether `path` is `ancestor` or below it ("" is the root).
fn within(path: &str, ancestor: &str) -> bool {
    ancestor.is_empty() || path == ancestor || path.starts_with(&format!("{ancestor}/"))
}

impl Model {
    fn usage(&self) -> Usage {
        let bytes = self
            .entries
            .values()
            .map(|(_, entry)| if let Entry::File(data) = entry { data.len() as u64 } else { 0 })
            .sum();
        Usage { bytes, files: self.entries.len() as u64 }
    }

    fn get(&self, path: &str) -> Option<&(u64, Entry)> {
        self.entries.get(path)
    }

    /// Every proper prefix of `path` must be an existing directory.
    fn check_parents(&self, path: &str) -> Result<(), FsError> {
        for (at, _) in path.match_indices('/') {
            match self.get(&path[..at]) {
                None => return Err(FsError::NotFound),
                Some((_, Entry::File(_))) => return Err(FsError::NotDirectory),
                Some((_, Entry::Dir)) => {}
            }
        }
        Ok(())
    }

    fn has_children(&self, path: &str) -> bool {
        self.entries.keys().any(|key| key != path && within(key, path))
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<u64, FsError> {
        if self.entries.len() as u64 >= QUOTA.max_files {
            return Err(FsError::InsufficientSpace);
        }
        self.next_id += 1;
        self.entries.insert(path.to_owned(), (self.next_id, entry));
        Ok(self.next_id)
    }

    fn path_of(&self, id: u64) -> Option<String> {
        self.entries.iter().find(|(_, (entry_id, _))| *entry_id == id).map(|(path, _)| path.clone())
    }

    fn create(&mut self, path: &str, exclusive: bool) -> Result<u64, FsError> {
        self.check_parents(path)?;
        match self.get(path) {
            None => self.insert(path, Entry::File(Vec::new())),
            Some(_) if exclusive => Err(FsError::Exists),
            Some((_, Entry::Dir)) => Err(FsError::IsDirectory),
            Some((id, Entry::File(_))) => Ok(*id),
        }
    }

    fn mkdir(&mut self, path: &str) -> Result<u64, FsError> {
        self.check_parents(path)?;
        match self.get(path) {
            Some(_) => Err(FsError::Exists),
            None => self.insert(path, Entry::Dir),
        }
    }

    /// The id of the node at `path` (what `open_at` without flags answers).
    fn open(&self, path: &str) -> Result<u64, FsError> {
        self.check_parents(path)?;
        self.get(path).map(|(id, _)| *id).ok_or(FsError::NotFound)
    }

    /// A file's content for writing; `BadDescriptor` if the node is gone.
    fn file_mut(&mut self, id: u64) -> Result<&mut Vec<u8>, FsError> {
        match self.entries.values_mut().find(|(entry_id, _)| *entry_id == id) {
            None => Err(FsError::BadDescriptor),
            Some((_, Entry::Dir)) => Err(FsError::IsDirectory),
            Some((_, Entry::File(data))) => Ok(data),
        }
    }

    fn grow_check(&self, old: u64, new: u64) -> Result<(), FsError> {
        if new <= old {
            Ok(())
        } else if new > QUOTA.max_file_size {
            Err(FsError::FileTooLarge)
        } else if self.usage().bytes + (new - old) > QUOTA.max_bytes {
            Err(FsError::InsufficientSpace)
        } else {
            Ok(())
        }
    }

    fn write(&mut self, id: u64, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let size = self.file_mut(id)?.len() as u64;
        if bytes.is_empty() {
            return Ok(0);
        }
        let end = offset + bytes.len() as u64;
        self.grow_check(size, end)?;
        let data = self.file_mut(id)?;
        if data.len() < end as usize {
            data.resize(end as usize, 0);
        }
        data[offset as usize..end as usize].copy_from_slice(bytes);
        Ok(bytes.len())
    }

    fn set_size(&mut self, id: u64, size: u64) -> Result<(), FsError> {
        let old = self.file_mut(id)?.len() as u64;
        self.grow_check(old, size)?;
        self.file_mut(id)?.resize(size as usize, 0);
        Ok(())
    }

    fn read(&mut self, id: u64, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let data = self.file_mut(id)?;
        let start = (offset as usize).min(data.len());
        Ok(data[start..(start + len).min(data.len())].to_vec())
    }

    fn rmdir(&mut self, path: &str) -> Result<(), FsError> {
        self.check_parents(path)?;
        match self.get(path) {
            None => Err(FsError::NotFound),
            Some((_, Entry::File(_))) => Err(FsError::NotDirectory),
            Some(_) if self.has_children(path) => Err(FsError::NotEmpty),
            Some(_) => {
                self.entries.remove(path);
                Ok(())
            }
        }
    }

    fn unlink(&mut self, path: &str) -> Result<(), FsError> {
        self.check_parents(path)?;
        match self.get(path) {
            None => Err(FsError::NotFound),
            Some((_, Entry::Dir)) => Err(FsError::IsDirectory),
            Some(_) => {
                self.entries.remove(path);
                Ok(())
            }
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        self.check_parents(from)?;
        self.check_parents(to)?;
        let old_is_dir = matches!(self.get(from).ok_or(FsError::NotFound)?.1, Entry::Dir);
        let new = self.get(to).map(|(_, entry)| matches!(entry, Entry::Dir));
        let (old_parent, new_parent) = (parent(from), parent(to));
        if old_parent != new_parent {
            if within(new_parent, from) && !new_parent.is_empty() {
                return Err(FsError::Invalid);
            }
            if new.is_some() && within(old_parent, to) && !old_parent.is_empty() {
                return Err(FsError::NotEmpty);
            }
        }
        match (old_is_dir, new) {
            _ if from == to => return Ok(()),
            (true, Some(false)) => return Err(FsError::NotDirectory),
            (true, Some(true)) if self.has_children(to) => return Err(FsError::NotEmpty),
            (false, Some(true)) => return Err(FsError::IsDirectory),
            _ => {}
        }
        self.entries.remove(to);
        let moved: Vec<String> = self.entries.keys().filter(|key| within(key, from)).cloned().collect();
        for key in moved {
            let value = self.entries.remove(&key).expect("listed above");
            self.entries.insert(format!("{to}{}", &key[from.len()..]), value);
        }
        Ok(())
    }

    fn resolve(&self, choice: &PathChoice) -> String {
        match choice {
            PathChoice::Random(path) => path.clone(),
            PathChoice::Existing(i) => match self.entries.keys().nth(i % self.entries.len().max(1)) {
                Some(path) => path.clone(),
                None => "a".to_owned(),
            },
            PathChoice::Under(i, name) => {
                // The root counts as one of the directories.
                let dirs: Vec<&String> =
                    self.entries.iter().filter(|(_, (_, entry))| *entry == Entry::Dir).map(|(path, _)| path).collect();
                match i % (dirs.len() + 1) {
                    0 => (*name).to_owned(),
                    n => format!("{}/{name}", dirs[n - 1]),
                }
            }
        }
    }

    fn tree(&self) -> BTreeMap<String, Entry> {
        self.entries.iter().map(|(path, (_, entry))| (path.clone(), entry.clone())).collect()
    }
}

/// Path → kind, size, atime and mtime.
type Stats = BTreeMap<String, (NodeKind, u64, Timestamp, Timestamp)>;

/// Everything in a filesystem: path → entry, and path → stat (times included).
fn describe(vfs: &mut Vfs) -> (BTreeMap<String, Entry>, Stats) {
    let (mut tree, mut stats) = (BTreeMap::new(), BTreeMap::new());
    let mut stack = vec![(vfs.root(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in vfs.read_dir(dir).expect("read_dir") {
            let path = format!("{prefix}{}", entry.name);
            let node = vfs.lookup(dir, &entry.name).expect("lookup");
            let stat: Stat = vfs.stat(node).expect("stat");
            stats.insert(path.clone(), (stat.kind, stat.size, stat.atime, stat.mtime));
            let value = match entry.kind {
                NodeKind::File => Entry::File(vfs.read(node, 0, usize::MAX).expect("read")),
                NodeKind::Dir => {
                    stack.push((node, format!("{path}/")));
                    Entry::Dir
                }
            };
            tree.insert(path, value);
        }
    }
    (tree, stats)
}

/// Runs one sequence; node identities are tracked as model id → `NodeId`.
fn run(ops: Vec<(Op, u8)>) -> Result<(), TestCaseError> {
    let store = Arc::new(MemoryObjects::default());
    let mut vfs = Vfs::new(QUOTA);
    let mut model = Model::default();
    let mut handles: Vec<u64> = Vec::new();
    let mut nodes: HashMap<u64, NodeId> = HashMap::new();
    let create = OpenOptions { create: true, ..OpenOptions::default() };
    for (step, (op, style)) in ops.into_iter().enumerate() {
        let spelled = |path: &str| spell(path, style);
        vfs.set_now(Timestamp { secs: step as u64, nanos: 7 });
        let root = vfs.root();
        // Registers (or checks) the node a successful call returned for a model id.
        let mut seen = |id: u64, node: NodeId| -> Result<(), TestCaseError> {
            let known = *nodes.entry(id).or_insert(node);
            prop_assert_eq!(known, node, "node ids are stable across renames");
            handles.push(id);
            Ok(())
        };
        let resolve = |choice: &PathChoice| model.resolve(choice);
        let op = match op {
            Op::Create { path, exclusive } => Resolved::Create { path: resolve(&path), exclusive },
            Op::Mkdir(path) => Resolved::Mkdir(resolve(&path)),
            Op::Write { path, offset, data } => Resolved::Write { path: resolve(&path), offset, data },
            Op::Append { path, data } => Resolved::Append { path: resolve(&path), data },
            Op::SetSize { path, size } => Resolved::SetSize { path: resolve(&path), size },
            Op::Read { path, offset, len } => Resolved::Read { path: resolve(&path), offset, len },
            Op::Rmdir(path) => Resolved::Rmdir(resolve(&path)),
            Op::Unlink(path) => Resolved::Unlink(resolve(&path)),
            Op::Rename { from, to } => Resolved::Rename { from: resolve(&from), to: resolve(&to) },
            Op::HandleWrite { slot, offset, data } => Resolved::HandleWrite { slot, offset, data },
            Op::HandleStat { slot } => Resolved::HandleStat { slot },
            Op::SnapshotRestore => Resolved::SnapshotRestore,
        };
        match &op {
            Resolved::Create { path, exclusive } => {
                let got = vfs.open_at(root, &spelled(path), OpenOptions { exclusive: *exclusive, ..create });
                let want = model.create(path, *exclusive);
                prop_assert_eq!(got.as_ref().err(), want.as_ref().err(), "{:?}", op);
                if let (Ok(node), Ok(id)) = (got, want) {
                    seen(id, node)?;
                }
            }
            Resolved::Mkdir(path) => {
                let got = vfs.create_dir_at(root, &spelled(path));
                let want = model.mkdir(path);
                prop_assert_eq!(got.as_ref().err(), want.as_ref().err(), "{:?}", op);
                if let (Ok(node), Ok(id)) = (got, want) {
                    seen(id, node)?;
                }
            }
            Resolved::Write { path, offset, data } => {
                let got =
                    vfs.open_at(root, &spelled(path), OpenOptions::default()).and_then(|f| vfs.write(f, *offset, data));
                let want = model.open(path).and_then(|id| model.write(id, *offset, data));
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Resolved::Append { path, data } => {
                let got = vfs.open_at(root, &spelled(path), OpenOptions::default()).and_then(|f| vfs.append(f, data));
                let want = model.open(path).and_then(|id| {
                    let size = model.file_mut(id)?.len() as u64;
                    model.write(id, size, data)?;
                    Ok(model.file_mut(id)?.len() as u64)
                });
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Resolved::SetSize { path, size } => {
                let got =
                    vfs.open_at(root, &spelled(path), OpenOptions::default()).and_then(|f| vfs.set_size(f, *size));
                let want = model.open(path).and_then(|id| model.set_size(id, *size));
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Resolved::Read { path, offset, len } => {
                let got =
                    vfs.open_at(root, &spelled(path), OpenOptions::default()).and_then(|f| vfs.read(f, *offset, *len));
                let want = model.open(path).and_then(|id| model.read(id, *offset, *len));
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Resolved::Rmdir(path) => {
                prop_assert_eq!(vfs.remove_dir_at(root, &spelled(path)), model.rmdir(path), "{:?}", op)
            }
            Resolved::Unlink(path) => {
                prop_assert_eq!(vfs.unlink_file_at(root, &spelled(path)), model.unlink(path), "{:?}", op)
            }
            Resolved::Rename { from, to } => {
                prop_assert_eq!(
                    vfs.rename_at(root, &spelled(from), root, &spelled(to)),
                    model.rename(from, to),
                    "{:?}",
                    op
                )
            }
            Resolved::HandleWrite { slot, offset, data } if !handles.is_empty() => {
                let id = handles[slot % handles.len()];
                let got = vfs.write(nodes[&id], *offset, data);
                prop_assert_eq!(got, model.write(id, *offset, data), "{:?}", op);
            }
            Resolved::HandleStat { slot } if !handles.is_empty() => {
                let id = handles[slot % handles.len()];
                let got = vfs.stat(nodes[&id]).map(|stat| (stat.node, stat.kind, stat.size));
                let want = model.path_of(id).ok_or(FsError::BadDescriptor).map(|path| match &model.entries[&path].1 {
                    Entry::File(data) => (nodes[&id], NodeKind::File, data.len() as u64),
                    Entry::Dir => (nodes[&id], NodeKind::Dir, 0),
                });
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Resolved::HandleWrite { .. } | Resolved::HandleStat { .. } => {}
            Resolved::SnapshotRestore => {
                // Carry on with a lazily restored copy; node ids are per filesystem.
                let snapshot = vfs.snapshot().expect("snapshot");
                store.insert_snapshot(&snapshot);
                vfs = Vfs::restore(snapshot.root, store.clone(), QUOTA).expect("restore");
                prop_assert_eq!(vfs.usage(), model.usage());
                handles.clear();
                nodes.clear();
            }
        }
        prop_assert_eq!(vfs.usage(), model.usage(), "usage after {:?}", op);
    }
    let (tree, stats) = describe(&mut vfs);
    prop_assert_eq!(&tree, &model.tree());

    let first = vfs.snapshot().expect("snapshot");
    store.insert_snapshot(&first);
    let second = vfs.snapshot().expect("snapshot");
    prop_assert_eq!(second.root, first.root);
    prop_assert!(second.new_objects.is_empty(), "an unchanged tree has no new objects");

    let mut restored = Vfs::restore(first.root, store.clone(), QUOTA).expect("restore");
    prop_assert_eq!(restored.usage(), model.usage());
    prop_assert_eq!(describe(&mut restored), (tree, stats));
    let again = restored.snapshot().expect("snapshot");
    prop_assert_eq!(again.root, first.root);
    prop_assert!(again.new_objects.is_empty(), "a restored tree is clean");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn vfs_agrees_with_the_model(ops in prop::collection::vec((op(), 0..6u8), 1..120)) {
        run(ops)?;
    }
}
