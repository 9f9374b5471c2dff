//! The in-memory tree: nodes, lazy loading, and the bookkeeping every mutation does.
//!
//! Each node caches the [`ObjectId`] it had at the last snapshot (or when it was
//! loaded). A mutation clears that cache on the node and all its ancestors, so a
//! clean node is never re-encoded and a dirty node always has dirty ancestors; that
//! invariant lets [`Vfs::snapshot`] skip every clean subtree. The same upward walk
//! keeps each directory's subtree aggregates (bytes, node count) exact, which is
//! how usage stays O(1) and how snapshots store aggregates without a tree walk.
//!
//! A node restored from a store starts as a [`Body::Stub`]: its kind, id and
//! aggregates come from its parent's entry; its own object is loaded on first touch,
//! and a file's chunks only when they are read or partly overwritten.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::codec::{self, DirObject};
use super::path::MAX_NAME_BYTES;
use super::{FsError, NodeId, NodeKind, ObjectId, Timestamp, Vfs};

/// A file or directory.
pub(super) struct Node {
    pub parent: Option<NodeId>,
    /// Name in the parent ("" for the root); duplicated from the parent's map so a
    /// node's path length can be computed walking upwards.
    pub name: String,
    pub kind: NodeKind,
    /// File bytes in this subtree (a file's size).
    pub bytes: u64,
    /// Nodes in this subtree, itself included.
    pub nodes: u64,
    /// The object id while the node is unchanged since it was loaded or snapshotted.
    pub id: Option<ObjectId>,
    pub body: Body,
}

/// What is known of a node beyond its kind and aggregates.
pub(super) enum Body {
    /// Not loaded yet; `Node::id` names its object.
    Stub,
    File(FileBody),
    Dir(DirBody),
}

/// A loaded file; its size is `Node::bytes`.
pub(super) struct FileBody {
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub chunks: Vec<Chunk>,
    /// Saved at the last snapshot of a large file, so the next one hashes only the ids
    /// from the first changed chunk on.
    pub prefix: Option<Box<HashPrefix>>,
}

/// A blake3 state after the tag and the first `ids` chunk ids of a file object. Valid
/// while those chunks are clean: every change to a chunk clears its id, and ids are
/// only set by a snapshot, which saves a new prefix.
pub(super) struct HashPrefix {
    pub ids: usize,
    pub hasher: blake3::Hasher,
}

/// One chunk of a file. At least one of the fields is set: `id` alone means not
/// loaded yet, `data` alone means changed since the last snapshot.
pub(super) struct Chunk {
    pub id: Option<ObjectId>,
    /// The encoded chunk object (tag byte included), so a snapshot can hand it to
    /// the store and a load can keep the store's bytes, both without copying.
    pub data: Option<Arc<[u8]>>,
}

/// A loaded directory.
pub(super) struct DirBody {
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub entries: BTreeMap<String, NodeId>,
    /// Children that became dirty since the last snapshot, so a snapshot descends
    /// into those alone instead of scanning every entry. May hold ids that have
    /// since been removed or moved away; the snapshot skips them.
    pub dirty: Vec<NodeId>,
}

/// Hashes sequential node ids with one multiplication (Fibonacci hashing): node
/// lookups are the snapshot's inner loop, and SipHash's DoS resistance buys
/// nothing for ids the VFS hands out itself.
#[derive(Default, Clone, Copy)]
pub(super) struct NodeIdHasher(u64);

impl std::hash::Hasher for NodeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The `BuildHasher` of the node map.
pub(super) type NodeIdHash = std::hash::BuildHasherDefault<NodeIdHasher>;

impl Node {
    /// A new, empty node created by this filesystem.
    pub fn new(parent: NodeId, name: &str, kind: NodeKind, now: Timestamp) -> Node {
        let body = match kind {
            NodeKind::File => Body::File(FileBody { atime: now, mtime: now, chunks: Vec::new(), prefix: None }),
            NodeKind::Dir => Body::Dir(DirBody { atime: now, mtime: now, entries: BTreeMap::new(), dirty: Vec::new() }),
        };
        Node { parent: Some(parent), name: name.to_owned(), kind, bytes: 0, nodes: 1, id: None, body }
    }
}

impl Vfs {
    pub(super) fn node(&self, id: NodeId) -> Result<&Node, FsError> {
        self.nodes.get(&id).ok_or(FsError::BadDescriptor)
    }

    pub(super) fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, FsError> {
        self.nodes.get_mut(&id).ok_or(FsError::BadDescriptor)
    }

