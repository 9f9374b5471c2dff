//! The `grep` tool: searches file contents in the workspace with a regular
//! expression, with output modelled on `grep -rn` so the model reads it fluently.
//!
//! Speed comes from searching each file as one buffer: the regex runs over the
//! whole file (read once into a reused buffer), and line boundaries and numbers
//! are worked out only around matches, so a non-matching line costs no allocation
//! and no per-line call.

use std::fmt::Write as _;
use std::io::Read;

use globset::GlobMatcher;
use memchr::{memchr, memchr_iter, memrchr};
use regex::bytes::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tool_sdk::walk::{base_metadata, below, guest_path, relative, walk_files};
use tool_sdk::workspace::WsPath;
use tool_sdk::{Tool, export_tools};

/// Bytes examined for a NUL to call a file binary, as GNU grep and ripgrep do.
const BINARY_PROBE: usize = 8 << 10;
/// Longest line shown; longer ones (minified code, data) are cut with a marker.
const MAX_LINE_BYTES: usize = 1000;
/// Output size past which nothing more is shown, below the host's result cap so
/// the closing note always survives.
const OUTPUT_BUDGET: usize = 200 << 10;
/// Largest file searched: it is read whole into guest memory, which the host caps.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// Largest compiled regex, so a pathological pattern fails fast instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 32 << 20;

const DESCRIPTION: &str = "\
Searches file contents for a regular expression, like `grep -rn`. Searches the file or directory `path` \
(default: the whole workspace) recursively, files in path order; binary files (a NUL byte in the first 8 KiB) \
and `.git` directories are skipped. Each line is matched on its own: a match never spans lines.

`pattern` uses Rust regex syntax (like PCRE without look-around or backreferences): `fn\\s+main`, \
`TODO|FIXME`, `^import `, `\\bUser\\b`, `(?i)error` (same as case_insensitive). Escape metacharacters to \
match them literally: `\\(`, `\\.`, `\\[`, `\\{`.

Output by `output_mode`:
- `content` (default): matching lines as `path:line:text`, with `context` lines around each as \
`path-line-text` and `--` between groups that are not adjacent.
- `files_with_matches`: the paths of the files that match, one per line.
- `count`: `path:count` per matching file (count = matching lines).
Paths are relative to /workspace. Lines longer than 1000 bytes are cut; files over 64 MiB are not searched \
(a note names them). At most `max_results` matching lines (content), paths or counts are shown, and at most \
about 200 KiB; a final note then says how many more matches exist, so narrow the pattern, `path` or `glob` \
rather than raising the limit. The `glob` parameter limits which files are searched (`*.rs`, `src/**/*.py`); \
to list files by name, use the glob tool instead.";

/// What `grep` reports.
#[derive(Deserialize, Serialize, JsonSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum OutputMode {
    /// Matching lines as `path:line:text`, with context lines as `path-line-text`.
    #[default]
    Content,
    /// Only the paths of files with at least one match.
    FilesWithMatches,
    /// `path:count`, the number of matching lines per file.
    Count,
}

/// Input of `grep`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GrepInput {
    /// Regular expression (Rust regex syntax) searched for in each line, e.g. `fn\s+\w+` or `TODO|FIXME`.
    pattern: String,
    /// File or directory to search, relative to /workspace or absolute under it; defaults to the whole workspace.
    #[serde(default = "workspace_root")]
    path: String,
    /// Only search files matching this glob: without `/` it matches file names at any depth (`*.rs`, `*.{ts,tsx}`); with `/` the path relative to `path` (`src/**/*.py`).
    #[serde(default)]
    glob: Option<String>,
    /// Match letters regardless of case (default false).
    #[serde(default)]
    case_insensitive: bool,
    /// Lines to show before and after each matching line in `content` mode, 0 to 10 (default 0).
    #[serde(default)]
    #[schemars(range(max = 10))]
    context: u32,
    /// `content` (default): matching lines; `files_with_matches`: file paths; `count`: matching lines per file.
    #[serde(default)]
    output_mode: OutputMode,
    /// Most matching lines (`content`), paths (`files_with_matches`) or counts (`count`) shown (default 500).
    #[serde(default = "default_max_results")]
    #[schemars(range(min = 1, max = 100000))]
    max_results: u32,
}

