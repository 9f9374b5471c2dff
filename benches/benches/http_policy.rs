//! `http_policy`: what the host's network path adds to one outgoing request.
//!
//! Both sides fetch the same 1 MiB response from a loopback server over a fresh
//! connection and read the whole body:
//!
//! - `default_sender` (the baseline): wasmtime-wasi-http's `default_send_request`,
//!   with no policy, no credentials and no redaction;
//! - `policy_path`: `Network::send`, the path every tool request takes — the
//!   allowlist check, bearer-token injection (with the guest-credential check),
//!   the host's own name resolution and address guard, response-head redaction
//!   and streaming redaction of the body (which holds the secret once, so the
//!   redactor has work to do), under the size and time limits.
//!
//! The two alternate in rounds so machine noise hits both alike. The target:
//! `policy_path` median within 10% of `default_sender` (ratio ≤ 1.10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{Latency, write_results};
use bytes::Bytes;
use criterion::Criterion;
use http_body_util::{BodyExt, Empty};
use runtime::net::Network;
use runtime::net::policy::{Policy, Rule};
use runtime::net::secrets::{Injection, InjectionRule, SecretStore, SecretValue};
use serde_json::json;
use wasmtime_wasi_http::{WasiBody, default_send_request};

const SECRET: &str = "sk-bench-4c8e1f0a9b7d2e63";
const BODY_BYTES: usize = 1 << 20;
const ROUNDS: usize = 20;
const PER_ROUND: usize = 25;

fn request(url: &str) -> http::Request<WasiBody> {
    let body = Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
    http::Request::get(url).header(http::header::HOST, "127.0.0.1").body(body).expect("request")
}

/// Reads a body to the end and returns its length.
async fn drain(body: WasiBody) -> usize {
    body.collect().await.expect("body").to_bytes().len()
}

async fn baseline(url: &str) -> usize {
    let (response, connection) = default_send_request(request(url), None).await.expect("default sender");
    let driver = tokio::spawn(connection);
    let n = drain(response.into_body().boxed_unsync()).await;
    let _ = driver.await;
    n
}

async fn policy_path(network: &Network, url: &str) -> usize {
    let response = network.send("bench", request(url)).await.expect("policy path");
    drain(response.into_body()).await
}

fn network(port: u16) -> Network {
    let policy = Policy {
        allow: vec![Rule {
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: Some(port),
            path_prefix: "/".into(),
            methods: vec!["GET".into()],
        }],
    };
    let mut secrets = SecretStore::new();
    secrets.insert("BENCH", SecretValue::new(SECRET));
    let rule = InjectionRule {
        secret: "BENCH".into(),
        host: "127.0.0.1".into(),
        scheme: "http".into(),
        port: Some(port),
        path_prefix: "/".into(),
        inject: Injection::Header { name: "authorization".into(), format: "Bearer {secret}".into() },
    };
    Network::new(policy, secrets, vec![rule]).expect("network")
}

/// 1 MiB of text with the secret once in the middle.
fn payload() -> Bytes {
    let mut body = Vec::with_capacity(BODY_BYTES);
    let line = b"The quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet.\n";
    while body.len() < BODY_BYTES {
        body.extend_from_slice(line);
        if body.len() >= BODY_BYTES / 2 && body.len() < BODY_BYTES / 2 + line.len() {
            body.extend_from_slice(SECRET.as_bytes());
        }
    }
    body.truncate(BODY_BYTES);
    Bytes::from(body)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let payload = payload();
    let port = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let body = payload.clone();
        let app = axum::Router::new().route("/mib", axum::routing::get(move || async move { body.clone() }));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        port
    });
    let url = format!("http://127.0.0.1:{port}/mib");
    let network = Arc::new(network(port));

    // Both paths must deliver the whole body, and the policy path a redacted one.
    let check = rt.block_on(async {
        let response = network.send("bench", request(&url)).await.expect("policy path");
        response.into_body().collect().await.expect("body").to_bytes()
    });
    assert!(!check.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret was redacted");
    assert!(check.windows(16).any(|w| w == b"[REDACTED:BENCH]"));
    assert_eq!(rt.block_on(baseline(&url)), BODY_BYTES);

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    {
        let mut group = criterion.benchmark_group("http_1mib_response");
        group.throughput(criterion::Throughput::Bytes(BODY_BYTES as u64));
        group.bench_function("default_sender", |b| b.to_async(&rt).iter(|| baseline(&url)));
        group.bench_function("policy_path", |b| b.to_async(&rt).iter(|| policy_path(&network, &url)));
        group.finish();
    }
    criterion.final_summary();

    let (mut base, mut policy) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..ROUNDS {
            for _ in 0..PER_ROUND {
                let start = Instant::now();
                baseline(&url).await;
                base.push(start.elapsed());
                let start = Instant::now();
                policy_path(&network, &url).await;
                policy.push(start.elapsed());
            }
        }
    });
    let (base, policy) = (Latency::from_samples(base), Latency::from_samples(policy));
    let ratio = policy.median_us / base.median_us;
    write_results(
        "http_policy",
        &json!({
            "response_bytes": BODY_BYTES,
            "default_sender": base,
            "policy_path": policy,
            "ratio_median": ratio,
            "overhead_median_percent": (ratio - 1.0) * 100.0,
            "overhead_median_us": policy.median_us - base.median_us,
            "target_ratio": 1.10,
            "meets_target": ratio <= 1.10,
        }),
    );
}
