//! An example tool component: the smallest useful thing built with `tool-sdk`.

use schemars::JsonSchema;
use serde::Deserialize;
use tool_sdk::{Tool, export_tools};

/// Input of `word_count`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WordCountInput {
    /// The text whose words are counted.
    text: String,
}

fn word_count(input: WordCountInput) -> String {
    let words = input.text.split_whitespace().count();
    let lines = input.text.lines().count();
    format!("{words} words, {lines} lines, {} bytes", input.text.len())
}

export_tools!(
    Tool::new("word_count", "Counts the words, lines and bytes of `text`.", word_count).read_only().idempotent()
);