fn workspace_root() -> String {
    ".".to_string()
}

fn default_max_results() -> u32 {
    500
}

fn grep(input: GrepInput) -> Result<String, String> {
    let regex = RegexBuilder::new(&input.pattern)
        .case_insensitive(input.case_insensitive)
        .multi_line(true)
        .crlf(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| format!("invalid regex `{}`:\n{err}", input.pattern))?;
    let filter = input.glob.as_deref().map(FileFilter::new).transpose()?;
    let base = WsPath::resolve(&input.path)?;
    let rel = relative(&base);
    let files = if base_metadata(&base)?.is_dir() {
        let mut files = walk_files(&rel)?;
        if let Some(filter) = &filter {
            files.retain(|path| filter.is_match(below(&rel, path)));
        }
        files.sort_unstable();
        files
    } else {
        // A single file is filtered by its name, the only part of it below itself.
        let name = rel.rsplit('/').next().unwrap_or_default();
        match &filter {
            Some(filter) if !filter.is_match(name) => Vec::new(),
            _ => vec![rel],
        }
    };

    let mut report = Report::new(&input);
    let mut buf = Vec::new();
    for path in &files {
        match read_into(path, &mut buf) {
            Ok(true) if memchr(0, &buf[..buf.len().min(BINARY_PROBE)]).is_none() => report.search(&regex, path, &buf),
            Ok(true) => {}
            Ok(false) => report.too_large.push(path),
            // Files that vanish or can't be read are skipped, as `grep -s` does.
            Err(_) => {}
        }
    }
    Ok(report.finish(&input, &base))
}

/// Reads the file at `path` (relative to the workspace) into `buf`, reusing its
/// allocation; `false` if the file is too large to search.
///
/// Sizing the buffer from the file's length makes the read a single host call
/// (`read_to_end` would stat again and probe for the end with an extra read).
fn read_into(path: &str, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(guest_path(path))?;
    let len = file.metadata()?.len();
    if len > MAX_FILE_BYTES {
        return Ok(false);
    }
    buf.clear();
    buf.resize(len as usize, 0);
    file.read_exact(buf)?;
    Ok(true)
}

/// The `glob` filter on file paths.
struct FileFilter {
    matcher: GlobMatcher,
    /// Without a `/`, the glob names files at any depth, as in ripgrep and gitignore.
    names_only: bool,
}

impl FileFilter {
    fn new(glob: &str) -> Result<Self, String> {
        let glob = glob.trim_start_matches("./");
        let matcher = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|err| format!("invalid glob `{glob}`: {}", err.kind()))?
            .compile_matcher();
        Ok(FileFilter { matcher, names_only: !glob.contains('/') })
    }

    /// Whether the file at `path` (relative to the search base) is searched.
    fn is_match(&self, path: &str) -> bool {
        let path = if self.names_only { path.rsplit('/').next().unwrap_or(path) } else { path };
        self.matcher.is_match(path)
    }
}

/// Calls `found` with the byte range (terminator excluded) of each line of `hay`
/// that `regex` matches, in order.
///
/// The regex runs over the whole buffer in multi-line mode; a match that runs
/// across a line end is re-checked against its first line alone, so results are
/// those of matching line by line.
fn matching_lines(regex: &Regex, hay: &[u8], mut found: impl FnMut(usize, usize)) {
    let mut pos = 0;
    // `pos` is always at a line start, so a match's line begins at or after it.
    while let Some(m) = regex.find_at(hay, pos) {
        let start = memrchr(b'\n', &hay[pos..m.start()]).map_or(pos, |i| pos + i + 1);
        if start == hay.len() {
            // The empty remainder after a final newline is not a line.
            break;
        }
        let end = memchr(b'\n', &hay[m.start()..]).map_or(hay.len(), |i| m.start() + i);
        if m.end() <= end || regex.is_match(&hay[start..end]) {
            found(start, end);
        }
        if end >= hay.len() {
            break;
        }
        pos = end + 1;
    }
}

