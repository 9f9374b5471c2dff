//! OpenAI Chat Completions, streamed; the same wire format serves Ollama, vLLM and
//! llama.cpp through `base_url`, which is why a missing API key is allowed.
//!
//! Tool calls arrive as fragments keyed by index: the first carries the id and the
//! name, later ones pieces of the arguments, and fragments of different calls may
//! interleave. They are assembled per index; a fragment with a new id at an index
//! already in use starts a new call, because some compatible servers number every
//! call 0.

use std::collections::HashMap;

use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::{OPENAI_DEFAULT_BASE_URL, ProviderConfig, ProviderKind};
use super::wire::{self, HttpSettings};
use super::{Provider, ProviderError, tool_input};
use crate::conversation::{Block, Message, ModelAnswer, ModelRequest, Role, StopReason, StreamEvent, Usage};

const NAME: &str = "openai";

/// Talks to an OpenAI-compatible Chat Completions endpoint.
#[derive(Debug)]
pub struct OpenAiProvider {
    http: HttpSettings,
    authorization: Option<HeaderValue>,
}

impl OpenAiProvider {
    /// A provider for `config`; it needs a model, and sends a key only if one is set.
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        config.require_model()?;
        let authorization = match config.api_key.as_ref().filter(|key| !key.expose().is_empty()) {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    ProviderError::Config("the OpenAI API key contains characters not allowed in an HTTP header".into())
                })?;
                // Keeps the key out of any Debug output of the request.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http =
            HttpSettings::new(config, OPENAI_DEFAULT_BASE_URL, "/chat/completions", ProviderKind::OpenAi.key_source())?;
        Ok(OpenAiProvider { http, authorization })
    }

    async fn attempt(
        &self,
        request: &ModelRequest,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<ModelAnswer, ProviderError> {
        let mut builder = self.http.client.post(&self.http.url).json(&request_body(request, &self.http));
        if let Some(authorization) = &self.authorization {
            builder = builder.header(reqwest::header::AUTHORIZATION, authorization.clone());
        }
        let response = self.http.send(NAME, builder).await?;
        let mut events = std::pin::pin!(wire::events(NAME, response));
        let mut answer = AnswerBuilder::new(self.http.model(&request.model));
        while let Some(event) = events.next().await {
            let event = event?;
            if event.data.trim() == "[DONE]" {
                return answer.finish();
            }
            answer.apply(&event.data, on_event)?;
        }
        Err(ProviderError::StreamEnded {
            provider: NAME.into(),
            detail: format!("the connection closed after {} chunks without `data: [DONE]`", answer.chunks),
        })
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
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

/// The JSON body of a streamed Chat Completions request.
fn request_body(request: &ModelRequest, http: &HttpSettings) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = request.system.as_deref().filter(|system| !system.is_empty()) {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for message in &request.messages {
        push_message(&mut messages, message);
    }
    let mut body = json!({
        "model": http.model(&request.model),
        // `max_tokens` rather than `max_completion_tokens`: Ollama, vLLM and llama.cpp
        // read only this one, and OpenAI still honours it for chat models.
        "max_tokens": http.max_tokens(request.max_tokens),
        "stream": true,
        // Without this, a streamed answer carries no token counts at all.
        "stream_options": { "include_usage": true },
        "messages": messages,
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": { "name": tool.name, "description": tool.description, "parameters": tool.input_schema },
                })
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    body
}

/// Appends `message` in chat form: a user message becomes its tool results (one `tool`
/// message each, which must directly follow the assistant's calls) and then its text;
/// an assistant message carries its calls with the arguments as a JSON string.
fn push_message(messages: &mut Vec<Value>, message: &Message) {
    let text: String = message
        .content
        .iter()
        .filter_map(|block| match block {
            Block::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    match message.role {
        Role::User => {
            for block in &message.content {
                if let Block::ToolResult { tool_use_id, content, is_error } = block {
                    // The format has no error flag, so the model learns it from the text.
                    let content = if *is_error { format!("Error: {content}") } else { content.clone() };
                    messages.push(json!({ "role": "tool", "tool_call_id": tool_use_id, "content": content }));
                }
            }
            if !text.is_empty() {
                messages.push(json!({ "role": "user", "content": text }));
            }
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .content
                .iter()
                .filter_map(|block| match block {
                    Block::ToolUse { id, name, input } => {
                        // Unparseable arguments were kept as the raw text; send that text back as it was.
                        let arguments = match input {
                            Value::String(raw) => raw.clone(),
                            other => other.to_string(),
                        };
                        Some(json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } }))
                    }
                    _ => None,
                })
                .collect();
            let mut out = json!({ "role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) } });
            if !calls.is_empty() {
                out["tool_calls"] = Value::Array(calls);
            }
            messages.push(out);
        }
    }
}

/// One streamed chunk; every field may be missing or null on some server.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<ChoiceDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// A tool call being assembled.
struct Call {
    id: String,
    /// Whether the id came from the server (rather than being made up here).
    server_id: bool,
    name: String,
    arguments: String,
}

/// Assembles the answer from the stream's chunks.
struct AnswerBuilder {
    model: String,
    text: String,
    calls: Vec<Call>,
    /// The server's index of a call → its position in `calls`.
    by_index: HashMap<u64, usize>,
    finish_reason: Option<String>,
    usage: Usage,
    chunks: usize,
}

impl AnswerBuilder {
    fn new(model: &str) -> Self {
        AnswerBuilder {
            model: model.to_string(),
            text: String::new(),
            calls: Vec::new(),
            by_index: HashMap::new(),
            finish_reason: None,
            usage: Usage::default(),
            chunks: 0,
        }
    }

    fn apply(&mut self, data: &str, on_event: &mut (dyn FnMut(StreamEvent) + Send)) -> Result<(), ProviderError> {
        self.chunks += 1;
        let chunk: Chunk = wire::parse_data(NAME, data)?;
        if let Some(error) = chunk.error {
            let (kind, message) = wire::parse_error_body(&json!({ "error": error }).to_string());
            return Err(ProviderError::Api { provider: NAME.into(), status: None, kind, message, retry_after: None });
        }
        if let Some(model) = chunk.model.filter(|model| !model.is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            let prompt = usage.prompt_tokens.unwrap_or(0);
            let cached = usage.prompt_tokens_details.and_then(|details| details.cached_tokens).unwrap_or(0);
            // `prompt_tokens` includes the cached ones, which are billed differently.
            self.usage = Usage {
                input_tokens: prompt.saturating_sub(cached),
                output_tokens: usage.completion_tokens.unwrap_or(0),
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: cached,
            };
        }
        // Only one answer is asked for; any other choice would be a second candidate.
        let choice = chunk.choices.into_iter().flatten().find(|choice| choice.index.unwrap_or(0) == 0);
        let Some(choice) = choice else { return Ok(()) };
        if let Some(reason) = choice.finish_reason.filter(|reason| !reason.is_empty()) {
            self.finish_reason = Some(reason);
        }
        let Some(delta) = choice.delta else { return Ok(()) };
        if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
            self.text.push_str(&text);
            on_event(StreamEvent::Text(text));
        }
        for (position, fragment) in delta.tool_calls.into_iter().flatten().enumerate() {
            self.tool_fragment(position, fragment, on_event);
        }
        Ok(())
    }

    fn tool_fragment(
        &mut self,
        position: usize,
        fragment: ToolCallDelta,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) {
        let index = fragment.index.unwrap_or(position as u64);
        let new_id = fragment.id.filter(|id| !id.is_empty());
        let (name, arguments) = match fragment.function {
            Some(function) => (function.name.filter(|name| !name.is_empty()), function.arguments.unwrap_or_default()),
            None => (None, String::new()),
        };
        let existing = self.by_index.get(&index).copied().filter(|&slot| {
            let call = &self.calls[slot];
            !matches!(&new_id, Some(id) if call.server_id && *id != call.id)
        });
        let slot = match existing {
            Some(slot) => slot,
            None => {
                let slot = self.calls.len();
                let server_id = new_id.is_some();
                // Some local servers send no id; results still need one to refer to.
                let id = new_id.unwrap_or_else(|| format!("call_{slot}"));
                self.calls.push(Call { id, server_id, name: String::new(), arguments: String::new() });
                self.by_index.insert(index, slot);
                slot
            }
        };
        let call = &mut self.calls[slot];
        if call.name.is_empty()
            && let Some(name) = name
        {
            call.name = name;
            on_event(StreamEvent::ToolUseStart { id: call.id.clone(), name: call.name.clone() });
        }
        if !arguments.is_empty() {
            call.arguments.push_str(&arguments);
            on_event(StreamEvent::ToolInputDelta { id: call.id.clone(), partial_json: arguments });
        }
    }

    fn finish(self) -> Result<ModelAnswer, ProviderError> {
        let Some(raw) = self.finish_reason else {
            return Err(ProviderError::StreamEnded {
                provider: NAME.into(),
                detail: format!("`data: [DONE]` arrived after {} chunks, but no finish_reason did", self.chunks),
            });
        };
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Block::Text { text: self.text });
        }
        for call in self.calls {
            content.push(Block::ToolUse { id: call.id, name: call.name, input: tool_input(&call.arguments) });
        }
        let stop_reason = match finish_reason(raw) {
            // Some compatible servers say `stop` even when the answer is tool calls.
            StopReason::EndTurn if content.iter().any(|block| matches!(block, Block::ToolUse { .. })) => {
                StopReason::ToolUse
            }
            other => other,
        };
        Ok(ModelAnswer { content, stop_reason, usage: self.usage, model: self.model })
    }
}

fn finish_reason(raw: String) -> StopReason {
    match raw.as_str() {
        "stop" => StopReason::EndTurn,
        // `function_call` is the pre-tools spelling some servers still use.
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::Refusal,
        _ => StopReason::Other(raw),
    }
}
