//! Outbound HTTP through `wasi:http`: the policy, injection, redaction and the
//! host's limits, against loopback servers.

mod canary;
mod denials;
mod servers;

use std::sync::Arc;

use runtime::net::Network;
use runtime::net::policy::Policy;
use runtime::net::secrets::{Injection, InjectionRule, SecretStore, SecretValue};
use runtime::{Limits, Runtime, Session, ToolOutput};
use serde_json::json;

use servers::Servers;

/// The secret the tests try to leak; never in any guest-observable byte.
pub const CANARY: &str = "canary-5f1c9e2b7d40a8e3";

/// A network allowing both test servers, injecting the canary as a bearer token
/// into requests to the api server.
pub fn network(servers: &Servers, inject: Injection) -> Network {
    let mut secrets = SecretStore::new();
    secrets.insert("CANARY", SecretValue::new(CANARY));
    let rule = InjectionRule {
        secret: "CANARY".into(),
        host: "127.0.0.1".into(),
        scheme: "http".into(),
        port: Some(servers.api.port),
        path_prefix: "/".into(),
        inject,
    };
    Network::new(servers.policy(), secrets, vec![rule]).expect("valid network")
}

/// The canary as a bearer token.
pub fn bearer() -> Injection {
    Injection::Header { name: "authorization".into(), format: "Bearer {secret}".into() }
}

/// A session offering the built-in `fetch` tool under `network`.
pub async fn fetch_session(runtime: &Runtime, network: Network) -> Session {
    let fetch = runtime.load_file(fixtures::tool("fetch")).await.expect("fetch loads");
    super::session(runtime, &[fetch], Limits::default()).with_network(Arc::new(network))
}

/// Calls `fetch`, failing the test if the call itself fails.
pub async fn fetch(session: &Session, input: serde_json::Value) -> ToolOutput {
    session.call("fetch", &input.to_string()).await.unwrap_or_else(|err| panic!("fetch {input}: {err}"))
}

#[tokio::test]
async fn header_basic_and_query_injection_reach_the_server_and_never_the_guest() {
    let servers = Servers::start().await;
    let runtime = super::runtime();
    let basic = Injection::Basic { username: "bot".into() };
    let query = Injection::Query { param: "key".into() };
    for (injection, server_sees) in [
        (bearer(), format!("authorization: Bearer {CANARY}")),
        (basic, {
            use base64::Engine as _;
            format!(
                "authorization: Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("bot:{CANARY}"))
            )
        }),
        (query, format!("key={}", CANARY.replace('-', "%2D"))),
    ] {
        let session = fetch_session(&runtime, network(&servers, injection)).await;
        let output = fetch(&session, json!({"url": servers.api("/echo/x?a=1")})).await;
        assert!(!output.is_error, "{}", output.content);
        assert!(output.content.starts_with("HTTP 200"), "{}", output.content);
        assert!(servers.api.log.text().contains(&server_sees), "the server got the credential: {server_sees}");
        assert!(output.content.contains("[REDACTED:CANARY]"), "the reflection comes back redacted: {}", output.content);
        assert!(!output.content.contains(CANARY), "{}", output.content);
    }
}

#[tokio::test]
async fn fetch_sends_method_headers_and_body_and_reports_status_and_headers() {
    let servers = Servers::start().await;
    let runtime = super::runtime();
    let session = fetch_session(&runtime, network(&servers, bearer())).await;
    let output = fetch(
        &session,
        json!({"url": servers.elsewhere("/echo/items"), "method": "PUT",
               "headers": {"content-type": "application/json", "x-trace": "t1"}, "body": "{\"a\":1}"}),
    )
    .await;
    assert!(!output.is_error, "{}", output.content);
    let sent = servers.elsewhere.log.text();
    assert!(sent.starts_with("PUT /echo/items"), "{sent}");
    assert!(sent.contains("x-trace: t1") && sent.contains("content-type: application/json"), "{sent}");
    assert!(sent.ends_with("{\"a\":1}"), "{sent}");
    assert!(!sent.contains("authorization"), "no rule covers the other port: {sent}");
    assert!(output.content.starts_with("HTTP 200\n"), "{}", output.content);

    let output = fetch(&session, json!({"url": servers.api("/big?n=5000"), "max_bytes": 100})).await;
    assert!(output.content.contains("content-length: 5000"), "{}", output.content);
    assert!(output.content.contains(&format!("{}\n[… truncated", "x".repeat(100))), "{}", output.content);
}

