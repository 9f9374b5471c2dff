//! `harness run` as the README shows it: the scripted demo cassette over the demo
//! workspace, a live provider against a local API with recording, the errors a
//! first-time user meets, and finishing sessions a killed process left running.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use harness::conversation::Usage;
use harness::event::Event;
use harness::provider::Cassette;
use harness::store::{NewSession, Status, Step, Store};
use runtime::vfs::{Quota, Vfs};
use serde_json::json;

/// The README's prompt; the demo cassette checks the first message contains `CONTRIBUTING.md`.
pub const PROMPT: &str = "Add a CONTRIBUTING.md summarizing how to build and test this project";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

/// `fixtures/cassettes/demo.json`.
pub fn demo_cassette() -> PathBuf {
    repo().join("fixtures/cassettes/demo.json")
}

/// `fixtures/demo-workspace`.
pub fn demo_workspace() -> PathBuf {
    repo().join("fixtures/demo-workspace")
}

/// A temporary home for one test: its own database, config and data directories,
/// and a compiled-component cache shared by every test of this process.
pub struct Home {
    /// Removed with the test.
    pub dir: tempfile::TempDir,
}

impl Home {
    /// A fresh, empty home.
    pub fn new() -> Home {
        Home { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The database file the binary is pointed at.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("harness.redb")
    }

    /// A path inside the home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with this home's database, and an environment that holds no
    /// key, model, config or secret of the person running the tests.
    pub fn command(&self) -> Command {
        static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
        let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("cache dir"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command.arg("--cache-dir").arg(cache.path()).arg("--db").arg(self.db());
        for var in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "HARNESS_MODEL",
            "HARNESS_CONFIG",
            "HARNESS_DB",
            "HARNESS_TOOLS_DIR",
            "HARNESS_FIXED_CLOCK",
        ] {
            command.env_remove(var);
        }
        command
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("HOME", self.dir.path())
            .env("USER", "tester");
        command
    }

    /// Runs the binary with `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run harness")
    }

