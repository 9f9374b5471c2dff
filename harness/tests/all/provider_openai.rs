//! The OpenAI-compatible provider against a scripted Chat Completions server on
//! 127.0.0.1: request shape, tool-call assembly by index, finish reasons, usage,
//! retries and error messages.

use std::time::Duration;

use harness::conversation::{Block, StopReason, StreamEvent, Usage};
use harness::provider::{ApiKey, Provider, ProviderConfig, ProviderError, ProviderKind, RetryConfig};
use serde_json::{Value, json};

use crate::wire_server::{Reply, WireServer, after_tool_round, ask, assert_waited, complete, status, streamed_text};

const KEY: &str = "sk-proj-test-93b2c7d1e0f84a56";
const DONE: &str = "data: [DONE]\n\n";

fn config(server: &WireServer, key: Option<&str>, max_attempts: u32) -> ProviderConfig {
    ProviderConfig {
        model: Some("gpt-default".into()),
        base_url: Some(format!("{}/v1", server.url)),
        api_key: key.map(ApiKey::new),
        retry: RetryConfig { max_attempts, base_delay_ms: 1, max_delay_ms: 5_000 },
        ..ProviderConfig::new(ProviderKind::OpenAi)
    }
}

async fn provider(replies: Vec<Reply>, max_attempts: u32) -> (WireServer, std::sync::Arc<dyn Provider>) {
    let server = WireServer::start(replies).await;
    let provider = config(&server, Some(KEY), max_attempts).build().expect("build");
    (server, provider)
}

fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
    let data = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-served",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
        "usage": null,
    });
    format!("data: {data}\n\n")
}

fn usage(prompt: u64, completion: u64, cached: u64) -> String {
    let data = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-served", "choices": [],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                   "prompt_tokens_details": { "cached_tokens": cached } },
    });
    format!("data: {data}\n\n")
}

fn tool_fragment(index: u64, id: Option<&str>, name: Option<&str>, arguments: &str) -> String {
    let mut call = json!({ "index": index, "function": { "arguments": arguments } });
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    chunk(json!({ "tool_calls": [call] }), None)
}

fn text_answer(text: &str, finish_reason: &str) -> Vec<String> {
    vec![
        chunk(json!({ "role": "assistant", "content": "" }), None),
        chunk(json!({ "content": text }), None),
        chunk(json!({}), Some(finish_reason)),
        usage(10, 3, 0),
        DONE.to_string(),
    ]
}

#[tokio::test]
async fn streams_text_with_cached_usage_and_sends_chat_shaped_messages() {
    let stream = vec![
        chunk(json!({ "role": "assistant", "content": "" }), None),
        chunk(json!({ "content": "Both " }), None),
        chunk(json!({ "content": "read." }), None),
        chunk(json!({}), Some("stop")),
        usage(2100, 12, 2000),
        DONE.to_string(),
    ];
    let (server, provider) = provider(vec![Reply::Stream(stream)], 1).await;
    let (answer, events) = complete(provider.as_ref(), &after_tool_round()).await;
    let answer = answer.expect("answer");
    assert_eq!(answer.content, vec![Block::Text { text: "Both read.".into() }]);
    assert_eq!(answer.stop_reason, StopReason::EndTurn);
    assert_eq!(answer.model, "gpt-served");
    let expected =
        Usage { input_tokens: 100, output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 2000 };
    assert_eq!(answer.usage, expected);
    assert_eq!(streamed_text(&events), "Both read.");

    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let body = &seen.body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({ "include_usage": true }));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(
        body["tools"][1],
        json!({ "type": "function", "function": { "name": "write_file", "description": "write_file does its job",
                "parameters": { "type": "object", "properties": { "path": { "type": "string" } } } } })
    );
    let messages = body["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap_or("?")).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
    assert_eq!(messages[0]["content"], "You are terse.");
    assert_eq!(messages[1]["content"], "Look at a.txt and b.txt");
    assert_eq!(messages[2]["content"], "Reading both.");
    let call = &messages[2]["tool_calls"][1];
    assert_eq!(
        (&call["id"], &call["type"], &call["function"]["name"]),
        (&json!("call_b"), &json!("function"), &json!("read_file"))
    );
    let arguments = call["function"]["arguments"].as_str().expect("arguments are a JSON string");
    assert_eq!(serde_json::from_str::<Value>(arguments).expect("JSON"), json!({ "path": "b.txt" }));
    assert_eq!(messages[3], json!({ "role": "tool", "tool_call_id": "call_a", "content": "alpha" }));
    assert_eq!(messages[4]["tool_call_id"], "call_b");
    assert_eq!(messages[4]["content"], "Error: no such file");
}

