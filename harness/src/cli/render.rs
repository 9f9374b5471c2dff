//! What a run looks like in a terminal, and the small formatting helpers the
//! subcommands share (times, token counts, previews).

use std::io::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use harness::agent::{Observer, RunOutcome};
use harness::conversation::{StreamEvent, Usage};
use harness::event::{EndReason, Event};
use harness::store::{SessionId, Status};

/// Lines of a tool result shown under it.
const PREVIEW_LINES: usize = 10;
/// Bytes of a tool result shown under it.
const PREVIEW_BYTES: usize = 2048;
/// Characters of a tool call's input shown beside it.
const INPUT_CHARS: usize = 160;

/// Streams a run to stdout: the model's text as it arrives, each tool call as
/// `→ name {input}` and each result as `← ok`/`← error` with its first lines.
#[derive(Default)]
pub struct Terminal {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Text of the current answer was streamed, so its commit needn't print it again.
    streamed: bool,
    /// The last thing printed left a line open.
    mid_line: bool,
    /// The last thing printed was a tool result: the next text starts a new paragraph.
    after_result: bool,
}

impl Terminal {
    fn with<T>(&self, body: impl FnOnce(&mut State, &mut std::io::StdoutLock<'static>) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = std::io::stdout().lock();
        let value = body(&mut state, &mut out);
        let _ = out.flush();
        value
    }
}

impl State {
    /// Ends the current line if text left it open.
    fn end_line(&mut self, out: &mut impl std::io::Write) {
        if self.mid_line {
            let _ = writeln!(out);
            self.mid_line = false;
        }
    }
}

impl Observer for Terminal {
    fn stream(&self, event: &StreamEvent) {
        if let StreamEvent::Text(text) = event
            && !text.is_empty()
        {
            self.with(|state, out| {
                if std::mem::take(&mut state.after_result) {
                    let _ = writeln!(out);
                }
                let _ = write!(out, "{text}");
                state.streamed = true;
                state.mid_line = !text.ends_with('\n');
            });
        }
    }

    fn committed(&self, _first_seq: u64, events: &[Event]) {
        self.with(|state, out| {
            for event in events {
                match event {
                    Event::ModelAnswer(answer) => {
                        // A provider that streamed nothing (or a retried call) still shows its text.
                        if !state.streamed {
                            let text = answer.text();
                            if !text.trim().is_empty() {
                                if std::mem::take(&mut state.after_result) {
                                    let _ = writeln!(out);
                                }
                                let _ = write!(out, "{}", text.trim_end());
                                state.mid_line = true;
                            }
                        }
                        state.streamed = false;
                        state.end_line(out);
                        for (_, name, input) in answer.tool_calls() {
                            let _ = writeln!(out, "→ {name} {}", compact_json(input, INPUT_CHARS));
                        }
                    }
                    Event::ToolResult { name, content, is_error, .. } => {
                        state.end_line(out);
                        let verdict = if *is_error { "error" } else { "ok" };
                        let _ = writeln!(out, "← {verdict} ({name})");
                        let _ = write!(out, "{}", preview(content, "  │ "));
                        state.after_result = true;
                    }
                    Event::Error { message } => {
                        state.end_line(out);
                        let _ = writeln!(out, "✗ {message}");
                    }
                    Event::UserMessage { .. }
                    | Event::ToolStarted { .. }
                    | Event::RunEnded { .. }
                    | Event::ClientToolCall { .. } => {}
                }
            }
        });
    }
}

/// JSON on one line, cut to `max` characters.
pub fn compact_json(value: &serde_json::Value, max: usize) -> String {
    cut(&value.to_string(), max)
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `1 line`, `2 lines`: `n` and the noun that fits it.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// The first lines of `content` (at most [`PREVIEW_LINES`] and [`PREVIEW_BYTES`]),
/// each behind `prefix`, with a note of what was left out.
pub fn preview(content: &str, prefix: &str) -> String {
    let mut out = String::new();
    let total = content.lines().count();
    let mut shown = 0;
    let mut bytes = 0;
    for line in content.lines().take(PREVIEW_LINES) {
        if bytes + line.len() > PREVIEW_BYTES {
            let room = PREVIEW_BYTES.saturating_sub(bytes);
            let end = (0..=room.min(line.len())).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
            out.push_str(&format!("{prefix}{}…\n", &line[..end]));
            shown += 1;
            break;
        }
        bytes += line.len();
        out.push_str(&format!("{prefix}{line}\n"));
        shown += 1;
    }
    if total > shown {
        let noun = if total - shown == 1 { "line" } else { "lines" };
        out.push_str(&format!("{prefix}… {} more {noun}\n", total - shown));
    }
    out
}

/// The end-of-run report: session, reason, usage, cost and where to look next.
pub fn summary(id: &SessionId, outcome: &RunOutcome, model: &str, priced: bool, command: &str) -> String {
    let mut out = format!("\nsession {id}: {}\n", reason(&outcome.reason));
    if let Some(error) = &outcome.error {
        out.push_str(&format!("error: {error}\n"));
    }
    out.push_str(&format!("usage: {}\n", usage(&outcome.usage)));
    out.push_str(&format!("cost: {}\n", cost(outcome.cost_usd, model, priced)));
    out.push_str(&format!("inspect: {command} sessions log {id}\n"));
    out
}

/// A status as listings print it.
pub fn status(status: Status) -> &'static str {
    match status {
        Status::Idle => "idle",
        Status::Running => "running",
        Status::Finished => "finished",
        Status::Failed => "failed",
        Status::Cancelled => "cancelled",
    }
}

/// A run's end in words.
pub fn reason(reason: &EndReason) -> &'static str {
    match reason {
        EndReason::EndTurn => "finished (the model ended its turn)",
        EndReason::MaxTurns => "stopped at the maximum number of model calls (`agent.max_turns`)",
        EndReason::Budget => "stopped at its budget (`agent.budget`)",
        EndReason::Cancelled => "cancelled",
        EndReason::Failed => "failed",
    }
}