#[tokio::test]
async fn fetch_describes_binary_bodies_and_refuses_bad_methods_and_redirect_loops() {
    let servers = Servers::start().await;
    let runtime = super::runtime();
    let session = fetch_session(&runtime, network(&servers, bearer())).await;
    let output = fetch(&session, json!({"url": servers.api("/binary")})).await;
    assert!(!output.is_error, "{}", output.content);
    assert!(
        output.content.ends_with("[binary body (application/octet-stream), 7 bytes not shown]"),
        "{}",
        output.content
    );
    let output = fetch(&session, json!({"url": servers.api("/echo"), "method": "GE T"})).await;
    assert!(output.is_error && output.content.contains("`GE T` is not a valid HTTP method"), "{}", output.content);
    let output = fetch(&session, json!({"url": servers.api("/loop")})).await;
    assert!(output.is_error && output.content.ends_with("stopped after 5 redirects"), "{}", output.content);
    assert_eq!(output.content.matches("[redirect 302").count(), 5, "{}", output.content);
    let output = fetch(&session, json!({"url": "not a url"})).await;
    assert!(output.is_error && output.content.contains("invalid URL"), "{}", output.content);
}

#[tokio::test]
async fn redirects_are_followed_and_each_hop_is_checked_again() {
    let servers = Servers::start().await;
    let runtime = super::runtime();
    let session = fetch_session(&runtime, network(&servers, bearer())).await;
    let target = servers.elsewhere("/echo/landed");
    let output = fetch(&session, json!({"url": servers.api(&format!("/redirect?to={target}"))})).await;
    assert!(!output.is_error, "{}", output.content);
    assert!(output.content.contains(&format!("[redirect 302 {}", servers.api("/redirect"))), "{}", output.content);
    assert!(servers.elsewhere.log.text().contains("GET /echo/landed"));

    // A hop to a host the policy doesn't allow is refused by the host, naming it.
    let output = fetch(&session, json!({"url": servers.api("/redirect?to=http://127.0.0.1:9/private")})).await;
    assert!(output.is_error);
    assert!(
        output.content.contains("request refused by the host: no network rule allows GET http://127.0.0.1:9/private"),
        "{}",
        output.content
    );

    // Not following: the 302 itself is the result.
    let output =
        fetch(&session, json!({"url": servers.api(&format!("/redirect?to={target}")), "follow_redirects": false}))
            .await;
    assert!(output.content.starts_with("HTTP 302\n") && output.content.contains(&format!("location: {target}")));
}

#[tokio::test]
async fn per_tool_policy_overrides_the_session_policy() {
    let servers = Servers::start().await;
    let runtime = super::runtime();
    let url = servers.api("/echo/x");
    let closed = network(&servers, bearer()).with_tool_policy("fetch", Policy::default());
    let session = fetch_session(&runtime, closed).await;
    let output = fetch(&session, json!({"url": url})).await;
    assert!(output.is_error && output.content.contains("no network rule allows GET"), "{}", output.content);

    let mut secrets = SecretStore::new();
    secrets.insert("CANARY", SecretValue::new(CANARY));
    let opened = Network::new(Policy::default(), secrets, vec![]).unwrap().with_tool_policy("fetch", servers.policy());
    let session = fetch_session(&runtime, opened).await;
    let output = fetch(&session, json!({"url": url})).await;
    assert!(!output.is_error, "{}", output.content);
}

#[tokio::test]
async fn a_session_without_a_network_refuses_every_request() {
    let servers = Servers::start().await;
    let runtime = super::runtime();
    let fetch_component = runtime.load_file(fixtures::tool("fetch")).await.unwrap();
    let session = super::session(&runtime, &[fetch_component], Limits::default());
    let output = fetch(&session, json!({"url": servers.api("/echo")})).await;
    assert!(output.is_error);
    assert!(output.content.contains("no network rule allows GET http://127.0.0.1"), "{}", output.content);
    assert_eq!(servers.api.log.count(), 0);
}

#[test]
fn a_rule_naming_a_missing_secret_is_refused_up_front() {
    let rule = InjectionRule {
        secret: "NOPE".into(),
        host: "api.example.com".into(),
        scheme: "https".into(),
        port: None,
        path_prefix: "/".into(),
        inject: bearer(),
    };
    let err = Network::new(Policy::default(), SecretStore::new(), vec![rule]).unwrap_err();
    assert_eq!(err.to_string(), "injection rule for api.example.com names secret `NOPE`, which is not configured");
}

#[tokio::test]
async fn only_components_importing_wasi_http_are_said_to_use_the_network() {
    let runtime = super::runtime();
    let fetch = runtime.load_file(fixtures::tool("fetch")).await.expect("fetch loads");
    let files = runtime.load_file(fixtures::tool("read_file")).await.expect("read_file loads");
    assert!(fetch.uses_network(), "fetch imports wasi:http/outgoing-handler");
    assert!(!files.uses_network(), "read_file imports no wasi:http");
    let mut toolbox = runtime::Toolbox::new();
    toolbox.add(fetch).unwrap();
    toolbox.add(files).unwrap();
    assert!(toolbox.component("fetch").is_some_and(|c| c.uses_network()));
    assert!(toolbox.component("read_file").is_some_and(|c| !c.uses_network()));
    assert!(toolbox.component("nope").is_none());
}
