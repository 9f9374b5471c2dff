//! The Anthropic Messages API, streamed.
//!
//! The request marks three prompt-caching breakpoints: the system prompt, the last
//! tool, and the last block of the conversation. The first two are the same on every
//! turn of a session; the third lets the next turn read the whole conversation so far
//! from the cache instead of paying for it again.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{ANTHROPIC_DEFAULT_BASE_URL, ProviderConfig, ProviderKind};
use super::wire::{self, HttpSettings};
use super::{Provider, ProviderError, tool_input};
use crate::conversation::{Block, Message, ModelAnswer, ModelRequest, Role, StopReason, StreamEvent, Usage};

const NAME: &str = "anthropic";

/// The API version this wire format follows.
const API_VERSION: &str = "2023-06-01";

/// Talks to the Anthropic Messages API (or a compatible endpoint at `base_url`).
#[derive(Debug)]
pub struct AnthropicProvider {
    http: HttpSettings,
    api_key: HeaderValue,
}

impl AnthropicProvider {
    /// A provider for `config`; it needs a model and an API key.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        config.require_model()?;
        let key = config.api_key.as_ref().filter(|key| !key.expose().is_empty()).ok_or_else(|| {
            ProviderError::MissingApiKey { provider: NAME.into(), env_var: "ANTHROPIC_API_KEY".into() }
        })?;
        let mut api_key = HeaderValue::from_str(key.expose()).map_err(|_| {
            ProviderError::Config("the Anthropic API key contains characters not allowed in an HTTP header".into())
        })?;
        // Keeps the key out of any Debug output of the request.
        api_key.set_sensitive(true);
        let http = HttpSettings::new(
            config,
            ANTHROPIC_DEFAULT_BASE_URL,
            "/v1/messages",
            ProviderKind::Anthropic.key_source(),
        )?;
        Ok(AnthropicProvider { http, api_key })
    }

    async fn attempt(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        let builder = self
            .http
            .client
            .post(&self.http.url)
            .header("x-api-key", self.api_key.clone())
            .header("anthropic-version", API_VERSION)
            .json(&request_body(request, &self.http));
        let response = self.http.send(NAME, builder).await?;
        let mut events = std::pin::pin!(wire::events(NAME, response));
        let mut answer = AnswerBuilder::new(self.http.model(&request.model));
        while let Some(event) = events.next().await {
            let event = event?;
            if answer.apply(&event.data, on_event)? {
                return answer.finish();
            }
        }
        Err(ProviderError::StreamEnded {
            provider: NAME.into(),
            detail: format!("the connection closed after {} events without `message_stop`", answer.events),
        })
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn complete(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(request, on_event).await {
                Ok(answer) => return Ok(answer),
                Err(err) => tokio::time::sleep(self.http.retry.after_failure(NAME, attempt, err)?).await,
            }
        }
    }
}

fn ephemeral() -> Value {
    json!({ "type": "ephemeral" })
}

/// The JSON body of a streamed Messages request.
fn request_body(request: &ModelRequest, http: &HttpSettings) -> Value {
    let mut messages: Vec<Value> = request.messages.iter().map(message).collect();
    if let Some(last) = messages.last_mut().and_then(|m| m["content"].as_array_mut()).and_then(|c| c.last_mut()) {
        last["cache_control"] = ephemeral();
    }
    let mut body = json!({
        "model": http.model(&request.model),
        "max_tokens": http.max_tokens(request.max_tokens),
        "stream": true,
        "messages": messages,
    });
    if let Some(system) = request.system.as_deref().filter(|system| !system.is_empty()) {
        body["system"] = json!([{ "type": "text", "text": system, "cache_control": ephemeral() }]);
    }
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(
                |tool| json!({ "name": tool.name, "description": tool.description, "input_schema": tool.input_schema }),
            )
            .collect();
        if let Some(last) = tools.last_mut() {
            last["cache_control"] = ephemeral();
        }
        body["tools"] = Value::Array(tools);
    }
    body
}

fn message(message: &Message) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let content: Vec<Value> = message.content.iter().filter_map(block).collect();
    json!({ "role": role, "content": content })
}

fn block(block: &Block) -> Option<Value> {
    Some(match block {
        // The API refuses empty text blocks.
        Block::Text { text } if text.is_empty() => return None,
        Block::Text { text } => json!({ "type": "text", "text": text }),
        Block::ToolUse { id, name, input } => {
            // Input that was not a JSON object (the model wrote bad JSON) was answered
            // with an error result already; the API only accepts objects here, so the
            // history carries an empty one rather than failing every later request.
            let input = if input.is_object() { input.clone() } else { json!({}) };
            json!({ "type": "tool_use", "id": id, "name": name, "input": input })
        }
        Block::ToolResult { tool_use_id, content, is_error } => {
            json!({ "type": "tool_result", "tool_use_id": tool_use_id, "content": content, "is_error": is_error })
        }
    })
}

