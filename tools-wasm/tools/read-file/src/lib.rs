//! `read_file`: a workspace text file as numbered lines, read in bounded windows.
//!
//! The file is streamed, never loaded whole: only the requested lines (each cut to
//! a bounded length) are kept, so a huge file or a huge line costs time, not memory.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::workspace::{WsPath, describe_io};
use tool_sdk::{Tool, export_tools};

/// Lines returned when the model gives no `limit`.
const DEFAULT_LIMIT: u64 = 2000;
/// Characters of one line shown before it is cut.
const MAX_LINE_CHARS: usize = 2000;
/// Bytes of one line kept while scanning: room for `MAX_LINE_CHARS` four-byte characters.
const MAX_LINE_BYTES: usize = MAX_LINE_CHARS * 4;
/// Output budget, below the host's default 256 KiB result cap so the closing note survives.
const OUTPUT_CAP: usize = 200 * 1024;
/// Bytes inspected to decide whether a file is binary.
const SNIFF_BYTES: usize = 8 * 1024;
/// Read size; the host moves at most 1 MiB per read.
const CHUNK_BYTES: usize = 1 << 20;

const DESCRIPTION: &str = "\
Reads a UTF-8 text file from the workspace and returns its lines numbered like `cat -n`: \
each output line is the line number (right-aligned, 1-based), a tab, then the line's content; \
the number and the tab are not part of the file. \
Returns at most `limit` lines (default 2000) starting at line `offset` (default 1), and at most 200 KiB of output. \
Lines longer than 2000 characters are cut and end with a `[… line truncated: N characters in total]` marker. \
When lines remain after the ones shown, a final bracketed note gives the total line count and the `offset` \
to pass to read the next part. Windows (CRLF) line endings are shown without the carriage return. \
A binary file (a NUL byte or invalid UTF-8 in its first 8 KiB) is not shown: the result says it is binary \
and gives its size. An empty file is reported as empty. \
`path` is relative to /workspace (like `src/main.rs`) or absolute under /workspace; \
fails on paths outside the workspace, missing files and directories (use list_dir for those).";

/// Input of `read_file`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadFileInput {
    /// Path of the file: relative to /workspace (like `src/main.rs`) or absolute under /workspace.
    path: String,
    /// 1-based number of the first line to return. Defaults to 1.
    #[schemars(range(min = 1))]
    offset: Option<u64>,
    /// Maximum number of lines to return. Defaults to 2000.
    #[schemars(range(min = 1))]
    limit: Option<u64>,
}

fn read_file(input: ReadFileInput) -> Result<String, String> {
    let path = WsPath::resolve(&input.path)?;
    let shown = path.shown();
    let offset = input.offset.unwrap_or(1).max(1);
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT).max(1);
    let cannot = |err: io::Error| match err.kind() {
        io::ErrorKind::NotFound => {
            format!("cannot read `{shown}`: no such file in the workspace; use list_dir to see what exists")
        }
        _ => format!("cannot read `{shown}`: {}", describe_io(&err)),
    };
    let metadata = std::fs::metadata(path.full()).map_err(cannot)?;
    if metadata.is_dir() {
        return Err(format!("`{shown}` is a directory, not a file; use list_dir to see its contents"));
    }
    let size = metadata.len();
    let mut file = File::open(path.full()).map_err(cannot)?;

    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut filled = 0;
    while filled < SNIFF_BYTES {
        match file.read(&mut buf[filled..]).map_err(cannot)? {
            0 => break,
            n => filled += n,
        }
    }
    let head = &buf[..filled.min(SNIFF_BYTES)];
    if is_binary(head, size <= SNIFF_BYTES as u64) {
        return Ok(format!("`{shown}` is a binary file ({size} bytes); its content is not shown."));
    }

    let mut scan = Scan::new(offset, limit);
    scan.feed(&buf[..filled]);
    loop {
        match file.read(&mut buf).map_err(cannot)? {
            0 => break,
            n => scan.feed(&buf[..n]),
        }
    }
    scan.finish(&shown, offset)
}

/// A NUL byte or invalid UTF-8 in `head`; a character cut by the end of `head` counts
/// only when `head` is the whole file.
fn is_binary(head: &[u8], whole_file: bool) -> bool {
    head.contains(&0)
        || match std::str::from_utf8(head) {
            Ok(_) => false,
            Err(err) => err.error_len().is_some() || whole_file,
        }
}

