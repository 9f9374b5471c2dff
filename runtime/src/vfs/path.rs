//! Path parsing and resolution, matching what wasmtime-wasi (its vendored cap-std
//! primitives) answers on a Linux directory, so a guest can't tell the two apart.
//!
//! - A path is relative to a base directory; `/` separates components, repeated
//!   slashes collapse and `.` is skipped. Empty → `NotFound`; absolute → `NotPermitted`;
//!   any NUL → `Invalid` (the C-string conversion fails before any lookup).
//! - `..` goes to the parent, but never above the base of the call: that is
//!   `NotPermitted` (openat2 `RESOLVE_BENEATH` answers `EXDEV`, which cap-std reports
//!   as an escape attempt). Every component except the last must be a directory
//!   (`NotDirectory`) that exists (`NotFound`), checked in order, left to right.
//! - A component longer than 255 bytes is `NameTooLong` when it is reached (Linux's
//!   `NAME_MAX`), whether or not it exists.
//! - A trailing `/` requires the target to be a directory.
//!
//! Operations that act on a parent and a final name (create, remove, rename) split the
//! path like cap-std's `open_parent`: if the path ends in `.`, `..`, or (for remove
//! and unlink) a trailing slash, the "name" is the directory itself, which the kernel
//! then refuses in an operation-specific way (see [`Last::Dot`]).

use super::{FsError, NodeId, NodeKind, Vfs};

/// Longest single name, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Whether `name` can name a directory entry.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_NAME_BYTES
        && !name.bytes().any(|byte| byte == b'/' || byte == 0)
}

/// One component of a parsed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comp<'a> {
    Name(&'a str),
    Cur,
    Parent,
}

/// A syntactically valid relative path.
#[derive(Debug)]
pub(super) struct Parsed<'a> {
    pub comps: Vec<Comp<'a>>,
    pub trailing_slash: bool,
}

/// What a parent-relative operation acts on inside the resolved directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Last<'a> {
    /// An entry of the directory.
    Name(&'a str),
    /// The directory itself: the path ended in `.` or `..` (or a slash, where cap-std
    /// doesn't strip it). Linux answers mkdir `EEXIST`, rmdir `EINVAL`, unlink `EISDIR`
    /// and rename `EBUSY`.
    Dot,
}

/// Parses `path` without looking anything up.
pub(super) fn parse(path: &str) -> Result<Parsed<'_>, FsError> {
    if path.contains('\0') {
        return Err(FsError::Invalid);
    }
    if path.is_empty() {
        return Err(FsError::NotFound);
    }
    if path.starts_with('/') {
        return Err(FsError::NotPermitted);
    }
    let comps = path
        .split('/')
        .filter(|comp| !comp.is_empty())
        .map(|comp| match comp {
            "." => Comp::Cur,
            ".." => Comp::Parent,
            name => Comp::Name(name),
        })
        .collect();
    Ok(Parsed { comps, trailing_slash: path.ends_with('/') })
}

impl<'a> Parsed<'a> {
    /// Splits into the components of the parent and what to act on in it. With
    /// `strip_slash` trailing slashes are ignored first (cap-std does so for mkdir and
    /// rename; remove and unlink keep them, turning the target into [`Last::Dot`]).
    pub fn split(&self, strip_slash: bool) -> (&[Comp<'a>], Last<'a>) {
        match self.comps.split_last() {
            Some((Comp::Name(name), parent)) if strip_slash || !self.trailing_slash => (parent, Last::Name(name)),
            _ => (&self.comps, Last::Dot),
        }
    }
}

impl Vfs {
    /// Follows `comps` from `base`, which must be a directory.
    pub(super) fn walk(&mut self, base: NodeId, comps: &[Comp<'_>]) -> Result<NodeId, FsError> {
        let mut current = base;
        let mut depth = 0usize;
        for comp in comps {
            if self.kind(current)? != NodeKind::Dir {
                return Err(FsError::NotDirectory);
            }
            match comp {
                Comp::Cur => {}
                Comp::Parent => {
                    if depth == 0 {
                        return Err(FsError::NotPermitted);
                    }
                    depth -= 1;
                    current = self.node(current)?.parent.expect("a node below the base has a parent");
                }
                Comp::Name(name) => {
                    current = self.child(current, name)?.ok_or(FsError::NotFound)?;
                    depth += 1;
                }
            }
        }
        Ok(current)
    }

    /// Follows `comps` from `base` to a directory.
    pub(super) fn walk_dir(&mut self, base: NodeId, comps: &[Comp<'_>]) -> Result<NodeId, FsError> {
        let dir = self.walk(base, comps)?;
        self.expect_dir(dir)?;
        Ok(dir)
    }

    /// Resolves a whole path to the node it names.
    pub(super) fn resolve(&mut self, base: NodeId, path: &str) -> Result<NodeId, FsError> {
        self.expect_dir(base)?;
        let parsed = parse(path)?;
        let node = self.walk(base, &parsed.comps)?;
        if parsed.trailing_slash && self.kind(node)? != NodeKind::Dir {
            return Err(FsError::NotDirectory);
        }
        Ok(node)
    }

    /// Fails unless `node` exists and is a directory.
    pub(super) fn expect_dir(&self, node: NodeId) -> Result<(), FsError> {
        match self.kind(node)? {
            NodeKind::Dir => Ok(()),
            NodeKind::File => Err(FsError::NotDirectory),
        }
    }

    /// Depth (components from the root) and length in bytes of `node`'s path ("a/b" is 3).
    pub(super) fn path_metrics(&self, node: NodeId) -> (usize, usize) {
        let (mut depth, mut len) = (0usize, 0usize);
        let mut current = node;
        while let Some(n) = self.nodes.get(&current)
            && let Some(parent) = n.parent
        {
            depth += 1;
            len += n.name.len() + 1;
            current = parent;
        }
        (depth, len.saturating_sub(1))
    }

    /// Depth and path length a new entry `name` in `dir` would have.
    pub(super) fn child_metrics(&self, dir: NodeId, name: &str) -> (usize, usize) {
        let (depth, len) = self.path_metrics(dir);
        (depth + 1, if depth == 0 { name.len() } else { len + 1 + name.len() })
    }

    /// Whether `ancestor` is `node` or one of its ancestors.
    pub(super) fn is_ancestor_or_self(&self, ancestor: NodeId, node: NodeId) -> bool {
        let mut current = Some(node);
        while let Some(id) = current {
            if id == ancestor {
                return true;
            }
            current = self.nodes.get(&id).and_then(|n| n.parent);
        }
        false
    }
}
