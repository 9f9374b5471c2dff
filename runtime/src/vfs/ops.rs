//! Namespace operations: lookup, open, stat, times, listing, mkdir, remove, rename.
//!
//! Error precedence follows Linux as wasmtime-wasi reaches it through cap-std, so a
//! differential test against a real directory agrees: the base descriptor is
//! checked first, then the path syntax, then the parent walk, then the final name.

use super::path::{Last, parse};
use super::tree::Body;
use super::{DirEntry, FsError, NodeId, NodeKind, OpenOptions, Stat, TimeChange, Vfs};

impl Vfs {
    /// Resolves `path` relative to the directory `dir`.
    pub fn lookup(&mut self, dir: NodeId, path: &str) -> Result<NodeId, FsError> {
        self.resolve(dir, path)
    }

    /// Opens (and with `create`, makes) the file or directory at `path`.
    ///
    /// Like Linux `openat` as wasmtime-wasi drives it: `directory` with `create`,
    /// `exclusive` or `truncate` is `Invalid`; `create` on a path with a trailing slash
    /// is `IsDirectory` whether or not it exists (Linux `EISDIR`); `create` on an
    /// existing directory is `Exists` with `exclusive`, else `IsDirectory`.
    pub fn open_at(&mut self, dir: NodeId, path: &str, opts: OpenOptions) -> Result<NodeId, FsError> {
        self.expect_dir(dir)?;
        if opts.directory && (opts.create || opts.exclusive || opts.truncate) {
            return Err(FsError::Invalid);
        }
        let parsed = parse(path)?;
        let (parent_comps, last) = parsed.split(true);
        let parent = self.walk_dir(dir, parent_comps)?;
        let name = match last {
            Last::Dot if opts.create && opts.exclusive => return Err(FsError::Exists),
            Last::Dot if opts.create || opts.truncate => return Err(FsError::IsDirectory),
            Last::Dot => return Ok(parent),
            Last::Name(_) if opts.create && parsed.trailing_slash => return Err(FsError::IsDirectory),
            Last::Name(name) => name,
        };
        let Some(node) = self.child(parent, name)? else {
            if !opts.create {
                return Err(FsError::NotFound);
            }
            return self.create_child(parent, name, NodeKind::File);
        };
        let kind = self.kind(node)?;
        match kind {
            _ if opts.create && opts.exclusive => Err(FsError::Exists),
            NodeKind::Dir if opts.create || opts.truncate => Err(FsError::IsDirectory),
            NodeKind::File if parsed.trailing_slash || opts.directory => Err(FsError::NotDirectory),
            NodeKind::File if opts.truncate => {
                // Linux marks the file modified on O_TRUNC even when it was empty.
                self.truncate_to(node, 0)?;
                Ok(node)
            }
            _ => Ok(node),
        }
    }

    /// Metadata of `node`.
    pub fn stat(&mut self, node: NodeId) -> Result<Stat, FsError> {
        self.ensure_loaded(node)?;
        let n = self.node(node)?;
        let (atime, mtime, size) = match &n.body {
            Body::File(file) => (file.atime, file.mtime, n.bytes),
            Body::Dir(dir) => (dir.atime, dir.mtime, 0),
            Body::Stub => unreachable!("loaded above"),
        };
        Ok(Stat { node, kind: n.kind, size, atime, mtime })
    }

    /// Metadata of the node at `path`.
    pub fn stat_at(&mut self, dir: NodeId, path: &str) -> Result<Stat, FsError> {
        let node = self.resolve(dir, path)?;
        self.stat(node)
    }

    /// Changes the access and/or modification time of `node`.
    pub fn set_times(&mut self, node: NodeId, atime: TimeChange, mtime: TimeChange) -> Result<(), FsError> {
        self.node(node)?;
        let now = self.now;
        let resolve = |change: TimeChange| match change {
            TimeChange::Keep => Ok(None),
            TimeChange::Now => Ok(Some(now)),
            TimeChange::Set(time) if time.nanos < 1_000_000_000 => Ok(Some(time)),
            TimeChange::Set(_) => Err(FsError::Invalid),
        };
        let (atime, mtime) = (resolve(atime)?, resolve(mtime)?);
        if atime.is_none() && mtime.is_none() {
            return Ok(());
        }
        self.ensure_loaded(node)?;
        let (a, m) = match &mut self.node_mut(node)?.body {
            Body::File(file) => (&mut file.atime, &mut file.mtime),
            Body::Dir(dir) => (&mut dir.atime, &mut dir.mtime),
            Body::Stub => unreachable!("loaded above"),
        };
        *a = atime.unwrap_or(*a);
        *m = mtime.unwrap_or(*m);
        self.touched(node, 0, 0);
        Ok(())
    }

