//! The `glob` tool: finds files in the workspace whose paths match a glob
//! pattern, most recently modified first (what the model most likely cares about).

use std::cmp::Reverse;
use std::time::{SystemTime, UNIX_EPOCH};

use globset::{Glob, GlobMatcher};
use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::walk::{base_metadata, below, guest_path, relative, walk_files};
use tool_sdk::workspace::WsPath;
use tool_sdk::{Tool, export_tools};

/// Most paths returned; past this the model should narrow the pattern.
const MAX_PATHS: usize = 1000;

const DESCRIPTION: &str = "\
Finds files by path pattern. Searches the directory `path` (default: the whole workspace) recursively and \
matches `pattern` against each file's path relative to `path`. Returns the matching file paths relative to \
/workspace, one per line, most recently modified first (ties in path order); at most 1000 paths, followed by a \
note with the total when there are more. Directories are not listed, and `.git` directories are skipped.

Pattern syntax: `*` matches any characters within one path segment, `**` any number of directories (including \
none), `?` one character, `[abc]` / `[!abc]` / `[a-z]` one character of a class, `{a,b}` either alternative. \
Examples: `**/*.rs` (Rust files at any depth), `*.toml` (only directly in `path`), `src/**/test_*.py`, \
`**/*.{ts,tsx}`, `**/README*`.

To search file contents, use grep instead.";

/// Input of `glob`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GlobInput {
    /// Glob pattern matched against file paths relative to `path`, e.g. `**/*.rs` or `src/**/test_*.py`.
    pattern: String,
    /// Directory to search, relative to /workspace or absolute under it; defaults to the whole workspace.
    #[serde(default = "workspace_root")]
    path: String,
}

fn workspace_root() -> String {
    ".".to_string()
}

fn glob(input: GlobInput) -> Result<String, String> {
    let matcher = compile(&input.pattern)?;
    let base = WsPath::resolve(&input.path)?;
    if !base_metadata(&base)?.is_dir() {
        return Err(format!(
            "cannot search `{}`: it is a file, not a directory; give its directory as `path`",
            base.shown()
        ));
    }
    let rel = relative(&base);
    let mut found: Vec<(Reverse<(u64, u32)>, String)> = walk_files(&rel)?
        .into_iter()
        .filter(|path| matcher.is_match(below(&rel, path)))
        .map(|path| (Reverse(modified(&path)), path))
        .collect();
    if found.is_empty() {
        return Ok(format!("No files match `{}` in `{}`.", input.pattern, base.shown()));
    }
    found.sort_unstable();
    let total = found.len();
    let mut out = String::new();
    for (_, path) in found.iter().take(MAX_PATHS) {
        out.push_str(path);
        out.push('\n');
    }
    if total > MAX_PATHS {
        out.push_str(&format!(
            "[showing the {MAX_PATHS} most recently modified of {total} matching files; \
             narrow the pattern or the path to see the rest]\n"
        ));
    }
    Ok(out)
}

/// Compiles `pattern` so that `*` and `?` stay within one path segment, as in a shell.
fn compile(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.starts_with('/') {
        return Err(format!(
            "pattern `{pattern}` is absolute; patterns are matched against paths relative to `path`, \
             so put the directory in `path` and a relative pattern like `**/*.rs` in `pattern`"
        ));
    }
    // Paths are matched without a leading `./`, so a pattern with one would match nothing.
    let pattern = pattern.trim_start_matches("./");
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|glob: Glob| glob.compile_matcher())
        .map_err(|err| format!("invalid glob pattern `{pattern}`: {}", err.kind()))
}

/// A file's modification time; the epoch if it can't be read, so it sorts last.
fn modified(path: &str) -> (u64, u32) {
    std::fs::metadata(guest_path(path))
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|time: SystemTime| time.duration_since(UNIX_EPOCH).ok())
        .map_or((0, 0), |since| (since.as_secs(), since.subsec_nanos()))
}

export_tools!(Tool::new("glob", DESCRIPTION, glob).read_only().idempotent());
