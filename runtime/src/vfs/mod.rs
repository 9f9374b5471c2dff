//! The session filesystem behind each guest's `/workspace`: an in-memory,
//! content-addressed, copy-on-write tree.
//!
//! Why it is shaped this way:
//! - A session's files must survive a crash and be forkable, so the tree is a Merkle
//!   tree: files are lists of 64 KiB chunks, directories are sorted entries, and every
//!   object is named by the blake3 hash of its encoding (format in `codec.rs`). One
//!   [`ObjectId`] names a whole state; forking a session is restoring that id twice.
//! - Commits happen after every tool call, so a [`Vfs::snapshot`] costs what changed,
//!   not what exists: nodes cache their ids and a mutation clears only the path to the
//!   root (`tree.rs`). Chunks are `Arc<[u8]>`, shared with snapshots and forks.
//! - Sessions are restored far more often than they are fully read, so
//!   [`Vfs::restore`] loads only the root directory; everything else is a stub that
//!   loads when first touched, and a file's chunks load when read or partly written.
//! - Guests must not be able to tell this from a real directory behind wasmtime-wasi,
//!   so path and error semantics follow cap-std on Linux (`path.rs`, `ops.rs`).
//!   There are no symlinks or hard links, so nothing can resolve outside the root.
//! - Quotas are checked before anything changes, and answer with an error code the
//!   guest understands, never a host failure. Usage is maintained incrementally.
//!
//! ```
//! use runtime::vfs::{OpenOptions, Quota, Vfs};
//! let mut vfs = Vfs::new(Quota::default());
//! let root = vfs.root();
//! let file = vfs.open_at(root, "notes.txt", OpenOptions { create: true, ..Default::default() })?;
//! vfs.write(file, 0, b"hello")?;
//! assert_eq!(vfs.read(file, 0, 100)?, b"hello");
//! let snapshot = vfs.snapshot()?; // the root id plus the objects to persist
//! # Ok::<(), runtime::vfs::FsError>(())
//! ```

mod codec;
mod error;
mod file;
mod host_dir;
mod object;
mod ops;
mod path;
mod snapshot;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

pub use codec::{CHUNK_SIZE, children};
pub use error::FsError;
pub use host_dir::{HostDirError, Transfer, export_dir, import_dir};
pub use object::{MemoryObjects, ObjectId, ObjectSource, ParseObjectIdError, Snapshot};
pub use path::MAX_NAME_BYTES;

/// Per-session limits; each answers the guest with a filesystem error when hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Total bytes of all files.
    pub max_bytes: u64,
    /// Files and directories, the root not counted.
    pub max_files: u64,
    /// Size of a single file.
    pub max_file_size: u64,
    /// Length in bytes of a node's path from the root ("a/b" is 3).
    pub max_path_bytes: usize,
    /// Components in a node's path from the root.
    pub max_depth: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota { max_bytes: 1 << 30, max_files: 100_000, max_file_size: 256 << 20, max_path_bytes: 4096, max_depth: 64 }
    }
}

/// What a filesystem currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Total bytes of all files.
    pub bytes: u64,
    /// Files and directories, the root not counted.
    pub files: u64,
}

/// A file or directory, stable while it exists (renames included); never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeId(u64);

impl NodeId {
    /// The id as a number, unique within one [`Vfs`] (usable as an inode number).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Whether a node is a file or a directory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A point in time since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds.
    pub secs: u64,
    /// Nanoseconds, below 10^9.
    pub nanos: u32,
}

/// Metadata of a node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stat {
    /// The node itself.
    pub node: NodeId,
    /// File or directory.
    pub kind: NodeKind,
    /// A file's length in bytes; 0 for a directory.
    pub size: u64,
    /// Last access time (reads don't update it, so reruns are deterministic).
    pub atime: Timestamp,
    /// Last modification time.
    pub mtime: Timestamp,
}

/// How [`Vfs::open_at`] treats a missing or existing target (the `wasi:filesystem` open flags).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create a file if the path doesn't exist.
    pub create: bool,
    /// With `create`: fail if the path exists.
    pub exclusive: bool,
    /// Cut an existing file to length 0.
    pub truncate: bool,
    /// The target must be a directory.
    pub directory: bool,
}

/// How [`Vfs::set_times`] changes one timestamp.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeChange {
    /// Leave it as it is.
    Keep,
    /// Set it to the filesystem's clock ([`Vfs::set_now`]).
    Now,
    /// Set it to this time.
    Set(Timestamp),
}

/// One entry of a directory listing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DirEntry {
    /// The entry's name.
    pub name: String,
    /// File or directory.
    pub kind: NodeKind,
}

/// One session's filesystem.
pub struct Vfs {
    nodes: HashMap<NodeId, tree::Node, tree::NodeIdHash>,
    next_node: u64,
    root: NodeId,
    source: Option<Arc<dyn ObjectSource>>,
    quota: Quota,
    now: Timestamp,
    /// Open handles per node, so a file removed while open stays readable and
    /// writable through them, as on POSIX, until the last one is released.
    held: HashMap<NodeId, u32>,
    /// Bytes of removed-but-held files: outside the tree, still inside the byte quota.
    orphan_bytes: u64,
}

impl Vfs {
    /// An empty filesystem: just the root directory.
    pub fn new(quota: Quota) -> Vfs {
        let mut vfs = Vfs::bare(quota, None);
        let root = tree::Node::new(NodeId(0), "", NodeKind::Dir, Timestamp::default());
        vfs.root = vfs.alloc(tree::Node { parent: None, ..root });
        vfs
    }

    /// A filesystem without nodes; the constructors add the root.
    fn bare(quota: Quota, source: Option<Arc<dyn ObjectSource>>) -> Vfs {
        Vfs {
            nodes: HashMap::default(),
            next_node: 0,
            root: NodeId(0),
            source,
            quota,
            now: Timestamp::default(),
            held: HashMap::new(),
            orphan_bytes: 0,
        }
    }

    /// The root directory.
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// Sets the clock for times set by writes and [`TimeChange::Now`]; the host sets
    /// it per call so a rerun produces the same tree.
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    /// Current usage, in O(1).
    pub fn usage(&self) -> Usage {
        let root = &self.nodes[&self.root];
        Usage { bytes: root.bytes, files: root.nodes - 1 }
    }

    /// Records an open handle to `node`: if the file is removed while held, it lives
    /// on outside the tree until [`Vfs::release`]. Holding a missing node does nothing.
    pub fn hold(&mut self, node: NodeId) {
        if self.nodes.contains_key(&node) {
            *self.held.entry(node).or_insert(0) += 1;
        }
    }

    /// Ends one [`Vfs::hold`]; the last release of a removed file forgets it.
    pub fn release(&mut self, node: NodeId) {
        let Some(count) = self.held.get_mut(&node) else { return };
        *count -= 1;
        if *count > 0 {
            return;
        }
        self.held.remove(&node);
        let orphaned = self.nodes.get(&node).is_some_and(|n| n.parent.is_none() && node != self.root);
        if orphaned && let Some(gone) = self.nodes.remove(&node) {
            self.orphan_bytes = self.orphan_bytes.saturating_sub(gone.bytes);
        }
    }

    /// The quota this filesystem enforces.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Whether `node` is a file or a directory; never loads anything.
    pub fn kind(&self, node: NodeId) -> Result<NodeKind, FsError> {
        Ok(self.node(node)?.kind)
    }
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfs")
            .field("usage", &self.usage())
            .field("loaded_nodes", &self.nodes.len())
            .field("quota", &self.quota)
            .finish()
    }
}
