//! `write_file`: creates or overwrites one workspace file with the given text.

use std::fs;
use std::io;

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::workspace::{WsPath, describe_io};
use tool_sdk::{Tool, export_tools};

const DESCRIPTION: &str = "\
Writes `content` to the file at `path` in the workspace: creates the file if it does not exist \
(creating missing parent directories too) or replaces its whole content if it does. \
The file ends up holding exactly `content`, byte for byte (no newline is added). \
To change part of an existing file, prefer edit_file or apply_patch. \
Returns one line saying whether the file was created or overwritten (or already held this content) \
and its new size in bytes and lines. \
`path` is relative to /workspace (like `src/main.rs`) or absolute under /workspace; \
fails on paths outside the workspace, on a path that is a directory, and when the workspace's quota is exhausted.";

/// Input of `write_file`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteFileInput {
    /// Path of the file to write: relative to /workspace or absolute under /workspace; missing parents are created.
    path: String,
    /// The complete new content of the file.
    content: String,
}

fn write_file(input: WriteFileInput) -> Result<String, String> {
    let path = WsPath::resolve(&input.path)?;
    let shown = path.shown();
    let full = path.full();
    let bytes = input.content.as_bytes();
    let before = match fs::metadata(&full) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(format!("`{shown}` is a directory; give the path of a file to write"));
        }
        Ok(metadata) => Some(metadata.len()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(format!("cannot write `{shown}`: {}", describe_io(&err))),
    };
    let size = format!("{}, {}", count(bytes.len(), "byte"), count(input.content.lines().count(), "line"));
    if before == Some(bytes.len() as u64) && fs::read(&full).is_ok_and(|old| old == bytes) {
        return Ok(format!("`{shown}` already holds exactly this content ({size}); nothing changed."));
    }
    if let Some(parent) = full.parent().filter(|parent| !parent.is_dir()) {
        fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create the directories for `{shown}`: {}", describe_io(&err)))?;
    }
    tool_sdk::workspace::write_atomic(&full, bytes)
        .map_err(|err| format!("cannot write `{shown}`: {}", describe_io(&err)))?;
    Ok(match before {
        None => format!("Created `{shown}` ({size})."),
        Some(old) => format!("Overwrote `{shown}` ({size}; it had {}).", count(old as usize, "byte")),
    })
}

/// `1 line`, `2 lines`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

export_tools!(Tool::new("write_file", DESCRIPTION, write_file).idempotent());
