//! `list_dir`: a workspace directory as an indented tree with file sizes.
//!
//! The tree is walked breadth first, so when the entry cap is reached the levels
//! nearest the listed directory are the ones shown in full.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::workspace::{WsPath, describe_io};
use tool_sdk::{Tool, export_tools};

/// Entries listed before the walk stops.
const MAX_ENTRIES: usize = 1000;
/// Deepest level a model may ask for.
const MAX_DEPTH: u32 = 10;

const DESCRIPTION: &str = "\
Lists a directory of the workspace as a tree. The first line is the listed directory; below it each entry \
is indented by two spaces per level, sorted by name, directories end with `/` and files show their size \
(like `main.rs (1.2 KiB)`). Shows `depth` levels (default 2: the entries and the entries of its \
subdirectories; 1 to 10); a directory at the last level is shown with its entry count, and an empty one \
with `(empty)`. At most 1000 entries are listed, nearest levels first; a final bracketed note says when \
the listing was cut, and the directories not read are marked `(not listed)`. \
`path` defaults to `.`, the workspace root; it is relative to /workspace or absolute under /workspace. \
Fails on paths outside the workspace, missing paths and files (use read_file for a file).";

/// Input of `list_dir`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListDirInput {
    /// Directory to list: relative to /workspace or absolute under /workspace. Defaults to `.`, the workspace root.
    #[serde(default = "default_path")]
    path: String,
    /// Levels to show: 1 lists only the directory's own entries. Defaults to 2; at most 10.
    #[serde(default = "default_depth")]
    #[schemars(range(min = 1, max = 10))]
    depth: u32,
}

fn default_path() -> String {
    ".".to_string()
}

fn default_depth() -> u32 {
    2
}

/// What is known of a directory's contents.
enum Contents {
    /// Read; its entries are these indices into the walk's entries.
    Listed(Vec<usize>),
    /// Beyond the depth: only counted.
    Counted(usize),
    /// Not read because the entry cap was reached.
    NotListed,
    /// Reading it failed.
    Failed(String),
}

/// One entry of the walk.
struct Entry {
    name: String,
    /// `Some` for a directory.
    contents: Option<Contents>,
    size: u64,
}

fn list_dir(input: ListDirInput) -> Result<String, String> {
    let path = WsPath::resolve(&input.path)?;
    let shown = path.shown();
    let depth = input.depth.clamp(1, MAX_DEPTH);
    let metadata = fs::metadata(path.full()).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => format!("cannot list `{shown}`: it does not exist"),
        _ => format!("cannot list `{shown}`: {}", describe_io(&err)),
    })?;
    if !metadata.is_dir() {
        return Err(format!("`{shown}` is a file, not a directory; use read_file to read it"));
    }

    let mut entries =
        vec![Entry { name: if shown == "." { ".".to_string() } else { shown.clone() }, contents: None, size: 0 }];
    let mut queue = VecDeque::from([(0, path.full(), 0)]);
    let mut cut = false;
    while let Some((index, dir, level)) = queue.pop_front() {
        if cut {
            entries[index].contents = Some(Contents::NotListed);
            continue;
        }
        let children = match read_sorted(&dir) {
            Ok(children) => children,
            Err(err) => {
                entries[index].contents = Some(Contents::Failed(describe_io(&err)));
                continue;
            }
        };
        let mut listed = Vec::with_capacity(children.len());
        for (name, is_dir, size) in children {
            // The root is not an entry, so the cap counts entries shown below it.
            if entries.len() > MAX_ENTRIES {
                cut = true;
                break;
            }
            let child = entries.len();
            let full = dir.join(&name);
            let contents = if !is_dir {
                None
            } else if level + 1 < depth {
                queue.push_back((child, full, level + 1));
                Some(Contents::NotListed)
            } else {
                Some(match fs::read_dir(&full) {
                    Ok(read) => Contents::Counted(read.count()),
                    Err(err) => Contents::Failed(describe_io(&err)),
                })
            };
            entries.push(Entry { name, contents, size });
            listed.push(child);
        }
        entries[index].contents = Some(Contents::Listed(listed));
    }

    let mut out = String::new();
    render(&entries, 0, 0, &mut out);
    out.pop();
    if cut {
        out.push_str(&format!(
            "\n\n[Listing cut at {MAX_ENTRIES} entries; directories marked `(not listed)` and some entries were not \
             shown. List a subdirectory, or use a smaller depth.]"
        ));
    }
    Ok(out)
}

/// The entries of `dir` as (name, is a directory, size), sorted by name.
fn read_sorted(dir: &Path) -> io::Result<Vec<(String, bool, u64)>> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        children.push((entry.file_name().to_string_lossy().into_owned(), metadata.is_dir(), metadata.len()));
    }
    children.sort();
    Ok(children)
}

fn render(entries: &[Entry], index: usize, level: usize, out: &mut String) {
    let entry = &entries[index];
    out.push_str(&"  ".repeat(level));
    out.push_str(&entry.name);
    match &entry.contents {
        None => out.push_str(&format!(" ({})\n", human_size(entry.size))),
        Some(Contents::Listed(children)) => {
            out.push_str(if children.is_empty() { "/ (empty)\n" } else { "/\n" });
            for &child in children {
                render(entries, child, level + 1, out);
            }
        }
        Some(Contents::Counted(0)) => out.push_str("/ (empty)\n"),
        Some(Contents::Counted(1)) => out.push_str("/ (1 entry)\n"),
        Some(Contents::Counted(count)) => out.push_str(&format!("/ ({count} entries)\n")),
        Some(Contents::NotListed) => out.push_str("/ (not listed)\n"),
        Some(Contents::Failed(err)) => out.push_str(&format!("/ (cannot be read: {err})\n")),
    }
}

/// `812 B`, `1.2 KiB`, `3.4 MiB`, `1.0 GiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

export_tools!(Tool::new("list_dir", DESCRIPTION, list_dir).read_only().idempotent());