/// Output being built, with the counts behind the closing note.
struct Report<'a> {
    mode: OutputMode,
    context: usize,
    max: usize,
    out: String,
    /// Lines, paths or counts shown so far.
    shown: usize,
    /// Results past the cap: matching lines in `content` and `count` modes, files otherwise.
    hidden: usize,
    /// Files with matches past the cap: with any hidden line in `content` mode, not shown at all in `count` mode.
    hidden_files: usize,
    /// Whether the cap (or the output budget) has been reached.
    full: bool,
    /// Whether a group of lines has been printed, so the next needs a `--` before it.
    grouped: bool,
    /// Files not searched because they exceed [`MAX_FILE_BYTES`].
    too_large: Vec<&'a str>,
}

impl Report<'_> {
    fn new(input: &GrepInput) -> Self {
        Report {
            mode: input.output_mode,
            context: input.context.min(10) as usize,
            max: input.max_results.max(1) as usize,
            out: String::new(),
            shown: 0,
            hidden: 0,
            hidden_files: 0,
            full: false,
            grouped: false,
            too_large: Vec::new(),
        }
    }

    /// Searches one text file, `path` relative to the workspace.
    fn search(&mut self, regex: &Regex, path: &str, hay: &[u8]) {
        if self.full {
            return self.count_hidden(regex, hay);
        }
        match self.mode {
            OutputMode::Content => self.search_content(regex, path, hay),
            OutputMode::FilesWithMatches => {
                if regex.is_match(hay) {
                    self.out.push_str(path);
                    self.out.push('\n');
                    self.record_shown();
                }
            }
            OutputMode::Count => {
                let mut count = 0;
                matching_lines(regex, hay, |_, _| {
                    count += 1;
                });
                if count > 0 {
                    let _ = writeln!(self.out, "{path}:{count}");
                    self.record_shown();
                }
            }
        }
    }

    fn record_shown(&mut self) {
        self.shown += 1;
        self.full = self.shown >= self.max || self.out.len() >= OUTPUT_BUDGET;
    }

    /// Counts what a file would have added once nothing more is shown.
    fn count_hidden(&mut self, regex: &Regex, hay: &[u8]) {
        if self.mode == OutputMode::FilesWithMatches {
            if regex.is_match(hay) {
                self.hidden += 1;
            }
            return;
        }
        let before = self.hidden;
        matching_lines(regex, hay, |_, _| {
            self.hidden += 1;
        });
        if self.hidden > before {
            self.hidden_files += 1;
        }
    }

    /// `content` mode for one file: matching lines with their context, grep style.
    fn search_content(&mut self, regex: &Regex, path: &str, hay: &[u8]) {
        let context = self.context;
        // Line numbering: `line_no` is the number of the line starting at byte `counted`.
        let (mut counted, mut line_no) = (0, 1);
        // `printed` is where the printed part of this file ends (a line start);
        // `after` is how many after-context lines the last match still wants.
        let (mut printed, mut printed_any, mut after) = (0, false, 0);
        // Where the first match past the cap starts, if the cap is reached in this file.
        let mut hidden_from = None;
        matching_lines(regex, hay, |start, end| {
            if self.full {
                hidden_from.get_or_insert(start);
                self.hidden += 1;
                return;
            }
            // After-context of the previous match, which is the line just before `printed`.
            let mut next = line_no + 1;
            while after > 0 && printed < start {
                let line_end = memchr(b'\n', &hay[printed..start]).map_or(start, |i| printed + i);
                self.line(path, '-', next, &hay[printed..line_end]);
                printed = line_end + 1;
                next += 1;
                after -= 1;
            }
            line_no += memchr_iter(b'\n', &hay[counted..start]).count();
            counted = start;
            // Before-context, not reaching back into what is already printed.
            let (mut first, mut before) = (start, 0);
            while before < context && first > printed {
                first = memrchr(b'\n', &hay[printed..first - 1]).map_or(printed, |i| printed + i + 1);
                before += 1;
            }
            if context > 0 && self.grouped && (!printed_any || first > printed) {
                self.out.push_str("--\n");
            }
            for number in line_no - before..line_no {
                let line_end = memchr(b'\n', &hay[first..start]).map_or(start, |i| first + i);
                self.line(path, '-', number, &hay[first..line_end]);
                first = line_end + 1;
            }
            self.line(path, ':', line_no, &hay[start..end]);
            (self.grouped, printed_any, printed, after) = (true, true, (end + 1).min(hay.len()), context);
            self.record_shown();
        });
        if hidden_from.is_some() {
            self.hidden_files += 1;
        }
        // After-context of the file's last shown match, short of any hidden
        // match: a matching line must never pass for context.
        let (mut next, stop) = (line_no + 1, hidden_from.unwrap_or(hay.len()));
        while printed_any && after > 0 && printed < stop {
            let line_end = memchr(b'\n', &hay[printed..stop]).map_or(stop, |i| printed + i);
            self.line(path, '-', next, &hay[printed..line_end]);
            printed = line_end + 1;
            next += 1;
            after -= 1;
        }
    }

    /// Appends one output line: `path{sep}number{sep}text`, with the text cut if long.
    fn line(&mut self, path: &str, sep: char, number: usize, text: &[u8]) {
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let _ = write!(self.out, "{path}{sep}{number}{sep}");
        if text.len() <= MAX_LINE_BYTES {
            self.out.push_str(&String::from_utf8_lossy(text));
        } else {
            let mut cut = MAX_LINE_BYTES;
            // Back up to a character boundary so the cut doesn't leave a broken character.
            while cut > 0 && (text[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            self.out.push_str(&String::from_utf8_lossy(&text[..cut]));
            let _ = write!(self.out, " [… {} more bytes]", text.len() - cut);
        }
        self.out.push('\n');
    }

    /// The output with a closing note on anything not shown.
    fn finish(mut self, input: &GrepInput, base: &WsPath) -> String {
        let nothing = format!("No matches for `{}` in `{}`.", input.pattern, base.shown());
        if self.shown == 0 && self.too_large.is_empty() {
            return nothing;
        }
        if self.shown == 0 {
            self.out = nothing + "\n";
        }
        if let Some(first) = self.too_large.first() {
            let more = match self.too_large.len() - 1 {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            let _ = writeln!(self.out, "[not searched, larger than 64 MiB: {first}{more}]");
        }
        if self.hidden > 0 {
            let what = match self.mode {
                OutputMode::Content => format!(
                    "{} (in {}) not shown",
                    plural(self.hidden, "more matching line"),
                    plural(self.hidden_files, "file")
                ),
                OutputMode::FilesWithMatches => format!("{} with matches not shown", plural(self.hidden, "more file")),
                OutputMode::Count => format!(
                    "{} with matches not shown ({})",
                    plural(self.hidden_files, "more file"),
                    plural(self.hidden, "matching line")
                ),
            };
            let _ = writeln!(
                self.out,
                "[{what}; output stopped at {} results; narrow the pattern, `path` or `glob` to see them]",
                self.shown
            );
        }
        self.out
    }
}

/// `count` followed by `noun`, with an `s` unless the count is one.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

export_tools!(Tool::new("grep", DESCRIPTION, grep).read_only().idempotent());
