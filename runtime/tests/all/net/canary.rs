//! A hostile tool hunts for the canary secret everywhere a guest can look. The
//! canary reaches the server it is meant for and appears in no byte the guest
//! can observe, no tool output, no persisted object and no log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use runtime::Limits;
use serde_json::json;

use super::servers::Servers;
use super::{CANARY, bearer, network};

/// Log lines captured from every tracing event of the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Asserts that `bytes` hold no form of the canary (raw, percent-encoded, base64).
fn clean(what: &str, bytes: &[u8], redactor: &runtime::net::redact::Redactor) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains(CANARY), "{what} holds the canary: {text}");
    assert!(!redactor.finds(bytes), "{what} holds an encoded form of the canary: {text}");
}

// One thread, so the tracing subscriber sees every task the call spawns.
#[tokio::test(flavor = "current_thread")]
async fn the_canary_appears_in_no_guest_observable_byte_output_object_or_log() {
    let servers = Servers::start().await;
    let runtime = super::super::runtime();
    let probe = super::super::fixture(&runtime, "net_probe").await;
    let network = Arc::new(network(&servers, bearer()));
    let session = super::super::session(&runtime, &[probe], Limits::default()).with_network(network.clone());

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (api, other) = (servers.api.port, servers.elsewhere.port);
    let urls = vec![
        servers.api("/echo/direct"),
        servers.api("/echo/../echo/dots"),
        servers.api("/ECHO/%2e%2e/echo"),
        format!("http://127.1:{api}/echo/short-ip"),
        format!("http://2130706433:{api}/echo/decimal-ip"),
        format!("http://[::ffff:127.0.0.1]:{api}/echo/mapped"),
        format!("http://localhost:{api}/echo/localhost"),
        format!("http://127.0.0.1:{api}@127.0.0.1:{other}/echo/userinfo"),
        format!("http://127.0.0.1:{api}.nip.io/echo/suffix"),
        servers.elsewhere("/echo/other-port"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ];
    let redirects = vec![servers.api("/redirect-elsewhere")];
    let raw = vec![
        (format!("127.0.0.1:{api}@127.0.0.1:{other}"), "/echo/raw-userinfo".to_string()),
        (format!("user@127.0.0.1:{api}"), "/echo/raw-user".to_string()),
        (format!("127.0.0.1:{api}"), format!("http://127.0.0.1:{other}/echo/absolute-form")),
        (format!("127.0.0.1:{api}"), "/echo/raw-ok?x=1".to_string()),
        (format!("0.0.0.0:{api}"), "/echo/unspecified".to_string()),
    ];
    let input = json!({"urls": urls, "redirects": redirects, "raw": raw}).to_string();
    let output = session.call("hunt", &input).await.expect("the hunt runs");

    let redactor = network.redactor();
    eprintln!("what the probe saw:\n{}", output.content);
    assert!(servers.api.log.text().contains(&format!("authorization: Bearer {CANARY}")), "injection happened");
    assert!(
        output.content.contains("[REDACTED:CANARY]"),
        "the echo's reflection came back, redacted: {}",
        output.content
    );
    assert!(output.content.contains("x-echo-authorization: Bearer [REDACTED:CANARY]"), "{}", output.content);
    assert!(output.content.contains("may not set the `authorization` header"), "{}", output.content);
    assert!(output.content.contains("-> 302"), "the redirect was observed: {}", output.content);
    assert!(output.content.contains(&format!("== raw 127.0.0.1:{api}/echo/raw-ok?x=1 -> 200")), "{}", output.content);
    for refused in ["raw-userinfo", "raw-user"] {
        assert!(!servers.api.log.text().contains(refused), "{refused} must not reach a server");
        assert!(!servers.elsewhere.log.text().contains(refused), "{refused} must not reach a server");
    }
    clean("the tool result", output.content.as_bytes(), redactor);
    clean("stdout", output.stdout.as_bytes(), redactor);
    clean("stderr", output.stderr.as_bytes(), redactor);
    clean("what the other server received", servers.elsewhere.log.text().as_bytes(), redactor);
    assert!(servers.elsewhere.log.text().contains("GET /steal?auth="), "the redirect was followed");

    let snapshot = session.workspace().snapshot().expect("snapshot");
    assert!(!snapshot.new_objects.is_empty(), "the loot file was written");
    for (id, bytes) in &snapshot.new_objects {
        clean(&format!("object {id}"), bytes, redactor);
    }
    let logged = logs.0.lock().unwrap().clone();
    assert!(!logged.is_empty(), "the capture saw the request logs");
    clean("the logs", &logged, redactor);
}
