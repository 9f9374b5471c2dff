//! A tool component template: one read-only tool that counts the lines of a file
//! in the session workspace. Replace it with your own tools.

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::{Tool, export_tools};

/// Input of `line_count`. Every field's doc comment becomes its description in
/// the JSON Schema the model reads, so write them for the model.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LineCountInput {
    /// Path of a text file, relative to /workspace.
    path: String,
}

/// Errors become error results the model sees, so say what to do about them.
fn line_count(input: LineCountInput) -> Result<String, String> {
    if input.path.starts_with('/') || input.path.split('/').any(|part| part == "..") {
        return Err(format!("`{}` must be a relative path inside /workspace", input.path));
    }
    let path = format!("/workspace/{}", input.path);
    let text = std::fs::read_to_string(&path).map_err(|err| format!("cannot read `{}`: {err}", input.path))?;
    Ok(format!("{} has {} lines", input.path, text.lines().count()))
}

export_tools!(
    Tool::new("line_count", "Counts the lines of a text file in /workspace. Input: a relative path.", line_count)
        // Truthful flags: read-only tools get a read-only mount; idempotent tools
        // may be re-run after a crash instead of being reported as interrupted.
        .read_only()
        .idempotent()
);
