//! Tests of the search tools: glob, grep.

use runtime::Session;
use runtime::vfs::Timestamp;
use serde_json::json;

use crate::{err, ok, put, session_with};

async fn session() -> Session {
    session_with(&["glob", "grep"]).await
}

/// The reason the host refuses `input` before running the tool (schema violations).
async fn rejected(session: &Session, tool: &str, input: serde_json::Value) -> String {
    match session.call(tool, &input.to_string()).await {
        Ok(output) => panic!("{tool} {input} should be refused, got: {output:?}"),
        Err(err) => err.to_string(),
    }
}

/// Writes `path` with its modification time set to `secs`.
fn put_at(session: &Session, secs: u64, path: &str, content: &[u8]) {
    session.workspace().set_now(Timestamp { secs, nanos: 0 });
    put(session, path, content);
}

/// Twenty numbered lines, `line 1` to `line 20`.
fn numbered(marks: &[usize]) -> String {
    (1..=20).map(|n| if marks.contains(&n) { format!("line {n} MARK\n") } else { format!("line {n}\n") }).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_content_mode_prints_path_line_text_in_path_order() {
    let session = session().await;
    put(&session, "src/lib.rs", b"fn main() {}\n// TODO: tidy\nfn helper() {}\n");
    put(&session, "README.md", b"intro\nuse fn here\n");
    put(&session, "a-first.txt", b"fn at the start\n");
    let out = ok(&session, "grep", json!({"pattern": r"^fn\s+\w+\("})).await;
    assert_eq!(out, "src/lib.rs:1:fn main() {}\nsrc/lib.rs:3:fn helper() {}\n");
    let out = ok(&session, "grep", json!({"pattern": "fn"})).await;
    assert_eq!(
        out,
        "README.md:2:use fn here\na-first.txt:1:fn at the start\nsrc/lib.rs:1:fn main() {}\n\
         src/lib.rs:3:fn helper() {}\n"
    );
    let out = ok(&session, "grep", json!({"pattern": "TODO|FIXME", "path": "src"})).await;
    assert_eq!(out, "src/lib.rs:2:// TODO: tidy\n");
    let out = ok(&session, "grep", json!({"pattern": "nothing like this"})).await;
    assert_eq!(out, "No matches for `nothing like this` in `.`.");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_context_merges_groups_and_separates_them_like_grep() {
    let session = session().await;
    put(&session, "a.txt", numbered(&[3, 5, 15, 20]).as_bytes());
    put(&session, "b.txt", b"MARK first\nsecond\n");
    let out = ok(&session, "grep", json!({"pattern": "MARK", "context": 1})).await;
    assert_eq!(
        out,
        "a.txt-2-line 2\na.txt:3:line 3 MARK\na.txt-4-line 4\na.txt:5:line 5 MARK\na.txt-6-line 6\n--\n\
         a.txt-14-line 14\na.txt:15:line 15 MARK\na.txt-16-line 16\n--\na.txt-19-line 19\na.txt:20:line 20 MARK\n\
         --\nb.txt:1:MARK first\nb.txt-2-second\n"
    );
    // One line between groups is a gap; groups that touch are one group.
    put(&session, "a.txt", numbered(&[4, 8]).as_bytes());
    let out = ok(&session, "grep", json!({"pattern": "MARK", "context": 1, "path": "a.txt"})).await;
    assert_eq!(
        out,
        "a.txt-3-line 3\na.txt:4:line 4 MARK\na.txt-5-line 5\n--\na.txt-7-line 7\na.txt:8:line 8 MARK\na.txt-9-line 9\n"
    );
    put(&session, "a.txt", numbered(&[4, 7]).as_bytes());
    let out = ok(&session, "grep", json!({"pattern": "MARK", "context": 1, "path": "a.txt"})).await;
    assert_eq!(
        out,
        "a.txt-3-line 3\na.txt:4:line 4 MARK\na.txt-5-line 5\na.txt-6-line 6\na.txt:7:line 7 MARK\na.txt-8-line 8\n"
    );
    // Context is clipped at the start and end of a file, and never repeats a line.
    put(&session, "a.txt", b"MARK 1\nx\nMARK 3\n");
    let out = ok(&session, "grep", json!({"pattern": "MARK", "context": 10, "path": "a.txt"})).await;
    assert_eq!(out, "a.txt:1:MARK 1\na.txt-2-x\na.txt:3:MARK 3\n");
    // Without context there are no separators.
    let out = ok(&session, "grep", json!({"pattern": "MARK"})).await;
    assert_eq!(out, "a.txt:1:MARK 1\na.txt:3:MARK 3\nb.txt:1:MARK first\n");
    let out = rejected(&session, "grep", json!({"pattern": "MARK", "context": 11})).await;
    assert!(out.contains("context"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_files_with_matches_and_count_modes() {
    let session = session().await;
    put(&session, "z.txt", b"hit\nmiss\nhit again\n");
    put(&session, "a/b.txt", b"hit\n");
    put(&session, "c.txt", b"nothing\n");
    let out = ok(&session, "grep", json!({"pattern": "hit", "output_mode": "files_with_matches"})).await;
    assert_eq!(out, "a/b.txt\nz.txt\n");
    let out = ok(&session, "grep", json!({"pattern": "hit", "output_mode": "count"})).await;
    assert_eq!(out, "a/b.txt:1\nz.txt:2\n");
    // Counts are of lines, as with `grep -c`.
    let out = ok(&session, "grep", json!({"pattern": "i", "output_mode": "count", "path": "z.txt"})).await;
    assert_eq!(out, "z.txt:3\n");
    let out = ok(&session, "grep", json!({"pattern": "hit", "output_mode": "content"})).await;
    assert_eq!(out, "a/b.txt:1:hit\nz.txt:1:hit\nz.txt:3:hit again\n");
    let out = rejected(&session, "grep", json!({"pattern": "hit", "output_mode": "lines"})).await;
    assert!(out.contains("output_mode"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_case_insensitive() {
    let session = session().await;
    put(&session, "log.txt", b"Error: one\nerror: two\nERROR: three\nfine\n");
    let out = ok(&session, "grep", json!({"pattern": "error", "output_mode": "count"})).await;
    assert_eq!(out, "log.txt:1\n");
    let out = ok(&session, "grep", json!({"pattern": "error", "case_insensitive": true})).await;
    assert_eq!(out, "log.txt:1:Error: one\nlog.txt:2:error: two\nlog.txt:3:ERROR: three\n");
    let out = ok(&session, "grep", json!({"pattern": "(?i)ERROR", "output_mode": "count"})).await;
    assert_eq!(out, "log.txt:3\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_glob_filters_file_paths() {
    let session = session().await;
    put(&session, "main.rs", b"needle\n");
    put(&session, "src/lib.rs", b"needle\n");
    put(&session, "src/deep/mod.rs", b"needle\n");
    put(&session, "src/notes.md", b"needle\n");
    put(&session, "web/app.tsx", b"needle\n");
    let files = |glob: &str, path: &str| json!({"pattern": "needle", "glob": glob, "path": path, "output_mode": "files_with_matches"});
    // Without a slash the glob names files at any depth.
    assert_eq!(ok(&session, "grep", files("*.rs", ".")).await, "main.rs\nsrc/deep/mod.rs\nsrc/lib.rs\n");
    assert_eq!(ok(&session, "grep", files("*.{md,tsx}", ".")).await, "src/notes.md\nweb/app.tsx\n");
    // With one it matches the path relative to `path`.
    assert_eq!(ok(&session, "grep", files("src/**/*.rs", ".")).await, "src/deep/mod.rs\nsrc/lib.rs\n");
    assert_eq!(ok(&session, "grep", files("src/*.rs", ".")).await, "src/lib.rs\n");
    assert_eq!(ok(&session, "grep", files("deep/*.rs", "src")).await, "src/deep/mod.rs\n");
    // A single file is filtered by its name.
    assert_eq!(ok(&session, "grep", files("*.md", "src/lib.rs")).await, "No matches for `needle` in `src/lib.rs`.");
    let out = err(&session, "grep", files("src/[a", ".")).await;
    assert!(out.starts_with("invalid glob `src/[a`:"), "{out}");
    assert!(out.contains("unclosed character class"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_searches_a_single_file_by_relative_or_absolute_path() {
    let session = session().await;
    put(&session, "docs/guide.md", b"# Guide\nsee also\n");
    put(&session, "docs/other.md", b"# Other\n");
    let out = ok(&session, "grep", json!({"pattern": "^#", "path": "docs/guide.md"})).await;
    assert_eq!(out, "docs/guide.md:1:# Guide\n");
    let out = ok(&session, "grep", json!({"pattern": "^#", "path": "/workspace/docs/guide.md"})).await;
    assert_eq!(out, "docs/guide.md:1:# Guide\n");
    let out = ok(&session, "grep", json!({"pattern": "^#", "path": "./docs/../docs/other.md"})).await;
    assert_eq!(out, "docs/other.md:1:# Other\n");
    let out = ok(&session, "grep", json!({"pattern": "^#", "path": "/workspace/docs/"})).await;
    assert_eq!(out, "docs/guide.md:1:# Guide\ndocs/other.md:1:# Other\n");
    let out = err(&session, "grep", json!({"pattern": "x", "path": "docs/missing.md"})).await;
    assert_eq!(out, "cannot search `docs/missing.md`: it does not exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_skips_binary_files() {
    let session = session().await;
    put(&session, "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR needle\n");
    let mut late_nul = b"needle on the first line\n".repeat(400);
    late_nul.extend_from_slice(b"\0 past the probe\n");
    put(&session, "late.bin", &late_nul);
    put(&session, "text.txt", b"needle\n");
    let out = ok(&session, "grep", json!({"pattern": "needle", "output_mode": "files_with_matches"})).await;
    // A NUL within the first 8 KiB makes a file binary; one after it does not.
    assert_eq!(out, "late.bin\ntext.txt\n");
    let out = ok(&session, "grep", json!({"pattern": "needle", "path": "image.png"})).await;
    assert_eq!(out, "No matches for `needle` in `image.png`.");
    // Files too large to read into the guest are named instead of searched.
    put(&session, "huge.log", &vec![b'n'; (64 << 20) + 1]);
    let out = ok(&session, "grep", json!({"pattern": "needle", "output_mode": "count"})).await;
    assert_eq!(out, "late.bin:400\ntext.txt:1\n[not searched, larger than 64 MiB: huge.log]\n");
    let out = ok(&session, "grep", json!({"pattern": "needle", "path": "huge.log"})).await;
    assert_eq!(out, "No matches for `needle` in `huge.log`.\n[not searched, larger than 64 MiB: huge.log]\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_refuses_invalid_regexes_with_the_reason() {
    let session = session().await;
    put(&session, "a.txt", b"x\n");
    let out = err(&session, "grep", json!({"pattern": "fn main("})).await;
    assert!(out.starts_with("invalid regex `fn main(`:"), "{out}");
    assert!(out.contains("unclosed group"), "{out}");
    let out = err(&session, "grep", json!({"pattern": "(?<=a)b"})).await;
    assert!(out.contains("look-around"), "{out}");
    let out = err(&session, "grep", json!({"pattern": "a{99999}{99999}"})).await;
    assert!(out.starts_with("invalid regex"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_outside_the_workspace_are_refused() {
    let session = session().await;
    put(&session, "a.txt", b"x\n");
    for path in
        ["..", "../etc", "a/../../etc", "/", "/etc/passwd", "/workspace/../etc", "/workspacex", "/tmp/workspace"]
    {
        for tool in ["grep", "glob"] {
            let out = err(&session, tool, json!({"pattern": "x", "path": path})).await;
            assert!(out.starts_with(&format!("path `{path}` is outside the workspace")), "{tool} {path}: {out}");
        }
    }
    // Lexically inside, even if it passes through `..`.
    assert_eq!(ok(&session, "grep", json!({"pattern": "x", "path": "sub/../"})).await, "a.txt:1:x\n");
    assert_eq!(ok(&session, "glob", json!({"pattern": "*", "path": "/workspace/."})).await, "a.txt\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_caps_results_and_says_how_many_more() {
    let session = session().await;
    for file in 0..5 {
        let lines: String = (0..6).map(|n| format!("hit {file}.{n}\n")).collect();
        put(&session, &format!("f{file}.txt"), lines.as_bytes());
    }
    let out = ok(&session, "grep", json!({"pattern": "hit", "max_results": 8})).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    assert_eq!(lines[7], "f1.txt:2:hit 1.1");
    assert_eq!(
        lines[8],
        "[22 more matching lines (in 4 files) not shown; output stopped at 8 results; \
         narrow the pattern, `path` or `glob` to see them]"
    );
    let out =
        ok(&session, "grep", json!({"pattern": "hit", "max_results": 2, "output_mode": "files_with_matches"})).await;
    assert_eq!(
        out,
        "f0.txt\nf1.txt\n[3 more files with matches not shown; output stopped at 2 results; \
         narrow the pattern, `path` or `glob` to see them]\n"
    );
    let out = ok(&session, "grep", json!({"pattern": "hit", "max_results": 4, "output_mode": "count"})).await;
    assert_eq!(
        out,
        "f0.txt:6\nf1.txt:6\nf2.txt:6\nf3.txt:6\n[1 more file with matches not shown (6 matching lines); \
         output stopped at 4 results; narrow the pattern, `path` or `glob` to see them]\n"
    );
    // Context after the last shown line stops short of the first hidden match.
    put(&session, "ctx.txt", numbered(&[2, 4, 5]).as_bytes());
    let out = ok(&session, "grep", json!({"pattern": "MARK", "path": "ctx.txt", "context": 3, "max_results": 2})).await;
    assert_eq!(
        out,
        "ctx.txt-1-line 1\nctx.txt:2:line 2 MARK\nctx.txt-3-line 3\nctx.txt:4:line 4 MARK\n\
         [1 more matching line (in 1 file) not shown; output stopped at 2 results; \
         narrow the pattern, `path` or `glob` to see them]\n"
    );
    // Exactly at the cap: nothing hidden, no note.
    let out = ok(&session, "grep", json!({"pattern": "hit", "max_results": 30})).await;
    assert_eq!(out.lines().count(), 30);
    let out = rejected(&session, "grep", json!({"pattern": "hit", "max_results": 0})).await;
    assert!(out.contains("max_results"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_caps_output_size_and_long_lines() {
    let session = session().await;
    let long = format!("x{}needle{}\n", "é".repeat(600), "x".repeat(5000));
    put(&session, "long.txt", long.as_bytes());
    let out = ok(&session, "grep", json!({"pattern": "needle"})).await;
    // Byte 1,000 is inside an `é`, so the cut backs up to the character's start.
    assert_eq!(out, format!("long.txt:1:x{} [… {} more bytes]\n", "é".repeat(499), long.len() - 1 - 999));
    let many = format!("needle {}\n", "y".repeat(990)).repeat(400);
    put(&session, "many.txt", many.as_bytes());
    let out = ok(&session, "grep", json!({"pattern": "needle", "path": "many.txt", "max_results": 10000})).await;
    assert!(out.len() < 210 << 10, "{}", out.len());
    let note = out.lines().last().unwrap();
    assert!(note.starts_with("[") && note.contains("more matching lines (in 1 file) not shown"), "{note}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grep_handles_unicode_and_line_ends() {
    let session = session().await;
    put(&session, "i18n.txt", "Été à Paris\nnaïve café\n日本語のテキスト\nplain\n".as_bytes());
    let out = ok(&session, "grep", json!({"pattern": "été", "case_insensitive": true})).await;
    assert_eq!(out, "i18n.txt:1:Été à Paris\n");
    let out = ok(&session, "grep", json!({"pattern": r"^\w+語"})).await;
    assert_eq!(out, "i18n.txt:3:日本語のテキスト\n");
    let out = ok(&session, "grep", json!({"pattern": "caf.$"})).await;
    assert_eq!(out, "i18n.txt:2:naïve café\n");
    // Invalid UTF-8 is searched and shown with replacement characters.
    put(&session, "i18n.txt", b"bad \xff byte\n");
    assert_eq!(ok(&session, "grep", json!({"pattern": "byte"})).await, "i18n.txt:1:bad \u{fffd} byte\n");
    // A match never spans lines, whatever the pattern could match.
    put(&session, "lines.txt", b"alpha\nbeta\nalpha beta\r\nend");
    assert_eq!(ok(&session, "grep", json!({"pattern": r"alpha\sbeta"})).await, "lines.txt:3:alpha beta\n");
    assert_eq!(ok(&session, "grep", json!({"pattern": r"a[^x]*b"})).await, "lines.txt:3:alpha beta\n");
    // `$` matches before CRLF; the last line needs no newline.
    assert_eq!(ok(&session, "grep", json!({"pattern": "beta$"})).await, "lines.txt:2:beta\nlines.txt:3:alpha beta\n");
    assert_eq!(ok(&session, "grep", json!({"pattern": "^end$"})).await, "lines.txt:4:end\n");
    // An empty pattern matches every line, and the end after a final newline is not a line.
    put(&session, "lines.txt", b"one\n\nthree\n");
    assert_eq!(ok(&session, "grep", json!({"pattern": "", "output_mode": "count"})).await, "i18n.txt:1\nlines.txt:3\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn glob_matches_patterns_relative_to_path() {
    let session = session().await;
    for path in ["Cargo.toml", "src/main.rs", "src/a/b/deep.rs", "src/tests/test_x.py", "tests/test_y.py", "x.rs"] {
        put(&session, path, b"");
    }
    put(&session, ".git/config", b"");
    let glob = |pattern: &str, path: &str| json!({"pattern": pattern, "path": path});
    let sorted = |out: String| {
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines.join(",")
    };
    assert_eq!(sorted(ok(&session, "glob", glob("**/*.rs", ".")).await), "src/a/b/deep.rs,src/main.rs,x.rs");
    assert_eq!(sorted(ok(&session, "glob", glob("*.rs", ".")).await), "x.rs");
    assert_eq!(sorted(ok(&session, "glob", glob("*.rs", "src")).await), "src/main.rs");
    assert_eq!(sorted(ok(&session, "glob", glob("**/*.rs", "/workspace/src/a")).await), "src/a/b/deep.rs");
    assert_eq!(sorted(ok(&session, "glob", glob("src/**/test_*.py", ".")).await), "src/tests/test_x.py");
    assert_eq!(sorted(ok(&session, "glob", glob("**/test_?.py", ".")).await), "src/tests/test_x.py,tests/test_y.py");
    assert_eq!(sorted(ok(&session, "glob", glob("*.{toml,rs}", "./")).await), "Cargo.toml,x.rs");
    // `.git` is skipped, unless it is the path searched.
    assert!(!ok(&session, "glob", glob("**", ".")).await.contains(".git"));
    assert_eq!(ok(&session, "glob", glob("*", ".git")).await, ".git/config\n");
    assert_eq!(ok(&session, "glob", glob("**/*.go", ".")).await, "No files match `**/*.go` in `.`.");
    let out = err(&session, "glob", glob("**/*.rs", "src/main.rs")).await;
    assert_eq!(out, "cannot search `src/main.rs`: it is a file, not a directory; give its directory as `path`");
    let out = err(&session, "glob", glob("*", "nowhere")).await;
    assert_eq!(out, "cannot search `nowhere`: it does not exist");
}

#[tokio::test(flavor = "multi_thread")]
async fn glob_lists_newest_first_then_by_path() {
    let session = session().await;
    put_at(&session, 1_000, "old.txt", b"");
    put_at(&session, 3_000, "b/newest.txt", b"");
    put_at(&session, 2_000, "mid-b.txt", b"");
    put_at(&session, 2_000, "mid-a.txt", b"");
    let out = ok(&session, "glob", json!({"pattern": "**/*.txt"})).await;
    assert_eq!(out, "b/newest.txt\nmid-a.txt\nmid-b.txt\nold.txt\n");
    // Rewriting a file makes it the newest.
    put_at(&session, 4_000, "old.txt", b"changed");
    let out = ok(&session, "glob", json!({"pattern": "**/*.txt"})).await;
    assert_eq!(out, "old.txt\nb/newest.txt\nmid-a.txt\nmid-b.txt\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn glob_refuses_invalid_patterns_and_caps_results() {
    let session = session().await;
    for n in 0..1005 {
        put_at(&session, n, &format!("d{}/f{n:04}.txt", n % 7), b"");
    }
    let out = ok(&session, "glob", json!({"pattern": "**/*.txt"})).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1001);
    // Newest first: the file written at n = 1004 leads, and the five oldest are left out.
    for (i, line) in lines[..1000].iter().enumerate() {
        let n = 1004 - i as u64;
        assert_eq!(*line, format!("d{}/f{n:04}.txt", n % 7));
    }
    assert_eq!(
        lines[1000],
        "[showing the 1000 most recently modified of 1005 matching files; narrow the pattern or the path to see the rest]"
    );
    let out = err(&session, "glob", json!({"pattern": "src/[a-"})).await;
    assert!(out.starts_with("invalid glob pattern `src/[a-`:") && out.contains("unclosed character class"), "{out}");
    let out = err(&session, "glob", json!({"pattern": "*.{rs,toml"})).await;
    assert!(out.contains("unclosed alternate group"), "{out}");
    let out = err(&session, "glob", json!({"pattern": "/workspace/**/*.rs"})).await;
    assert!(out.contains("is absolute"), "{out}");
    let out = rejected(&session, "glob", json!({"pattern": "*", "extra": 1})).await;
    assert!(out.contains("extra"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_tools_are_read_only_idempotent_and_documented() {
    let session = session().await;
    for tool in ["glob", "grep"] {
        let spec = session.toolbox().spec(tool).unwrap();
        assert!(spec.read_only && spec.idempotent, "{tool}");
        let properties = spec.input_schema["properties"].as_object().unwrap();
        for (name, property) in properties {
            let documented = property.get("description").or_else(|| property.pointer("/allOf/0/description"));
            assert!(documented.is_some(), "{tool}.{name} has no description: {property}");
        }
        assert_eq!(spec.input_schema["required"], json!(["pattern"]), "{tool}");
    }
    let grep = session.toolbox().spec("grep").unwrap();
    let properties = grep.input_schema["properties"].as_object().unwrap();
    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
    for name in ["pattern", "path", "glob", "case_insensitive", "context", "output_mode", "max_results"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(grep.description.contains("path:line:text") && grep.description.contains("files_with_matches"));
}
