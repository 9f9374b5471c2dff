//! `wasi:filesystem` served from the session's in-memory [`Vfs`].
//!
//! The host implements `wasi:filesystem/types` and `/preopens` itself (bindings
//! generated from the WASI 0.2.12 WIT in `runtime/wasi-wit/`), linked in place of
//! wasmtime-wasi's real-directory implementation, so no host path is ever visible
//! to a guest. A call sees its session's workspace at one mount point
//! (`/workspace` by default), read-only for tools that declare `read-only`.

mod bindings;
mod host;
mod streams;

use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::vfs::{NodeId, NodeKind, Snapshot, Timestamp, Vfs};

use bindings::add_to_linker;

/// The default mount point of a session's workspace inside the guest.
pub const DEFAULT_MOUNT: &str = "/workspace";

/// A session's filesystem, shared by its calls. Cloning shares it.
#[derive(Clone)]
pub struct Workspace {
    inner: Arc<Mutex<Vfs>>,
    mount: Arc<str>,
    /// Distinguishes this workspace's nodes from another's in `metadata-hash` values.
    identity: u64,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("mount", &self.mount).field("usage", &self.lock().usage()).finish()
    }
}

impl Workspace {
    /// Shares `vfs` with the guest at `mount` (an absolute guest path).
    pub fn new(vfs: Vfs, mount: &str) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let identity = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Workspace { inner: Arc::new(Mutex::new(vfs)), mount: mount.into(), identity }
    }

    /// Where guests see this workspace.
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Exclusive access to the filesystem, for the host (snapshots, import, export).
    pub fn lock(&self) -> MutexGuard<'_, Vfs> {
        // A panic while holding the lock cannot leave the tree half-updated: every
        // VFS operation validates before it mutates.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Snapshots the filesystem: the new root and the objects new since the last snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, crate::vfs::FsError> {
        self.lock().snapshot()
    }

    /// Sets the clock that stamps modification times in this workspace.
    pub fn set_now(&self, now: Timestamp) {
        self.lock().set_now(now);
    }
}

/// An open file or directory held by a guest. It holds its node in the VFS, so
/// a file removed while open stays usable through it until it is dropped (with
/// the guest's handle, or with the call's store).
pub struct Descriptor {
    node: NodeId,
    kind: NodeKind,
    read: bool,
    write: bool,
    mutate_dir: bool,
    workspace: Workspace,
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        self.workspace.lock().release(self.node);
    }
}

/// A snapshot of a directory's entries, handed out one at a time.
pub struct DirStream {
    entries: std::vec::IntoIter<crate::vfs::DirEntry>,
}

/// The filesystem as one call sees it.
pub(crate) struct CallFs {
    pub workspace: Workspace,
    pub read_only: bool,
}

/// What the generated host traits are implemented on: the call's resource table
/// and its filesystem view, if it has one.
pub(crate) struct FsView<'a> {
    table: &'a mut ResourceTable,
    fs: Option<&'a CallFs>,
}

impl<'a> FsView<'a> {
    /// A view over a call's table and filesystem.
    pub fn new(table: &'a mut ResourceTable, fs: Option<&'a CallFs>) -> Self {
        FsView { table, fs }
    }
}

/// Marker for [`add_to_linker`]'s `HasData` parameter.
pub(crate) struct HasFs;

impl HasData for HasFs {
    type Data<'a> = FsView<'a>;
}

/// Adds the VFS-backed filesystem to `linker`.
pub(crate) fn link<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> FsView<'_>) -> wasmtime::Result<()> {
    add_to_linker::<T, HasFs>(linker, view)
}
