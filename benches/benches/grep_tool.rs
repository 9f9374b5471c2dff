//! `grep_tool`: the built-in `grep` tool searching a 2,000-file, ~50 MiB
//! workspace through a `Session` (content mode, a regex with about a thousand
//! matching lines, `max_results` above that so output is complete), against
//! GNU `grep -rnE` over an exported copy of the same files, in the same run.
//!
//! Each tool call is a complete call: fresh instance, a walk of the VFS through
//! `wasi:filesystem`, every file read once, the regex run in wasm. The native
//! side is a spawned process reading the host page cache.
//!
//! Target: tool median ≤ 3× native median.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{Latency, SplitMix, write_results};
use criterion::Criterion;
use runtime::vfs::{OpenOptions, Vfs};
use runtime::{Limits, Runtime, RuntimeConfig, Session, Toolbox};
use serde_json::json;

const DIRS: usize = 40;
const FILES_PER_DIR: usize = 50;
const FILE_BYTES: usize = 25 << 10;
/// A regex with a literal prefix both engines accelerate and a class after it,
/// valid in both Rust regex and POSIX ERE syntax.
const PATTERN: &str = "parse_[a-z]+_config";
/// One line in about this many carries a match; the vocabulary adds near misses.
const MATCH_EVERY: u64 = 700;
/// Interleaved rounds of (tool call, native grep) measured outside criterion.
const ROUNDS: usize = 30;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(std::env::temp_dir().join("grep-tool-bench-cache")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let grep = rt.block_on(runtime.load_file(fixtures::tool("grep"))).unwrap();
    let mut toolbox = Toolbox::new();
    toolbox.add(grep).unwrap();
    let session = Session::new(&runtime, Arc::new(toolbox), Limits::default());
    let (files, bytes) = fill(&mut session.workspace().lock());
    let exported = tempfile::tempdir().expect("temp dir");
    let host_dir = cap_std::fs::Dir::open_ambient_dir(exported.path(), cap_std::ambient_authority()).unwrap();
    runtime::vfs::export_dir(&mut session.workspace().lock(), &host_dir).expect("export");

    let input = json!({ "pattern": PATTERN, "output_mode": "content", "max_results": 100_000 }).to_string();
    let call = || {
        let output = rt.block_on(session.call("grep", &input)).unwrap();
        assert!(!output.is_error, "{}", output.content);
        output.content
    };
    let tool_lines = call().lines().count();
    for locale in [Locale::Inherited, Locale::C] {
        let native_lines = native(exported.path(), locale).lines().count();
        assert_eq!(tool_lines, native_lines, "the tool and GNU grep disagree on the matching lines");
    }

    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    {
        let mut group = criterion.benchmark_group("grep_tool");
        group.bench_function("this_tool", |b| b.iter(call));
        group.bench_function("gnu_grep", |b| b.iter(|| native(exported.path(), Locale::Inherited)));
        group.finish();
    }
    criterion.final_summary();

    // Alternate the subjects so load on the shared machine hits both alike.
    let mut samples = [(); 3].map(|_| Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        samples[0].push(timed(|| drop(call())));
        samples[1].push(timed(|| drop(native(exported.path(), Locale::Inherited))));
        samples[2].push(timed(|| drop(native(exported.path(), Locale::C))));
    }
    let [ours, theirs, theirs_c] = samples.map(Latency::from_samples);
    let median_ratio = ours.median_us / theirs.median_us;
    let locale = std::env::var("LC_ALL").or_else(|_| std::env::var("LANG")).unwrap_or_default();
    write_results(
        "grep_tool",
        &json!({
            "workspace": { "files": files, "bytes": bytes, "dirs": DIRS },
            "pattern": PATTERN,
            "matching_lines": tool_lines,
            "search": { "this_tool": ours, "gnu_grep": theirs, "gnu_grep_lc_all_c": theirs_c },
            "gnu_grep_locale": locale,
            "ratios": {
                "tool_over_native_median": median_ratio,
                "tool_over_native_p99": ours.p99_us / theirs.p99_us,
                "tool_over_native_c_locale_median": ours.median_us / theirs_c.median_us,
            },
            "targets": { "tool_over_native_median_max": 3.0, "met": median_ratio <= 3.0 },
        }),
    );
}

/// The locale GNU grep runs in: the inherited one (a UTF-8 locale is what
/// matches the tool's Unicode-aware regex), or the byte-oriented `C` locale,
/// grep's fastest mode, reported for reference.
#[derive(Clone, Copy)]
enum Locale {
    Inherited,
    C,
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// GNU grep over the exported copy, output captured as the tool's is.
fn native(dir: &Path, locale: Locale) -> String {
    let mut command = Command::new("grep");
    command.args(["-rnE", PATTERN, "."]).current_dir(dir);
    if let Locale::C = locale {
        command.env("LC_ALL", "C");
    }
    let output = command.output().expect("spawn grep");
    assert!(output.status.success(), "grep failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Fills `vfs` with `DIRS` × `FILES_PER_DIR` files of pseudo-random code-like
/// text, the same on every run; returns the file and byte counts.
fn fill(vfs: &mut Vfs) -> (usize, usize) {
    const WORDS: &[&str] = &[
        "let",
        "mut",
        "fn",
        "pub",
        "struct",
        "impl",
        "self",
        "return",
        "match",
        "Some",
        "None",
        "Ok",
        "Err",
        "value",
        "config",
        "parse",
        "parser",
        "buffer",
        "index",
        "count",
        "result",
        "error",
        "string",
        "vec",
        "map",
        "iter",
        "into",
        "from",
        "clone",
        "unwrap",
        "expect",
        "len",
        "push",
        "insert",
        "remove",
        "get",
        "set",
        "new",
        "default",
        "options",
        "request",
        "response",
        "handler",
        "client",
        "server",
        "path",
        "file",
        "line",
        "offset",
        "token",
        "parse_config",
        "config_parse",
        "_config",
        "parse_",
        "=",
        "==",
        "+",
        "{",
        "}",
        "(",
        ")",
        ";",
        "->",
        "&",
    ];
    const INFIXES: &[&str] = &["json", "toml", "yaml", "env", "args", "user", "local", "remote"];
    let mut rng = SplitMix(0x5eed);
    let root = vfs.root();
    let (mut files, mut bytes) = (0, 0);
    for d in 0..DIRS {
        let dir = format!("module_{d:02}");
        vfs.create_dir_at(root, &dir).unwrap();
        for f in 0..FILES_PER_DIR {
            let mut text = String::with_capacity(FILE_BYTES + 200);
            while text.len() < FILE_BYTES {
                text.extend(std::iter::repeat_n(' ', 4 * (rng.next_u64() % 4) as usize));
                let words = 3 + rng.next_u64() % 12;
                let hit = rng.next_u64().is_multiple_of(MATCH_EVERY).then(|| rng.next_u64() % words);
                for w in 0..words {
                    if w > 0 {
                        text.push(' ');
                    }
                    if hit == Some(w) {
                        text.push_str(&format!("parse_{}_config", INFIXES[(rng.next_u64() % 8) as usize]));
                    } else {
                        text.push_str(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize]);
                    }
                }
                text.push('\n');
            }
            let options = OpenOptions { create: true, truncate: true, ..OpenOptions::default() };
            let file = vfs.open_at(root, &format!("{dir}/file_{f:02}.rs"), options).unwrap();
            vfs.write(file, 0, text.as_bytes()).unwrap();
            files += 1;
            bytes += text.len();
        }
    }
    (files, bytes)
}
