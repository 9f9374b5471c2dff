//! Ordinary calls: happy paths, bad input, plain commands.

use runtime::{CallError, Limits};

use crate::{fixture, runtime, session};

#[tokio::test]
async fn sdk_tool_runs() {
    let runtime = runtime();
    let example = runtime.load_file(fixtures::tool("example")).await.unwrap();
    let session = session(&runtime, &[example], Limits::default());
    let output = session.call("word_count", r#"{"text":"one two three\nfour"}"#).await.unwrap();
    assert_eq!(output.content, "4 words, 2 lines, 18 bytes");
    assert!(!output.is_error);
}

#[tokio::test]
async fn bad_input_is_refused_without_instantiating() {
    let runtime = runtime();
    let example = runtime.load_file(fixtures::tool("example")).await.unwrap();
    let session = session(&runtime, &[example], Limits::default());
    let before = runtime.instantiations();

    let err = session.call("word_count", "{not json").await.unwrap_err();
    assert!(matches!(err, CallError::InputNotJson { .. }), "{err}");
    assert!(err.to_string().contains("word_count"), "{err}");

    let err = session.call("word_count", r#"{"text": 5, "extra": 1}"#).await.unwrap_err();
    let CallError::InputSchema { violations, .. } = &err else { panic!("expected a schema error, got {err}") };
    assert_eq!(violations.len(), 2, "both violations are listed: {violations:?}");
    assert!(violations.iter().any(|v| v.starts_with("/text")), "{violations:?}");
    assert!(violations.iter().any(|v| v.contains("extra")), "{violations:?}");

    let err = session.call("word_count", "{}").await.unwrap_err();
    assert!(err.to_string().contains("text"), "names the missing property: {err}");

    let err = session.call("no_such_tool", "{}").await.unwrap_err();
    assert!(matches!(err, CallError::UnknownTool { .. }), "{err}");

    assert_eq!(runtime.instantiations(), before, "no bad call created an instance");
}

#[tokio::test]
async fn plain_command_gets_args_and_stdin() {
    let runtime = runtime();
    let command = fixture(&runtime, "command").await;
    let session = session(&runtime, &[command], Limits::default());
    let output = session.call("command", r#"{"args": ["a", "b c"], "stdin": "piped"}"#).await.unwrap();
    assert_eq!(output.exit_code, Some(0));
    assert!(!output.is_error);
    assert_eq!(output.stdout, "args=[\"a\", \"b c\"]\nstdin=piped\n");
    assert_eq!(output.stderr, "to stderr\n");
    assert!(output.content.starts_with(&output.stdout), "{}", output.content);
    assert!(output.content.contains("[stderr]\nto stderr"), "{}", output.content);
}

#[tokio::test]
async fn plain_command_exit_code_is_an_error() {
    let runtime = runtime();
    let command = fixture(&runtime, "command").await;
    let session = session(&runtime, &[command], Limits::default());
    let output = session.call("command", r#"{"args": ["--exit", "3"]}"#).await.unwrap();
    // WASI 0.2's `exit` carries success or failure only, so Rust's `exit(3)` arrives as 1.
    assert_eq!(output.exit_code, Some(1));
    assert!(output.is_error);
    assert!(output.content.ends_with("[exit code 1]"), "{}", output.content);

    let err = session.call("command", r#"{"args": "not a list"}"#).await.unwrap_err();
    assert!(matches!(err, CallError::InputSchema { .. }), "{err}");
}
