//! Import from and export to a host directory, through cap-std.
//!
//! The host directory is opened as a capability ([`cap_std::fs::Dir`]), so no
//! path (`..`, absolute, or a symlink) can lead outside it. Symlinks are never
//! followed: an import skips them and reports them; an export refuses to write
//! through one.
//!
//! An import is checked against the workspace quota before anything is written,
//! and undone if a write fails anyway, so it either happens whole or not at all.

use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use super::{FsError, NodeKind, OpenOptions, Vfs};

/// What an import or export moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Regular files copied.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes of file content copied.
    pub bytes: u64,
    /// Paths skipped because they are symlinks or special files.
    pub skipped: Vec<PathBuf>,
}

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
pub enum HostDirError {
    /// Reading or writing the host directory failed.
    #[error("host directory, at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The import does not fit the workspace quota; nothing was written.
    #[error("importing would exceed the workspace quota: {0}")]
    Quota(String),
    /// The workspace refused an operation.
    #[error("workspace, at {path}: {source}")]
    Fs { path: PathBuf, source: FsError },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HostDirError + '_ {
    move |source| HostDirError::Io { path: path.to_path_buf(), source }
}

fn fs(path: &Path) -> impl FnOnce(FsError) -> HostDirError + '_ {
    move |source| HostDirError::Fs { path: path.to_path_buf(), source }
}

/// A host entry to import, relative to the imported directory.
struct Entry {
    path: PathBuf,
    kind: NodeKind,
    size: u64,
}

/// Lists `dir` recursively without following symlinks; directories come before
/// their contents.
fn walk(dir: &Dir, prefix: &Path, entries: &mut Vec<Entry>, skipped: &mut Vec<PathBuf>) -> Result<(), HostDirError> {
    let mut listed: Vec<_> = dir.entries().map_err(io(prefix))?.collect::<Result<_, _>>().map_err(io(prefix))?;
    listed.sort_by_key(|entry| entry.file_name());
    for entry in listed {
        let path = prefix.join(entry.file_name());
        let file_type = entry.file_type().map_err(io(&path))?;
        if file_type.is_dir() {
            entries.push(Entry { path: path.clone(), kind: NodeKind::Dir, size: 0 });
            let child = entry.open_dir().map_err(io(&path))?;
            walk(&child, &path, entries, skipped)?;
        } else if file_type.is_file() {
            let size = entry.metadata().map_err(io(&path))?.len();
            entries.push(Entry { path, kind: NodeKind::File, size });
        } else {
            skipped.push(path);
        }
    }
    Ok(())
}

fn guest_path(path: &Path) -> Result<String, HostDirError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| HostDirError::Fs { path: path.to_path_buf(), source: FsError::Invalid })
}

/// Copies the host directory `dir` into the workspace root, merging with what is there.
pub fn import_dir(vfs: &mut Vfs, dir: &Dir) -> Result<Transfer, HostDirError> {
    let mut entries = Vec::new();
    let mut transfer = Transfer::default();
    walk(dir, Path::new(""), &mut entries, &mut transfer.skipped)?;
    check_quota(vfs, &entries)?;
    let root = vfs.root();
    let mut created: Vec<String> = Vec::new();
    let result = (|| {
        for entry in &entries {
            let path = guest_path(&entry.path)?;
            match entry.kind {
                NodeKind::Dir => match vfs.create_dir_at(root, &path) {
                    Ok(_) => {
                        created.push(path);
                        transfer.dirs += 1;
                    }
                    Err(FsError::Exists) if vfs.stat_at(root, &path).is_ok_and(|s| s.kind == NodeKind::Dir) => {}
                    Err(err) => return Err(fs(&entry.path)(err)),
                },
                NodeKind::File => {
                    let existed = vfs.lookup(root, &path).is_ok();
                    let bytes = dir.read(&entry.path).map_err(io(&entry.path))?;
                    let options = OpenOptions { create: true, truncate: true, ..OpenOptions::default() };
                    let node = vfs.open_at(root, &path, options).map_err(fs(&entry.path))?;
                    if !existed {
                        created.push(path);
                    }
                    vfs.write(node, 0, &bytes).map_err(fs(&entry.path))?;
                    transfer.files += 1;
                    transfer.bytes += bytes.len() as u64;
                }
            }
        }
        Ok(())
    })();
    if let Err(err) = result {
        // Undo in reverse so directories are empty when removed. Files that
        // existed before keep their new content only if the failure came after them;
        // the quota pre-check makes that path practically unreachable.
        for path in created.iter().rev() {
            let _ = vfs.unlink_file_at(root, path).or_else(|_| vfs.remove_dir_at(root, path));
        }
        return Err(err);
    }
    Ok(transfer)
}

fn check_quota(vfs: &Vfs, entries: &[Entry]) -> Result<(), HostDirError> {
    let quota = *vfs.quota();
    let usage = vfs.usage();
    let bytes: u64 = entries.iter().map(|e| e.size).sum();
    if usage.bytes.saturating_add(bytes) > quota.max_bytes {
        return Err(HostDirError::Quota(format!(
            "{bytes} bytes to import, {} in use, limit {}",
            usage.bytes, quota.max_bytes
        )));
    }
    if usage.files.saturating_add(entries.len() as u64) > quota.max_files {
        return Err(HostDirError::Quota(format!(
            "{} files and directories to import, {} in use, limit {}",
            entries.len(),
            usage.files,
            quota.max_files
        )));
    }
    for entry in entries {
        let display = entry.path.display();
        if entry.size > quota.max_file_size {
            return Err(HostDirError::Quota(format!(
                "{display} is {} bytes, limit {}",
                entry.size, quota.max_file_size
            )));
        }
        let depth = entry.path.components().count();
        let len = entry.path.as_os_str().len();
        if depth > quota.max_depth || len > quota.max_path_bytes {
            return Err(HostDirError::Quota(format!("{display} is too long or too deeply nested")));
        }
    }
    Ok(())
}

