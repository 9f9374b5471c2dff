//! Paths inside `/workspace` and filesystem errors in words a model can act on,
//! for tools that take paths from a model.

use std::collections::hash_map::RandomState;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where the session's filesystem is mounted inside the guest.
pub const ROOT: &str = "/workspace";

/// A model-given path resolved inside the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WsPath {
    /// Components below the workspace root; empty for the root itself.
    parts: Vec<String>,
}

impl WsPath {
    /// Resolves `path` (relative to the workspace, or absolute under it) lexically,
    /// refusing anything that lands outside before the filesystem is touched.
    pub fn resolve(path: &str) -> Result<WsPath, String> {
        if path.contains('\0') {
            return Err(format!("invalid path {path:?}: it contains a NUL character"));
        }
        let outside = || {
            format!(
                "path `{path}` is outside the workspace; use a path relative to {ROOT} \
                 (like `src/main.rs`) or an absolute path under {ROOT}/"
            )
        };
        // Relative paths are rooted at the workspace, so one normalization covers both
        // forms and `/workspace/../workspace/x` still resolves to `x`.
        let absolute = if path.starts_with('/') { path.to_string() } else { format!("{ROOT}/{path}") };
        let mut stack: Vec<&str> = Vec::new();
        for part in absolute.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    stack.pop().ok_or_else(outside)?;
                }
                name => stack.push(name),
            }
        }
        match stack.split_first() {
            Some((first, rest)) if format!("/{first}") == ROOT => {
                Ok(WsPath { parts: rest.iter().map(|part| part.to_string()).collect() })
            }
            _ => Err(outside()),
        }
    }

    /// The path the guest opens.
    pub fn full(&self) -> PathBuf {
        let mut full = PathBuf::from(ROOT);
        full.extend(&self.parts);
        full
    }

    /// The path as shown to the model: relative to the workspace, `.` for its root.
    pub fn shown(&self) -> String {
        if self.parts.is_empty() { ".".to_string() } else { self.parts.join("/") }
    }
}

/// Describes a filesystem error in words a model can act on, without errno noise.
pub fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "it does not exist".to_string(),
        io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        io::ErrorKind::NotADirectory => "a parent of it is a file, not a directory".to_string(),
        io::ErrorKind::AlreadyExists => "it already exists".to_string(),
        io::ErrorKind::DirectoryNotEmpty => "the directory is not empty".to_string(),
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
            "the workspace is read-only for this tool".to_string()
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "the workspace's storage quota is exhausted".to_string()
        }
        io::ErrorKind::FileTooLarge => "the file would exceed the workspace's file size limit".to_string(),
        io::ErrorKind::InvalidFilename => "the name is too long or too deeply nested for this workspace".to_string(),
        _ => err.to_string(),
    }
}

/// Writes `bytes` to a fresh file next to `path`, then renames it over `path`, so a
/// failure (quota, size limit) leaves the old content intact instead of half-written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let nonce = RandomState::new().build_hasher().finish();
    let temp = path.with_file_name(format!(".{name}.{nonce:016x}.tmp"));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        // wasi-libc reports every failed streamed write as a bare EIO; sizing the file
        // first goes through `set-size`, which answers with the precise quota error.
        .and_then(|mut file| file.set_len(bytes.len() as u64).and_then(|()| file.write_all(bytes)))
        .and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
