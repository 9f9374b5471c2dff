//! The patch envelope of OpenAI's Codex CLI, parsed strictly: every line is either
//! a known header or a prefixed hunk line, and errors name the patch line.

use tool_sdk::workspace::WsPath;

const BEGIN: &str = "*** Begin Patch";
const END: &str = "*** End Patch";
const ADD: &str = "*** Add File:";
const DELETE: &str = "*** Delete File:";
const UPDATE: &str = "*** Update File:";
const MOVE: &str = "*** Move to:";
const END_OF_FILE: &str = "*** End of File";

/// One file operation of a patch.
pub enum Op {
    /// Create a file that must not exist yet.
    Add { path: WsPath, content: String },
    /// Remove a file that must exist.
    Delete { path: WsPath },
    /// Change a file that must exist, optionally moving it.
    Update { path: WsPath, move_to: Option<WsPath>, hunks: Vec<Hunk> },
}

/// One `@@` section of an update.
pub struct Hunk {
    /// 1-based patch line where the hunk starts, for error messages.
    pub line: usize,
    /// Text after `@@`: a line the hunk's lines come after.
    pub header: Option<String>,
    /// The hunk's lines in patch order.
    pub lines: Vec<Line>,
    /// `*** End of File` followed the hunk: `old` must end at the file's end.
    pub end_of_file: bool,
}

/// One line of a hunk.
pub enum Line {
    /// Unchanged; must be in the file.
    Context(String),
    /// Must be in the file; is removed.
    Removed(String),
    /// Is inserted.
    Added(String),
}

/// Parses a whole patch, `*** Begin Patch` to `*** End Patch`.
pub fn parse(patch: &str) -> Result<Vec<Op>, String> {
    let lines: Vec<&str> = patch.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).collect();
    let blank = |line: &str| line.trim().is_empty();
    let Some(first) = lines.iter().position(|line| !blank(line)) else {
        return Err(format!("the patch is empty; it must start with `{BEGIN}` and end with `{END}`"));
    };
    if lines[first].trim() != BEGIN {
        return Err(format!(
            "the patch must start with `{BEGIN}`, but line {} is `{}`",
            first + 1,
            lines[first].trim()
        ));
    }
    let last = lines.iter().rposition(|line| !blank(line)).unwrap_or(first);
    if last == first || lines[last].trim() != END {
        return Err(format!("the patch must end with a `{END}` line, but its last line is `{}`", lines[last].trim()));
    }
    let mut parser = Parser { lines: &lines[..last], pos: first + 1 };
    let mut ops = Vec::new();
    while parser.skip_blank_lines() {
        ops.push(parser.op()?);
    }
    if ops.is_empty() {
        return Err("the patch contains no file operations (`*** Add File:`, `*** Update File:` or \
                    `*** Delete File:` sections)"
            .to_string());
    }
    Ok(ops)
}

/// A cursor over the lines between the begin and end markers.
struct Parser<'a> {
    lines: &'a [&'a str],
    pos: usize,
}

