//! Every refusal reaches the tool as an error naming the rule or the reason, and
//! nothing refused reaches a server.

use std::time::Duration;

use runtime::net::HttpLimits;
use runtime::net::policy::{Policy, Rule};
use serde_json::json;

use super::servers::{Servers, allow};
use super::{bearer, fetch, fetch_session, network};

/// Asserts that fetching `input` fails with `reason` in the message.
async fn refused(session: &runtime::Session, input: serde_json::Value, reason: &str) {
    let output = fetch(session, input.clone()).await;
    assert!(output.is_error, "{input} should fail, got {}", output.content);
    assert!(output.content.contains(reason), "{input}: expected {reason:?} in {:?}", output.content);
}

#[tokio::test]
async fn policy_denials_name_what_no_rule_allows() {
    let servers = Servers::start().await;
    let runtime = super::super::runtime();
    let port = servers.api.port;
    let rule = Rule { path_prefix: "/v1".into(), methods: vec!["GET".into()], ..allow(port) };
    let net = network(&servers, bearer());
    let session = fetch_session(
        &runtime,
        runtime::net::Network::clone(&net).with_tool_policy("fetch", Policy { allow: vec![rule] }),
    )
    .await;

    let no_rule = |what: &str| format!("request refused by the host: no network rule allows {what}");
    refused(&session, json!({"url": servers.api("/v2/x")}), &no_rule(&format!("GET http://127.0.0.1:{port}/v2/x")))
        .await;
    refused(&session, json!({"url": servers.api("/v10")}), &no_rule(&format!("GET http://127.0.0.1:{port}/v10"))).await;
    refused(&session, json!({"url": servers.api("/v1/x"), "method": "DELETE"}), &no_rule("DELETE")).await;
    refused(&session, json!({"url": format!("https://127.0.0.1:{port}/v1/x")}), &no_rule("GET https://")).await;
    refused(
        &session,
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
        &no_rule("GET http://169.254.169.254:80/latest"),
    )
    .await;
    refused(&session, json!({"url": format!("http://localhost:{port}/v1")}), &no_rule("GET http://localhost")).await;
    assert_eq!(servers.api.log.count(), 0, "nothing refused reached the server");

    let output = fetch(&session, json!({"url": servers.api("/v1/ok")})).await;
    assert!(!output.is_error, "the rule itself works: {}", output.content);
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused_unless_named() {
    let servers = Servers::start().await;
    let runtime = super::super::runtime();
    let port = servers.api.port;
    // The rule allows the name, but the name resolves to loopback, which no rule names.
    let by_name = Rule { host: "localhost".into(), ..allow(port) };
    let session =
        fetch_session(&runtime, network(&servers, bearer()).with_tool_policy("fetch", Policy { allow: vec![by_name] }))
            .await;
    refused(
        &session,
        json!({"url": format!("http://localhost:{port}/echo")}),
        "request refused by the host: localhost resolves to",
    )
    .await;
    let output = fetch(&session, json!({"url": format!("http://localhost:{port}/echo")})).await;
    assert!(output.content.contains("a loopback address that tools may not reach"), "{}", output.content);
    assert_eq!(servers.api.log.count(), 0);
}

#[tokio::test]
async fn guest_credentials_and_url_tricks_are_refused() {
    let servers = Servers::start().await;
    let runtime = super::super::runtime();
    let session = fetch_session(&runtime, network(&servers, bearer())).await;
    for header in ["authorization", "cookie", "proxy-authorization"] {
        let input = json!({"url": servers.api("/echo"), "headers": {header: "mine"}});
        let output = fetch(&session, input).await;
        assert!(output.is_error, "{header}: {}", output.content);
        assert!(
            output.content.contains(&format!("may not set the `{header}` header on requests to 127.0.0.1"))
                || output.content.contains("is a header the host sets itself"),
            "{header}: {}",
            output.content
        );
    }
    let userinfo = format!("http://127.0.0.1:{}@127.0.0.1:{}/echo", servers.api.port, servers.elsewhere.port);
    refused(&session, json!({"url": userinfo}), "user information").await;
    refused(&session, json!({"url": servers.api("/echo"), "headers": {"host": "evil.example"}}), "host sets itself")
        .await;
    refused(&session, json!({"url": "file:///etc/passwd"}), "scheme `file` is not supported").await;
    assert_eq!(servers.api.log.count(), 0);
}

#[tokio::test]
async fn response_size_time_and_request_count_are_limited() {
    let servers = Servers::start().await;
    let runtime = super::super::runtime();
    let limits = HttpLimits {
        first_byte_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(800),
        max_response_bytes: 4096,
        max_requests_per_call: 3,
        ..HttpLimits::default()
    };
    let session = fetch_session(&runtime, network(&servers, bearer()).with_limits(limits)).await;
    // Declared too long: refused before the guest reads; streamed: cut mid-body.
    refused(&session, json!({"url": servers.api("/big?n=10000")}), "larger than the host allows (4096 bytes)").await;
    refused(&session, json!({"url": servers.api("/big?n=10000&chunked=true")}), "exceeds limit: 4096 bytes").await;
    let output = fetch(&session, json!({"url": servers.api("/big?n=4096&chunked=true")})).await;
    assert!(!output.is_error, "exactly the limit passes: {}", output.content);

    refused(&session, json!({"url": servers.api("/slow-head")}), "timed out waiting for the response").await;
    refused(&session, json!({"url": servers.api("/slow-body")}), "HTTP response timeout").await;

    // Four hops, three allowed requests.
    let mut url = servers.api("/echo/end");
    for _ in 0..3 {
        url = servers.api(&format!(
            "/redirect?to={}",
            percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    refused(&session, json!({"url": url}), "a tool call may send at most 3 requests").await;
}

#[tokio::test]
async fn a_session_policy_narrows_the_host_policy_and_never_widens_it() {
    let servers = Servers::start().await;
    let runtime = super::super::runtime();
    let port = servers.api.port;
    let v1_reads = Rule { path_prefix: "/v1".into(), methods: vec!["GET".into()], ..allow(port) };
    let session = fetch_session(&runtime, network(&servers, bearer()).within(Policy { allow: vec![v1_reads] })).await;
    let narrowed = "in this session's network policy";
    refused(&session, json!({"url": servers.api("/v2/x")}), narrowed).await;
    refused(&session, json!({"url": servers.api("/v1/x"), "method": "POST"}), narrowed).await;
    refused(&session, json!({"url": servers.elsewhere("/echo")}), narrowed).await;
    assert_eq!(servers.api.log.count() + servers.elsewhere.log.count(), 0, "nothing refused reached a server");
    let output = fetch(&session, json!({"url": servers.api("/v1/ok")})).await;
    assert!(!output.is_error, "what both policies allow passes: {}", output.content);
    let served = servers.api.log.count();

    // Allowing what the host doesn't changes nothing: neither another host nor a
    // private address the host's rules don't name.
    let by_name = Rule { host: "localhost".into(), ..allow(port) };
    let host = network(&servers, bearer()).with_tool_policy("fetch", Policy { allow: vec![by_name.clone()] });
    let wider = Policy { allow: vec![by_name, allow(port), Rule { host: "example.com".into(), ..allow(80) }] };
    let session = fetch_session(&runtime, host.within(wider)).await;
    refused(&session, json!({"url": servers.api("/echo")}), "no network rule allows GET http://127.0.0.1").await;
    refused(&session, json!({"url": "http://example.com/"}), "no network rule allows GET http://example.com").await;
    refused(
        &session,
        json!({"url": format!("http://localhost:{port}/echo")}),
        "a loopback address that tools may not reach",
    )
    .await;
    assert_eq!(servers.api.log.count(), served, "nothing more reached the server");
}