/// Token counts in one line.
pub fn usage(usage: &Usage) -> String {
    format!(
        "{} input, {} output, {} cache-write, {} cache-read tokens",
        usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens
    )
}

/// A cost, or how to get one.
pub fn cost(usd: f64, model: &str, priced: bool) -> String {
    if priced {
        format!("${usd:.4}")
    } else {
        format!("not priced (add [prices.{}] to the config file)", toml_key(model))
    }
}

/// `key` as a TOML table key, quoted unless bare.
fn toml_key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        key.to_string()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `time` as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn datetime(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let (year, month, day) = civil(secs / 86_400);
    let rest = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

/// `time` as `HH:MM:SS` in UTC.
pub fn clock(time: SystemTime) -> String {
    datetime(time)[11..].to_string()
}

/// `time` as RFC 3339 in UTC, for JSON.
pub fn rfc3339(time: SystemTime) -> String {
    let nanos = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.subsec_millis());
    format!("{}.{nanos:03}Z", datetime(time).replace(' ', "T"))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`), so no date crate is needed for three formats.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(datetime(at(0)), "1970-01-01 00:00:00");
        assert_eq!(datetime(at(951_782_400)), "2000-02-29 00:00:00");
        assert_eq!(datetime(at(1_700_000_000)), "2023-11-14 22:13:20");
        assert_eq!(clock(at(1_700_000_000)), "22:13:20");
        assert_eq!(rfc3339(at(1_700_000_000) + Duration::from_millis(5)), "2023-11-14T22:13:20.005Z");
    }

    #[test]
    fn previews_are_capped_by_lines_and_bytes() {
        let long: String = (1..=25).map(|i| format!("line {i}\n")).collect();
        let shown = preview(&long, "| ");
        assert_eq!(shown.lines().count(), 11);
        assert!(shown.ends_with("| … 15 more lines\n"), "{shown}");
        let wide = format!("{}\nnext\n", "é".repeat(3000));
        let shown = preview(&wide, "");
        assert!(shown.len() < 2100 && shown.contains("…\n… 1 more line\n"), "{shown}");
        assert_eq!(preview("", "| "), "");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(toml_key("claude-sonnet-4-5 (scripted)"), "\"claude-sonnet-4-5 (scripted)\"");
    }
}
