//! What can go wrong while asking a model, phrased for the operator who has to fix it.

use std::path::PathBuf;
use std::time::Duration;

/// Why a provider could not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The API answered with an error (an HTTP status, or an `error` event mid-stream).
    #[error("{}", api_message(.provider, .status, .kind, .message))]
    Api {
        /// The provider's short name.
        provider: String,
        /// The HTTP status; `None` for an error reported inside a successful stream.
        status: Option<u16>,
        /// The API's own error type, e.g. `invalid_request_error`.
        kind: String,
        /// The API's own message.
        message: String,
        /// How long the API asked us to wait before trying again.
        retry_after: Option<Duration>,
    },
    /// The API refused the credentials (401 or 403).
    #[error("{provider} refused the credentials ({status} {kind}): {message}; check the API key in {key_source}")]
    Auth {
        /// The provider's short name.
        provider: String,
        /// 401 or 403.
        status: u16,
        /// The API's own error type.
        kind: String,
        /// The API's own message.
        message: String,
        /// Where the key comes from: the environment variable and the config key.
        key_source: String,
    },
    /// No API key is configured for a provider that needs one.
    #[error("{provider} needs an API key: set {env_var} or `api_key` in the provider config")]
    MissingApiKey {
        /// The provider's short name.
        provider: String,
        /// The environment variable that holds the key.
        env_var: String,
    },
    /// Every attempt failed with a retryable error.
    #[error("{provider} still failing after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// The provider's short name.
        provider: String,
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<ProviderError>,
    },
    /// The stream stopped before the message was complete.
    #[error("{provider}'s stream ended before the message was complete: {detail}")]
    StreamEnded {
        /// The provider's short name.
        provider: String,
        /// What was missing.
        detail: String,
    },
    /// The stream carried data this wire format does not allow.
    #[error("{provider} sent malformed stream data: {detail}; check that base_url points at a compatible API")]
    Malformed {
        /// The provider's short name.
        provider: String,
        /// What was wrong, with a short excerpt.
        detail: String,
    },
    /// The request could not be sent, or the connection failed.
    #[error("cannot reach {provider} at {url}: {detail}")]
    Transport {
        /// The provider's short name.
        provider: String,
        /// The endpoint, without credentials or query.
        url: String,
        /// The underlying error chain.
        detail: String,
    },
    /// A cassette could not be read, written or played.
    #[error("cassette {}: {problem}", path.display())]
    Cassette {
        /// The cassette file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The provider configuration is incomplete or invalid.
    #[error("provider config: {0}")]
    Config(String),
}

impl ProviderError {
    /// Whether trying the same request again may succeed: rate limits, overload, server
    /// failures, broken connections and streams cut short. Nothing of a failed attempt
    /// was returned to the caller, so a retry is always safe.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Api { status: Some(status), .. } => *status == 429 || (500..=599).contains(status),
            // Errors inside a 200 stream carry no status; their type says what happened.
            ProviderError::Api { status: None, kind, .. } => {
                matches!(kind.as_str(), "overloaded_error" | "rate_limit_error" | "api_error" | "server_error")
            }
            ProviderError::StreamEnded { .. } | ProviderError::Transport { .. } => true,
            _ => false,
        }
    }

    /// The delay the API asked for before a retry, if it named one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn api_message(provider: &str, status: &Option<u16>, kind: &str, message: &str) -> String {
    let Some(status) = *status else {
        let hint = if kind == "overloaded_error" { "; the service is overloaded, try again later" } else { "" };
        return format!("{provider} reported an error mid-stream ({kind}): {message}{hint}");
    };
    let (what, hint) = match status {
        400 | 422 => ("rejected the request", "; check the model name and request"),
        404 => ("rejected the request", "; check base_url and the model name"),
        413 => ("rejected the request", "; the request is too large, shorten the conversation"),
        429 => ("is rate limiting requests", "; wait, or lower the request rate"),
        529 => ("is overloaded", "; try again later"),
        500..=599 => ("failed to answer", "; the service had a problem, try again later"),
        _ => ("rejected the request", ""),
    };
    format!("{provider} {what} ({status} {kind}): {message}{hint}")
}