    /// Changes the times of the node at `path`.
    pub fn set_times_at(
        &mut self,
        dir: NodeId,
        path: &str,
        atime: TimeChange,
        mtime: TimeChange,
    ) -> Result<(), FsError> {
        let node = self.resolve(dir, path)?;
        self.set_times(node, atime, mtime)
    }

    /// The entries of `dir`, sorted by name (byte order), without `.` and `..`.
    pub fn read_dir(&mut self, dir: NodeId) -> Result<Vec<DirEntry>, FsError> {
        self.expect_dir(dir)?;
        let entries = self.entries(dir)?;
        let entries: Vec<(String, NodeId)> = entries.iter().map(|(name, id)| (name.clone(), *id)).collect();
        entries.into_iter().map(|(name, id)| Ok(DirEntry { name, kind: self.kind(id)? })).collect()
    }

    /// Creates the directory `path`; trailing slashes are allowed (`mkdir x/`).
    pub fn create_dir_at(&mut self, dir: NodeId, path: &str) -> Result<NodeId, FsError> {
        self.expect_dir(dir)?;
        let parsed = parse(path)?;
        let (parent_comps, last) = parsed.split(true);
        let parent = self.walk_dir(dir, parent_comps)?;
        let Last::Name(name) = last else { return Err(FsError::Exists) };
        if self.child(parent, name)?.is_some() {
            return Err(FsError::Exists);
        }
        self.create_child(parent, name, NodeKind::Dir)
    }

    /// Removes the empty directory `path`.
    ///
    /// A path ending in `.`, `..` or `/` is `Invalid`: cap-std opens it as a directory
    /// and asks Linux to remove `.`, which is `EINVAL`.
    pub fn remove_dir_at(&mut self, dir: NodeId, path: &str) -> Result<(), FsError> {
        self.expect_dir(dir)?;
        let parsed = parse(path)?;
        let (parent_comps, last) = parsed.split(false);
        let parent = self.walk_dir(dir, parent_comps)?;
        let Last::Name(name) = last else { return Err(FsError::Invalid) };
        let node = self.child(parent, name)?.ok_or(FsError::NotFound)?;
        let n = self.node(node)?;
        if n.kind != NodeKind::Dir {
            return Err(FsError::NotDirectory);
        }
        if n.nodes > 1 {
            return Err(FsError::NotEmpty);
        }
        self.remove(parent, name);
        Ok(())
    }

    /// Removes the file `path`. A path ending in `.`, `..` or `/` is `IsDirectory`
    /// (Linux `unlinkat` of `.`), or `NotDirectory` if it names a file.
    pub fn unlink_file_at(&mut self, dir: NodeId, path: &str) -> Result<(), FsError> {
        self.expect_dir(dir)?;
        let parsed = parse(path)?;
        let (parent_comps, last) = parsed.split(false);
        let parent = self.walk_dir(dir, parent_comps)?;
        let Last::Name(name) = last else { return Err(FsError::IsDirectory) };
        let node = self.child(parent, name)?.ok_or(FsError::NotFound)?;
        if self.kind(node)? == NodeKind::Dir {
            return Err(FsError::IsDirectory);
        }
        self.remove(parent, name);
        Ok(())
    }

