//! The Anthropic provider against a scripted Messages API on 127.0.0.1: request
//! shape, stream assembly, stop reasons, retries and error messages.

use std::time::Duration;

use harness::conversation::{Block, StopReason, StreamEvent, Usage};
use harness::provider::{ApiKey, Provider, ProviderConfig, ProviderError, ProviderKind, RetryConfig};
use serde_json::{Value, json};

use crate::wire_server::{Reply, WireServer, after_tool_round, ask, assert_waited, complete, status, streamed_text};

const KEY: &str = "sk-ant-test-5f1c0e9b7a2d4c68";

fn config(server: &WireServer, max_attempts: u32) -> ProviderConfig {
    ProviderConfig {
        model: Some("claude-default".into()),
        base_url: Some(server.url.clone()),
        api_key: Some(ApiKey::new(KEY)),
        retry: RetryConfig { max_attempts, base_delay_ms: 1, max_delay_ms: 5_000 },
        ..ProviderConfig::new(ProviderKind::Anthropic)
    }
}

async fn provider(replies: Vec<Reply>, max_attempts: u32) -> (WireServer, std::sync::Arc<dyn Provider>) {
    let server = WireServer::start(replies).await;
    let provider = config(&server, max_attempts).build().expect("build");
    (server, provider)
}

fn event(data: Value) -> String {
    format!("event: {}\ndata: {data}\n\n", data["type"].as_str().expect("type"))
}

fn start(usage: Value) -> String {
    event(json!({
        "type": "message_start",
        "message": { "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-served",
                     "content": [], "stop_reason": null, "usage": usage },
    }))
}

fn default_start() -> String {
    start(json!({ "input_tokens": 9, "output_tokens": 1 }))
}

fn text_block(index: u64, parts: &[&str]) -> Vec<String> {
    let mut events = vec![event(json!({
        "type": "content_block_start", "index": index, "content_block": { "type": "text", "text": "" },
    }))];
    for part in parts {
        events.push(event(json!({
            "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": part },
        })));
    }
    events.push(event(json!({ "type": "content_block_stop", "index": index })));
    events
}

fn tool_block(index: u64, id: &str, name: &str, parts: &[&str]) -> Vec<String> {
    let mut events = vec![event(json!({
        "type": "content_block_start", "index": index,
        "content_block": { "type": "tool_use", "id": id, "name": name, "input": {} },
    }))];
    for part in parts {
        events.push(event(json!({
            "type": "content_block_delta", "index": index,
            "delta": { "type": "input_json_delta", "partial_json": part },
        })));
    }
    events.push(event(json!({ "type": "content_block_stop", "index": index })));
    events
}

fn end(stop_reason: &str, output_tokens: u64) -> Vec<String> {
    vec![
        event(json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason, "stop_sequence": null },
            "usage": { "output_tokens": output_tokens },
        })),
        event(json!({ "type": "message_stop" })),
    ]
}

fn text_answer(text: &str, stop_reason: &str) -> Vec<String> {
    [vec![default_start()], text_block(0, &[text]), end(stop_reason, 3)].concat()
}

/// The first events of an answer: the message and a text block have started, no more.
fn cut_short() -> Vec<String> {
    let mut events = vec![default_start()];
    events.extend(text_block(0, &["Half an ans"]).into_iter().take(2));
    events
}

