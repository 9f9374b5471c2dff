//! Bad input answers 4xx with a JSON `{"error": …}` that says what is wrong, and
//! leaves nothing half-written.

use reqwest::Method;
use serde_json::json;

use crate::agent::answer;
use crate::server_util::{ADMIN, TestServer, error_message};

#[tokio::test]
async fn bad_requests_are_refused_with_a_json_error_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::replaying(dir.path(), vec![answer("Hi.", vec![])]).await;
    let ann = server.add_user("ann").await;
    let raw = |method: Method, path: &str, body: &'static str, content_type: Option<&'static str>| {
        let mut request = server.request(method, path, Some(&ann)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), error_message(&response.text().await.unwrap()))
        }
    };
    let json_type = Some("application/json");

    // Malformed JSON, wrong content type, wrong types, unknown fields.
    let (status, message) = raw(Method::POST, "/v1/sessions", r#"{"title": "#, json_type).await;
    assert_eq!(status, 400, "{message}");
    let (status, message) = raw(Method::POST, "/v1/sessions", r#"{"title": "t"}"#, None).await;
    assert_eq!(status, 415, "{message}");
    assert!(message.contains("application/json"), "{message}");
    let (status, message) = raw(Method::POST, "/v1/sessions", r#"{"title": 5}"#, json_type).await;
    assert_eq!(status, 422, "{message}");
    assert!(message.contains("invalid type"), "{message}");
    let (status, message) = raw(Method::POST, "/v1/sessions", r#"{"titel": "t"}"#, json_type).await;
    assert_eq!(status, 422, "{message}");
    assert!(message.contains("unknown field `titel`"), "{message}");
    let (status, message) = raw(Method::POST, "/v1/sessions", r#"{"files": {"a": 1}}"#, json_type).await;
    assert_eq!(status, 422, "{message}");

    // Initial files that can't be written: nothing is created, not even the good ones.
    for files in [json!({"ok.txt": "fine", "../escape.txt": "x"}), json!({"/abs.txt": "x"}), json!({"a/": "x"})] {
        let body = json!({"title": "never", "files": files});
        let (status, body) = server.call(Method::POST, "/v1/sessions", Some(&ann), Some(body)).await;
        assert_eq!(status, 400, "{files}: {body}");
        assert!(error_message(&body).starts_with("file "), "{body}");
    }
    let (status, body) =
        server.call(Method::POST, "/v1/sessions", Some(&ann), Some(json!({"files": {"a": "x", "a/b": "y"}}))).await;
    assert_eq!(status, 400, "a file used as a directory: {body}");

    // Too large: the body limit (1 MiB by default).
    let huge = json!({"files": {"big.txt": "x".repeat(1_100_000)}});
    let (status, body) = server.call(Method::POST, "/v1/sessions", Some(&ann), Some(huge)).await;
    assert_eq!(status, 413, "{body}");
    error_message(&body);
    assert_eq!(server.json(Method::GET, "/v1/sessions", &ann, None, 200).await, json!([]), "nothing half-written");
    assert_eq!(server.state.store().counts().unwrap().sessions, 0);

    // Invalid ids and queries.
    let (status, body) = server.call(Method::GET, "/v1/sessions/not-a-uuid", Some(&ann), None).await;
    assert_eq!(status, 400);
    assert!(error_message(&body).contains("is not a session id"), "{body}");
    let id = server.create_session(&ann, json!({"files": {"a.txt": "a"}})).await;
    let bad_queries = [
        format!("/v1/sessions/{id}/files/a.txt?at=soon"),
        format!("/v1/sessions/{id}/files?depth=2"),
        format!("/v1/sessions/{id}/events?after=-1"),
        format!("/v1/sessions/{id}/files/..%2F..%2Fetc"),
    ];
    for path in &bad_queries {
        let (status, body) = server.call(Method::GET, path, Some(&ann), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        error_message(&body);
    }
    let events = format!("/v1/sessions/{id}/events");
    let response = server.request(Method::GET, &events, Some(&ann)).header("Last-Event-ID", "x").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(error_message(&response.text().await.unwrap()).contains("Last-Event-ID"));

    // Missing things at a checkpoint.
    for path in [format!("/v1/sessions/{id}/files/a.txt?at=9"), format!("/v1/sessions/{id}/files/nope.txt")] {
        let (status, body) = server.call(Method::GET, &path, Some(&ann), None).await;
        assert_eq!(status, 404, "{path}: {body}");
        error_message(&body);
    }
    let fork = format!("/v1/sessions/{id}/fork");
    let (status, body) = server.call(Method::POST, &fork, Some(&ann), Some(json!({"at": 7}))).await;
    assert_eq!(status, 404, "{body}");
    assert!(error_message(&body).contains("no checkpoint for step 7"), "{body}");
    let (status, body) = server.call(Method::POST, &fork, Some(&ann), Some(json!({"at": "one"}))).await;
    assert_eq!(status, 422, "{body}");

    // Messages.
    let messages = format!("/v1/sessions/{id}/messages");
    let (status, body) = server.call(Method::POST, &messages, Some(&ann), Some(json!({"text": "  "}))).await;
    assert_eq!((status, error_message(&body).as_str()), (400, "`text` must not be empty"));
    let (status, body) = server.call(Method::POST, &messages, Some(&ann), Some(json!({}))).await;
    assert_eq!(status, 422);
    assert!(error_message(&body).contains("missing field `text`"), "{body}");
    let (status, body) =
        server.call(Method::POST, &messages, Some(&ann), Some(json!({"text": "hi", "model": "x"}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(server.state.store().session(&id.parse().unwrap()).unwrap().head.last_seq, 0, "no message committed");

    // Unknown routes and methods.
    let (status, body) = server.call(Method::GET, "/v1/nothing", Some(&ann), None).await;
    assert_eq!(status, 404);
    error_message(&body);
    let (status, body) = server.call(Method::PUT, "/v1/sessions", Some(&ann), None).await;
    assert_eq!(status, 405);
    error_message(&body);

    // Users: names and duplicates.
    for name in ["", "a b", ".hidden", &"x".repeat(65)] {
        let (status, body) = server.call(Method::POST, "/admin/users", Some(ADMIN), Some(json!({"name": name}))).await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert!(error_message(&body).contains("invalid user name"), "{body}");
    }
    let (status, body) = server.call(Method::POST, "/admin/users", Some(ADMIN), Some(json!({"name": "ann"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = server.call(Method::DELETE, "/admin/users/zed", Some(ADMIN), None).await;
    assert_eq!((status, error_message(&body)), (404, "user `zed` not found".to_owned()));
    server.shutdown().await;
}

#[tokio::test]
async fn a_removed_users_token_stops_working_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::replaying(dir.path(), vec![]).await;
    let ann = server.add_user("ann").await;
    assert!(ann.starts_with("hu_") && ann.len() == 67, "{ann}");
    server.json(Method::GET, "/v1/sessions", &ann, None, 200).await;
    let users = server.json(Method::GET, "/admin/users", ADMIN, None, 200).await;
    assert_eq!(users[0]["name"], "ann");
    assert_eq!(server.call(Method::DELETE, "/admin/users/ann", Some(ADMIN), None).await.0, 204);
    assert_eq!(server.call(Method::GET, "/v1/sessions", Some(&ann), None).await.0, 401);
    // A new user of the same name gets a new token; the old one stays dead.
    let again = server.add_user("ann").await;
    assert_ne!(again, ann);
    assert_eq!(server.call(Method::GET, "/v1/sessions", Some(&ann), None).await.0, 401);
    assert_eq!(server.call(Method::GET, "/v1/sessions", Some(&again), None).await.0, 200);
    server.shutdown().await;
}

#[test]
fn tokens_are_stored_only_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("harness.redb");
    let store = harness::store::Store::open(&path).unwrap();
    let token = store.add_user("ann").unwrap();
    let other = store.add_user("bob").unwrap();
    assert_ne!(token, other);
    assert_eq!(store.user_by_token(&token).unwrap().as_deref(), Some("ann"));
    assert_eq!(store.user_by_token(&format!("{token}x")).unwrap(), None);
    assert_eq!(store.users().unwrap().iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["ann", "bob"]);
    drop(store);

    let bytes = std::fs::read(&path).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(!contains(token.as_bytes()), "the token itself is never written");
    assert!(!contains(&token.as_bytes()[3..]), "nor its random part");
    let hash = harness::store::TokenHash::of(&token);
    assert!(contains(&hash.0), "its hash is the lookup key");
    assert_eq!(harness::store::TokenHash::from_hex(&hash.to_string()), Some(hash));
    assert!(hash.matches(&token) && !hash.matches(&other));
}
