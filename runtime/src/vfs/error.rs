//! The one error type of the filesystem.
//!
//! Each variant maps one-to-one onto a `wasi:filesystem` error code, so the binding
//! can answer a guest without guessing; only [`FsError::Io`] is a host-side failure.

/// Why a filesystem operation was refused. Nothing changed when one is returned.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FsError {
    /// A path component does not exist.
    #[error("no such file or directory")]
    NotFound,
    /// The target already exists.
    #[error("a file or directory with that name already exists")]
    Exists,
    /// A directory was required but the path names a file.
    #[error("not a directory")]
    NotDirectory,
    /// A file was required but the path names a directory.
    #[error("is a directory")]
    IsDirectory,
    /// The directory still has entries; remove them first.
    #[error("directory not empty")]
    NotEmpty,
    /// The arguments don't make sense together (e.g. removing `.`).
    #[error("invalid argument")]
    Invalid,
    /// The path is absolute or climbs above the directory it starts from.
    #[error("not permitted: paths must be relative and stay inside the directory they start from")]
    NotPermitted,
    /// A name is longer than 255 bytes, or the path is longer or deeper than the quota allows.
    #[error("file name or path too long (or too deeply nested) for this workspace")]
    NameTooLong,
    /// The workspace's byte or file-count quota would be exceeded; delete something first.
    #[error("workspace quota exceeded (total bytes or number of files); delete something first")]
    InsufficientSpace,
    /// The file would grow past the workspace's per-file size limit.
    #[error("file too large for this workspace")]
    FileTooLarge,
    /// The workspace filesystem has no such feature (symlinks, hard links).
    #[error("operation not supported by the workspace filesystem")]
    Unsupported,
    /// The directory is in use: renaming `.` or `..` (Linux `EBUSY`).
    #[error("the directory is in use and cannot be renamed")]
    Busy,
    /// The node was removed or replaced since it was looked up.
    #[error("the file or directory no longer exists")]
    BadDescriptor,
    /// The object store failed or returned a corrupt object.
    #[error("workspace storage error: {0}")]
    Io(String),
}
