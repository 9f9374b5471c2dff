//! What changed between two checkpoints, by walking the two Merkle trees side by side.
//!
//! Equal ids mean equal subtrees, so only directories on the path to a change are
//! visited: the cost follows the change, not the workspace. The object encoding is
//! private to the runtime, so a directory's names and kinds come from a [`Vfs`]
//! restored at that directory (from bytes already loaded) and its entries' ids from
//! [`runtime::vfs::children`]; both list entries sorted by name bytes.

use std::sync::Arc;

use runtime::vfs::{NodeKind, ObjectId, ObjectSource, Quota, Vfs};

use super::objects::ReadObjects;
use super::session::SessionId;
use super::tables::corrupt;
use super::{Result, Store};

/// How a path differs between two checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// Only in the later checkpoint.
    Added,
    /// Only in the earlier checkpoint.
    Removed,
    /// A file in both whose content or times differ.
    Modified,
}

/// One changed path. A directory added or removed as a whole is one entry, not one
/// per file inside it; a path that changed kind is `Removed` then `Added`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffEntry {
    /// The path from the workspace root, `/`-separated.
    pub path: String,
    /// The kind of what was added, removed or modified.
    pub kind: NodeKind,
    /// How it changed.
    pub change: Change,
}

/// An object source holding the one directory object a listing needs.
struct OneObject(ObjectId, Arc<[u8]>);

impl ObjectSource for OneObject {
    fn load(&self, id: &ObjectId) -> std::io::Result<Option<Arc<[u8]>>> {
        Ok((*id == self.0).then(|| self.1.clone()))
    }
}

/// A listing is read-only: no quota applies.
const NO_QUOTA: Quota = Quota {
    max_bytes: u64::MAX,
    max_files: u64::MAX,
    max_file_size: u64::MAX,
    max_path_bytes: usize::MAX,
    max_depth: usize::MAX,
};

/// One directory entry with the id of what it names.
struct Entry {
    name: String,
    kind: NodeKind,
    id: ObjectId,
}

impl Store {
    /// The paths that differ between two checkpoints of a session, sorted by path.
    pub fn diff(&self, id: &SessionId, from_step: u64, to_step: u64) -> Result<Vec<DiffEntry>> {
        let (from, to) = (self.checkpoint(id, from_step)?, self.checkpoint(id, to_step)?);
        self.diff_roots(from.root, to.root)
    }

    /// The paths that differ between two stored filesystem roots, sorted by path.
    pub fn diff_roots(&self, from: ObjectId, to: ObjectId) -> Result<Vec<DiffEntry>> {
        let txn = self.read()?;
        let objects = ReadObjects::open(&txn)?;
        let mut out = Vec::new();
        let mut pending = vec![(String::new(), from, to)];
        while let Some((dir, from, to)) = pending.pop() {
            if from == to {
                continue;
            }
            let (old, new) = (listing(&objects, from)?, listing(&objects, to)?);
            let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
            let path = |name: &str| if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
            loop {
                let order = match (old.peek(), new.peek()) {
                    (None, None) => break,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(a), Some(b)) => a.name.as_bytes().cmp(b.name.as_bytes()),
                };
                match order {
                    std::cmp::Ordering::Less => {
                        let gone = old.next().expect("peeked");
                        out.push(DiffEntry { path: path(&gone.name), kind: gone.kind, change: Change::Removed });
                    }
                    std::cmp::Ordering::Greater => {
                        let came = new.next().expect("peeked");
                        out.push(DiffEntry { path: path(&came.name), kind: came.kind, change: Change::Added });
                    }
                    std::cmp::Ordering::Equal => {
                        let (a, b) = (old.next().expect("peeked"), new.next().expect("peeked"));
                        if a.id == b.id {
                            continue;
                        }
                        let at = path(&a.name);
                        match (a.kind, b.kind) {
                            (NodeKind::Dir, NodeKind::Dir) => pending.push((at, a.id, b.id)),
                            (NodeKind::File, NodeKind::File) => {
                                out.push(DiffEntry { path: at, kind: NodeKind::File, change: Change::Modified })
                            }
                            _ => {
                                out.push(DiffEntry { path: at.clone(), kind: a.kind, change: Change::Removed });
                                out.push(DiffEntry { path: at, kind: b.kind, change: Change::Added });
                            }
                        }
                    }
                }
            }
        }
        // Stable, so a kind change keeps Removed before Added.
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// A stored directory's entries, sorted by name bytes.
fn listing(objects: &ReadObjects, id: ObjectId) -> Result<Vec<Entry>> {
    let Some(bytes) = objects.get(&id)? else {
        return Err(corrupt(format!("directory object {id}"), "missing from the store"));
    };
    let ids = runtime::vfs::children(&bytes)?;
    let mut dir = Vfs::restore(id, Arc::new(OneObject(id, bytes)), NO_QUOTA)?;
    let root = dir.root();
    let entries = dir.read_dir(root)?;
    if entries.len() != ids.len() {
        return Err(corrupt(format!("directory object {id}"), "its entries and ids disagree"));
    }
    Ok(entries.into_iter().zip(ids).map(|(entry, id)| Entry { name: entry.name, kind: entry.kind, id }).collect())
}