    /// Runs the README's demo command, exporting to `export` if given.
    pub fn demo(&self, export: Option<&Path>) -> Output {
        let mut command = self.command();
        command.arg("run").arg("--replay").arg(demo_cassette()).arg("--workspace").arg(demo_workspace());
        if let Some(dir) = export {
            command.arg("--export").arg(dir);
        }
        command.arg(PROMPT).output().expect("run harness")
    }
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails with both streams unless the command succeeded; returns stdout.
pub fn success(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The session id from a run's closing report (`session <id>: …`).
pub fn session_id(stdout: &str) -> String {
    let line = stdout.lines().rev().find(|line| line.starts_with("session ")).expect("a closing report");
    line["session ".len()..].split(':').next().expect("an id").to_string()
}

/// What the demo cassette's `write_file` call writes.
pub fn scripted_contributing() -> String {
    let cassette = Cassette::load(&demo_cassette()).expect("the demo cassette loads");
    let call = cassette
        .interactions
        .iter()
        .flat_map(|interaction| {
            interaction.answer.tool_calls().map(|(_, name, input)| (name.to_string(), input.clone()))
        })
        .find(|(name, _)| name == "write_file")
        .expect("the demo writes a file");
    call.1["content"].as_str().expect("content").to_string()
}

#[test]
fn the_readme_demo_runs_the_tools_streams_them_and_exports_the_result() {
    let home = Home::new();
    let export = home.path("out");
    let out = home.demo(Some(&export));
    let stdout = success(&out);

    assert!(stdout.starts_with("I'll start by looking at how the project is laid out.\n→ list_dir"), "{stdout}");
    // A blank line sets each answer's text apart from the tool results before it.
    assert!(stdout.contains("\n\nA small Rust crate with a single binary."), "{stdout}");
    for shown in [
        "→ list_dir {\"",
        r#"→ read_file {"path":"Cargo.toml"}"#,
        r#"→ read_file {"path":"README.md"}"#,
        "→ grep {",
        r##"→ write_file {"content":"# Contributing to wordfreq"##,
        "← ok (list_dir)\n  │ ./\n  │   Cargo.toml (",
        "  │      2\tname = \"wordfreq\"",
        "← ok (write_file)\n  │ Created `CONTRIBUTING.md` (",
        "I added CONTRIBUTING.md at the root of the project.",
        ": finished (the model ended its turn)",
        "usage: 4010 input, 779 output, 2912 cache-write, 14560 cache-read tokens",
        "cost: not priced (add [prices.\"claude-sonnet-4-5 (scripted)\"] to the config file)",
    ] {
        assert!(stdout.contains(shown), "missing {shown:?} in:\n{stdout}");
    }
    // Results are capped: the 25-line CONTRIBUTING.md read back shows 10 lines and a note.
    assert!(stdout.contains("  │ … 15 more lines\n"), "{stdout}");
    let id = session_id(&stdout);
    assert!(stdout.contains(&format!("sessions log {id}")), "{stdout}");
    assert!(stdout.contains("\nexported 4 files, 1 directory, "), "{stdout}");
    assert!(stdout.contains(&format!("from step 12 to {}\n", export.display())), "{stdout}");

    assert_eq!(std::fs::read_to_string(export.join("CONTRIBUTING.md")).unwrap(), scripted_contributing());
    for seed in ["README.md", "Cargo.toml", "src/main.rs"] {
        let original = std::fs::read(demo_workspace().join(seed)).unwrap();
        assert_eq!(std::fs::read(export.join(seed)).unwrap(), original, "{seed} is exported unchanged");
    }
    let store = Store::open(home.db()).unwrap();
    let session = store.session(&id.parse().unwrap()).unwrap();
    assert_eq!(session.status, Status::Finished);
    assert_eq!(session.owner, "tester");
    assert_eq!(session.title.as_deref(), Some(PROMPT));
    assert_eq!(session.provider, "replay");
    assert_eq!(session.model, "claude-sonnet-4-5 (scripted)");
}

#[test]
fn a_prompt_the_cassette_does_not_answer_fails_the_run_with_exit_code_1() {
    let home = Home::new();
    let out = home.run(&["run", "--replay", demo_cassette().to_str().unwrap(), "Write a poem instead"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("✗ ") && stdout.contains("expects the last user message to contain"), "{stdout}");
    assert!(stdout.contains(": failed\n"), "{stdout}");
}

#[test]
fn without_a_provider_the_error_says_how_to_get_one() {
    let home = Home::new();
    let out = home.run(&["run", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ANTHROPIC_API_KEY") && stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(stderr.contains("--replay CASSETTE"), "{stderr}");
    assert!(!home.db().exists(), "nothing was stored");

    let out = home.run(&["run", "--provider", "anthropic", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--model"), "{}", text(&out.stderr));

    let out = home.command().args(["run", "--model", "m", "hello"]).env("ANTHROPIC_API_KEY", " ").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a blank key is no key");
}

#[test]
fn a_missing_cassette_and_a_malformed_config_are_named() {
    let home = Home::new();
    let missing = home.path("nope.json");
    let out = home.run(&["run", "--replay", missing.to_str().unwrap(), PROMPT]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()) && stderr.contains("cannot read it"), "{stderr}");

    let config = home.path("config.toml");
    std::fs::write(&config, "[agent]\nmax_turns = 3\nmax_turn = 4\n").unwrap();
    let out =
        home.run(&["--config", config.to_str().unwrap(), "run", "--replay", demo_cassette().to_str().unwrap(), PROMPT]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 3") && stderr.contains("unknown field `max_turn`"), "{stderr}");

    // The default config file is read when present; an explicit missing one is an error.
    let default = home.path("config/agent-harness/config.toml");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    std::fs::write(&default, "[network]\nallow = [{ host = \"a.com\", scheme = \"ftp\" }]\n").unwrap();
    let out = home.run(&["run", "--replay", demo_cassette().to_str().unwrap(), PROMPT]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`network.allow[0].scheme`"), "{}", text(&out.stderr));
    let out =
        home.run(&["--config", "/nonexistent/config.toml", "sessions", "show", "0193b5c4-7e1a-7c3d-9f00-1234567890ab"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read config file /nonexistent/config.toml"), "{}", text(&out.stderr));

    let export = home.path("full");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(export.join("keep.txt"), "mine").unwrap();
    let out = home
        .command()
        .env("XDG_CONFIG_HOME", home.path("elsewhere"))
        .args(["run", "--export"])
        .arg(&export)
        .args(["--replay", demo_cassette().to_str().unwrap(), PROMPT])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a non-empty export directory is refused before the run");
    assert!(text(&out.stderr).contains("is not empty"), "{}", text(&out.stderr));
}

/// Leaves a session the way a process killed right after the user message leaves
/// it: `Running`, with the demo workspace and the prompt committed.
fn interrupted_session(db: &Path, provider: &str) -> harness::store::SessionId {
    let store = Store::open(db).unwrap();
    let mut vfs = Vfs::new(Quota::default());
    let host = cap_std::fs::Dir::open_ambient_dir(demo_workspace(), cap_std::ambient_authority()).unwrap();
    runtime::vfs::import_dir(&mut vfs, &host).unwrap();
    let snapshot = vfs.snapshot().unwrap();
    let new = NewSession {
        owner: "tester".into(),
        provider: provider.into(),
        model: "claude-sonnet-4-5 (scripted)".into(),
        title: Some("left running".into()),
        ..NewSession::default()
    };
    let id = store.create_session(new, Some(&snapshot)).unwrap().id;
    let step = Step {
        events: vec![Event::UserMessage { text: PROMPT.into() }],
        snapshot: None,
        status: Some(Status::Running),
    };
    store.commit_step(&id, &step).unwrap();
    id
}

#[test]
fn run_first_finishes_what_a_killed_process_left_running() {
    let home = Home::new();
    let left = interrupted_session(&home.db(), "replay");
    let elsewhere = interrupted_session(&home.db(), "anthropic");

    let out = home.demo(None);
    let stdout = success(&out);
    assert!(stdout.starts_with(&format!("── resuming session {left} (left running)")), "{stdout}");
    assert_eq!(stdout.matches(": finished (the model ended its turn)").count(), 2, "{stdout}");
    assert!(
        text(&out.stderr)
            .contains(&format!("note: session {elsewhere} (left running) was left running by the anthropic provider")),
        "{}",
        text(&out.stderr)
    );

    let store = Store::open(home.db()).unwrap();
    let resumed = store.session(&left).unwrap();
    assert_eq!(resumed.status, Status::Finished);
    let mut vfs = store.restore(&left, resumed.head.last_step, Quota::default()).unwrap();
    let root = vfs.root();
    let node = vfs.lookup(root, "CONTRIBUTING.md").unwrap();
    assert_eq!(vfs.read(node, 0, 1 << 20).unwrap(), scripted_contributing().as_bytes());
    assert_eq!(store.session(&elsewhere).unwrap().status, Status::Running, "another provider's session waits");
    assert_eq!(store.list_sessions(None).unwrap().len(), 3);
    // The restored filesystem reads through the store: both must go to free the file.
    drop((vfs, store));

    // `sessions resume ID` finishes one with the provider it is given.
    let out = home.run(&["sessions", "resume", &elsewhere.to_string(), "--replay", demo_cassette().to_str().unwrap()]);
    assert!(success(&out).contains(&format!("session {elsewhere}: finished")));

    // Resuming every interrupted session needs the cassette a replayed one came from.
    let again = interrupted_session(&home.db(), "replay");
    let out = home.run(&["sessions", "resume"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("session {again} was run from a cassette; pass --replay")), "{stderr}");
    let out = home.run(&["sessions", "resume", "--replay", demo_cassette().to_str().unwrap()]);
    let stdout = success(&out);
    assert!(stdout.starts_with(&format!("── resuming session {again}")), "{stdout}");
    let out = home.run(&["sessions", "resume"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("no interrupted sessions"), "{}", text(&out.stderr));
    let out = home.run(&["sessions", "resume", &again.to_string()]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("has no run in progress (it is finished)"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_live_provider_streams_and_records_a_cassette_without_its_secrets() {
    use crate::wire_server::{Reply, WireServer};
    let event = |data: serde_json::Value| format!("event: {}\ndata: {data}\n\n", data["type"].as_str().unwrap());
    let answer = vec![
        event(json!({ "type": "message_start", "message": { "id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-live", "content": [], "stop_reason": null, "usage": { "input_tokens": 12, "output_tokens": 1 } } })),
        event(json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } })),
        event(
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Hello from " } }),
        ),
        event(
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "the live API." } }),
        ),
        event(json!({ "type": "content_block_stop", "index": 0 })),
        event(
            json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": 7 } }),
        ),
        event(json!({ "type": "message_stop" })),
    ];
    let server = WireServer::start(vec![Reply::Stream(answer)]).await;
    let home = Home::new();
    let cassette = home.path("recorded.json");
    let key = "sk-ant-cli-test-8e1f2a3b4c5d";
    let config = home.path("config.toml");
    std::fs::write(&config, "[prices.claude-live]\ninput = 3.0\noutput = 15.0\n").unwrap();
    let mut command = home.command();
    command
        .args(["--config", config.to_str().unwrap(), "run", "--model", "claude-live", "--record"])
        .arg(&cassette)
        .arg("say hello; the token is tok-cli-5a6b7c8d")
        .env("ANTHROPIC_API_KEY", key)
        .env("ANTHROPIC_BASE_URL", &server.url)
        .env("HARNESS_SECRET_TOKEN", "tok-cli-5a6b7c8d");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = success(&out);
    assert!(stdout.starts_with("Hello from the live API.\n"), "{stdout}");
    assert!(stdout.contains("usage: 12 input, 7 output") && stdout.contains("cost: $0.0001"), "{stdout}");
    let store = Store::open(home.db()).unwrap();
    let session = store.list_sessions(None).unwrap().pop().unwrap();
    assert_eq!(session.title.as_deref(), Some("say hello; the token is [REDACTED:TOKEN]"), "titles are redacted too");
    assert_eq!((session.provider.as_str(), session.model.as_str()), ("anthropic", "claude-live"));
    drop(store);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-api-key"), Some(key));
    assert_eq!(requests[0].body["model"], "claude-live");
    let sent = requests[0].body.to_string();
    assert!(sent.contains("[REDACTED:TOKEN]") && !sent.contains("tok-cli-5a6b7c8d"), "{sent}");
    assert!(
        requests[0].body["tools"].as_array().is_some_and(|tools| tools.len() >= 7),
        "the built-in tools are offered"
    );

    let recorded = std::fs::read_to_string(&cassette).unwrap();
    assert!(!recorded.contains(key) && !recorded.contains("tok-cli-5a6b7c8d"), "{recorded}");
    let replayed = Cassette::load(&cassette).unwrap();
    assert_eq!(replayed.interactions.len(), 1);
    assert_eq!(replayed.interactions[0].answer.text(), "Hello from the live API.");
    assert_eq!(replayed.interactions[0].answer.usage, Usage { input_tokens: 12, output_tokens: 7, ..Usage::default() });
}

#[test]
fn the_readme_config_example_is_a_valid_config() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("```toml\n[provider]").expect("the config example in the README") + "```toml\n".len();
    let example = &readme[start..start + readme[start..].find("```").expect("the block ends")];
    let config = harness::config::Config::parse(Path::new("README.md"), example).unwrap_or_else(|err| panic!("{err}"));
    assert!(config.provider.is_some() && config.prices.0.contains_key("claude-sonnet-4-5 (scripted)"));
    assert_eq!(config.network.inject.len(), 1);
    config.agent_config().unwrap();
    config.limits().unwrap();
}
