//! Every endpoint × every kind of caller: no token, a bad token, another user (or a
//! user at an admin endpoint), and the rightful caller.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::agent::answer;
use crate::server_util::{ADMIN, TestServer, error_message};

/// One endpoint to try: method, route (as the router spells it), concrete path, body,
/// and what the rightful caller gets.
struct Case {
    method: Method,
    route: &'static str,
    path: String,
    body: Option<Value>,
    ok: u16,
}

fn case(method: Method, route: &'static str, path: String, body: Option<Value>, ok: u16) -> Case {
    Case { method, route, path, body, ok }
}

#[tokio::test]
async fn every_endpoint_refuses_strangers_and_hides_other_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::replaying(dir.path(), vec![answer("Hi.", vec![])]).await;
    let ann = server.add_user("ann").await;
    let bob = server.add_user("bob").await;
    let id = server.create_session(&ann, json!({"files": {"notes.txt": "n"}})).await;
    let s = |suffix: &str| format!("/v1/sessions/{id}{suffix}");

    // Ordered so each success leaves what the next needs; deletions come last.
    let user_cases = vec![
        case(Method::GET, "/v1/sessions/{id}", s(""), None, 200),
        case(Method::POST, "/v1/sessions/{id}/messages", s("/messages"), Some(json!({"text": "hi"})), 202),
        case(Method::GET, "/v1/sessions/{id}/events", s("/events?after=1000"), None, 200),
        case(Method::GET, "/v1/sessions/{id}/checkpoints", s("/checkpoints"), None, 200),
        case(Method::GET, "/v1/sessions/{id}/files", s("/files?at=0"), None, 200),
        case(Method::GET, "/v1/sessions/{id}/files/{*path}", s("/files/notes.txt?at=0"), None, 200),
        case(Method::POST, "/v1/sessions/{id}/fork", s("/fork"), Some(json!({"at": 0})), 201),
        case(Method::POST, "/v1/sessions/{id}/cancel", s("/cancel"), None, 200),
        case(Method::DELETE, "/v1/sessions/{id}", s(""), None, 204),
    ];
    // Endpoints without a session: another user simply sees their own world.
    let own_cases = vec![
        case(Method::GET, "/v1/sessions", "/v1/sessions".into(), None, 200),
        case(Method::POST, "/v1/sessions", "/v1/sessions".into(), Some(json!({})), 201),
    ];
    let admin_cases = vec![
        case(Method::GET, "/admin/users", "/admin/users".into(), None, 200),
        case(Method::POST, "/admin/users", "/admin/users".into(), Some(json!({"name": "cyd"})), 201),
        case(Method::DELETE, "/admin/users/{name}", "/admin/users/cyd".into(), None, 204),
        case(Method::GET, "/metrics", "/metrics".into(), None, 200),
    ];

    let mut covered = BTreeSet::new();
    let bad = "hu_0000000000000000000000000000000000000000000000000000000000000000";
    // Per group: the rightful caller, and every other caller with the status it gets.
    let groups = [
        (&own_cases, ann.as_str(), vec![(None, 401), (Some(bad), 401), (Some(ADMIN), 401)]),
        (&user_cases, ann.as_str(), vec![(None, 401), (Some(bad), 401), (Some(ADMIN), 401), (Some(bob.as_str()), 404)]),
        (&admin_cases, ADMIN, vec![(None, 401), (Some(bad), 401), (Some(bob.as_str()), 403)]),
    ];
    for (cases, owner, strangers) in &groups {
        for case in cases.iter() {
            let label = format!("{} {}", case.method, case.path);
            covered.insert((case.method.clone(), case.route));
            for (token, expected) in strangers {
                let (status, body) = send(&server, case, *token).await;
                assert_eq!(status, *expected, "{label} with {token:?}: {body}");
                let message = error_message(&body);
                if *expected == 404 {
                    assert_eq!(message, format!("session {id} not found"), "the same answer as for a missing session");
                }
            }
            if case.method == Method::DELETE && case.route == "/v1/sessions/{id}" {
                // The run the message started must end, and the fork go, before the session can.
                server.wait_idle(owner, &id).await;
                let sessions = server.json(Method::GET, "/v1/sessions", &ann, None, 200).await;
                for session in sessions.as_array().unwrap().iter().filter(|s| s["id"] != id.as_str()) {
                    let path = format!("/v1/sessions/{}", session["id"].as_str().unwrap());
                    assert_eq!(server.call(Method::DELETE, &path, Some(&ann), None).await.0, 204);
                }
            }
            let (status, body) = send(&server, case, Some(owner)).await;
            assert_eq!(status, case.ok, "{label} as its owner: {body}");
        }
    }

    // Bob sees none of Ann's sessions, and his own list stays his.
    assert_eq!(server.json(Method::GET, "/v1/sessions", &bob, None, 200).await, json!([]));
    let missing = format!("/v1/sessions/{id}");
    let (status, body) = server.call(Method::GET, &missing, Some(&ann), None).await;
    assert_eq!((status, error_message(&body)), (404, format!("session {id} not found")));

    // /mcp: the token is checked before MCP sees anything; the owner speaks MCP.
    for method in [Method::POST, Method::GET, Method::DELETE] {
        for token in [None, Some(bad), Some(ADMIN)] {
            let response = mcp_request(&server, method.clone(), token).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{method} /mcp with {token:?}");
        }
        covered.insert((method, "/mcp"));
    }
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "matrix", "version": "1"}}});
    let response = mcp_request(&server, Method::POST, Some(&ann)).json(&initialize).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mcp_session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    for (method, expected) in [(Method::GET, 404), (Method::DELETE, 404)] {
        let request = mcp_request(&server, method.clone(), Some(&bob)).header("mcp-session-id", &mcp_session);
        assert_eq!(request.send().await.unwrap().status().as_u16(), expected, "bob's {method} of ann's MCP session");
    }
    let request = mcp_request(&server, Method::DELETE, Some(&ann)).header("mcp-session-id", &mcp_session);
    assert!(request.send().await.unwrap().status().is_success(), "ann ends her MCP session");

    // Every route but the public document is in the matrix.
    let routes: BTreeSet<(Method, &str)> =
        harness::server::routes().into_iter().filter(|(_, path)| *path != "/openapi.json").collect();
    assert_eq!(covered, routes, "the matrix covers every route");
    let (status, _) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200, "the OpenAPI document is public");
    server.shutdown().await;
}

/// A request to `/mcp` with the headers Streamable HTTP asks for.
fn mcp_request(server: &TestServer, method: Method, token: Option<&str>) -> reqwest::RequestBuilder {
    server
        .request(method, "/mcp", token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
}

/// Sends a case; an event stream answers its status only (its body never ends).
async fn send(server: &TestServer, case: &Case, token: Option<&str>) -> (u16, String) {
    let mut request = server.request(case.method.clone(), &case.path, token);
    if let Some(body) = &case.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    if status == 200 && case.route.ends_with("/events") {
        return (status, String::new());
    }
    (status, response.text().await.expect("body"))
}
