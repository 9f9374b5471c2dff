//! HTTP plumbing both wire formats share: the client, sending a request, turning an
//! error response into a [`ProviderError`], and reading a server-sent-event stream.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::config::ProviderConfig;
use super::{ProviderError, RetryConfig, retry};

/// The most of an error body read into a message: enough for any API's error JSON.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Longest excerpt of untrusted text quoted in an error message.
const MAX_EXCERPT: usize = 300;

/// Everything an HTTP provider needs, resolved from its config.
#[derive(Debug)]
pub(crate) struct HttpSettings {
    pub client: reqwest::Client,
    /// The full endpoint URL.
    pub url: String,
    /// The endpoint without credentials or query, for messages and logs.
    pub display_url: String,
    /// The model used when a request names none.
    pub model: String,
    /// The answer length used when a request asks for 0 tokens.
    pub max_tokens: u32,
    pub retry: RetryConfig,
    /// Where the key comes from, for authentication errors.
    pub key_source: String,
}

impl HttpSettings {
    /// Resolves `config` for the endpoint `path` under its base URL (or `default_base`).
    pub fn new(
        config: &ProviderConfig,
        default_base: &str,
        path: &str,
        key_source: String,
    ) -> Result<Self, ProviderError> {
        let base = config.base_url.as_deref().unwrap_or(default_base).trim_end_matches('/');
        let url = format!("{base}{path}");
        let parsed = reqwest::Url::parse(&url)
            .map_err(|err| ProviderError::Config(format!("base_url `{base}` is not a valid URL: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ProviderError::Config(format!("base_url `{base}` must start with http:// or https://")));
        }
        let mut display = parsed.clone();
        // A URL may carry credentials; messages and logs must not.
        let _ = display.set_username("");
        let _ = display.set_password(None);
        display.set_query(None);
        let stream_timeout = config.stream_timeout_secs.unwrap_or(super::DEFAULT_STREAM_TIMEOUT_SECS);
        if stream_timeout == 0 {
            return Err(ProviderError::Config("stream_timeout_secs must be at least 1".into()));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(stream_timeout))
            .build()
            .map_err(|err| ProviderError::Config(format!("cannot build the HTTP client: {}", chain(&err))))?;
        Ok(HttpSettings {
            client,
            url,
            display_url: display.to_string(),
            model: config.model.clone().unwrap_or_default(),
            max_tokens: config.max_tokens.unwrap_or(super::DEFAULT_MAX_TOKENS),
            retry: config.retry,
            key_source,
        })
    }

    /// The request's model, or the configured one if the request names none.
    pub fn model<'a>(&'a self, requested: &'a str) -> &'a str {
        if requested.is_empty() { &self.model } else { requested }
    }

    /// The request's token limit, or the configured one if the request asks for 0.
    pub fn max_tokens(&self, requested: u32) -> u32 {
        if requested == 0 { self.max_tokens } else { requested }
    }

    /// Sends `request` and returns the response if it is a successful event stream.
    pub async fn send(
        &self,
        provider: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let response = request.send().await.map_err(|err| ProviderError::Transport {
            provider: provider.to_string(),
            url: self.display_url.clone(),
            detail: chain(&err.without_url()),
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error_from(provider, response).await);
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        // A JSON body where a stream was asked for is an error or a server that ignores
        // `stream: true`; either way there are no events to read.
        if content_type.starts_with("application/json") {
            let body = read_capped(response).await;
            return Err(ProviderError::Malformed {
                provider: provider.to_string(),
                detail: format!("expected an event stream, got JSON: {}", excerpt(&body)),
            });
        }
        Ok(response)
    }

    /// Turns an unsuccessful response into the matching error.
    async fn error_from(&self, provider: &str, response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = retry::retry_after(response.headers(), SystemTime::now());
        let body = read_capped(response).await;
        let (kind, message) = parse_error_body(&body);
        if matches!(status, 401 | 403) {
            return ProviderError::Auth {
                provider: provider.to_string(),
                status,
                kind,
                message,
                key_source: self.key_source.clone(),
            };
        }
        ProviderError::Api { provider: provider.to_string(), status: Some(status), kind, message, retry_after }
    }
}

/// The server-sent events of a response, with stream failures mapped to provider errors.
pub(crate) fn events(provider: &str, response: reqwest::Response) -> impl Stream<Item = Result<Event, ProviderError>> {
    let provider = provider.to_string();
    response.bytes_stream().eventsource().map(move |item| {
        item.map_err(|err| match err {
            // A connection that breaks mid-body, or goes silent past the read timeout,
            // is a stream cut short: the retry logic treats both the same way.
            EventStreamError::Transport(err) => ProviderError::StreamEnded {
                provider: provider.clone(),
                detail: format!("the connection failed: {}", chain(&err.without_url())),
            },
            EventStreamError::Utf8(err) => ProviderError::Malformed {
                provider: provider.clone(),
                detail: format!("the stream is not UTF-8: {err}"),
            },
            EventStreamError::Parser(err) => ProviderError::Malformed {
                provider: provider.clone(),
                detail: format!("not a valid event stream: {err}"),
            },
        })
    })
}

/// Parses one event's JSON data, quoting an excerpt when it isn't valid.
pub(crate) fn parse_data<T: serde::de::DeserializeOwned>(provider: &str, data: &str) -> Result<T, ProviderError> {
    serde_json::from_str(data).map_err(|err| ProviderError::Malformed {
        provider: provider.to_string(),
        detail: format!("{err} in event data `{}`", excerpt(data)),
    })
}

/// Reads up to [`MAX_ERROR_BODY`] bytes of a body as text; a broken body yields what arrived.
async fn read_capped(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The error type and message of an API error body. Anthropic and OpenAI both use
/// `{"error": {"type", "message"}}`; some compatible servers send `{"error": "text"}`
/// or plain text, which is quoted instead.
pub(crate) fn parse_error_body(body: &str) -> (String, String) {
    let fallback = || if body.trim().is_empty() { "(empty body)".to_string() } else { excerpt(body.trim()) };
    let Ok(json) = serde_json::from_str::<Value>(body) else { return ("error".into(), fallback()) };
    match json.get("error") {
        Some(Value::Object(error)) => {
            let text = |key: &str| error.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
            let kind = text("type").or_else(|| text("code")).unwrap_or_else(|| "error".into());
            (kind, text("message").unwrap_or_else(fallback))
        }
        Some(Value::String(message)) => ("error".into(), excerpt(message)),
        _ => ("error".into(), fallback()),
    }
}

/// At most [`MAX_EXCERPT`] characters of `text`, marked when cut.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_EXCERPT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// An error and its sources, joined: reqwest's own message alone rarely says why.
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
