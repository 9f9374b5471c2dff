//! A session's files at a checkpoint: `sessions cat`, `ls`, `diff` and `export`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use harness::store::{Change, SessionId, Store};
use runtime::vfs::{self, FsError, NodeKind, Quota, Vfs};

use super::render::count;
use super::{outln, usage};

/// The step `at` names (the head when `None`), refusing one past the head.
pub fn step(store: &Store, id: &SessionId, at: Option<u64>) -> anyhow::Result<u64> {
    let head = store.session(id)?.head.last_step;
    match at {
        None => Ok(head),
        Some(step) if step <= head => Ok(step),
        Some(step) => usage!("session {id} has steps 0 to {head}; step {step} is out of range"),
    }
}

/// The session's filesystem after `step`.
fn restore(store: &Store, id: &SessionId, step: u64) -> anyhow::Result<Vfs> {
    // Reading only: the quota applies to writes, and a session may have been made under a larger one.
    let quota = Quota { max_bytes: u64::MAX, max_files: u64::MAX, max_file_size: u64::MAX, ..Quota::default() };
    Ok(store.restore(id, step, quota)?)
}

/// A workspace path as the user may write it (`src/main.rs`, `/workspace/src/main.rs`,
/// `./src`) → the path from the workspace root, `""` for the root itself.
fn workspace_path(path: &str) -> String {
    let path = path.strip_prefix("/workspace").filter(|rest| rest.is_empty() || rest.starts_with('/')).unwrap_or(path);
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    let mut parts = trimmed.split('/').filter(|part| !part.is_empty() && *part != ".").peekable();
    let mut out = String::new();
    while let Some(part) = parts.next() {
        out.push_str(part);
        if parts.peek().is_some() {
            out.push('/');
        }
    }
    out
}

fn lookup(vfs: &mut Vfs, id: &SessionId, step: u64, path: &str) -> anyhow::Result<runtime::vfs::NodeId> {
    let root = vfs.root();
    let relative = workspace_path(path);
    if relative.is_empty() {
        return Ok(root);
    }
    match vfs.lookup(root, &relative) {
        Ok(node) => Ok(node),
        Err(FsError::NotFound | FsError::NotDirectory) => {
            anyhow::bail!("{path}: no such file or directory in session {id} at step {step}")
        }
        Err(err) => Err(err).with_context(|| format!("{path} in session {id} at step {step}")),
    }
}

/// `sessions cat`: writes a file's bytes to stdout.
pub fn cat(store: &Store, id: &SessionId, path: &str, at: Option<u64>) -> anyhow::Result<()> {
    let step = step(store, id, at)?;
    let mut vfs = restore(store, id, step)?;
    let node = lookup(&mut vfs, id, step, path)?;
    let stat = vfs.stat(node)?;
    if stat.kind == NodeKind::Dir {
        anyhow::bail!("{path} is a directory; list it with `sessions ls {id} {path}`");
    }
    let size = usize::try_from(stat.size).context("the file is too large to read here")?;
    let bytes = vfs.read(node, 0, size)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes).and_then(|()| out.flush()).context("cannot write to stdout")?;
    Ok(())
}

/// `sessions ls`: one line per entry, sizes for files, `/` after directories.
pub fn ls(store: &Store, id: &SessionId, path: &str, at: Option<u64>) -> anyhow::Result<()> {
    let step = step(store, id, at)?;
    let mut vfs = restore(store, id, step)?;
    let node = lookup(&mut vfs, id, step, path)?;
    let stat = vfs.stat(node)?;
    if stat.kind == NodeKind::File {
        outln!("{:>10}  {}", stat.size, workspace_path(path))?;
        return Ok(());
    }
    for entry in vfs.read_dir(node)? {
        match entry.kind {
            NodeKind::Dir => outln!("{:>10}  {}/", "-", entry.name)?,
            NodeKind::File => {
                let size = vfs.stat_at(node, &entry.name).map(|stat| stat.size)?;
                outln!("{size:>10}  {}", entry.name)?;
            }
        }
    }
    Ok(())
}

/// `sessions diff`: `A`, `M` or `D` and the path of each change from `from` to `to`.
pub fn diff(store: &Store, id: &SessionId, from: u64, to: u64) -> anyhow::Result<()> {
    step(store, id, Some(from))?;
    step(store, id, Some(to))?;
    let changes = store.diff(id, from, to)?;
    if changes.is_empty() {
        eprintln!("no changes between step {from} and step {to}");
    }
    for change in changes {
        let mark = match change.change {
            Change::Added => 'A',
            Change::Modified => 'M',
            Change::Removed => 'D',
        };
        let slash = if change.kind == NodeKind::Dir { "/" } else { "" };
        outln!("{mark}  {}{slash}", change.path)?;
    }
    Ok(())
}

/// Writes the session's workspace after `step` into `dir` (new or empty); says
/// what was written.
pub fn export(store: &Store, id: &SessionId, step: u64, dir: &Path) -> anyhow::Result<String> {
    super::run_cmd::check_export_target(dir)?;
    let mut vfs = restore(store, id, step)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let moved = vfs::export_dir(&mut vfs, &super::run_cmd::open_dir(dir)?)
        .with_context(|| format!("cannot export to {}", dir.display()))?;
    let files = count(moved.files, "file", "files");
    let dirs = count(moved.dirs, "directory", "directories");
    Ok(format!("{files}, {dirs}, {} from step {step}", count(moved.bytes, "byte", "bytes")))
}

#[cfg(test)]
mod tests {
    use super::workspace_path;

    #[test]
    fn workspace_paths_are_accepted_in_every_usual_spelling() {
        for (given, expected) in [
            ("src/main.rs", "src/main.rs"),
            ("/workspace/src/main.rs", "src/main.rs"),
            ("./src//main.rs", "src/main.rs"),
            ("/workspace", ""),
            ("/", ""),
            (".", ""),
            ("src/", "src"),
            ("/workspaces/x", "workspaces/x"),
        ] {
            assert_eq!(workspace_path(given), expected, "{given}");
        }
    }
}
