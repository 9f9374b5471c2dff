//! `/openapi.json` documents exactly the router's routes; `/metrics` counts what runs did.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::agent::{answer, call};
use crate::server_util::{ADMIN, TestServer};

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::replaying(dir.path(), vec![]).await;
    let (status, text) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document, harness::server::openapi());
    assert_eq!(document["openapi"], "3.1.0");

    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(operation["responses"].is_object(), "{method} {path} has responses");
            for schema in text_refs(operation) {
                let name = schema.trim_start_matches("#/components/schemas/");
                assert!(document["components"]["schemas"][name].is_object(), "{method} {path}: {schema}");
            }
        }
    }
    // OpenAPI has no catch-all parameter: `{*path}` is documented as `{path}`.
    let routed: BTreeSet<(String, String)> = harness::server::routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.replace("{*", "{")))
        .collect();
    assert_eq!(documented, routed);
    server.shutdown().await;
}

/// Every `$ref` under `value`.
fn text_refs(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| match (key.as_str(), value) {
                ("$ref", Value::String(target)) => vec![target.clone()],
                _ => text_refs(value),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(text_refs).collect(),
        _ => Vec::new(),
    }
}

/// The value of the metric line starting with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> f64 {
    let line = text.lines().find(|line| line.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_count_tool_calls_tokens_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let answers = vec![
        answer("Writing.", vec![call("w", "write_file", json!({"path": "a.txt", "content": "A"}))]),
        answer(
            "Reading.",
            vec![call("r", "read_file", json!({"path": "a.txt"})), call("x", "no_such_tool", json!({}))],
        ),
        answer("Done.", vec![]),
    ];
    let server = TestServer::replaying(dir.path(), answers).await;
    let ann = server.add_user("ann").await;
    let id = server.create_session(&ann, json!({})).await;
    server.json(Method::POST, &format!("/v1/sessions/{id}/messages"), &ann, Some(json!({"text": "go"})), 202).await;
    server.wait_idle(&ann, &id).await;

    let response = server.request(Method::GET, "/metrics", Some(ADMIN)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    assert_eq!(metric(&text, "harness_tool_call_duration_seconds_count"), 3.0, "{text}");
    assert_eq!(metric(&text, "harness_tool_call_duration_seconds_bucket{le=\"+Inf\"}"), 3.0);
    assert_eq!(metric(&text, "harness_tool_calls_total{outcome=\"error\"}"), 1.0);
    assert_eq!(metric(&text, "harness_tool_calls_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(metric(&text, "harness_provider_tokens_total{kind=\"input\"}"), 300.0);
    assert_eq!(metric(&text, "harness_provider_tokens_total{kind=\"output\"}"), 60.0);
    assert_eq!(metric(&text, "harness_runs_total{reason=\"end_turn\"}"), 1.0);
    assert_eq!(metric(&text, "harness_run_duration_seconds_count"), 1.0);
    assert_eq!(metric(&text, "harness_runs_active "), 0.0);
    assert!(metric(&text, "harness_http_requests_total{status=\"202\"}") >= 1.0);
    assert!(text.contains("# TYPE harness_tool_call_duration_seconds histogram"));
    // Buckets are cumulative.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with("harness_tool_call_duration_seconds_bucket"))
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|pair| pair[0] <= pair[1]), "{buckets:?}");
    server.shutdown().await;
}
