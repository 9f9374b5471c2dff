//! Tests of the file tools: read_file, write_file, edit_file, apply_patch, list_dir.

use runtime::vfs::{Quota, Vfs};
use runtime::{DEFAULT_MOUNT, Session, Workspace};
use serde_json::json;

use crate::{err, get, ok, put, session_with};

const TOOLS: [&str; 5] = ["read_file", "write_file", "edit_file", "apply_patch", "list_dir"];

async fn session() -> Session {
    session_with(&TOOLS).await
}

/// A file's content as text, `None` if it does not exist.
fn text(session: &Session, path: &str) -> Option<String> {
    get(session, path).map(|bytes| String::from_utf8(bytes).expect("UTF-8 file"))
}

/// Creates a directory (and its parents) from the host side.
fn mkdir(session: &Session, path: &str) {
    let mut vfs = session.workspace().lock();
    let root = vfs.root();
    let mut dir = String::new();
    for part in path.split('/') {
        dir = if dir.is_empty() { part.to_string() } else { format!("{dir}/{part}") };
        let _ = vfs.create_dir_at(root, &dir);
    }
}

async fn patch(session: &Session, patch: &str) -> String {
    ok(session, "apply_patch", json!({ "patch": patch })).await
}

async fn bad_patch(session: &Session, patch: &str) -> String {
    let message = err(session, "apply_patch", json!({ "patch": patch })).await;
    assert!(message.contains("no file was changed"), "{message}");
    message
}