    /// Moves `from` to `to`, replacing a file or an empty directory there.
    ///
    /// POSIX rules in Linux's order: a final `.`/`..` is `Busy`; a trailing slash on either side needs the source to be
    /// a directory; moving a directory into itself is `Invalid`; replacing an ancestor
    /// of the source is `NotEmpty`; then file-over-dir `IsDirectory`, dir-over-file
    /// `NotDirectory`, dir-over-non-empty-dir `NotEmpty`. Renaming onto itself does nothing.
    pub fn rename_at(&mut self, from_dir: NodeId, from: &str, to_dir: NodeId, to: &str) -> Result<(), FsError> {
        self.expect_dir(from_dir)?;
        self.expect_dir(to_dir)?;
        let from_parsed = parse(from)?;
        let (from_comps, from_last) = from_parsed.split(true);
        let old_parent = self.walk_dir(from_dir, from_comps)?;
        let to_parsed = parse(to)?;
        let (to_comps, to_last) = to_parsed.split(true);
        let new_parent = self.walk_dir(to_dir, to_comps)?;
        let (Last::Name(old_name), Last::Name(new_name)) = (from_last, to_last) else {
            return Err(FsError::Busy);
        };
        let old = self.child(old_parent, old_name)?.ok_or(FsError::NotFound)?;
        let new = self.child(new_parent, new_name)?;
        let old_kind = self.kind(old)?;
        if old_kind == NodeKind::File && (from_parsed.trailing_slash || to_parsed.trailing_slash) {
            return Err(FsError::NotDirectory);
        }
        if old_parent != new_parent {
            if self.is_ancestor_or_self(old, new_parent) {
                return Err(FsError::Invalid);
            }
            if new.is_some_and(|new| self.is_ancestor_or_self(new, old_parent)) {
                return Err(FsError::NotEmpty);
            }
        }
        if let Some(new) = new {
            if new == old {
                return Ok(());
            }
            let target = self.node(new)?;
            match (old_kind, target.kind) {
                (NodeKind::Dir, NodeKind::File) => return Err(FsError::NotDirectory),
                (NodeKind::Dir, NodeKind::Dir) if target.nodes > 1 => return Err(FsError::NotEmpty),
                (NodeKind::File, NodeKind::Dir) => return Err(FsError::IsDirectory),
                _ => {}
            }
        }
        self.check_move_quota(old, new_parent, new_name)?;
        if new.is_some() {
            self.remove(new_parent, new_name);
        }
        self.unlink(old_parent, old_name);
        self.link(new_parent, new_name, old);
        Ok(())
    }

    /// Refuses a move that would put any node of the moved subtree deeper or further
    /// from the root than the quota allows. Walks the subtree only when the move makes
    /// paths longer and a cheap bound can't rule out a violation.
    fn check_move_quota(&mut self, node: NodeId, new_parent: NodeId, new_name: &str) -> Result<(), FsError> {
        let (old_depth, old_len) = self.path_metrics(node);
        let (new_depth, new_len) = self.child_metrics(new_parent, new_name);
        let n = self.node(node)?;
        let below = usize::try_from(n.nodes - 1).unwrap_or(usize::MAX);
        let quota = self.quota;
        let depth_fits = |extra: usize| new_depth <= old_depth || new_depth.saturating_add(extra) <= quota.max_depth;
        let len_fits = |extra: usize| new_len <= old_len || new_len.saturating_add(extra) <= quota.max_path_bytes;
        if depth_fits(below) && len_fits(below.saturating_mul(1 + super::MAX_NAME_BYTES)) {
            return Ok(());
        }
        let (below_depth, below_len) = self.subtree_extent(node)?;
        if depth_fits(below_depth) && len_fits(below_len) { Ok(()) } else { Err(FsError::NameTooLong) }
    }

    /// The greatest depth and path length of any node below `top`, relative to `top`.
    fn subtree_extent(&mut self, top: NodeId) -> Result<(usize, usize), FsError> {
        let (mut max_depth, mut max_len) = (0, 0);
        let mut stack = vec![(top, 0usize, 0usize)];
        while let Some((node, depth, len)) = stack.pop() {
            max_depth = max_depth.max(depth);
            max_len = max_len.max(len);
            let n = self.node(node)?;
            if n.kind == NodeKind::Dir && n.nodes > 1 {
                for (name, child) in self.entries(node)? {
                    stack.push((*child, depth + 1, len + 1 + name.len()));
                }
            }
        }
        Ok((max_depth, max_len))
    }
}
