//! Every limit trips with an error naming the tool and the limit, and the
//! session carries on.

use std::time::Duration;

use runtime::{CallError, Limits};

use crate::{assert_still_serves, hostile_session};

fn quick() -> Limits {
    Limits { deadline: Duration::from_millis(300), ..Limits::default() }
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline() {
    let (_runtime, session) = hostile_session(quick()).await;
    let err = session.call("spin", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
    assert_eq!(err.to_string(), "tool `spin` exceeded its wall-clock deadline of 300ms");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn per_tool_deadline_overrides_the_default() {
    let mut limits = Limits { deadline: Duration::from_secs(60), ..Limits::default() };
    limits.tool_deadlines.insert("spin".into(), Duration::from_millis(100));
    let (_runtime, session) = hostile_session(limits).await;
    let started = std::time::Instant::now();
    let err = session.call("spin", "{}").await.unwrap_err();
    assert!(err.to_string().contains("100ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "the per-tool deadline applied");
}

#[tokio::test]
async fn blocking_in_the_host_hits_the_deadline() {
    let (_runtime, session) = hostile_session(quick()).await;
    let err = session.call("sleep", r#"{"n": 60}"#).await.unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_cap() {
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    let (_runtime, session) = hostile_session(limits).await;
    let err = session.call("memory_bomb", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::Memory { limit, .. } if limit == 32 << 20), "{err}");
    assert_eq!(err.to_string(), "tool `memory_bomb` exceeded its memory limit of 33554432 bytes");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn deep_recursion_is_a_trap() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let err = session.call("recurse", r#"{"n": 100000000}"#).await.unwrap_err();
    let CallError::Trap { reason, .. } = &err else { panic!("expected a trap, got {err}") };
    assert!(reason == "stack overflow" || reason == "out-of-bounds memory access", "{reason}");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn output_flood_is_truncated_with_a_marker() {
    let limits = Limits { stdout_bytes: 1024, ..Limits::default() };
    let (_runtime, session) = hostile_session(limits).await;
    let output = session.call("flood_stdout", r#"{"n": 10485760}"#).await.unwrap();
    assert_eq!(output.content, "wrote 10485760 bytes", "the guest ran to completion");
    assert!(output.stdout.starts_with(&"x".repeat(1023)), "the first bytes are kept");
    assert!(
        output.stdout.ends_with("[stdout truncated: 10484736 more bytes omitted, limit 1024 bytes]"),
        "{}",
        &output.stdout[1024..]
    );
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn huge_result_is_truncated_with_a_marker() {
    let limits = Limits { result_bytes: 100, ..Limits::default() };
    let (_runtime, session) = hostile_session(limits).await;
    let output = session.call("huge_result", r#"{"n": 1000000}"#).await.unwrap();
    assert!(output.content.starts_with(&"y".repeat(100)));
    assert!(
        output.content.ends_with("[result truncated: 999900 more bytes omitted, limit 100 bytes]"),
        "{}",
        output.content
    );
}

#[tokio::test]
async fn unreachable_is_a_trap() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let err = session.call("trap", "{}").await.unwrap_err();
    assert!(matches!(&err, CallError::Trap { reason, .. } if reason.contains("unreachable")), "{err}");
    assert!(err.to_string().starts_with("tool `trap` crashed"), "{err}");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn panic_reports_its_message() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let err = session.call("panic", "{}").await.unwrap_err();
    assert!(err.to_string().contains("this tool panics on purpose"), "stderr is included: {err}");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn out_of_bounds_access_is_a_trap() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let err = session.call("out_of_bounds", "{}").await.unwrap_err();
    assert!(matches!(&err, CallError::Trap { reason, .. } if reason == "out-of-bounds memory access"), "{err}");
    assert_still_serves(&session).await;
}

#[tokio::test]
async fn leaking_resources_hits_the_resource_limit() {
    let limits = Limits { resources: 50, ..Limits::default() };
    let (_runtime, session) = hostile_session(limits).await;
    let err = session.call("resources", r#"{"n": 1000}"#).await.unwrap_err();
    assert!(matches!(err, CallError::Resources { limit: 50, .. }), "{err}");
    assert!(err.to_string().contains("50 open host resources"), "{err}");
    let ok = session.call("resources", r#"{"n": 10}"#).await.unwrap();
    assert_eq!(ok.content, "created 10 resources", "below the limit the same tool works");
}

#[tokio::test]
async fn host_call_flood_hits_the_host_call_limit() {
    let limits = Limits { host_calls: 5_000, ..Limits::default() };
    let (_runtime, session) = hostile_session(limits).await;
    let err = session.call("host_calls", r#"{"n": 100000}"#).await.unwrap_err();
    assert!(matches!(err, CallError::HostCalls { limit: 5_000, .. }), "{err}");
    let ok = session.call("host_calls", r#"{"n": 100}"#).await.unwrap();
    assert!(ok.content.starts_with("made 100 host calls"), "{}", ok.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_tool_does_not_starve_other_sessions() {
    let (runtime, spinner) = hostile_session(Limits { deadline: Duration::from_secs(5), ..Limits::default() }).await;
    let other = crate::session(&runtime, spinner.toolbox().components(), Limits::default());
    // Occupy both worker threads with spinning guests; epoch yields must still let
    // the ordinary call through while the spinners are running.
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let spinner = spinner.clone();
            tokio::spawn(async move { spinner.call("spin", "{}").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_still_serves(&other).await;
    assert!(spinners.iter().all(|s| !s.is_finished()), "the call was served before the spinners hit their deadline");
    for spinner in spinners {
        assert!(matches!(spinner.await.unwrap(), Err(CallError::Deadline { .. })));
    }
}

#[tokio::test]
async fn calls_beyond_the_instance_pool_wait_for_a_slot() {
    // A pool of two instances, both held by spinning guests (which yield at every
    // epoch tick, so the other calls start meanwhile): the reads must wait for a
    // slot, not fail because the pool is full.
    let config =
        runtime::RuntimeConfig { max_instances: 2, cache_dir: Some(crate::shared_cache_dir()), ..Default::default() };
    let runtime = runtime::Runtime::new(config).expect("runtime");
    let hostile = crate::fixture(&runtime, "hostile").await;
    let session = crate::session(&runtime, &[hostile], quick());
    let spins = futures_util::future::join_all((0..2).map(|_| session.call("spin", "{}")));
    let inputs: Vec<String> = (0..6).map(|i| format!(r#"{{"text":"{i}"}}"#)).collect();
    let echoes = futures_util::future::join_all(inputs.iter().map(|input| session.call("echo", input)));
    let (spun, echoed) = futures_util::future::join(spins, echoes).await;
    for outcome in spun {
        let err = outcome.expect_err("a spinner ends at its deadline");
        assert!(matches!(err, CallError::Deadline { .. }), "{err}");
    }
    for (i, outcome) in echoed.into_iter().enumerate() {
        let output = outcome.unwrap_or_else(|err| panic!("echo {i} must wait for a slot, not fail: {err}"));
        assert_eq!(output.content, i.to_string());
    }
}
