//! Locating update hunks in a file and splicing in their new lines.

use crate::parse::{Hunk, Line};

/// Ways a file line may equal a patch line, strictest first: models often get
/// trailing whitespace wrong, and nothing else is forgiven.
const LINE_PASSES: [fn(&str, &str) -> bool; 2] =
    [|line, want| line == want, |line, want| line.trim_end() == want.trim_end()];

/// Lines of a hunk quoted in an error before the rest are elided.
const MAX_QUOTED_LINES: usize = 12;

/// Applies `hunks` in order to `text`; the error names the file and the hunk.
///
/// The result keeps the file's line ending (LF or CRLF) and whether it ends with one.
pub fn apply(text: &str, hunks: &[Hunk], shown: &str) -> Result<String, String> {
    let crlf = text.find('\n').is_some_and(|end| text[..end].ends_with('\r'));
    let ends_with_newline = text.ends_with('\n');
    let mut lines: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split('\n').collect() };
    if ends_with_newline {
        lines.pop();
    }
    if crlf {
        for line in &mut lines {
            *line = line.strip_suffix('\r').unwrap_or(line);
        }
    }
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut cursor = 0;
    for (index, hunk) in hunks.iter().enumerate() {
        let name = format!("`{shown}` hunk {} of {} (patch line {})", index + 1, hunks.len(), hunk.line);
        // The search includes the header line itself: models often repeat it as context.
        let (from, insert_at) = match &hunk.header {
            Some(header) => {
                let found = find_header(&lines, cursor, header).ok_or_else(|| {
                    format!("{name}: its `@@ {header}` line was not found in the file {}", after(cursor))
                })?;
                (found, found + 1)
            }
            None => (cursor, lines.len()),
        };
        let (start, used) =
            locate(&lines, from, insert_at, hunk).ok_or_else(|| not_found(&lines, from, hunk, &name))?;
        out.extend_from_slice(&lines[cursor..start]);
        cursor = start;
        for line in used {
            match line {
                // The file's own text: it may differ from the patch in trailing whitespace.
                Line::Context(_) => {
                    out.push(lines[cursor]);
                    cursor += 1;
                }
                Line::Removed(_) => cursor += 1,
                Line::Added(text) => out.push(text),
            }
        }
    }
    out.extend_from_slice(&lines[cursor..]);
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut result = out.join(eol);
    if !out.is_empty() && (ends_with_newline || text.is_empty()) {
        result.push_str(eol);
    }
    Ok(result)
}

/// Where `hunk` applies at or after line index `from`: the start, and the hunk
/// lines to splice there. A hunk of added lines only goes to `insert_at`.
fn locate<'h>(lines: &[&str], from: usize, insert_at: usize, hunk: &'h Hunk) -> Option<(usize, &'h [Line])> {
    let old = old_lines(&hunk.lines);
    if old.is_empty() {
        let at = if hunk.end_of_file { lines.len() } else { insert_at };
        return Some((at, &hunk.lines));
    }
    if let Some(start) = find(lines, from, &old, hunk.end_of_file) {
        return Some((start, &hunk.lines));
    }
    // A trailing empty context line usually stands for the file's final newline.
    match hunk.lines.split_last() {
        Some((Line::Context(last), rest)) if last.is_empty() && old.len() > 1 => {
            find(lines, from, &old[..old.len() - 1], hunk.end_of_file).map(|start| (start, rest))
        }
        _ => None,
    }
}

/// The lines a hunk expects in the file: its context and removed lines.
fn old_lines(lines: &[Line]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|line| match line {
            Line::Context(text) | Line::Removed(text) => Some(text.as_str()),
            Line::Added(_) => None,
        })
        .collect()
}

/// The first index at or after `from` where `old` matches, or the one where it
/// ends the file for `end_of_file`.
fn find(lines: &[&str], from: usize, old: &[&str], end_of_file: bool) -> Option<usize> {
    let last_start = lines.len().checked_sub(old.len())?;
    for same in LINE_PASSES {
        let matches =
            |start: usize| lines[start..start + old.len()].iter().zip(old).all(|(line, want)| same(line, want));
        if end_of_file {
            if last_start >= from && matches(last_start) {
                return Some(last_start);
            }
        } else if let Some(start) = (from..=last_start).find(|&start| matches(start)) {
            return Some(start);
        }
    }
    None
}

/// The line an `@@` header names: exact, then ignoring surrounding whitespace, then
/// any line containing it, since a header only narrows where the hunk is searched.
fn find_header(lines: &[&str], from: usize, header: &str) -> Option<usize> {
    let passes: [&dyn Fn(&str) -> bool; 4] = [
        &|line| line == header,
        &|line| line.trim_end() == header.trim_end(),
        &|line| line.trim() == header.trim(),
        &|line| line.contains(header.trim()),
    ];
    let rest = lines.get(from..)?;
    passes.iter().find_map(|same| rest.iter().position(|line| same(line))).map(|index| from + index)
}

/// `after line N` for a search that starts at line index `from`.
fn after(from: usize) -> String {
    if from == 0 { "(searched the whole file)".to_string() } else { format!("after line {from}") }
}

fn not_found(lines: &[&str], from: usize, hunk: &Hunk, name: &str) -> String {
    let old = old_lines(&hunk.lines);
    let mut quoted: Vec<String> = old.iter().take(MAX_QUOTED_LINES).map(|line| format!("    {line}")).collect();
    if old.len() > MAX_QUOTED_LINES {
        quoted.push(format!("    … ({} more lines)", old.len() - MAX_QUOTED_LINES));
    }
    let mut message = if hunk.end_of_file {
        format!(
            "{name}: the hunk is marked `*** End of File`, but the file does not end with its context and \
             `-` lines:\n{}",
            quoted.join("\n")
        )
    } else {
        format!("{name}: its context and `-` lines were not found in the file {}:\n{}", after(from), quoted.join("\n"))
    };
    message.push_str("\nThey must match consecutive lines of the file exactly (only trailing whitespace may differ).");
    if let Some(earlier) = find(lines, 0, &old, false).filter(|&start| start < from) {
        message.push_str(&format!(
            " They do occur at line {}, before where this hunk's search started: hunks must be in file order, \
             and an `@@` line moves the search to after the line it names.",
            earlier + 1
        ));
    } else {
        message.push_str(" Read the file again and copy the lines from it.");
    }
    message
}
