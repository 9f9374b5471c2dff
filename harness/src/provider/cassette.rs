//! Cassettes: recorded model answers as a JSON file, and the provider that plays them.
//!
//! The answer for a request is chosen by how many model answers its conversation
//! already holds, not by a counter in the provider: a resumed session that asks for
//! the same step again gets the same answer, and one cassette serves any number of
//! concurrent replays.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Provider, ProviderError, step_of};
use crate::conversation::{Block, ModelAnswer, ModelRequest, Role, StreamEvent};

/// The cassette format this harness reads and writes.
pub const CASSETTE_VERSION: u32 = 1;

/// A recorded conversation's model answers, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// The format version, [`CASSETTE_VERSION`].
    pub version: u32,
    /// What the recording shows, for humans.
    #[serde(default)]
    pub description: String,
    /// One per model call; interaction i answers the request with i assistant messages.
    #[serde(default)]
    pub interactions: Vec<Interaction>,
}

/// One recorded model call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interaction {
    /// What was asked, for humans reading the file; replay ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestSummary>,
    /// If set, replay checks that the request's last user message contains this text,
    /// so a cassette that no longer matches the conversation fails loudly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_last_user: Option<String>,
    /// The model's answer.
    pub answer: ModelAnswer,
}

/// A short description of a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSummary {
    /// The model asked.
    pub model: String,
    /// How many messages the conversation had.
    pub messages: usize,
    /// The tools offered, by name.
    pub tools: Vec<String>,
    /// The last user message's text (or its tool results).
    pub last_user: String,
}

/// Longest `last_user` kept in a summary, in characters.
const SUMMARY_TEXT: usize = 200;

impl RequestSummary {
    /// Summarizes `request`.
    pub fn of(request: &ModelRequest) -> Self {
        let text = last_user(request);
        let last_user = match text.char_indices().nth(SUMMARY_TEXT) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        };
        RequestSummary {
            model: request.model.clone(),
            messages: request.messages.len(),
            tools: request.tools.iter().map(|tool| tool.name.clone()).collect(),
            last_user,
        }
    }
}

/// The last user message's text blocks, or its tool results if it has no text.
fn last_user(request: &ModelRequest) -> String {
    let Some(message) = request.messages.iter().rev().find(|message| message.role == Role::User) else {
        return String::new();
    };
    let texts: Vec<&str> = message
        .content
        .iter()
        .filter_map(|block| match block {
            Block::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !texts.is_empty() {
        return texts.join("\n");
    }
    let results: Vec<&str> = message
        .content
        .iter()
        .filter_map(|block| match block {
            Block::ToolResult { content, .. } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    results.join("\n")
}

fn cassette_error(path: &Path, problem: impl Into<String>) -> ProviderError {
    ProviderError::Cassette { path: path.to_path_buf(), problem: problem.into() }
}

impl Cassette {
    /// An empty cassette.
    pub fn new(description: impl Into<String>) -> Self {
        Cassette { version: CASSETTE_VERSION, description: description.into(), interactions: Vec::new() }
    }

    /// Reads and checks the cassette at `path`.
    pub fn load(path: &Path) -> Result<Self, ProviderError> {
        let text =
            std::fs::read_to_string(path).map_err(|err| cassette_error(path, format!("cannot read it: {err}")))?;
        Self::parse(path, &text)
    }

    /// Parses cassette text; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ProviderError> {
        /// Only the version, read first so a newer format is reported as such rather
        /// than as whatever field it changed.
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        let malformed = |err: serde_json::Error| cassette_error(path, format!("not a valid cassette: {err}"));
        let Version { version } = serde_json::from_str(text).map_err(malformed)?;
        match version {
            Some(CASSETTE_VERSION) => {}
            Some(other) => {
                return Err(cassette_error(
                    path,
                    format!("version {other} is not supported; this harness reads version {CASSETTE_VERSION}"),
                ));
            }
            None => return Err(cassette_error(path, "no `version` field; is this a cassette?")),
        }
        serde_json::from_str(text).map_err(malformed)
    }

    /// The cassette as pretty JSON, ending in a newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }
}

/// Plays a cassette: answers request i with interaction i.
#[derive(Debug)]
pub struct ReplayProvider {
    path: PathBuf,
    cassette: Cassette,
}

impl ReplayProvider {
    /// Loads the cassette at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ProviderError> {
        let path = path.into();
        let cassette = Cassette::load(&path)?;
        Ok(ReplayProvider { path, cassette })
    }

    /// Plays `cassette`; `path` names it in errors.
    pub fn new(cassette: Cassette, path: impl Into<PathBuf>) -> Self {
        ReplayProvider { path: path.into(), cassette }
    }

    /// The cassette being played.
    pub fn cassette(&self) -> &Cassette {
        &self.cassette
    }
}

#[async_trait::async_trait]
impl Provider for ReplayProvider {
    fn name(&self) -> &str {
        "replay"
    }

    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        let step = step_of(request);
        let Some(interaction) = self.cassette.interactions.get(step) else {
            return Err(cassette_error(
                &self.path,
                format!(
                    "exhausted: it holds {} interactions, but the conversation already has {step} model answers \
                     and asks for answer {}; record the cassette again",
                    self.cassette.interactions.len(),
                    step + 1
                ),
            ));
        };
        if let Some(expected) = &interaction.expect_last_user {
            let actual = last_user(request);
            if !actual.contains(expected.as_str()) {
                return Err(cassette_error(
                    &self.path,
                    format!(
                        "interaction {step} expects the last user message to contain {expected:?}, \
                         but it is {actual:?}; the conversation no longer matches the recording"
                    ),
                ));
            }
        }
        for block in &interaction.answer.content {
            match block {
                Block::Text { text } => on_event(StreamEvent::Text(text.clone())),
                Block::ToolUse { id, name, input } => {
                    on_event(StreamEvent::ToolUseStart { id: id.clone(), name: name.clone() });
                    // Input kept as a string was the model's raw, unparseable text.
                    let partial_json = match input {
                        serde_json::Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    };
                    on_event(StreamEvent::ToolInputDelta { id: id.clone(), partial_json });
                }
                Block::ToolResult { .. } => {}
            }
        }
        Ok(interaction.answer.clone())
    }
}
