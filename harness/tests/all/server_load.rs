//! The load bench (`benches/benches/server_load.rs`) at test size: the same
//! driver ([`crate::load`]), 20 sessions in flight for 3 seconds.

use std::sync::Arc;
use std::time::Duration;

use harness::provider::ReplayProvider;
use harness::store::Store;

use crate::load::{LoadConfig, TOOL_CALLS, cassette, run};
use crate::server_util::{TestServer, agent, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_sessions_lose_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("harness.redb")).unwrap();
    let provider = Arc::new(ReplayProvider::new(cassette(), dir.path().join("cassette.json")));
    let server = TestServer::start(agent(store.clone(), provider).await, config()).await;
    let token = server.add_user("load").await;
    let load = LoadConfig {
        url: server.url.clone(),
        token,
        clients: 20,
        duration: Duration::from_secs(3),
        patience: Duration::from_secs(30),
    };
    let report = run(load, store).await;
    eprintln!("{:#}", report.to_json());
    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert_eq!((report.lost_events, report.duplicate_events, report.mismatched_events), (0, 0, 0));
    assert!(report.sessions_completed >= 20, "every client finished at least one session");
    assert_eq!(report.peak_in_flight, 20);
    assert_eq!(report.tool_calls, report.sessions_completed * TOOL_CALLS);
    assert!(report.tool_calls_per_s() > 0.0);
    assert_eq!(report.post_message.len() as u64, report.sessions_completed);
    assert_eq!(report.get_status.len() as u64, 2 * report.sessions_completed);
    server.shutdown().await;
}
