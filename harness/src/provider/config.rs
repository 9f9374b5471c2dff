//! The `[provider]` section of a config file, completed from the environment, and
//! the factory that turns it into a [`Provider`].

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AnthropicProvider, OpenAiProvider, Provider, ProviderError, Recorder, ReplayProvider, RetryConfig};

/// The Anthropic API, unless configured otherwise.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The OpenAI API, unless configured otherwise.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Which wire format a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions, also spoken by Ollama, vLLM and llama.cpp.
    #[serde(rename = "openai")]
    OpenAi,
    /// Answers played back from a cassette file.
    Replay,
}

impl ProviderKind {
    /// The environment variables holding this kind's API key and base URL.
    fn env_vars(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            ProviderKind::Anthropic => Some(("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ANTHROPIC_DEFAULT_BASE_URL)),
            ProviderKind::OpenAi => Some(("OPENAI_API_KEY", "OPENAI_BASE_URL", OPENAI_DEFAULT_BASE_URL)),
            ProviderKind::Replay => None,
        }
    }

    /// Where the API key is configured, for messages.
    pub(crate) fn key_source(self) -> String {
        match self.env_vars() {
            Some((key_var, _, _)) => format!("{key_var} (or `api_key` in the provider config)"),
            None => "the provider config".into(),
        }
    }
}

/// An API key; its `Debug` never shows it and it is never serialized.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// How to reach a model: one `[provider]` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The wire format.
    pub kind: ProviderKind,
    /// The model used when a request names none; required for the HTTP providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The API's base URL; each kind has a default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The API key; usually taken from the environment instead of a file.
    #[serde(default, skip_serializing)]
    pub api_key: Option<ApiKey>,
    /// The answer length used when a request asks for 0 tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The longest silence tolerated on a connection, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_timeout_secs: Option<u64>,
    /// Retries of failed calls.
    #[serde(default)]
    pub retry: RetryConfig,
    /// The cassette a `replay` provider plays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cassette: Option<PathBuf>,
    /// If set, every answer is also recorded into this cassette.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<PathBuf>,
}

impl ProviderConfig {
    /// A config of `kind` with every optional field unset.
    pub fn new(kind: ProviderKind) -> Self {
        ProviderConfig {
            kind,
            model: None,
            base_url: None,
            api_key: None,
            max_tokens: None,
            stream_timeout_secs: None,
            retry: RetryConfig::default(),
            cassette: None,
            record: None,
        }
    }

    /// Fills unset fields from the process environment (`ANTHROPIC_API_KEY`,
    /// `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`), then from defaults.
    pub fn fill_from_env(&mut self) {
        self.fill_from(|name| std::env::var(name).ok());
    }

    /// Like [`fill_from_env`](Self::fill_from_env), reading variables through `var`
    /// (so tests need not change the process environment).
    pub fn fill_from(&mut self, var: impl Fn(&str) -> Option<String>) {
        let Some((key_var, url_var, default_url)) = self.kind.env_vars() else { return };
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        if self.api_key.is_none() {
            self.api_key = var(key_var).map(|key| ApiKey::new(key.trim()));
        }
        if self.base_url.is_none() {
            self.base_url = Some(var(url_var).unwrap_or_else(|| default_url.to_string()));
        }
    }

    /// Builds the provider, wrapped in a [`Recorder`] if `record` is set.
    pub fn build(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        self.build_with_secrets(&[])
    }

    /// Like [`build`](Self::build); when recording, `extra_secrets` (name, value) are
    /// redacted from the cassette besides the API key.
    pub fn build_with_secrets(&self, extra_secrets: &[(&str, &str)]) -> Result<Arc<dyn Provider>, ProviderError> {
        let provider: Arc<dyn Provider> = match self.kind {
            ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(self)?),
            ProviderKind::OpenAi => Arc::new(OpenAiProvider::new(self)?),
            ProviderKind::Replay => {
                let path = self.cassette.as_ref().ok_or_else(|| {
                    ProviderError::Config("kind = \"replay\" needs `cassette`, the path of the file to play".into())
                })?;
                Arc::new(ReplayProvider::open(path)?)
            }
        };
        let Some(path) = &self.record else { return Ok(provider) };
        let mut secrets: Vec<(&str, &str)> = extra_secrets.to_vec();
        if let (Some(key), Some((key_var, _, _))) = (&self.api_key, self.kind.env_vars()) {
            secrets.push((key_var, key.expose()));
        }
        Ok(Arc::new(Recorder::new(provider, path.clone(), &secrets)?))
    }

    /// The model, or a config error naming the kind.
    pub(crate) fn require_model(&self) -> Result<(), ProviderError> {
        match self.model.as_deref().map(str::trim) {
            Some(model) if !model.is_empty() => Ok(()),
            _ => Err(ProviderError::Config(format!(
                "kind = \"{}\" needs `model`, the model name the API knows",
                match self.kind {
                    ProviderKind::Anthropic => "anthropic",
                    ProviderKind::OpenAi => "openai",
                    ProviderKind::Replay => "replay",
                }
            ))),
        }
    }
}
