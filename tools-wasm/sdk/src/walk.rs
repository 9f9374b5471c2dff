//! Walking the workspace: the files below a directory, as workspace-relative paths,
//! for tools that search it (glob, grep).

use crate::workspace::{ROOT, WsPath, describe_io};

/// Directory names never descended into: version-control internals are noise
/// to a search and can be large.
pub const SKIPPED_DIRS: &[&str] = &[".git"];

/// `path` relative to the workspace root, empty for the root itself.
pub fn relative(path: &WsPath) -> String {
    let shown = path.shown();
    if shown == "." { String::new() } else { shown }
}

/// The absolute guest path of `rel` (relative to the workspace, empty for the root).
pub fn guest_path(rel: &str) -> String {
    if rel.is_empty() { ROOT.to_string() } else { format!("{ROOT}/{rel}") }
}

/// `path` (relative to the workspace, below `base`) relative to `base`.
pub fn below<'a>(base: &str, path: &'a str) -> &'a str {
    if base.is_empty() { path } else { path.get(base.len() + 1..).unwrap_or(path) }
}

/// Metadata of the search base `path`, or an error naming it.
pub fn base_metadata(path: &WsPath) -> Result<std::fs::Metadata, String> {
    std::fs::metadata(path.full()).map_err(|err| format!("cannot search `{}`: {}", path.shown(), describe_io(&err)))
}

/// Every file below the directory `base` (relative to the workspace), as paths
/// relative to the workspace, in no particular order. Skips [`SKIPPED_DIRS`] and
/// names that are not UTF-8 (they could not be shown to the model or passed back
/// in a later call).
pub fn walk_files(base: &str) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    let mut dirs = vec![base.to_string()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(guest_path(&dir)) {
            Ok(entries) => entries,
            Err(err) if dir == base => return Err(format!("cannot list `{base}`: {}", describe_io(&err))),
            // A subdirectory that vanished or can't be listed leaves the rest searchable.
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            let (Ok(kind), Ok(name)) = (entry.file_type(), entry.file_name().into_string()) else { continue };
            if kind.is_dir() && SKIPPED_DIRS.contains(&name.as_str()) {
                continue;
            }
            let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                files.push(path);
            }
        }
    }
    Ok(files)
}
