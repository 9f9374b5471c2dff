//! Nothing survives a call, and nothing crosses between sessions.

use runtime::Limits;

use crate::{fixture, hostile_session, runtime, session};

#[tokio::test]
async fn memory_and_globals_do_not_survive_a_call() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    for _ in 0..5 {
        let output = session.call("counter", "{}").await.unwrap();
        assert_eq!(output.content, "count=1 seen_before=false");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_running_concurrently_see_only_fresh_instances() {
    let runtime = runtime();
    let hostile = fixture(&runtime, "hostile").await;
    let sessions: Vec<_> =
        (0..8).map(|_| session(&runtime, std::slice::from_ref(&hostile), Limits::default())).collect();
    let mut tasks = Vec::new();
    for session in sessions {
        tasks.push(tokio::spawn(async move {
            let mut outputs = Vec::new();
            for _ in 0..25 {
                outputs.push(session.call("counter", "{}").await.unwrap().content);
            }
            outputs
        }));
    }
    for task in tasks {
        for content in task.await.unwrap() {
            assert_eq!(content, "count=1 seen_before=false");
        }
    }
}

#[tokio::test]
async fn guest_sees_no_host_environment() {
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("AGENT_TEST_SECRET", "canary-4f1e") };
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let output = session.call("environment", "{}").await.unwrap();
    assert_eq!(
        output.content, "vars=[] args=[] cwd=Some(\"/\") root_entries=None etc_passwd=false",
        "the guest must see no variables, arguments, directories or host files"
    );
    assert!(!output.content.contains("canary-4f1e"));
}
