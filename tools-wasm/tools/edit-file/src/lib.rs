//! `edit_file`: exact string replacement in one workspace text file.

use std::borrow::Cow;
use std::fs;
use std::io;

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::workspace::{WsPath, describe_io};
use tool_sdk::{Tool, export_tools};

/// Line numbers listed in one message before the rest are elided.
const MAX_LISTED_LINES: usize = 20;

const DESCRIPTION: &str = "\
Edits a text file in the workspace by exact string replacement: finds `old_string` in the file and replaces it \
with `new_string`. `old_string` must match the file exactly, including whitespace, indentation and line breaks \
(copy it from read_file's output without the line-number prefix), and must occur exactly once unless \
`replace_all` is true; include enough surrounding lines to make it unique. \
If the file uses Windows (CRLF) line endings, line breaks in both strings may be written as plain newlines. \
Returns how many occurrences were replaced and at which lines of the original file. \
Fails, changing nothing, when `old_string` is empty or equal to `new_string`, is not found \
(the error points at lines that match apart from whitespace, if any), or occurs several times without \
`replace_all` (the error gives the count and the line numbers). \
Does not create files (use write_file). `path` is relative to /workspace or absolute under /workspace.";

/// Input of `edit_file`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EditFileInput {
    /// Path of the file to edit: relative to /workspace (like `src/main.rs`) or absolute under /workspace.
    path: String,
    /// The exact text to find, including whitespace and indentation; must not be empty.
    old_string: String,
    /// The text to put in place of `old_string`; must differ from it. Empty to delete `old_string`.
    new_string: String,
    /// Replace every occurrence instead of requiring exactly one. Defaults to false.
    #[serde(default)]
    replace_all: bool,
}

fn edit_file(input: EditFileInput) -> Result<String, String> {
    let path = WsPath::resolve(&input.path)?;
    let shown = path.shown();
    if input.old_string.is_empty() {
        return Err("old_string is empty; give the exact text to replace (to create or overwrite a whole file, \
                    use write_file)"
            .to_string());
    }
    if input.old_string == input.new_string {
        return Err("old_string and new_string are identical, so the edit would change nothing".to_string());
    }
    let full = path.full();
    let bytes = fs::read(&full).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => {
            format!("cannot edit `{shown}`: no such file in the workspace (use write_file to create a file)")
        }
        io::ErrorKind::IsADirectory => format!("`{shown}` is a directory, not a file"),
        _ => format!("cannot edit `{shown}`: {}", describe_io(&err)),
    })?;
    let content = String::from_utf8(bytes)
        .map_err(|_| format!("`{shown}` is not UTF-8 text; edit_file only edits text files"))?;

    let (mut old, mut new) = (Cow::Borrowed(&*input.old_string), Cow::Borrowed(&*input.new_string));
    let mut starts = match_starts(&content, &old);
    // Models write line breaks as `\n`; a CRLF file would otherwise never match.
    if starts.is_empty() && content.contains("\r\n") && old.contains('\n') && !old.contains('\r') {
        old = Cow::Owned(old.replace('\n', "\r\n"));
        new = Cow::Owned(new.replace("\r\n", "\n").replace('\n', "\r\n"));
        starts = match_starts(&content, &old);
    }
    if starts.is_empty() {
        return Err(not_found(&content, &input.old_string, &shown));
    }
    let lines = line_numbers(&content, &starts);
    if starts.len() > 1 && !input.replace_all {
        return Err(format!(
            "old_string occurs {} times in `{shown}` (at lines {}); include more surrounding text to make it \
             unique, or set replace_all to true to replace every occurrence",
            starts.len(),
            list(&lines)
        ));
    }
    let updated = content.replace(&*old, &new);
    tool_sdk::workspace::write_atomic(&full, updated.as_bytes())
        .map_err(|err| format!("cannot write `{shown}`: {}; the file is unchanged", describe_io(&err)))?;
    Ok(match lines.as_slice() {
        [line] => format!("Replaced 1 occurrence in `{shown}` (line {line})."),
        _ => format!("Replaced {} occurrences in `{shown}` (lines {}).", lines.len(), list(&lines)),
    })
}

/// Byte offsets of the non-overlapping occurrences of `needle`.
fn match_starts(haystack: &str, needle: &str) -> Vec<usize> {
    haystack.match_indices(needle).map(|(start, _)| start).collect()
}

/// 1-based line numbers of ascending byte offsets.
fn line_numbers(content: &str, starts: &[usize]) -> Vec<usize> {
    let mut line = 1;
    let mut from = 0;
    starts
        .iter()
        .map(|&start| {
            line += content.as_bytes()[from..start].iter().filter(|&&b| b == b'\n').count();
            from = start;
            line
        })
        .collect()
}

fn list(lines: &[usize]) -> String {
    let mut text = lines.iter().take(MAX_LISTED_LINES).map(usize::to_string).collect::<Vec<_>>().join(", ");
    if lines.len() > MAX_LISTED_LINES {
        text.push_str(", …");
    }
    text
}

/// The error for text that is not in the file, pointing at lines that would match
/// if whitespace were ignored: the usual cause is indentation or trailing spaces.
fn not_found(content: &str, old: &str, shown: &str) -> String {
    let mut message = format!(
        "old_string was not found in `{shown}`. It must match the file exactly, including whitespace, \
         indentation and line breaks; read the file again and copy the text."
    );
    let Some(first) = old.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return message;
    };
    let near: Vec<usize> =
        content.lines().enumerate().filter(|(_, line)| line.trim() == first).map(|(index, _)| index + 1).collect();
    if !near.is_empty() {
        message.push_str(&format!(
            " The first non-blank line of old_string, ignoring leading and trailing whitespace, is at line{} {} \
             of the file; compare the whitespace and the lines after it.",
            if near.len() == 1 { "" } else { "s" },
            list(&near)
        ));
    }
    message
}

export_tools!(Tool::new("edit_file", DESCRIPTION, edit_file));
