//! Model providers: the Anthropic Messages API and OpenAI-style Chat Completions
//! (also Ollama, vLLM and llama.cpp) over reqwest, streaming, with retries; and
//! cassettes, so tests and demos replay recorded answers without a network.
//!
//! A provider turns one [`ModelRequest`] into one [`ModelAnswer`]. Progress while
//! the answer streams in goes to a callback as [`StreamEvent`]s, for display only.
//! Nothing of a failed attempt is returned, so retrying a rate-limited, overloaded
//! or cut-off call is always safe; the display events of a retried call simply
//! start over.
//!
//! [`ProviderConfig`] is the config-file section and the factory; [`Recorder`]
//! wraps any provider to write a cassette that [`ReplayProvider`] plays back.

mod anthropic;
mod cassette;
mod config;
mod error;
mod openai;
mod record;
mod retry;
mod wire;

use crate::conversation::{ModelAnswer, ModelRequest, StreamEvent};

pub use anthropic::AnthropicProvider;
pub use cassette::{CASSETTE_VERSION, Cassette, Interaction, ReplayProvider, RequestSummary};
pub use config::{ANTHROPIC_DEFAULT_BASE_URL, ApiKey, OPENAI_DEFAULT_BASE_URL, ProviderConfig, ProviderKind};
pub use error::ProviderError;
pub use openai::OpenAiProvider;
pub use record::Recorder;
pub use retry::RetryConfig;

/// The answer length used when neither the request nor the config sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// The longest silence tolerated on a connection, unless configured: generous,
/// because a local model may think for minutes before its first token.
pub const DEFAULT_STREAM_TIMEOUT_SECS: u64 = 300;

/// A source of model answers.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Short name for logs and session metadata ("anthropic", "openai", "replay").
    fn name(&self) -> &str;

    /// Streams one model answer. `on_event` receives display-only progress (text
    /// deltas, tool-use starts, input deltas).
    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError>;
}

impl std::fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("name", &self.name()).finish_non_exhaustive()
    }
}

/// Which interaction of a cassette answers `request`: one per model answer already
/// in the conversation, so a resumed session that re-requests a step gets the same one.
pub(crate) fn step_of(request: &ModelRequest) -> usize {
    request.messages.iter().filter(|message| message.role == crate::conversation::Role::Assistant).count()
}

/// Parses a tool call's accumulated input JSON. A model may produce input that is not
/// JSON at all; that is kept as a string for the loop to report back to the model,
/// never a provider failure.
pub(crate) fn tool_input(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_string()))
}