#[tokio::test]
async fn streams_text_reports_cache_usage_and_sends_cache_breakpoints() {
    let usage = json!({ "input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000,
                        "output_tokens": 1 });
    let mut stream = vec![start(usage), event(json!({ "type": "ping" }))];
    stream.extend(text_block(0, &["Hel", "lo, ", "world"]));
    stream.extend(end("end_turn", 12));
    let (server, provider) = provider(vec![Reply::Stream(stream)], 1).await;

    let (answer, events) = complete(provider.as_ref(), &after_tool_round()).await;
    let answer = answer.expect("answer");
    assert_eq!(answer.content, vec![Block::Text { text: "Hello, world".into() }]);
    assert_eq!(answer.stop_reason, StopReason::EndTurn);
    assert_eq!(answer.model, "claude-served");
    let expected =
        Usage { input_tokens: 5, output_tokens: 12, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000 };
    assert_eq!(answer.usage, expected);
    assert_eq!(events.len(), 3, "one event per delta: {events:?}");
    assert_eq!(streamed_text(&events), "Hello, world");

    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert!(seen.header("content-type").is_some_and(|value| value.starts_with("application/json")));
    let body = &seen.body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["max_tokens"], 1024);
    let ephemeral = json!({ "type": "ephemeral" });
    assert_eq!(body["system"], json!([{ "type": "text", "text": "You are terse.", "cache_control": ephemeral }]));
    assert_eq!(body["tools"][0]["name"], "read_file");
    assert_eq!(body["tools"][0]["input_schema"]["properties"]["path"]["type"], "string");
    assert!(body["tools"][0].get("cache_control").is_none(), "only the last tool is a breakpoint");
    assert_eq!(body["tools"][1]["cache_control"], ephemeral);

    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[0],
        json!({ "role": "user", "content": [{ "type": "text", "text": "Look at a.txt and b.txt" }] })
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"][1],
        json!({ "type": "tool_use", "id": "call_a", "name": "read_file", "input": { "path": "a.txt" } })
    );
    let results = &messages[2]["content"];
    assert_eq!(
        results[0],
        json!({ "type": "tool_result", "tool_use_id": "call_a", "content": "alpha", "is_error": false })
    );
    assert_eq!(results[1]["is_error"], true);
    assert_eq!(results[1]["cache_control"], ephemeral, "the conversation's last block is a breakpoint");
}

