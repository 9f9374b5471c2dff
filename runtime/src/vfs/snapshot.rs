//! Snapshots (dirty nodes → new objects) and restores (root id → lazy tree).

use std::collections::HashSet;
use std::sync::Arc;

use super::codec::{self, DirEncoder, zero_chunk};
use super::tree::{Body, HashPrefix, Node};
use super::{FsError, NodeId, NodeKind, ObjectId, ObjectSource, Quota, Snapshot, Vfs};

/// Files with fewer chunks are rehashed whole; saving a hash state isn't worth it.
const PREFIX_MIN_CHUNKS: usize = 64;

/// Objects a snapshot hands out, each once.
#[derive(Default)]
struct NewObjects {
    list: Vec<(ObjectId, Arc<[u8]>)>,
    seen: HashSet<ObjectId>,
}

impl NewObjects {
    fn add(&mut self, id: ObjectId, bytes: Arc<[u8]>) {
        if self.seen.insert(id) {
            self.list.push((id, bytes));
        }
    }
}

impl Vfs {
    /// Opens the tree stored under `root`. Loads only the root directory object; every
    /// other node loads on first access. Usage comes from the root's stored totals.
    pub fn restore(root: ObjectId, source: Arc<dyn ObjectSource>, quota: Quota) -> Result<Vfs, FsError> {
        let mut vfs = Vfs::bare(quota, Some(source));
        let dir = codec::decode_dir(&vfs.load_object(&root)?)?;
        let node = Node {
            parent: None,
            name: String::new(),
            kind: NodeKind::Dir,
            bytes: dir.bytes,
            nodes: dir.below.saturating_add(1),
            id: Some(root),
            body: Body::Stub,
        };
        vfs.root = vfs.alloc(node);
        vfs.install_dir(vfs.root, dir);
        Ok(vfs)
    }

    /// Encodes and hashes what changed since the last snapshot (or load) and returns
    /// the new root with exactly the objects that are new. Clean subtrees are skipped
    /// without being visited, so the cost follows the change, not the tree.
    pub fn snapshot(&mut self) -> Result<Snapshot, FsError> {
        let mut new = NewObjects::default();
        // Post-order over dirty nodes only; explicit stack, as depth isn't bounded by
        // the call stack.
        let mut stack = vec![(self.root, false)];
        while let Some((id, children_done)) = stack.pop() {
            let node = self.nodes.get_mut(&id).expect("dirty nodes are live");
            if node.id.is_some() {
                continue;
            }
            match &mut node.body {
                Body::File(_) => self.seal_file(id, &mut new),
                Body::Dir(dir) if !children_done => {
                    let candidates = std::mem::take(&mut dir.dirty);
                    stack.push((id, true));
                    for child in candidates {
                        // Skip ids removed or moved elsewhere since they were recorded.
                        if self.nodes.get(&child).is_some_and(|c| c.parent == Some(id) && c.id.is_none()) {
                            stack.push((child, false));
                        }
                    }
                }
                Body::Dir(_) => self.seal_dir(id, &mut new),
                Body::Stub => unreachable!("a stub is clean by construction"),
            }
        }
        let root = self.nodes[&self.root].id.expect("sealed above");
        Ok(Snapshot { root, new_objects: new.list })
    }

    /// Hashes a dirty file's dirty chunks and its file object.
    ///
    /// A file object lists every chunk id (1,600 for 100 MiB), and hashing that list
    /// would cost more than the rest of a small snapshot. So for large files the blake3
    /// state after all but the last id is saved, and the next snapshot resumes from it
    /// when no chunk before that point changed: an append hashes a few ids, not all.
    fn seal_file(&mut self, id: NodeId, new: &mut NewObjects) {
        let node = self.nodes.get_mut(&id).expect("a live node");
        let Body::File(body) = &mut node.body else { unreachable!("a file") };
        let count = body.chunks.len();
        let first_dirty = body.chunks.iter().position(|chunk| chunk.id.is_none()).unwrap_or(count);
        let zero = zero_chunk();
        for chunk in &mut body.chunks[first_dirty..] {
            if chunk.id.is_none() {
                let data = chunk.data.as_ref().expect("a dirty chunk has data");
                let chunk_id = if Arc::ptr_eq(data, &zero.0) { zero.1 } else { ObjectId::of(data) };
                chunk.id = Some(chunk_id);
                new.add(chunk_id, data.clone());
            }
        }
        let ids = body.chunks.iter().map(|chunk| chunk.id.expect("sealed above"));
        let encoded = codec::encode_file(node.bytes, body.atime, body.mtime, ids);
        let (mut hasher, from, hashed) = match body.prefix.take() {
            Some(prefix) if prefix.ids <= first_dirty => (prefix.hasher, prefix.ids, codec::file_id_offset(prefix.ids)),
            _ => (blake3::Hasher::new(), 0, 0),
        };
        let save_at = count.saturating_sub(1).max(from);
        hasher.update(&encoded[hashed..codec::file_id_offset(save_at)]);
        if count >= PREFIX_MIN_CHUNKS {
            body.prefix = Some(Box::new(HashPrefix { ids: save_at, hasher: hasher.clone() }));
        }
        hasher.update(&encoded[codec::file_id_offset(save_at)..]);
        let file_id = ObjectId(*hasher.finalize().as_bytes());
        debug_assert_eq!(file_id, ObjectId::of(&encoded), "a resumed hash equals a fresh one");
        node.id = Some(file_id);
        new.add(file_id, encoded.into());
    }

    /// Encodes a dirty directory whose children are all sealed.
    fn seal_dir(&mut self, id: NodeId, new: &mut NewObjects) {
        let node = &self.nodes[&id];
        let Body::Dir(body) = &node.body else { unreachable!("a directory") };
        let mut encoder = DirEncoder::new(body.atime, body.mtime, node.bytes, node.nodes - 1, body.entries.len());
        for (name, child) in &body.entries {
            let child = &self.nodes[child];
            let child_id = child.id.as_ref().expect("children are sealed first");
            encoder.entry(name, child.kind, child_id, child.bytes, child.nodes - 1);
        }
        let encoded = encoder.finish();
        let dir_id = ObjectId::of(&encoded);
        self.nodes.get_mut(&id).expect("a live node").id = Some(dir_id);
        new.add(dir_id, encoded.into());
    }
}