    /// Adds a node under a fresh id; ids are never reused, so a stale id can't alias.
    pub(super) fn alloc(&mut self, node: Node) -> NodeId {
        self.next_node += 1;
        let id = NodeId(self.next_node);
        self.nodes.insert(id, node);
        id
    }

    /// Loads a stub's own object (not a file's chunks).
    pub(super) fn ensure_loaded(&mut self, id: NodeId) -> Result<(), FsError> {
        let node = self.node(id)?;
        if !matches!(node.body, Body::Stub) {
            return Ok(());
        }
        let (kind, bytes, nodes) = (node.kind, node.bytes, node.nodes);
        let object_id = node.id.expect("a stub always has an id");
        let encoded = self.load_object(&object_id)?;
        match kind {
            NodeKind::File => {
                let file = codec::decode_file(&encoded)?;
                if file.size != bytes {
                    return Err(mismatch(&object_id));
                }
                let chunks = file.chunks.into_iter().map(|id| Chunk { id: Some(id), data: None }).collect();
                let body = FileBody { atime: file.atime, mtime: file.mtime, chunks, prefix: None };
                self.node_mut(id)?.body = Body::File(body);
            }
            NodeKind::Dir => {
                let dir = codec::decode_dir(&encoded)?;
                if (dir.bytes, dir.below.checked_add(1)) != (bytes, Some(nodes)) {
                    return Err(mismatch(&object_id));
                }
                self.install_dir(id, dir);
            }
        }
        Ok(())
    }

    /// Turns a decoded directory into the body of `id`, with a stub per entry.
    pub(super) fn install_dir(&mut self, id: NodeId, dir: DirObject) {
        let mut entries = BTreeMap::new();
        for entry in dir.entries {
            let child = self.alloc(Node {
                parent: Some(id),
                name: entry.name.clone(),
                kind: entry.kind,
                bytes: entry.bytes,
                nodes: entry.below + 1,
                id: Some(entry.id),
                body: Body::Stub,
            });
            entries.insert(entry.name, child);
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.body = Body::Dir(DirBody { atime: dir.atime, mtime: dir.mtime, entries, dirty: Vec::new() });
        }
    }

    /// Fetches an object from the source and checks it is the object its id names.
    pub(super) fn load_object(&self, id: &ObjectId) -> Result<Arc<[u8]>, FsError> {
        let source = self.source.as_ref().ok_or_else(|| FsError::Io(format!("object {id} has no source")))?;
        match source.load(id) {
            Ok(Some(bytes)) if ObjectId::of(&bytes) == *id => Ok(bytes),
            Ok(Some(_)) => Err(FsError::Io(format!("object {id} is corrupt: its bytes don't match its id"))),
            Ok(None) => Err(FsError::Io(format!("object {id} is missing from the store"))),
            Err(err) => Err(FsError::Io(format!("loading object {id}: {err}"))),
        }
    }

    /// Loads chunk `index` of a loaded file unless it is in memory already.
    pub(super) fn load_chunk(&mut self, file: NodeId, index: usize) -> Result<(), FsError> {
        let node = self.node(file)?;
        let Body::File(body) = &node.body else { return Err(FsError::IsDirectory) };
        let chunk = &body.chunks[index];
        if chunk.data.is_some() {
            return Ok(());
        }
        let id = chunk.id.expect("a chunk without data has an id");
        let len = codec::chunk_len(node.bytes, index);
        let data = self.load_object(&id)?;
        codec::check_chunk(&data, len)?;
        if let Ok(Node { body: Body::File(body), .. }) = self.node_mut(file) {
            body.chunks[index].data = Some(data);
        }
        Ok(())
    }

    /// The entry `name` of directory `dir`, loading `dir` if needed.
    pub(super) fn child(&mut self, dir: NodeId, name: &str) -> Result<Option<NodeId>, FsError> {
        if name.len() > MAX_NAME_BYTES {
            return Err(FsError::NameTooLong);
        }
        Ok(self.entries(dir)?.get(name).copied())
    }

    /// The entries of directory `dir`, loading it if needed.
    pub(super) fn entries(&mut self, dir: NodeId) -> Result<&BTreeMap<String, NodeId>, FsError> {
        self.ensure_loaded(dir)?;
        match &self.node(dir)?.body {
            Body::Dir(body) => Ok(&body.entries),
            _ => Err(FsError::NotDirectory),
        }
    }