/// Writes the whole workspace into the host directory `dir` (which should be empty):
/// directories are created, files written; nothing is written through a symlink.
pub fn export_dir(vfs: &mut Vfs, dir: &Dir) -> Result<Transfer, HostDirError> {
    let mut transfer = Transfer::default();
    let root = vfs.root();
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let guest = guest_path(&relative)?;
        let node = if guest.is_empty() { root } else { vfs.lookup(root, &guest).map_err(fs(&relative))? };
        for entry in vfs.read_dir(node).map_err(fs(&relative))? {
            let path = relative.join(&entry.name);
            match entry.kind {
                NodeKind::Dir => {
                    dir.create_dir(&path).map_err(io(&path))?;
                    transfer.dirs += 1;
                    stack.push(path);
                }
                NodeKind::File => {
                    let file = vfs.lookup(node, &entry.name).map_err(fs(&path))?;
                    let size = vfs.stat(file).map_err(fs(&path))?.size;
                    let bytes = vfs.read(file, 0, usize::try_from(size).unwrap_or(usize::MAX)).map_err(fs(&path))?;
                    write_new(dir, &path, &bytes)?;
                    transfer.files += 1;
                    transfer.bytes += bytes.len() as u64;
                }
            }
        }
    }
    Ok(transfer)
}

/// Writes a file that must not exist yet, so an existing symlink is never followed.
fn write_new(dir: &Dir, path: &Path, bytes: &[u8]) -> Result<(), HostDirError> {
    use std::io::Write;
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut file = dir.open_with(path, &options).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::Quota;

    fn host(dir: &Path) -> Dir {
        Dir::open_ambient_dir(dir, cap_std::ambient_authority()).unwrap()
    }

    fn sample_tree(root: &Path) {
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::write(root.join("README.md"), "hello").unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
        std::fs::write(root.join("src/deep/ünï.txt"), vec![7u8; 200_000]).unwrap();
    }

    #[test]
    fn import_then_export_round_trips() {
        let source = tempfile::tempdir().unwrap();
        sample_tree(source.path());
        let mut vfs = Vfs::new(Quota::default());
        let imported = import_dir(&mut vfs, &host(source.path())).unwrap();
        assert_eq!((imported.files, imported.dirs, imported.bytes), (3, 2, 5 + 12 + 200_000));
        let target = tempfile::tempdir().unwrap();
        let exported = export_dir(&mut vfs, &host(target.path())).unwrap();
        assert_eq!((exported.files, exported.dirs, exported.bytes), (3, 2, 200_017));
        for file in ["README.md", "src/main.rs", "src/deep/ünï.txt"] {
            assert_eq!(
                std::fs::read(source.path().join(file)).unwrap(),
                std::fs::read(target.path().join(file)).unwrap()
            );
        }
    }

    #[test]
    fn symlinks_are_skipped_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let source = tempfile::tempdir().unwrap();
        sample_tree(source.path());
        std::os::unix::fs::symlink(outside.path(), source.path().join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), source.path().join("src/secret")).unwrap();
        let mut vfs = Vfs::new(Quota::default());
        let imported = import_dir(&mut vfs, &host(source.path())).unwrap();
        assert_eq!(imported.skipped, vec![PathBuf::from("escape"), PathBuf::from("src/secret")]);
        let root = vfs.root();
        assert_eq!(vfs.lookup(root, "escape"), Err(FsError::NotFound));
        assert_eq!(vfs.lookup(root, "src/secret"), Err(FsError::NotFound));
    }

    #[test]
    fn an_import_over_quota_writes_nothing() {
        let source = tempfile::tempdir().unwrap();
        sample_tree(source.path());
        for quota in [
            Quota { max_bytes: 100_000, ..Quota::default() },
            Quota { max_file_size: 1000, ..Quota::default() },
            Quota { max_files: 3, ..Quota::default() },
            Quota { max_depth: 2, ..Quota::default() },
        ] {
            let mut vfs = Vfs::new(quota);
            let before = vfs.snapshot().unwrap().root;
            let err = import_dir(&mut vfs, &host(source.path())).unwrap_err();
            assert!(matches!(err, HostDirError::Quota(_)), "{err}");
            assert_eq!(vfs.snapshot().unwrap().root, before, "nothing was written for {quota:?}");
        }
    }

    #[test]
    fn export_never_writes_through_a_symlink() {
        let outside = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("planted"), target.path().join("README.md")).unwrap();
        let source = tempfile::tempdir().unwrap();
        sample_tree(source.path());
        let mut vfs = Vfs::new(Quota::default());
        import_dir(&mut vfs, &host(source.path())).unwrap();
        let err = export_dir(&mut vfs, &host(target.path())).unwrap_err();
        assert!(matches!(err, HostDirError::Io { .. }), "{err}");
        assert!(!outside.path().join("planted").exists(), "nothing was written outside");
    }
}