/// One event of the stream, by its `type`; unknown types are ignored.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SseEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta,
    },
    ContentBlockStop,
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// Usage as the API reports it; fields may be absent or null.
#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A content block being assembled.
enum Part {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// A block type this harness doesn't use (thinking, server tools).
    Ignored,
}

/// Assembles the answer from the stream's events.
struct AnswerBuilder {
    model: String,
    usage: Usage,
    parts: BTreeMap<u64, Part>,
    stop_reason: Option<String>,
    events: usize,
}

impl AnswerBuilder {
    fn new(model: &str) -> Self {
        AnswerBuilder {
            model: model.to_string(),
            usage: Usage::default(),
            parts: BTreeMap::new(),
            stop_reason: None,
            events: 0,
        }
    }

    fn update_usage(&mut self, usage: &WireUsage) {
        let fields = [
            (usage.input_tokens, &mut self.usage.input_tokens),
            (usage.output_tokens, &mut self.usage.output_tokens),
            (usage.cache_creation_input_tokens, &mut self.usage.cache_creation_input_tokens),
            (usage.cache_read_input_tokens, &mut self.usage.cache_read_input_tokens),
        ];
        // Counts are cumulative, so a later report replaces an earlier one.
        for (value, field) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
    }

    /// Applies one event's data; true once the message is complete.
    fn apply(&mut self, data: &str, on_event: &mut (dyn FnMut(StreamEvent) + Send)) -> Result<bool, ProviderError> {
        self.events += 1;
        match wire::parse_data::<SseEvent>(NAME, data)? {
            SseEvent::MessageStart { message } => {
                if let Some(model) = message.model.filter(|model| !model.is_empty()) {
                    self.model = model;
                }
                if let Some(usage) = &message.usage {
                    self.update_usage(usage);
                }
            }
            SseEvent::ContentBlockStart { index, content_block } => {
                let part = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            on_event(StreamEvent::Text(text.clone()));
                        }
                        Part::Text(text)
                    }
                    StartBlock::ToolUse { id, name } => {
                        on_event(StreamEvent::ToolUseStart { id: id.clone(), name: name.clone() });
                        Part::Tool { id, name, json: String::new() }
                    }
                    StartBlock::Other => Part::Ignored,
                };
                self.parts.insert(index, part);
            }
            SseEvent::ContentBlockDelta { index, delta } => match (self.parts.get_mut(&index), delta) {
                (Some(Part::Text(text)), Delta::Text { text: more }) => {
                    text.push_str(&more);
                    on_event(StreamEvent::Text(more));
                }
                (Some(Part::Tool { id, json, .. }), Delta::InputJson { partial_json }) => {
                    json.push_str(&partial_json);
                    on_event(StreamEvent::ToolInputDelta { id: id.clone(), partial_json });
                }
                (None, _) => {
                    return Err(ProviderError::Malformed {
                        provider: NAME.into(),
                        detail: format!("a delta for content block {index}, which never started"),
                    });
                }
                // Deltas of ignored blocks, and delta types this harness doesn't use.
                _ => {}
            },
            SseEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                if let Some(usage) = &usage {
                    self.update_usage(usage);
                }
            }
            SseEvent::MessageStop => return Ok(true),
            SseEvent::Error { error } => {
                return Err(ProviderError::Api {
                    provider: NAME.into(),
                    status: None,
                    kind: error.kind,
                    message: error.message,
                    retry_after: None,
                });
            }
            SseEvent::ContentBlockStop | SseEvent::Ping | SseEvent::Unknown => {}
        }
        Ok(false)
    }

    fn finish(self) -> Result<ModelAnswer, ProviderError> {
        let Some(raw) = self.stop_reason else {
            return Err(ProviderError::Malformed {
                provider: NAME.into(),
                detail: "the message stopped without a stop_reason".into(),
            });
        };
        let content = self
            .parts
            .into_values()
            .filter_map(|part| match part {
                Part::Text(text) if text.is_empty() => None,
                Part::Text(text) => Some(Block::Text { text }),
                Part::Tool { id, name, json } => Some(Block::ToolUse { id, name, input: tool_input(&json) }),
                Part::Ignored => None,
            })
            .collect();
        Ok(ModelAnswer { content, stop_reason: stop_reason(raw), usage: self.usage, model: self.model })
    }
}

fn stop_reason(raw: String) -> StopReason {
    match raw.as_str() {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "pause_turn" => StopReason::PauseTurn,
        "refusal" => StopReason::Refusal,
        _ => StopReason::Other(raw),
    }
}
