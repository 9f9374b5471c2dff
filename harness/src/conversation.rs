//! The conversation as data, independent of any provider's wire format.
//!
//! Providers translate these types to and from their APIs; the store persists them
//! inside [`crate::event::Event`]s; the loop builds a [`ModelRequest`] from the log.

use std::ops::AddAssign;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The user, and tool results sent back to the model.
    User,
    /// The model.
    Assistant,
}

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool call.
    ToolUse {
        /// The provider's id for this call, echoed back in the result.
        id: String,
        /// The tool's name.
        name: String,
        /// The input the model produced. May be any JSON, including invalid input for
        /// the tool; the loop validates it before running anything.
        input: Value,
    },
    /// The result of a tool call, sent back to the model.
    ToolResult {
        /// The id of the [`Block::ToolUse`] this answers.
        tool_use_id: String,
        /// The result text.
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Block>,
}

/// A tool as offered to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// The tool's name.
    pub name: String,
    /// What the tool does, written for a model.
    pub description: String,
    /// The JSON Schema of the tool's input.
    pub input_schema: Value,
}

/// Everything a provider needs for one model call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The model's name as the provider knows it.
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The conversation so far, oldest first; the last message is from the user.
    pub messages: Vec<Message>,
    /// The tools the model may call; shared, since every request of a harness
    /// offers the same ones.
    pub tools: Arc<[ToolDef]>,
    /// The most tokens the answer may have.
    pub max_tokens: u32,
}

/// Tokens used by one model call, or summed over many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens billed at the normal rate.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its turn.
    EndTurn,
    /// The model wants its tool calls run.
    ToolUse,
    /// The answer hit `max_tokens`.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence,
    /// The provider paused a long turn; sending the answer back continues it.
    PauseTurn,
    /// The model declined to answer.
    Refusal,
    /// A reason this harness doesn't know, as the provider spelled it.
    Other(String),
}

/// One complete answer from the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelAnswer {
    /// Text and tool calls, in the order the model produced them.
    pub content: Vec<Block>,
    /// Why the model stopped.
    pub stop_reason: StopReason,
    /// Tokens this call used.
    pub usage: Usage,
    /// The model that answered, as the provider reported it.
    pub model: String,
}

impl ModelAnswer {
    /// The tool calls of this answer, in order: (id, name, input).
    pub fn tool_calls(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|block| match block {
            Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }

    /// The answer's text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|block| match block {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Progress while an answer streams in, for display only: the committed
/// [`ModelAnswer`] is what counts.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// More text of the answer.
    Text(String),
    /// The model started a tool call.
    ToolUseStart {
        /// The call's id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// More of a tool call's input JSON.
    ToolInputDelta {
        /// The call's id.
        id: String,
        /// A fragment of the input JSON.
        partial_json: String,
    },
}