impl Parser<'_> {
    /// Steps over blank lines; whether a line remains.
    fn skip_blank_lines(&mut self) -> bool {
        while self.pos < self.lines.len() && self.lines[self.pos].trim().is_empty() {
            self.pos += 1;
        }
        self.pos < self.lines.len()
    }

    /// Whether the lines from `pos` on are blank up to a `***` header or the end, so
    /// a blank line there separates sections rather than belonging to one.
    fn only_blank_until_header(&self) -> bool {
        self.lines[self.pos..]
            .iter()
            .find(|line| !line.trim().is_empty())
            .is_none_or(|line| line.starts_with("*** ") && line.trim_end() != END_OF_FILE)
    }

    /// 1-based patch line number of `pos`.
    fn line_no(&self) -> usize {
        self.pos + 1
    }

    fn op(&mut self) -> Result<Op, String> {
        let at = self.line_no();
        let line = self.lines[self.pos].trim_end();
        let path = |header: &str| -> Result<WsPath, String> {
            let raw = line[header.len()..].trim();
            if raw.is_empty() {
                return Err(format!("line {at}: `{header}` needs a file path after it"));
            }
            WsPath::resolve(raw).map_err(|err| format!("line {at}: {err}"))
        };
        if line.starts_with(ADD) {
            let path = path(ADD)?;
            self.pos += 1;
            Ok(Op::Add { path, content: self.added_lines(at)? })
        } else if line.starts_with(DELETE) {
            let path = path(DELETE)?;
            self.pos += 1;
            Ok(Op::Delete { path })
        } else if line.starts_with(UPDATE) {
            let path = path(UPDATE)?;
            self.pos += 1;
            let mut move_to = None;
            if let Some(next) = self.lines.get(self.pos).map(|line| line.trim_end())
                && next.starts_with(MOVE)
            {
                let raw = next[MOVE.len()..].trim();
                if raw.is_empty() {
                    return Err(format!("line {}: `{MOVE}` needs a file path after it", self.line_no()));
                }
                move_to = Some(WsPath::resolve(raw).map_err(|err| format!("line {}: {err}", self.line_no()))?);
                self.pos += 1;
            }
            let hunks = self.hunks(&path)?;
            if hunks.is_empty() && move_to.is_none() {
                return Err(format!(
                    "line {at}: `{UPDATE} {}` has no hunks; add `@@` hunks with ` `, `-` and `+` lines",
                    path.shown()
                ));
            }
            Ok(Op::Update { path, move_to, hunks })
        } else if line == BEGIN || line == END {
            Err(format!("line {at}: unexpected `{line}` inside the patch"))
        } else if line.starts_with("***") {
            Err(format!(
                "line {at}: unknown header `{line}`; expected `{ADD} <path>`, `{UPDATE} <path>` \
                 (optionally followed by `{MOVE} <path>`) or `{DELETE} <path>`"
            ))
        } else {
            Err(format!(
                "line {at}: expected a file header (`{ADD}`, `{UPDATE}` or `{DELETE}`), found `{line}`; \
                 hunk lines must follow an `{UPDATE}` header"
            ))
        }
    }

    /// The `+` lines of an added file, as its content (each line ends with a newline).
    fn added_lines(&mut self, header_line: usize) -> Result<String, String> {
        let mut content = String::new();
        while self.pos < self.lines.len() {
            let line = self.lines[self.pos];
            if let Some(text) = line.strip_prefix('+') {
                content.push_str(text);
                content.push('\n');
            } else if line.starts_with("*** ") || (line.trim().is_empty() && self.only_blank_until_header()) {
                break;
            } else {
                return Err(format!(
                    "line {}: every line of the file added at line {header_line} must start with `+` \
                     (a lone `+` for an empty line); found `{line}`",
                    self.line_no()
                ));
            }
            self.pos += 1;
        }
        Ok(content)
    }

    /// The hunks of an update, up to the next file header or the end.
    fn hunks(&mut self, path: &WsPath) -> Result<Vec<Hunk>, String> {
        let mut hunks = Vec::new();
        loop {
            if self.pos >= self.lines.len() || self.only_blank_until_header() {
                return Ok(hunks);
            }
            let at = self.line_no();
            let line = self.lines[self.pos];
            let header = if let Some(rest) = line.strip_prefix("@@") {
                self.pos += 1;
                Some(header_text(rest))
            } else if hunks.is_empty() {
                // Codex lets the first hunk omit its `@@` line.
                None
            } else {
                return Err(format!("line {at}: expected `@@` to start a new hunk, found `{line}`"));
            };
            let mut hunk = Hunk { line: at, header: header.flatten(), lines: Vec::new(), end_of_file: false };
            while self.pos < self.lines.len() {
                let line = self.lines[self.pos];
                if line.starts_with("@@") {
                    break;
                }
                if line.trim_end() == END_OF_FILE {
                    hunk.end_of_file = true;
                    self.pos += 1;
                    break;
                }
                if line.starts_with("*** ") || (line.is_empty() && self.only_blank_until_header()) {
                    break;
                }
                match line.chars().next() {
                    // Models drop the space of empty context lines.
                    None => hunk.lines.push(Line::Context(String::new())),
                    Some(' ') => hunk.lines.push(Line::Context(line[1..].to_string())),
                    Some('-') => hunk.lines.push(Line::Removed(line[1..].to_string())),
                    Some('+') => hunk.lines.push(Line::Added(line[1..].to_string())),
                    Some(_) => {
                        return Err(format!(
                            "line {}: in hunk {} of `{UPDATE} {}`, every line must start with ` ` (context), \
                             `-` (removed) or `+` (added); found `{line}`",
                            self.line_no(),
                            hunks.len() + 1,
                            path.shown()
                        ));
                    }
                }
                self.pos += 1;
            }
            if hunk.lines.is_empty() {
                return Err(format!("line {at}: hunk {} of `{UPDATE} {}` has no lines", hunks.len() + 1, path.shown()));
            }
            hunks.push(hunk);
        }
    }
}

/// The locating text of an `@@` line; `None` when empty or when it is a unified-diff
/// range (`@@ -12,7 +12,8 @@`), whose line numbers this format does not use.
fn header_text(rest: &str) -> Option<String> {
    let text = rest.trim();
    let unified = text.starts_with('-') && text.contains(" +") && text.ends_with("@@");
    (!text.is_empty() && !unified).then(|| text.to_string())
}