/// Line-by-line state of one read: which lines are wanted and what has been shown.
struct Scan {
    /// First wanted line (1-based).
    first: u64,
    /// Last wanted line (1-based, inclusive).
    last: u64,
    /// Number of the line being scanned.
    line_no: u64,
    /// Whether bytes of `line_no` have been seen (it is a line even without a newline).
    pending: bool,
    /// Kept bytes of the current wanted line, at most `MAX_LINE_BYTES`.
    line: Vec<u8>,
    /// Characters of the current wanted line, counted over all its bytes.
    line_chars: usize,
    /// Whether the current line's last byte so far is a carriage return.
    line_cr: bool,
    out: String,
    /// Last line written to `out`.
    shown_last: Option<u64>,
    /// The output budget ran out before the wanted lines did.
    cut: bool,
    /// Some shown bytes were not valid UTF-8.
    lossy: bool,
}

impl Scan {
    fn new(offset: u64, limit: u64) -> Self {
        Scan {
            first: offset,
            last: offset.saturating_add(limit - 1),
            line_no: 1,
            pending: false,
            line: Vec::new(),
            line_chars: 0,
            line_cr: false,
            out: String::new(),
            shown_last: None,
            cut: false,
            lossy: false,
        }
    }

    fn wanted(&self) -> bool {
        !self.cut && self.line_no >= self.first && self.line_no <= self.last
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.cut || self.line_no > self.last {
                // Past the window only the line count matters.
                self.line_no += data.iter().filter(|&&b| b == b'\n').count() as u64;
                self.pending = data.last() != Some(&b'\n');
                return;
            }
            match data.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    if self.wanted() {
                        self.take(&data[..end]);
                        self.finish_line();
                    }
                    self.line_no += 1;
                    self.pending = false;
                    data = &data[end + 1..];
                }
                None => {
                    if self.wanted() {
                        self.take(data);
                    }
                    self.pending = true;
                    data = &[];
                }
            }
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        let Some(&last_byte) = bytes.last() else { return };
        self.line_chars += bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count();
        self.line_cr = last_byte == b'\r';
        let room = MAX_LINE_BYTES - self.line.len().min(MAX_LINE_BYTES);
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn finish_line(&mut self) {
        let mut kept = std::mem::take(&mut self.line);
        let mut chars = std::mem::take(&mut self.line_chars);
        if std::mem::take(&mut self.line_cr) {
            chars -= 1;
            if kept.last() == Some(&b'\r') {
                kept.pop();
            }
        }
        let truncated = chars > MAX_LINE_CHARS;
        let text: Cow<'_, str> = match std::str::from_utf8(&kept) {
            Ok(text) => Cow::Borrowed(text),
            // A character split by the byte budget lies past the shown characters.
            Err(err) if truncated && err.error_len().is_none() => String::from_utf8_lossy(&kept[..err.valid_up_to()]),
            Err(_) => {
                self.lossy = true;
                String::from_utf8_lossy(&kept)
            }
        };
        let mut entry = format!("{:>6}\t", self.line_no);
        if truncated {
            entry.extend(text.chars().take(MAX_LINE_CHARS));
            entry.push_str(&format!(" [… line truncated: {chars} characters in total]"));
        } else {
            entry.push_str(&text);
        }
        entry.push('\n');
        if self.out.len() + entry.len() > OUTPUT_CAP {
            self.cut = true;
        } else {
            self.out.push_str(&entry);
            self.shown_last = Some(self.line_no);
        }
    }

    fn finish(mut self, shown: &str, offset: u64) -> Result<String, String> {
        if self.pending && self.wanted() {
            self.finish_line();
        }
        let total = self.line_no - 1 + u64::from(self.pending);
        if total == 0 {
            return Ok(format!("`{shown}` is empty (0 lines)."));
        }
        let Some(last) = self.shown_last else {
            return Err(format!(
                "offset {offset} is past the end of `{shown}`, which has {total} line{}; \
                 use an offset from 1 to {total}",
                if total == 1 { "" } else { "s" }
            ));
        };
        let mut out = self.out;
        out.pop();
        if self.cut {
            out.push_str(&format!(
                "\n\n[Output cut at {} KiB: showing lines {offset}-{last} of {total}. \
                 To read on, call read_file with offset {}.]",
                OUTPUT_CAP / 1024,
                last + 1
            ));
        } else if last < total {
            out.push_str(&format!(
                "\n\n[Showing lines {offset}-{last} of {total}. To read on, call read_file with offset {}.]",
                last + 1
            ));
        }
        if self.lossy {
            out.push_str("\n\n[Some bytes of these lines are not valid UTF-8 and are shown as \u{FFFD}.]");
        }
        Ok(out)
    }
}

export_tools!(Tool::new("read_file", DESCRIPTION, read_file).read_only().idempotent());
