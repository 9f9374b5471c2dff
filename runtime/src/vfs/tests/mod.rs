//! Unit tests of the session filesystem, with shared helpers.

mod files;
mod paths;
mod quota;
mod rename;
mod storage;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;

const CREATE: OpenOptions = OpenOptions { create: true, exclusive: false, truncate: false, directory: false };

fn vfs() -> Vfs {
    Vfs::new(Quota::default())
}

/// Creates (or opens) the file `path` and writes `content` at offset 0.
fn file(vfs: &mut Vfs, path: &str, content: &[u8]) -> NodeId {
    let root = vfs.root();
    let node = vfs.open_at(root, path, CREATE).unwrap_or_else(|err| panic!("create {path}: {err}"));
    vfs.write(node, 0, content).unwrap();
    node
}

fn mkdir(vfs: &mut Vfs, path: &str) -> NodeId {
    let root = vfs.root();
    vfs.create_dir_at(root, path).unwrap_or_else(|err| panic!("mkdir {path}: {err}"))
}

fn read_all(vfs: &mut Vfs, path: &str) -> Vec<u8> {
    let root = vfs.root();
    let node = vfs.lookup(root, path).unwrap_or_else(|err| panic!("lookup {path}: {err}"));
    vfs.read(node, 0, usize::MAX).unwrap()
}

fn ts(secs: u64) -> Timestamp {
    Timestamp { secs, nanos: 0 }
}

/// Everything observable about a tree: path → (kind, content, atime, mtime).
type Description = BTreeMap<String, (NodeKind, Vec<u8>, Timestamp, Timestamp)>;

fn describe(vfs: &mut Vfs) -> Description {
    let mut out = BTreeMap::new();
    let mut stack = vec![(vfs.root(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in vfs.read_dir(dir).unwrap() {
            let path = format!("{prefix}{}", entry.name);
            let node = vfs.lookup(dir, &entry.name).unwrap();
            let stat = vfs.stat(node).unwrap();
            let content = match entry.kind {
                NodeKind::File => vfs.read(node, 0, usize::MAX).unwrap(),
                NodeKind::Dir => {
                    stack.push((node, format!("{path}/")));
                    Vec::new()
                }
            };
            out.insert(path, (entry.kind, content, stat.atime, stat.mtime));
        }
    }
    out
}

/// Snapshots `vfs` into a fresh store and restores it from there.
fn round_trip(vfs: &mut Vfs) -> (Vfs, Arc<MemoryObjects>) {
    let store = Arc::new(MemoryObjects::default());
    store.insert_snapshot(&vfs.snapshot().unwrap());
    let restored = Vfs::restore(vfs.snapshot().unwrap().root, store.clone(), *vfs.quota()).unwrap();
    (restored, store)
}

/// An object source that records every load.
struct CountingSource {
    inner: Arc<MemoryObjects>,
    loads: Mutex<Vec<ObjectId>>,
}

impl CountingSource {
    fn new(inner: Arc<MemoryObjects>) -> Arc<Self> {
        Arc::new(CountingSource { inner, loads: Mutex::default() })
    }

    fn take(&self) -> Vec<ObjectId> {
        std::mem::take(&mut self.loads.lock().unwrap())
    }
}

impl ObjectSource for CountingSource {
    fn load(&self, id: &ObjectId) -> std::io::Result<Option<Arc<[u8]>>> {
        self.loads.lock().unwrap().push(*id);
        self.inner.load(id)
    }
}

#[test]
fn vfs_is_send_and_sources_are_shareable() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    send::<Vfs>();
    shared::<MemoryObjects>();
    shared::<Arc<dyn ObjectSource>>();
}
