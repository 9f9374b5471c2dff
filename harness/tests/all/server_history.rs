//! Checkpoints, files at a checkpoint, fork and delete over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::agent::{answer, call};
use crate::server_util::TestServer;

#[tokio::test]
async fn files_at_checkpoints_fork_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let answers = vec![
        answer("Writing.", vec![call("w", "write_file", json!({"path": "notes/hello.txt", "content": "hi there\n"}))]),
        answer("Done.", vec![]),
    ];
    let server = TestServer::replaying(dir.path(), answers).await;
    let ann = server.add_user("ann").await;
    let files = json!({"seed.txt": "seed\n", "dir/sub/a.txt": "A"});
    let id = server.create_session(&ann, json!({"title": "t", "files": files})).await;
    server.json(Method::POST, &format!("/v1/sessions/{id}/messages"), &ann, Some(json!({"text": "write"})), 202).await;
    let session = server.wait_idle(&ann, &id).await;

    // user message, answer, write result, answer + end.
    let checkpoints = server.json(Method::GET, &format!("/v1/sessions/{id}/checkpoints"), &ann, None, 200).await;
    let steps: Vec<u64> = checkpoints.as_array().unwrap().iter().map(|c| c["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [0, 1, 2, 3, 4]);
    assert_eq!(session["last_step"], 4);
    assert_ne!(checkpoints[0]["root"], checkpoints[4]["root"], "the write changed the filesystem");
    assert_eq!(checkpoints[3]["root"], checkpoints[4]["root"]);

    let file = |path: &str| {
        let request = server.request(Method::GET, &format!("/v1/sessions/{id}/files/{path}"), Some(&ann));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type =
                response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let step = response.headers().get("x-harness-step").map(|v| v.to_str().unwrap().to_owned());
            (status, content_type, step, response.bytes().await.unwrap().to_vec())
        }
    };
    let (status, content_type, step, bytes) = file("seed.txt?at=0").await;
    assert_eq!(
        (status, content_type.as_str(), step.as_deref(), bytes.as_slice()),
        (200, "application/octet-stream", Some("0"), b"seed\n".as_slice())
    );
    let (status, _, _, bytes) = file("notes/hello.txt?at=0").await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&bytes));
    let (status, _, step, bytes) = file("notes/hello.txt").await;
    assert_eq!((status, step.as_deref(), bytes.as_slice()), (200, Some("4"), b"hi there\n".as_slice()));
    let (status, _, _, bytes) = file("dir/sub/a.txt?at=2").await;
    assert_eq!((status, bytes.as_slice()), (200, b"A".as_slice()));

    let listing = server.json(Method::GET, &format!("/v1/sessions/{id}/files"), &ann, None, 200).await;
    let entries: Vec<(String, String)> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["kind"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [("dir", "dir"), ("notes", "dir"), ("seed.txt", "file")].map(|(n, k)| (n.to_owned(), k.to_owned()));
    assert_eq!(entries, expected);
    let at_start = server.json(Method::GET, &format!("/v1/sessions/{id}/files?at=0"), &ann, None, 200).await;
    assert_eq!(at_start["entries"].as_array().unwrap().len(), 2);
    let sub = server.json(Method::GET, &format!("/v1/sessions/{id}/files/dir/sub"), &ann, None, 200).await;
    assert_eq!(sub["path"], "dir/sub");
    assert_eq!(sub["entries"], json!([{"name": "a.txt", "kind": "file", "size": 1}]));

    // A fork at the initial checkpoint has the seed files but not the note.
    let fork = server.json(Method::POST, &format!("/v1/sessions/{id}/fork"), &ann, Some(json!({"at": 0})), 201).await;
    let fork_id = fork["id"].as_str().unwrap().to_owned();
    assert_eq!((fork["parent"]["session"].as_str(), fork["parent"]["step"].as_u64()), (Some(id.as_str()), Some(0)));
    assert_eq!(fork["status"], "idle");
    let fork_files = server.json(Method::GET, &format!("/v1/sessions/{fork_id}/files"), &ann, None, 200).await;
    assert_eq!(fork_files["entries"].as_array().unwrap().len(), 2);
    let latest = server.json(Method::POST, &format!("/v1/sessions/{id}/fork"), &ann, Some(json!({})), 201).await;
    let latest_id = latest["id"].as_str().unwrap().to_owned();
    let note = format!("/v1/sessions/{latest_id}/files/notes/hello.txt");
    assert_eq!(server.call(Method::GET, &note, Some(&ann), None).await, (200, "hi there\n".to_owned()));
    let listed = server.json(Method::GET, "/v1/sessions", &ann, None, 200).await;
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str(), fork_id.as_str(), latest_id.as_str()]);

    // A parent can't go before its forks.
    let (status, body) = server.call(Method::DELETE, &format!("/v1/sessions/{id}"), Some(&ann), None).await;
    assert_eq!(status, 409, "{body}");
    for fork in [&fork_id, &latest_id, &id] {
        let (status, body) = server.call(Method::DELETE, &format!("/v1/sessions/{fork}"), Some(&ann), None).await;
        assert_eq!(status, 204, "{body}");
    }
    let (status, _) = server.call(Method::GET, &format!("/v1/sessions/{id}"), Some(&ann), None).await;
    assert_eq!(status, 404);
    assert_eq!(server.json(Method::GET, "/v1/sessions", &ann, None, 200).await, Value::Array(Vec::new()));
    server.shutdown().await;
}