#[tokio::test]
async fn tool_input_split_across_deltas_and_network_chunks_is_assembled() {
    let events: String = [
        vec![default_start()],
        text_block(0, &["Let me look."]),
        tool_block(1, "toolu_1", "read_file", &["{\"pa", "th\": \"a", ".txt\"}"]),
        tool_block(2, "toolu_2", "list_dir", &[]),
        end("tool_use", 30),
    ]
    .concat()
    .concat();
    // Seven-byte chunks split events, lines and JSON anywhere.
    let chunks = events.as_bytes().chunks(7).map(|chunk| String::from_utf8_lossy(chunk).into_owned()).collect();
    let (_server, provider) = provider(vec![Reply::Stream(chunks)], 1).await;

    let (answer, events) = complete(provider.as_ref(), &ask("what is in a.txt?")).await;
    let answer = answer.expect("answer");
    assert_eq!(answer.stop_reason, StopReason::ToolUse);
    assert_eq!(
        answer.content,
        vec![
            Block::Text { text: "Let me look.".into() },
            Block::ToolUse { id: "toolu_1".into(), name: "read_file".into(), input: json!({ "path": "a.txt" }) },
            Block::ToolUse { id: "toolu_2".into(), name: "list_dir".into(), input: json!({}) },
        ]
    );
    let starts: Vec<&StreamEvent> = events.iter().filter(|e| matches!(e, StreamEvent::ToolUseStart { .. })).collect();
    assert_eq!(
        starts,
        [
            &StreamEvent::ToolUseStart { id: "toolu_1".into(), name: "read_file".into() },
            &StreamEvent::ToolUseStart { id: "toolu_2".into(), name: "list_dir".into() },
        ]
    );
    let input: String = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::ToolInputDelta { id, partial_json } if id == "toolu_1" => Some(partial_json.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(input, "{\"path\": \"a.txt\"}");
}

#[tokio::test]
async fn invalid_tool_json_from_the_model_is_kept_as_a_string() {
    let stream = [
        vec![default_start()],
        tool_block(0, "toolu_1", "read_file", &["{\"path\": \"a.txt\"", ", oops"]),
        end("tool_use", 5),
    ]
    .concat();
    let (_server, provider) = provider(vec![Reply::Stream(stream)], 1).await;
    let answer = complete(provider.as_ref(), &ask("go")).await.0.expect("bad model JSON is not a provider error");
    let (_, _, input) = answer.tool_calls().next().expect("one call");
    assert_eq!(input, &Value::String("{\"path\": \"a.txt\", oops".into()));
}

#[tokio::test]
async fn every_stop_reason_is_mapped() {
    let cases = [
        ("end_turn", StopReason::EndTurn),
        ("tool_use", StopReason::ToolUse),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("pause_turn", StopReason::PauseTurn),
        ("refusal", StopReason::Refusal),
        ("model_context_window_exceeded", StopReason::Other("model_context_window_exceeded".into())),
    ];
    let replies = cases.iter().map(|(raw, _)| Reply::Stream(text_answer("x", raw))).collect();
    let (_server, provider) = provider(replies, 1).await;
    for (raw, expected) in cases {
        let answer = complete(provider.as_ref(), &ask("go")).await.0.expect(raw);
        assert_eq!(answer.stop_reason, expected, "{raw}");
    }
}

#[tokio::test]
async fn thinking_blocks_and_unknown_events_are_ignored() {
    let mut stream = vec![
        default_start(),
        event(json!({ "type": "content_block_start", "index": 0,
                      "content_block": { "type": "thinking", "thinking": "" } })),
        event(json!({ "type": "content_block_delta", "index": 0,
                      "delta": { "type": "thinking_delta", "thinking": "hmm" } })),
        event(json!({ "type": "content_block_delta", "index": 0,
                      "delta": { "type": "signature_delta", "signature": "abc" } })),
        event(json!({ "type": "content_block_stop", "index": 0 })),
        event(json!({ "type": "some_future_event", "payload": [1, 2, 3] })),
    ];
    stream.extend(text_block(1, &["Answer."]));
    stream.extend(end("end_turn", 4));
    let (_server, provider) = provider(vec![Reply::Stream(stream)], 1).await;
    let (answer, events) = complete(provider.as_ref(), &ask("think")).await;
    assert_eq!(answer.expect("answer").content, vec![Block::Text { text: "Answer.".into() }]);
    assert_eq!(events, vec![StreamEvent::Text("Answer.".into())]);
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let limited = Reply::Status {
        status: 429,
        headers: vec![("retry-after", "1".into())],
        body: crate::wire_server::error_body(
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
        ),
    };
    let (server, provider) = provider(vec![limited, Reply::Stream(text_answer("done", "end_turn"))], 3).await;
    let answer = complete(provider.as_ref(), &ask("go")).await.0.expect("answer after the retry");
    assert_eq!(answer.text(), "done");
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_waited(seen[1].at - seen[0].at, Duration::from_secs(1));
}

#[tokio::test]
async fn overload_is_retried_as_a_status_and_as_a_stream_error_event() {
    let error_event =
        event(json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }));
    let replies = vec![
        status(529, "overloaded_error", "Overloaded"),
        Reply::Stream(vec![default_start(), error_event]),
        Reply::Stream(text_answer("finally", "end_turn")),
    ];
    let (server, provider) = provider(replies, 3).await;
    let answer = complete(provider.as_ref(), &ask("go")).await.0.expect("answer after two retries");
    assert_eq!(answer.text(), "finally");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn bad_request_is_a_clear_error_and_not_retried() {
    let replies = vec![status(400, "invalid_request_error", "max_tokens: 999999 > 64000, the maximum")];
    let (server, provider) = provider(replies, 3).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("400");
    assert!(matches!(err, ProviderError::Api { status: Some(400), .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "anthropic rejected the request (400 invalid_request_error): max_tokens: 999999 > 64000, the maximum; \
         check the model name and request"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unauthorized_names_the_env_var_and_never_the_key() {
    let (server, provider) = provider(vec![status(401, "authentication_error", "invalid x-api-key")], 3).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("401");
    let message = err.to_string();
    assert!(matches!(err, ProviderError::Auth { status: 401, .. }), "{err:?}");
    assert!(message.contains("ANTHROPIC_API_KEY") && message.contains("invalid x-api-key"), "{message}");
    assert!(!message.contains(KEY) && !format!("{err:?}").contains(KEY), "{message}");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_stream_cut_short_is_retried() {
    let replies =
        vec![Reply::Stream(cut_short()), Reply::Abort(cut_short()), Reply::Stream(text_answer("whole", "end_turn"))];
    let (server, provider) = provider(replies, 3).await;
    let answer = complete(provider.as_ref(), &ask("go")).await.0.expect("answer on the third attempt");
    assert_eq!(answer.content, vec![Block::Text { text: "whole".into() }]);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_stream_always_cut_short_says_it_ended_early() {
    let (server, provider) = provider(vec![Reply::Stream(cut_short()), Reply::Abort(cut_short())], 2).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("never complete");
    let message = err.to_string();
    assert!(matches!(err, ProviderError::RetriesExhausted { attempts: 2, .. }), "{err:?}");
    assert!(
        message.contains("after 2 attempts") && message.contains("ended before the message was complete"),
        "{message}"
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn server_errors_exhaust_the_retries() {
    let replies = (0..3).map(|_| status(500, "api_error", "Internal server error")).collect();
    let (server, provider) = provider(replies, 3).await;
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("all fail");
    assert!(
        err.to_string().starts_with("anthropic still failing after 3 attempts; last error: anthropic failed"),
        "{err}"
    );
    assert!(err.to_string().contains("(500 api_error): Internal server error"), "{err}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_silent_stream_times_out() {
    let server = WireServer::start(vec![Reply::Stall(vec![default_start()])]).await;
    let config = ProviderConfig { stream_timeout_secs: Some(1), ..config(&server, 1) };
    let provider = config.build().expect("build");
    let err = complete(provider.as_ref(), &ask("go")).await.0.expect_err("stalled");
    assert!(matches!(err, ProviderError::StreamEnded { .. }), "{err:?}");
}

#[test]
fn config_needs_a_key_and_a_model_and_fills_from_the_environment() {
    let mut config = ProviderConfig { model: Some("claude-x".into()), ..ProviderConfig::new(ProviderKind::Anthropic) };
    let err = config.build().expect_err("no key");
    assert!(matches!(err, ProviderError::MissingApiKey { .. }));
    assert!(err.to_string().contains("ANTHROPIC_API_KEY"), "{err}");

    config.fill_from(|name| (name == "ANTHROPIC_API_KEY").then(|| KEY.to_string()));
    assert_eq!(config.api_key, Some(ApiKey::new(KEY)));
    assert_eq!(config.base_url.as_deref(), Some("https://api.anthropic.com"));
    assert!(config.build().is_ok());
    assert!(!format!("{config:?}").contains(KEY), "Debug hides the key");
    assert!(!serde_json::to_string(&config).expect("serialize").contains(KEY), "the key is never serialized");

    let mut proxied = ProviderConfig::new(ProviderKind::Anthropic);
    proxied.fill_from(|name| (name == "ANTHROPIC_BASE_URL").then(|| "http://127.0.0.1:9/proxy".to_string()));
    assert_eq!(proxied.base_url.as_deref(), Some("http://127.0.0.1:9/proxy"));
    proxied.api_key = Some(ApiKey::new(KEY));
    assert!(proxied.build().expect_err("no model").to_string().contains("`model`"));

    let parsed: ProviderConfig =
        toml::from_str("kind = \"anthropic\"\nmodel = \"claude-x\"\napi_key = \"k\"\n[retry]\nmax_attempts = 2\n")
            .expect("toml");
    assert_eq!(parsed.retry, RetryConfig { max_attempts: 2, ..RetryConfig::default() });
    assert_eq!(parsed.api_key, Some(ApiKey::new("k")));
    assert!(
        toml::from_str::<ProviderConfig>("kind = \"anthropic\"\nmodle = \"typo\"\n").is_err(),
        "unknown keys are refused"
    );
}
