//! Counters for `/metrics`, written in the Prometheus text format by hand: a few
//! atomics are all this needs, and no registry crate has to agree with axum's.
//!
//! What is measured:
//! - `harness_tool_call_duration_seconds`: for each committed tool result, the time
//!   since the run's previous commit. For a writing tool that is the call itself
//!   (validation, a fresh instance, the call) plus its commit; a batch of concurrent
//!   read-only calls commits as one step, so each of its calls records the batch's
//!   time. Measured by the run's observer, from commits, so it costs the loop nothing.
//! - `harness_run_duration_seconds`: one background run (a message or a resume),
//!   from its spawn to its end.
//! - `harness_runs_active`: runs in progress in this process now.
//! - `harness_provider_tokens_total`: usage of the model answers committed by this
//!   process's runs, by kind.
//! - `harness_runs_total`: ended runs by how they ended (`end_turn`, `max_turns`,
//!   `budget`, `cancelled`, `failed`; `error` when the store or filesystem failed;
//!   `interrupted` when shutdown stopped a run, which resumes at the next start).
//! - `harness_http_requests_total`: answered requests by status code.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::conversation::Usage;

/// Histogram bucket bounds, in seconds: from a fast tool call to a long run.
const BUCKETS: [f64; 16] =
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// A Prometheus histogram over durations.
#[derive(Default)]
struct Histogram {
    /// Observations at most each bound (not cumulative; summed when written).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    tool_calls: Histogram,
    tool_errors: AtomicU64,
    runs: Histogram,
    runs_ended: Mutex<BTreeMap<&'static str, u64>>,
    tokens: [AtomicU64; 4],
    http: Mutex<BTreeMap<u16, u64>>,
}

impl Metrics {
    /// A tool result was committed `duration` after the run's previous commit.
    pub fn tool_call(&self, duration: Duration, is_error: bool) {
        self.tool_calls.observe(duration);
        if is_error {
            self.tool_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A model answer with this usage was committed.
    pub fn tokens(&self, usage: &Usage) {
        let kinds =
            [usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens];
        for (counter, value) in self.tokens.iter().zip(kinds) {
            counter.fetch_add(value, Ordering::Relaxed);
        }
    }

    /// A run ended after `duration`, for `reason`.
    pub fn run_ended(&self, duration: Duration, reason: &'static str) {
        self.runs.observe(duration);
        *self.runs_ended.lock().unwrap_or_else(PoisonError::into_inner).entry(reason).or_default() += 1;
    }

    /// A request was answered with `status`.
    pub fn http(&self, status: u16) {
        *self.http.lock().unwrap_or_else(PoisonError::into_inner).entry(status).or_default() += 1;
    }

    /// Everything, in the Prometheus text format; `active` is the number of runs now.
    pub fn render(&self, active: usize) -> String {
        let mut out = String::new();
        self.tool_calls.write(
            &mut out,
            "harness_tool_call_duration_seconds",
            "Time from a run's previous commit to the commit of a tool result.",
        );
        let calls = self.tool_calls.count.load(Ordering::Relaxed);
        let errors = self.tool_errors.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP harness_tool_calls_total Tool results committed, by outcome.");
        let _ = writeln!(out, "# TYPE harness_tool_calls_total counter");
        let _ = writeln!(out, "harness_tool_calls_total{{outcome=\"ok\"}} {}", calls.saturating_sub(errors));
        let _ = writeln!(out, "harness_tool_calls_total{{outcome=\"error\"}} {errors}");
        self.runs.write(&mut out, "harness_run_duration_seconds", "Duration of background runs.");
        let _ = writeln!(out, "# HELP harness_runs_total Ended runs, by how they ended.");
        let _ = writeln!(out, "# TYPE harness_runs_total counter");
        for (reason, count) in self.runs_ended.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "harness_runs_total{{reason=\"{reason}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP harness_runs_active Runs in progress in this process.");
        let _ = writeln!(out, "# TYPE harness_runs_active gauge\nharness_runs_active {active}");
        let _ = writeln!(out, "# HELP harness_provider_tokens_total Tokens of committed model answers, by kind.");
        let _ = writeln!(out, "# TYPE harness_provider_tokens_total counter");
        for (kind, counter) in ["input", "output", "cache_creation_input", "cache_read_input"].iter().zip(&self.tokens)
        {
            let _ =
                writeln!(out, "harness_provider_tokens_total{{kind=\"{kind}\"}} {}", counter.load(Ordering::Relaxed));
        }
        let _ = writeln!(out, "# HELP harness_http_requests_total Answered HTTP requests, by status.");
        let _ = writeln!(out, "# TYPE harness_http_requests_total counter");
        for (status, count) in self.http.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "harness_http_requests_total{{status=\"{status}\"}} {count}");
        }
        out
    }
}