    /// Records a change at `id`: clears cached ids up to the root and adds the deltas
    /// to every aggregate on the way.
    pub(super) fn touched(&mut self, id: NodeId, bytes: i128, nodes: i128) {
        let mut current = Some(id);
        if self.nodes.get(&id).is_some_and(|n| n.parent.is_none() && id != self.root) {
            self.orphan_bytes = shift(self.orphan_bytes, bytes);
        }
        while let Some(n) = current {
            let node = self.nodes.get_mut(&n).expect("ancestors of a live node exist");
            if bytes == 0 && nodes == 0 && node.id.is_none() && n != id {
                // Already dirty, hence so are its ancestors, and no aggregate changes.
                break;
            }
            let was_clean = node.id.take().is_some();
            node.bytes = shift(node.bytes, bytes);
            node.nodes = shift(node.nodes, nodes);
            current = node.parent;
            if was_clean && let Some(parent) = current {
                self.mark_dirty_child(parent, n);
            }
        }
    }

    /// Records that `child` of `dir` needs sealing at the next snapshot.
    pub(super) fn mark_dirty_child(&mut self, dir: NodeId, child: NodeId) {
        if let Some(Node { body: Body::Dir(body), .. }) = self.nodes.get_mut(&dir) {
            body.dirty.push(child);
        }
    }

    /// Sets a directory's mtime to now, as an entry was added or removed.
    pub(super) fn dir_changed(&mut self, dir: NodeId) {
        let now = self.now;
        if let Some(Node { body: Body::Dir(body), .. }) = self.nodes.get_mut(&dir) {
            body.mtime = now;
        }
    }

    /// Adds a new empty node `name` to the loaded directory `dir`, quotas checked.
    pub(super) fn create_child(&mut self, dir: NodeId, name: &str, kind: NodeKind) -> Result<NodeId, FsError> {
        let (depth, len) = self.child_metrics(dir, name);
        if depth > self.quota.max_depth || len > self.quota.max_path_bytes {
            return Err(FsError::NameTooLong);
        }
        if self.usage().files >= self.quota.max_files {
            return Err(FsError::InsufficientSpace);
        }
        let child = self.alloc(Node::new(dir, name, kind, self.now));
        self.link(dir, name, child);
        Ok(child)
    }

    /// Inserts the detached node `child` into the loaded directory `dir` as `name`.
    pub(super) fn link(&mut self, dir: NodeId, name: &str, child: NodeId) {
        let node = self.nodes.get_mut(&child).expect("linking a live node");
        node.parent = Some(dir);
        node.name = name.to_owned();
        let (bytes, nodes) = (node.bytes, node.nodes);
        if let Some(Node { body: Body::Dir(body), .. }) = self.nodes.get_mut(&dir) {
            body.entries.insert(name.to_owned(), child);
            // A new node is born dirty without passing through `touched`.
            body.dirty.push(child);
        }
        self.dir_changed(dir);
        self.touched(dir, i128::from(bytes), i128::from(nodes));
    }

    /// Removes entry `name` from the loaded directory `dir`, keeping the node.
    pub(super) fn unlink(&mut self, dir: NodeId, name: &str) -> NodeId {
        let Some(Node { body: Body::Dir(body), .. }) = self.nodes.get_mut(&dir) else {
            unreachable!("unlinking from a loaded directory")
        };
        let child = body.entries.remove(name).expect("unlinking an existing entry");
        let node = &self.nodes[&child];
        let (bytes, nodes) = (node.bytes, node.nodes);
        self.dir_changed(dir);
        self.touched(dir, -i128::from(bytes), -i128::from(nodes));
        child
    }

    /// Removes entry `name` (a file or an empty directory) and forgets the node, unless
    /// it is a file with open handles: that one becomes an orphan outside the tree.
    pub(super) fn remove(&mut self, dir: NodeId, name: &str) {
        let child = self.unlink(dir, name);
        let node = self.nodes.get_mut(&child).expect("a removed entry was live");
        if node.kind == NodeKind::File && self.held.contains_key(&child) {
            node.parent = None;
            self.orphan_bytes += node.bytes;
        } else {
            self.nodes.remove(&child);
        }
    }
}

fn shift(value: u64, delta: i128) -> u64 {
    (i128::from(value) + delta).clamp(0, i128::from(u64::MAX)) as u64
}

fn mismatch(id: &ObjectId) -> FsError {
    FsError::Io(format!("object {id} is corrupt: it disagrees with its parent's totals"))
}