// ---- specs -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn flags_are_declared_truthfully() {
    let session = session().await;
    let flags = |tool: &str| {
        let spec = session.toolbox().spec(tool).unwrap_or_else(|| panic!("{tool} is loaded"));
        (spec.read_only, spec.idempotent)
    };
    assert_eq!(flags("read_file"), (true, true));
    assert_eq!(flags("list_dir"), (true, true));
    assert_eq!(flags("write_file"), (false, true));
    assert_eq!(flags("edit_file"), (false, false));
    assert_eq!(flags("apply_patch"), (false, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_are_closed_and_every_field_is_described() {
    let session = session().await;
    for tool in TOOLS {
        let spec = session.toolbox().spec(tool).unwrap();
        assert!(spec.description.len() > 200, "{tool} has a thin description");
        let schema = &spec.input_schema;
        assert_eq!(schema["additionalProperties"], json!(false), "{tool}: {schema}");
        let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("{tool}: {schema}"));
        for (name, property) in properties {
            let description = property["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{tool}.{name} has no description: {schema}");
        }
    }
    let required = |tool: &str| {
        let schema = &session.toolbox().spec(tool).unwrap().input_schema;
        let mut names: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(|name| name.as_str()).collect();
        names.sort();
        names.join(",")
    };
    assert_eq!(required("read_file"), "path");
    assert_eq!(required("write_file"), "content,path");
    assert_eq!(required("edit_file"), "new_string,old_string,path");
    assert_eq!(required("apply_patch"), "patch");
    assert_eq!(required("list_dir"), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_rejects_out_of_range_numbers_before_the_call() {
    let session = session().await;
    put(&session, "a.txt", b"a\n");
    for input in [json!({"path": "a.txt", "offset": 0}), json!({"path": "a.txt", "limit": 0})] {
        assert!(session.call("read_file", &input.to_string()).await.is_err(), "{input}");
    }
    for depth in [0, 11] {
        let input = json!({ "depth": depth });
        assert!(session.call("list_dir", &input.to_string()).await.is_err(), "{input}");
    }
    let input = json!({"path": "a.txt", "content": "x", "mode": "append"});
    assert!(session.call("write_file", &input.to_string()).await.is_err());
}

// ---- paths -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn paths_outside_the_workspace_are_refused_by_every_tool() {
    let session = session().await;
    put(&session, "a.txt", b"a\n");
    let outside = ["/etc/passwd", "../a.txt", "sub/../../a.txt", "/workspace/../etc/passwd", "/workspacex/a.txt", "/"];
    for path in outside {
        let inputs = [
            ("read_file", json!({ "path": path })),
            ("write_file", json!({ "path": path, "content": "x" })),
            ("edit_file", json!({ "path": path, "old_string": "a", "new_string": "b" })),
            ("list_dir", json!({ "path": path })),
        ];
        for (tool, input) in inputs {
            let message = err(&session, tool, input).await;
            assert!(message.contains("outside the workspace"), "{tool} {path}: {message}");
        }
        for header in ["Add File", "Delete File", "Update File"] {
            let message =
                bad_patch(&session, &format!("*** Begin Patch\n*** {header}: {path}\n+x\n*** End Patch")).await;
            assert!(message.contains("outside the workspace"), "{header} {path}: {message}");
        }
    }
    let message =
        bad_patch(&session, "*** Begin Patch\n*** Update File: a.txt\n*** Move to: ../b.txt\n*** End Patch").await;
    assert!(message.contains("outside the workspace"), "{message}");
    assert_eq!(text(&session, "a.txt").as_deref(), Some("a\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn absolute_and_dotted_paths_inside_the_workspace_resolve() {
    let session = session().await;
    put(&session, "src/a.txt", b"hello\n");
    for path in [
        "src/a.txt",
        "./src/a.txt",
        "/workspace/src/a.txt",
        "src/../src/./a.txt",
        "/workspace/../workspace/src/a.txt",
        "src//a.txt",
    ] {
        assert_eq!(ok(&session, "read_file", json!({ "path": path })).await, "     1\thello", "{path}");
    }
    let out = ok(&session, "write_file", json!({"path": "/workspace/out/../b.txt", "content": "b"})).await;
    assert_eq!(out, "Created `b.txt` (1 byte, 1 line).");
    assert_eq!(text(&session, "b.txt").as_deref(), Some("b"));
    let message = err(&session, "read_file", json!({ "path": "/workspace" })).await;
    assert!(message.contains("`.` is a directory"), "{message}");
}

// ---- read_file ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn read_file_numbers_lines_and_pages_with_offset_and_limit() {
    let session = session().await;
    put(&session, "notes.txt", b"alpha\nbeta\r\ngamma\ndelta\nepsilon");
    let all = ok(&session, "read_file", json!({"path": "notes.txt"})).await;
    assert_eq!(all, "     1\talpha\n     2\tbeta\n     3\tgamma\n     4\tdelta\n     5\tepsilon");
    let window = ok(&session, "read_file", json!({"path": "notes.txt", "offset": 2, "limit": 2})).await;
    assert_eq!(
        window,
        "     2\tbeta\n     3\tgamma\n\n[Showing lines 2-3 of 5. To read on, call read_file with offset 4.]"
    );
    let tail = ok(&session, "read_file", json!({"path": "notes.txt", "offset": 4})).await;
    assert_eq!(tail, "     4\tdelta\n     5\tepsilon");
    let last = ok(&session, "read_file", json!({"path": "notes.txt", "offset": 5, "limit": 100})).await;
    assert_eq!(last, "     5\tepsilon");
    let past = err(&session, "read_file", json!({"path": "notes.txt", "offset": 6})).await;
    assert!(past.contains("offset 6 is past the end of `notes.txt`, which has 5 lines"), "{past}");

    put(&session, "trailing.txt", b"one\n\ntwo\n");
    let out = ok(&session, "read_file", json!({"path": "trailing.txt"})).await;
    assert_eq!(out, "     1\tone\n     2\t\n     3\ttwo");
    put(&session, "empty.txt", b"");
    assert_eq!(ok(&session, "read_file", json!({"path": "empty.txt"})).await, "`empty.txt` is empty (0 lines).");
    let wide = (1..=1_000_000).map(|n| format!("{n}\n")).collect::<String>();
    put(&session, "wide.txt", wide.as_bytes());
    let out = ok(&session, "read_file", json!({"path": "wide.txt", "offset": 999_999})).await;
    assert_eq!(out, "999999\t999999\n1000000\t1000000");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_file_reports_missing_files_and_directories() {
    let session = session().await;
    put(&session, "src/lib.rs", b"fn main() {}\n");
    let missing = err(&session, "read_file", json!({"path": "src/main.rs"})).await;
    assert!(missing.contains("cannot read `src/main.rs`: no such file"), "{missing}");
    let dir = err(&session, "read_file", json!({"path": "src"})).await;
    assert!(dir.contains("`src` is a directory") && dir.contains("list_dir"), "{dir}");
    let under_file = err(&session, "read_file", json!({"path": "src/lib.rs/x"})).await;
    assert!(under_file.contains("cannot read `src/lib.rs/x`"), "{under_file}");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_file_describes_binary_files_instead_of_dumping_them() {
    let session = session().await;
    put(&session, "nul.bin", b"abc\0def");
    let out = ok(&session, "read_file", json!({"path": "nul.bin"})).await;
    assert_eq!(out, "`nul.bin` is a binary file (7 bytes); its content is not shown.");
    put(&session, "latin1.txt", b"caf\xe9 cr\xe8me\n");
    let out = ok(&session, "read_file", json!({"path": "latin1.txt"})).await;
    assert_eq!(out, "`latin1.txt` is a binary file (11 bytes); its content is not shown.");
    let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
    image.extend(std::iter::repeat_n(0u8, 50_000));
    put(&session, "image.png", &image);
    let out = ok(&session, "read_file", json!({"path": "image.png", "offset": 2})).await;
    assert!(out.contains("binary file (50008 bytes)"), "{out}");

    // A character cut by the 8 KiB sniff window is not evidence of binary content.
    let mut split = "a".repeat(8191).into_bytes();
    split.extend("é\nnext\n".as_bytes());
    put(&session, "split.txt", &split);
    let out = ok(&session, "read_file", json!({"path": "split.txt", "offset": 2})).await;
    assert_eq!(out, "     2\tnext");
    // Invalid bytes after the sniff window are shown replaced, with a note.
    let mut late = "a\n".repeat(5000).into_bytes();
    late.extend(b"bad\xffbyte\n");
    put(&session, "late.txt", &late);
    let out = ok(&session, "read_file", json!({"path": "late.txt", "offset": 5001})).await;
    assert_eq!(
        out,
        "  5001\tbad\u{FFFD}byte\n\n[Some bytes of these lines are not valid UTF-8 and are shown as \u{FFFD}.]"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn read_file_cuts_long_lines_and_keeps_unicode_intact() {
    let session = session().await;
    let mut content = "x".repeat(5000);
    content.push_str("\nshort\n");
    content.push_str(&"é".repeat(3000));
    content.push('\n');
    put(&session, "long.txt", content.as_bytes());
    let out = ok(&session, "read_file", json!({"path": "long.txt"})).await;
    let lines: Vec<&str> = out.split('\n').collect();
    assert_eq!(lines[0], format!("     1\t{} [… line truncated: 5000 characters in total]", "x".repeat(2000)));
    assert_eq!(lines[1], "     2\tshort");
    assert_eq!(lines[2], format!("     3\t{} [… line truncated: 3000 characters in total]", "é".repeat(2000)));
    assert_eq!(lines.len(), 3);

    let unicode = "héllo wörld\n日本語のテキスト\n🦀 crab 🦀\ne\u{301}\u{200d}\n\tindented\n";
    put(&session, "unicode.txt", unicode.as_bytes());
    let out = ok(&session, "read_file", json!({"path": "unicode.txt"})).await;
    assert_eq!(
        out,
        "     1\théllo wörld\n     2\t日本語のテキスト\n     3\t🦀 crab 🦀\n     4\te\u{301}\u{200d}\n     5\t\tindented"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn read_file_streams_huge_files_within_its_caps() {
    let session = session().await;
    // 1.5 million 14-byte lines: 21 MB.
    let huge: String = (1..=1_500_000).map(|n| format!("line {n:08}\n")).collect();
    assert!(huge.len() > 20 << 20);
    put(&session, "huge.log", huge.as_bytes());
    let out = ok(&session, "read_file", json!({"path": "huge.log"})).await;
    assert!(out.starts_with("     1\tline 00000001\n     2\tline 00000002\n"), "{}", &out[..100]);
    assert!(
        out.ends_with(
            "  2000\tline 00002000\n\n[Showing lines 1-2000 of 1500000. To read on, call read_file with offset 2001.]"
        ),
        "{}",
        &out[out.len() - 200..]
    );
    let out = ok(&session, "read_file", json!({"path": "huge.log", "offset": 1_000_000, "limit": 3})).await;
    assert_eq!(
        out,
        "1000000\tline 01000000\n1000001\tline 01000001\n1000002\tline 01000002\n\n\
         [Showing lines 1000000-1000002 of 1500000. To read on, call read_file with offset 1000003.]"
    );
    let out = ok(&session, "read_file", json!({"path": "huge.log", "offset": 1_499_999})).await;
    assert_eq!(out, "1499999\tline 01499999\n1500000\tline 01500000");

    // One 20 MiB line without a newline.
    put(&session, "one-line.txt", "y".repeat(20 << 20).as_bytes());
    let out = ok(&session, "read_file", json!({"path": "one-line.txt"})).await;
    assert_eq!(out, format!("     1\t{} [… line truncated: 20971520 characters in total]", "y".repeat(2000)));

    // 2000 lines of 1000 characters: 2 MB of output, cut at 200 KiB (203 lines of 1008 bytes).
    let wide: String = (0..2000).map(|_| format!("{}\n", "z".repeat(1000))).collect();
    put(&session, "wide.txt", wide.as_bytes());
    let out = ok(&session, "read_file", json!({"path": "wide.txt"})).await;
    assert!(out.len() < 210 * 1024, "{}", out.len());
    assert!(
        out.ends_with(
            "\n\n[Output cut at 200 KiB: showing lines 1-203 of 2000. To read on, call read_file with offset 204.]"
        ),
        "{}",
        &out[out.len() - 200..]
    );
    let out = ok(&session, "read_file", json!({"path": "wide.txt", "offset": 1990})).await;
    assert_eq!(out.lines().count(), 11);
}

// ---- write_file --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn write_file_creates_overwrites_and_reports() {
    let session = session().await;
    let out = ok(&session, "write_file", json!({"path": "a/b/c.txt", "content": "one\ntwo\n"})).await;
    assert_eq!(out, "Created `a/b/c.txt` (8 bytes, 2 lines).");
    assert_eq!(text(&session, "a/b/c.txt").as_deref(), Some("one\ntwo\n"));
    let out = ok(&session, "write_file", json!({"path": "a/b/c.txt", "content": "ünï ✓"})).await;
    assert_eq!(out, "Overwrote `a/b/c.txt` (9 bytes, 1 line; it had 8 bytes).");
    assert_eq!(text(&session, "a/b/c.txt").as_deref(), Some("ünï ✓"));
    // Idempotent: the same input again leaves the same state.
    let out = ok(&session, "write_file", json!({"path": "a/b/c.txt", "content": "ünï ✓"})).await;
    assert_eq!(out, "`a/b/c.txt` already holds exactly this content (9 bytes, 1 line); nothing changed.");
    assert_eq!(text(&session, "a/b/c.txt").as_deref(), Some("ünï ✓"));
    let out = ok(&session, "write_file", json!({"path": "empty", "content": ""})).await;
    assert_eq!(out, "Created `empty` (0 bytes, 0 lines).");
    assert_eq!(get(&session, "empty"), Some(Vec::new()));
    // No temporary files are left behind.
    let listing = ok(&session, "list_dir", json!({"depth": 10})).await;
    assert_eq!(listing, "./\n  a/\n    b/\n      c.txt (9 B)\n  empty (0 B)");
}

#[tokio::test(flavor = "multi_thread")]
async fn write_file_refuses_directories_and_files_used_as_directories() {
    let session = session().await;
    put(&session, "dir/file.txt", b"x");
    let message = err(&session, "write_file", json!({"path": "dir", "content": "x"})).await;
    assert!(message.contains("`dir` is a directory"), "{message}");
    let message = err(&session, "write_file", json!({"path": "dir/file.txt/inner.txt", "content": "x"})).await;
    assert!(message.contains("a parent of it is a file"), "{message}");
    assert_eq!(text(&session, "dir/file.txt").as_deref(), Some("x"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_writes_leave_files_intact() {
    let quota = Quota { max_file_size: 1024, ..Quota::default() };
    let session = session().await.with_workspace(Workspace::new(Vfs::new(quota), DEFAULT_MOUNT));
    put(&session, "one.txt", b"a\nb\n");
    put(&session, "keep.txt", b"small");
    let big = "x".repeat(2000);
    let message = err(&session, "write_file", json!({"path": "keep.txt", "content": big})).await;
    assert!(
        message.contains("cannot write `keep.txt`: the file would exceed the workspace's file size limit"),
        "{message}"
    );
    let message = err(&session, "edit_file", json!({"path": "one.txt", "old_string": "a", "new_string": big})).await;
    assert!(message.contains("file size limit; the file is unchanged"), "{message}");
    // Every check passes, so the first file is written before the second fails: it is restored.
    let message = err(
        &session,
        "apply_patch",
        json!({"patch": format!(
            "*** Begin Patch\n*** Update File: one.txt\n-a\n+A\n*** Add File: big.txt\n+{big}\n*** End Patch"
        )}),
    )
    .await;
    assert!(message.contains("failed while writing `big.txt`") && message.contains("restored"), "{message}");
    assert_eq!(text(&session, "one.txt").as_deref(), Some("a\nb\n"));
    assert_eq!(text(&session, "keep.txt").as_deref(), Some("small"));
    assert_eq!(ok(&session, "list_dir", json!({})).await, "./\n  keep.txt (5 B)\n  one.txt (4 B)");
}

// ---- edit_file ---------------------------------------------------------------------

const CODE: &str = "fn a() {\n    let x = 1;\n}\n\nfn b() {\n    let x = 1;\n}\n";

#[tokio::test(flavor = "multi_thread")]
async fn edit_file_replaces_one_unique_occurrence() {
    let session = session().await;
    put(&session, "code.rs", CODE.as_bytes());
    let input =
        json!({"path": "code.rs", "old_string": "fn b() {\n    let x = 1;", "new_string": "fn b() {\n    let x = 2;"});
    let out = ok(&session, "edit_file", input.clone()).await;
    assert_eq!(out, "Replaced 1 occurrence in `code.rs` (line 5).");
    assert_eq!(
        text(&session, "code.rs").unwrap(),
        CODE.replace("fn b() {\n    let x = 1;", "fn b() {\n    let x = 2;")
    );
    // Not idempotent: the same edit again finds nothing.
    let message = err(&session, "edit_file", input).await;
    assert!(message.contains("old_string was not found in `code.rs`"), "{message}");
    // Deleting text, and multi-byte text.
    let out = ok(
        &session,
        "edit_file",
        json!({"path": "code.rs", "old_string": "\nfn b() {\n    let x = 2;\n}\n", "new_string": ""}),
    )
    .await;
    assert_eq!(out, "Replaced 1 occurrence in `code.rs` (line 4).");
    assert_eq!(text(&session, "code.rs").unwrap(), "fn a() {\n    let x = 1;\n}\n");
    put(&session, "greek.txt", "αβγ — δέλτα\n🦀\n".as_bytes());
    let out =
        ok(&session, "edit_file", json!({"path": "greek.txt", "old_string": "δέλτα\n🦀", "new_string": "ε\n🦞"})).await;
    assert_eq!(out, "Replaced 1 occurrence in `greek.txt` (line 1).");
    assert_eq!(text(&session, "greek.txt").unwrap(), "αβγ — ε\n🦞\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_file_needs_replace_all_for_several_occurrences() {
    let session = session().await;
    put(&session, "code.rs", CODE.as_bytes());
    let message =
        err(&session, "edit_file", json!({"path": "code.rs", "old_string": "let x = 1;", "new_string": "let y = 1;"}))
            .await;
    assert!(message.contains("old_string occurs 2 times in `code.rs` (at lines 2, 6)"), "{message}");
    assert!(message.contains("replace_all"), "{message}");
    assert_eq!(text(&session, "code.rs").as_deref(), Some(CODE));
    let input = json!({"path": "code.rs", "old_string": "let x", "new_string": "let y", "replace_all": true});
    let out = ok(&session, "edit_file", input).await;
    assert_eq!(out, "Replaced 2 occurrences in `code.rs` (lines 2, 6).");
    assert_eq!(text(&session, "code.rs").unwrap(), CODE.replace("let x", "let y"));
    // replace_all with a single occurrence is fine too.
    let input = json!({"path": "code.rs", "old_string": "fn a", "new_string": "fn first", "replace_all": true});
    assert_eq!(ok(&session, "edit_file", input).await, "Replaced 1 occurrence in `code.rs` (line 1).");
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_file_explains_what_it_cannot_do() {
    let session = session().await;
    put(&session, "code.rs", CODE.as_bytes());
    let message =
        err(&session, "edit_file", json!({"path": "code.rs", "old_string": "\tlet x = 1;\n}", "new_string": "x"}))
            .await;
    assert!(message.contains("old_string was not found in `code.rs`"), "{message}");
    assert!(message.contains("whitespace"), "{message}");
    assert!(message.contains("is at lines 2, 6"), "{message}");
    let message =
        err(&session, "edit_file", json!({"path": "code.rs", "old_string": "nothing like it", "new_string": "x"}))
            .await;
    assert!(message.contains("not found") && !message.contains("is at line"), "{message}");
    let message = err(&session, "edit_file", json!({"path": "code.rs", "old_string": "", "new_string": "x"})).await;
    assert!(message.contains("old_string is empty"), "{message}");
    let message =
        err(&session, "edit_file", json!({"path": "code.rs", "old_string": "fn a", "new_string": "fn a"})).await;
    assert!(message.contains("identical"), "{message}");
    let message = err(&session, "edit_file", json!({"path": "missing.rs", "old_string": "a", "new_string": "b"})).await;
    assert!(message.contains("no such file") && message.contains("write_file"), "{message}");
    put(&session, "dir/x", b"");
    let message = err(&session, "edit_file", json!({"path": "dir", "old_string": "a", "new_string": "b"})).await;
    assert!(message.contains("`dir` is a directory"), "{message}");
    put(&session, "bin", b"\xff\xfe a");
    let message = err(&session, "edit_file", json!({"path": "bin", "old_string": "a", "new_string": "b"})).await;
    assert!(message.contains("not UTF-8 text"), "{message}");
    assert_eq!(text(&session, "code.rs").as_deref(), Some(CODE));
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_file_matches_newlines_in_crlf_files() {
    let session = session().await;
    put(&session, "win.txt", b"one\r\ntwo\r\nthree\r\n");
    let out =
        ok(&session, "edit_file", json!({"path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2\n2.5"}))
            .await;
    assert_eq!(out, "Replaced 1 occurrence in `win.txt` (line 1).");
    assert_eq!(text(&session, "win.txt").as_deref(), Some("1\r\n2\r\n2.5\r\nthree\r\n"));
}

// ---- apply_patch -------------------------------------------------------------------

const APP: &str =
    "import os\n\ndef first():\n    value = 1\n    return value\n\ndef second():\n    value = 1\n    return value\n";

#[tokio::test(flavor = "multi_thread")]
async fn apply_patch_adds_updates_and_deletes() {
    let session = session().await;
    put(&session, "src/app.py", APP.as_bytes());
    put(&session, "gone.txt", b"bye\n");
    let out = patch(
        &session,
        "*** Begin Patch
*** Add File: docs/new.md
+# Title
+
+Body
*** Update File: src/app.py
@@ def first():
-    value = 1
+    value = 10
     return value
@@ def second():
     value = 1
-    return value
+    return value * 2
*** Delete File: gone.txt
*** End Patch
",
    )
    .await;
    assert_eq!(out, "Applied the patch (3 operations):\nA docs/new.md\nM src/app.py\nD gone.txt");
    assert_eq!(text(&session, "docs/new.md").as_deref(), Some("# Title\n\nBody\n"));
    assert_eq!(
        text(&session, "src/app.py").as_deref(),
        Some(
            "import os\n\ndef first():\n    value = 10\n    return value\n\n\
             def second():\n    value = 1\n    return value * 2\n"
        )
    );
    assert_eq!(get(&session, "gone.txt"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_patch_hunks_without_headers_apply_in_file_order() {
    let session = session().await;
    put(&session, "f.txt", b"a\nb\nc\nd\ne\nf\ng\n");
    // The first hunk omits its `@@` line; blank lines separate sections.
    let out =
        patch(&session, "*** Begin Patch\n*** Update File: f.txt\n a\n-b\n+B\n@@\n e\n-f\n+F\n+F2\n\n*** End Patch\n")
            .await;
    assert_eq!(out, "Applied the patch (1 operation):\nM f.txt");
    assert_eq!(text(&session, "f.txt").as_deref(), Some("a\nB\nc\nd\ne\nF\nF2\ng\n"));
    // A hunk whose lines only occur before the previous hunk's end is out of order.
    let message =
        bad_patch(&session, "*** Begin Patch\n*** Update File: f.txt\n@@\n-d\n+D\n@@\n-a\n+A\n*** End Patch").await;
    assert!(message.contains("`f.txt` hunk 2 of 2"), "{message}");
    assert!(message.contains("occur at line 1") && message.contains("file order"), "{message}");
    assert_eq!(text(&session, "f.txt").as_deref(), Some("a\nB\nc\nd\ne\nF\nF2\ng\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_patch_moves_files() {
    let session = session().await;
    put(&session, "old/name.txt", b"one\ntwo\nthree\n");
    put(&session, "plain.txt", b"same\n");
    let out = patch(
        &session,
        "*** Begin Patch\n*** Update File: old/name.txt\n*** Move to: new/dir/name.txt\n@@\n one\n-two\n+TWO\n three\n\
         *** Update File: plain.txt\n*** Move to: renamed.txt\n*** End Patch",
    )
    .await;
    assert_eq!(
        out,
        "Applied the patch (2 operations):\nR old/name.txt -> new/dir/name.txt\nR plain.txt -> renamed.txt"
    );
    assert_eq!(get(&session, "old/name.txt"), None);
    assert_eq!(text(&session, "new/dir/name.txt").as_deref(), Some("one\nTWO\nthree\n"));
    assert_eq!(get(&session, "plain.txt"), None);
    assert_eq!(text(&session, "renamed.txt").as_deref(), Some("same\n"));
    let message = bad_patch(
        &session,
        "*** Begin Patch\n*** Update File: renamed.txt\n*** Move to: new/dir/name.txt\n*** End Patch",
    )
    .await;
    assert!(message.contains("`new/dir/name.txt` already exists"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_patch_locates_hunks_by_header_end_of_file_and_trailing_whitespace() {
    let session = session().await;
    // The end-of-file marker picks the last of two identical blocks.
    put(&session, "eof.txt", b"x\nend\nx\nend\n");
    patch(&session, "*** Begin Patch\n*** Update File: eof.txt\n@@\n x\n-end\n+END\n*** End of File\n*** End Patch")
        .await;
    assert_eq!(text(&session, "eof.txt").as_deref(), Some("x\nend\nx\nEND\n"));
    let message =
        bad_patch(&session, "*** Begin Patch\n*** Update File: eof.txt\n@@\n-x\n+X\n*** End of File\n*** End Patch")
            .await;
    assert!(message.contains("marked `*** End of File`"), "{message}");

    // Trailing whitespace may differ; context lines keep the file's own text.
    put(&session, "ws.txt", b"keep  \nold\t\nafter\n");
    patch(&session, "*** Begin Patch\n*** Update File: ws.txt\n keep\n-old\n+new\n after\n*** End Patch").await;
    assert_eq!(text(&session, "ws.txt").as_deref(), Some("keep  \nnew\nafter\n"));
    // Leading whitespace may not.
    let message = bad_patch(&session, "*** Begin Patch\n*** Update File: ws.txt\n-  new\n+x\n*** End Patch").await;
    assert!(message.contains("`ws.txt` hunk 1 of 1") && message.contains("were not found"), "{message}");

    // Additions only: after the `@@` line, or at the end without one.
    put(&session, "ins.txt", b"a\nb\n");
    patch(&session, "*** Begin Patch\n*** Update File: ins.txt\n@@ a\n+after a\n*** End Patch").await;
    patch(&session, "*** Begin Patch\n*** Update File: ins.txt\n@@\n+at end\n*** End Patch").await;
    assert_eq!(text(&session, "ins.txt").as_deref(), Some("a\nafter a\nb\nat end\n"));

    // A header that matches only part of a line still narrows; a unified-diff range is ignored.
    put(&session, "h.rs", b"fn one() {\n    x();\n}\nfn two() {\n    x();\n}\n");
    patch(&session, "*** Begin Patch\n*** Update File: h.rs\n@@ fn two\n-    x();\n+    y();\n*** End Patch").await;
    patch(
        &session,
        "*** Begin Patch\n*** Update File: h.rs\n@@ -1,3 +1,3 @@\n fn one() {\n-    x();\n+    z();\n*** End Patch",
    )
    .await;
    assert_eq!(text(&session, "h.rs").as_deref(), Some("fn one() {\n    z();\n}\nfn two() {\n    y();\n}\n"));
    // The `@@` line may be repeated as the hunk's first context line.
    patch(
        &session,
        "*** Begin Patch\n*** Update File: h.rs\n@@ fn two() {\n fn two() {\n-    y();\n+    w();\n*** End Patch",
    )
    .await;
    assert_eq!(text(&session, "h.rs").as_deref(), Some("fn one() {\n    z();\n}\nfn two() {\n    w();\n}\n"));
    let message =
        bad_patch(&session, "*** Begin Patch\n*** Update File: h.rs\n@@ fn three\n-    x();\n+    y();\n*** End Patch")
            .await;
    assert!(message.contains("`@@ fn three` line was not found"), "{message}");

    // CRLF files keep their line endings; a file without a final newline keeps lacking one.
    put(&session, "win.txt", b"a\r\nb\r\nc\r\n");
    patch(&session, "*** Begin Patch\n*** Update File: win.txt\n a\n-b\n+B\n*** End Patch").await;
    assert_eq!(text(&session, "win.txt").as_deref(), Some("a\r\nB\r\nc\r\n"));
    put(&session, "nonl.txt", b"a\nb");
    patch(&session, "*** Begin Patch\r\n*** Update File: nonl.txt\r\n a\r\n-b\r\n+c\r\n*** End Patch\r\n").await;
    assert_eq!(text(&session, "nonl.txt").as_deref(), Some("a\nc"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_patch_is_all_or_nothing() {
    let session = session().await;
    put(&session, "one.txt", b"a\nb\n");
    put(&session, "two.txt", b"c\nd\n");
    let message = bad_patch(
        &session,
        "*** Begin Patch\n*** Update File: one.txt\n-a\n+A\n*** Add File: three.txt\n+new\n*** Delete File: two.txt\n\
         *** Add File: two.txt\n+again\n*** Update File: two.txt\n@@\n again\n-zzz\n+y\n*** End Patch",
    )
    .await;
    assert!(message.contains("`two.txt` hunk 1 of 1"), "{message}");
    assert!(message.contains("    zzz"), "{message}");
    assert_eq!(text(&session, "one.txt").as_deref(), Some("a\nb\n"));
    assert_eq!(text(&session, "two.txt").as_deref(), Some("c\nd\n"));
    assert_eq!(get(&session, "three.txt"), None);

    let message = bad_patch(
        &session,
        "*** Begin Patch\n*** Update File: one.txt\n-a\n+A\n*** Add File: two.txt\n+x\n*** End Patch",
    )
    .await;
    assert!(message.contains("`two.txt` already exists"), "{message}");
    let message = bad_patch(
        &session,
        "*** Begin Patch\n*** Delete File: one.txt\n*** Update File: missing.txt\n-a\n*** End Patch",
    )
    .await;
    assert!(message.contains("`*** Update File: missing.txt`: the file does not exist"), "{message}");
    let message = bad_patch(&session, "*** Begin Patch\n*** Delete File: missing.txt\n*** End Patch").await;
    assert!(message.contains("`*** Delete File: missing.txt`: the file does not exist"), "{message}");
    put(&session, "dir/x", b"");
    let message = bad_patch(&session, "*** Begin Patch\n*** Delete File: dir\n*** End Patch").await;
    assert!(message.contains("directory"), "{message}");
    let message = bad_patch(&session, "*** Begin Patch\n*** Add File: one.txt/inner\n+x\n*** End Patch").await;
    assert!(message.contains("`one.txt` is a file"), "{message}");
    assert_eq!(text(&session, "one.txt").as_deref(), Some("a\nb\n"));

    // Operations see the effect of the ones before them.
    let out =
        patch(&session, "*** Begin Patch\n*** Add File: seq.txt\n+1\n*** Update File: seq.txt\n-1\n+2\n*** End Patch")
            .await;
    assert_eq!(out, "Applied the patch (2 operations):\nA seq.txt\nM seq.txt");
    assert_eq!(text(&session, "seq.txt").as_deref(), Some("2\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_patch_rejects_malformed_envelopes() {
    let session = session().await;
    put(&session, "f.txt", b"x\n");
    let cases = [
        ("", "the patch is empty"),
        ("*** Add File: a\n+x\n*** End Patch", "must start with `*** Begin Patch`"),
        ("*** Begin Patch\n*** Add File: a\n+x\n", "must end with a `*** End Patch` line"),
        ("*** Begin Patch\n*** End Patch", "no file operations"),
        ("*** Begin Patch\n*** Rename File: f.txt\n*** End Patch", "line 2: unknown header `*** Rename File: f.txt`"),
        ("*** Begin Patch\nhello\n*** End Patch", "line 2: expected a file header"),
        (
            "*** Begin Patch\n*** Add File: a\nno plus\n*** End Patch",
            "line 3: every line of the file added at line 2 must start with `+`",
        ),
        ("*** Begin Patch\n*** Add File:\n+x\n*** End Patch", "`*** Add File:` needs a file path"),
        ("*** Begin Patch\n*** Update File: f.txt\n*** End Patch", "has no hunks"),
        (
            "*** Begin Patch\n*** Update File: f.txt\n@@\n x\nno prefix\n*** End Patch",
            "line 5: in hunk 1 of `*** Update File: f.txt`, every line must start with",
        ),
        (
            "*** Begin Patch\n*** Update File: f.txt\n@@\n@@\n-x\n*** End Patch",
            "line 3: hunk 1 of `*** Update File: f.txt` has no lines",
        ),
        (
            "*** Begin Patch\n*** Update File: f.txt\n-x\n*** End of File\n+y\n*** End Patch",
            "line 5: expected `@@` to start a new hunk",
        ),
        ("*** Begin Patch\n*** Delete File: f.txt\n*** Begin Patch\n*** End Patch", "unexpected `*** Begin Patch`"),
    ];
    for (envelope, expected) in cases {
        let message = bad_patch(&session, envelope).await;
        assert!(message.contains("invalid patch: ") && message.contains(expected), "{envelope:?}: {message}");
    }
    assert_eq!(text(&session, "f.txt").as_deref(), Some("x\n"));
    assert_eq!(get(&session, "a"), None);
}

// ---- list_dir ----------------------------------------------------------------------

fn tree(session: &Session) {
    put(session, "README.md", b"0123456789");
    put(session, "src/lib.rs", &[b'x'; 2048]);
    put(session, "src/tools/x.rs", b"x");
    put(session, "src/tools/y.rs", b"y");
    put(session, "docs/guide/intro.md", b"intro");
    mkdir(session, "empty");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_dir_shows_a_sorted_tree_to_the_requested_depth() {
    let session = session().await;
    tree(&session);
    let out = ok(&session, "list_dir", json!({})).await;
    assert_eq!(
        out,
        "./\n  README.md (10 B)\n  docs/\n    guide/ (1 entry)\n  empty/ (empty)\n  \
         src/\n    lib.rs (2.0 KiB)\n    tools/ (2 entries)"
    );
    let out = ok(&session, "list_dir", json!({"path": ".", "depth": 1})).await;
    assert_eq!(out, "./\n  README.md (10 B)\n  docs/ (1 entry)\n  empty/ (empty)\n  src/ (2 entries)");
    let out = ok(&session, "list_dir", json!({"path": "/workspace/src", "depth": 10})).await;
    assert_eq!(out, "src/\n  lib.rs (2.0 KiB)\n  tools/\n    x.rs (1 B)\n    y.rs (1 B)");
    let out = ok(&session, "list_dir", json!({"path": "empty"})).await;
    assert_eq!(out, "empty/ (empty)");

    let session = session_with(&TOOLS).await;
    for name in ["b", "a", "C", "_x", "10", "9", "é"] {
        put(&session, name, b"");
    }
    put(&session, "big.bin", &vec![0u8; 3 << 20]);
    let out = ok(&session, "list_dir", json!({})).await;
    assert_eq!(
        out,
        "./\n  10 (0 B)\n  9 (0 B)\n  C (0 B)\n  _x (0 B)\n  a (0 B)\n  b (0 B)\n  big.bin (3.0 MiB)\n  é (0 B)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_dir_caps_the_listing_nearest_levels_first() {
    let session = session().await;
    put(&session, "a.txt", b"a");
    for n in 0..1100 {
        put(&session, &format!("many/f{n:04}.txt"), b"");
    }
    put(&session, "z/deep/x.txt", b"x");
    let out = ok(&session, "list_dir", json!({})).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["./", "  a.txt (1 B)", "  many/", "    f0000.txt (0 B)"]);
    assert_eq!(lines.iter().filter(|line| line.starts_with("    f")).count(), 997);
    assert!(lines.contains(&"  z/ (not listed)"), "{out}");
    assert!(
        out.ends_with(
            "\n\n[Listing cut at 1000 entries; directories marked `(not listed)` and some entries were not shown. \
             List a subdirectory, or use a smaller depth.]"
        ),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_dir_reports_files_and_missing_paths() {
    let session = session().await;
    tree(&session);
    let message = err(&session, "list_dir", json!({"path": "README.md"})).await;
    assert!(message.contains("`README.md` is a file") && message.contains("read_file"), "{message}");
    let message = err(&session, "list_dir", json!({"path": "nowhere"})).await;
    assert!(message.contains("cannot list `nowhere`: it does not exist"), "{message}");
}