#[tokio::test]
async fn interleaved_tool_call_fragments_are_assembled_by_index() {
    let stream = vec![
        chunk(json!({ "role": "assistant", "content": null }), None),
        tool_fragment(0, Some("call_1"), Some("read_file"), ""),
        tool_fragment(1, Some("call_2"), Some("write_file"), "{\"pa"),
        tool_fragment(0, None, None, "{\"path\":"),
        tool_fragment(1, None, None, "th\":\"b\"}"),
        tool_fragment(0, None, None, "\"a\"}"),
        chunk(json!({}), Some("tool_calls")),
        usage(50, 20, 0),
        DONE.to_string(),
    ];
    let (_server, provider) = provider(vec![Reply::Stream(stream)], 1).await;
    let (answer, events) = complete(provider.as_ref(), &ask("copy a to b")).await;
    let answer = answer.expect("answer");
    assert_eq!(answer.stop_reason, StopReason::ToolUse);
    assert_eq!(
        answer.content,
        vec![
            Block::ToolUse { id: "call_1".into(), name: "read_file".into(), input: json!({ "path": "a" }) },
            Block::ToolUse { id: "call_2".into(), name: "write_file".into(), input: json!({ "path": "b" }) },
        ]
    );
    assert_eq!(events[0], StreamEvent::ToolUseStart { id: "call_1".into(), name: "read_file".into() });
    assert_eq!(events[1], StreamEvent::ToolUseStart { id: "call_2".into(), name: "write_file".into() });
    let second: String = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::ToolInputDelta { id, partial_json } if id == "call_2" => Some(partial_json.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(second, "{\"path\":\"b\"}");
}

#[tokio::test]
async fn without_a_key_no_authorization_header_is_sent() {
    let server = WireServer::start(vec![Reply::Stream(text_answer("local", "stop"))]).await;
    let mut config = config(&server, None, 1);
    config.fill_from(|_| None);
    assert_eq!(config.api_key, None, "a local server needs no key");
    let provider = config.build().expect("a missing key is fine for openai");
    let answer = complete(provider.as_ref(), &ask("hi")).await.0.expect("answer");
    assert_eq!(answer.text(), "local");
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[test]
fn config_fills_key_and_base_url_from_the_environment() {
    let mut config = ProviderConfig::new(ProviderKind::OpenAi);
    config.fill_from(|_| None);
    assert_eq!(config.base_url.as_deref(), Some("https://api.openai.com/v1"));
    let mut ollama = ProviderConfig::new(ProviderKind::OpenAi);
    ollama.fill_from(|name| match name {
        "OPENAI_BASE_URL" => Some("http://localhost:11434/v1".into()),
        "OPENAI_API_KEY" => Some(KEY.into()),
        _ => None,
    });
    assert_eq!(ollama.base_url.as_deref(), Some("http://localhost:11434/v1"));
    assert_eq!(ollama.api_key, Some(ApiKey::new(KEY)));
    let err = ProviderConfig { model: Some("m".into()), base_url: Some("ftp://x".into()), ..ollama }
        .build()
        .expect_err("not http");
    assert!(err.to_string().contains("http://"), "{err}");
}

#[tokio::test]
async fn every_finish_reason_is_mapped() {
    let cases = [
        ("stop", StopReason::EndTurn),
        ("tool_calls", StopReason::ToolUse),
        ("length", StopReason::MaxTokens),
        ("content_filter", StopReason::Refusal),
        ("eos_token", StopReason::Other("eos_token".into())),
    ];
    let replies = cases.iter().map(|(raw, _)| Reply::Stream(text_answer("x", raw))).collect();
    let (_server, provider) = provider(replies, 1).await;
    for (raw, expected) in cases {
        let answer = complete(provider.as_ref(), &ask("go")).await.0.expect(raw);
        assert_eq!(answer.stop_reason, expected, "{raw}");
    }
}

#[tokio::test]
async fn invalid_tool_arguments_from_the_model_are_kept_as_a_string() {
    let stream = vec![
        tool_fragment(0, Some("call_1"), Some("read_file"), "{\"path\": "),
        tool_fragment(0, None, None, "a.txt}"),
        chunk(json!({}), Some("tool_calls")),
        DONE.to_string(),
    ];
    let (_server, provider) = provider(vec![Reply::Stream(stream)], 1).await;
    let answer = complete(provider.as_ref(), &ask("go")).await.0.expect("bad model JSON is not a provider error");
    let (_, _, input) = answer.tool_calls().next().expect("one call");
    assert_eq!(input, &Value::String("{\"path\": a.txt}".into()));
}

#[tokio::test]
async fn rate_limit_and_unavailable_are_retried_honouring_retry_after() {
    let limited = Reply::Status {
        status: 429,
        headers: vec![("retry-after-ms", "400".into())],
        body: json!({ "error": { "message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded" } }),
    };
    let replies = vec![limited, status(503, "server_error", "busy"), Reply::Stream(text_answer("ok", "stop"))];
    let (server, provider) = provider(replies, 3).await;
    let answer = complete(provider.as_ref(), &ask("go")).await.0.expect("answer after retries");
    assert_eq!(answer.text(), "ok");
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_waited(seen[1].at - seen[0].at, Duration::from_millis(400));
}

#[tokio::test]
async fn bad_request_is_reported_once_with_the_api_message() {
    let body = json!({ "error": { "message": "The model `gpt-nope` does not exist", "type": "invalid_request_error",
                                  "param": null, "code": "model_not_found" } });
    let (server, provider) = provider(vec![Reply::Status { status: 400, headers: Vec::new(), body }], 3).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("400");
    assert_eq!(
        err.to_string(),
        "openai rejected the request (400 invalid_request_error): The model `gpt-nope` does not exist; \
         check the model name and request"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unauthorized_names_the_env_var_and_never_the_key() {
    let (server, provider) = provider(vec![status(401, "invalid_api_key", "Incorrect API key provided")], 3).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("401");
    let message = err.to_string();
    assert!(message.contains("OPENAI_API_KEY") && message.contains("Incorrect API key"), "{message}");
    assert!(!message.contains(KEY), "{message}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_stream_without_done_is_cut_short_and_retried() {
    let mut no_done = text_answer("partial", "stop");
    no_done.pop();
    let replies = vec![Reply::Stream(no_done.clone()), Reply::Stream(text_answer("whole", "stop"))];
    let (server, retried) = provider(replies, 3).await;
    let answer = complete(retried.as_ref(), &ask("go")).await.0.expect("answer on the second attempt");
    assert_eq!(answer.text(), "whole");
    assert_eq!(server.hits(), 2);

    let (server, always_cut) = provider(vec![Reply::Stream(no_done.clone()), Reply::Abort(no_done)], 2).await;
    let err = complete(always_cut.as_ref(), &ask("go")).await.0.expect_err("always cut");
    assert!(matches!(err, ProviderError::RetriesExhausted { attempts: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("ended before the message was complete"), "{err}");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn done_without_a_finish_reason_is_an_incomplete_stream() {
    let stream = vec![chunk(json!({ "content": "hm" }), None), DONE.to_string()];
    let (_server, provider) = provider(vec![Reply::Stream(stream)], 1).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("no finish_reason");
    assert!(matches!(err, ProviderError::StreamEnded { .. }), "{err:?}");
    assert!(err.to_string().contains("no finish_reason"), "{err}");
}

#[tokio::test]
async fn an_error_inside_the_stream_and_a_json_answer_are_reported() {
    let failing = vec![
        chunk(json!({ "content": "half" }), None),
        format!("data: {}\n\n", json!({ "error": { "message": "the model crashed", "type": "server_error" } })),
    ];
    let not_streamed = Reply::Status { status: 200, headers: Vec::new(), body: json!({ "choices": [] }) };
    let (server, provider) = provider(vec![Reply::Stream(failing), not_streamed], 1).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("stream error");
    assert!(matches!(&err, ProviderError::Api { status: None, kind, .. } if kind == "server_error"), "{err:?}");
    assert!(err.is_retryable() && err.to_string().contains("the model crashed"), "{err}");

    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("JSON, not a stream");
    assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(server.hits(), 2);
}
