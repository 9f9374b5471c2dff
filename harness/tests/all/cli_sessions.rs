//! `harness sessions …` over the demo session: listing, inspecting, reading files
//! at checkpoints, forking, exporting, pruning and deleting, and the errors for
//! ids, sessions and steps that don't exist.

use serde_json::Value;

use crate::cli_run::{Home, PROMPT, demo_workspace, scripted_contributing, session_id, success, text};

/// The demo run's steps: user message, then six answers and five tool steps (the
/// two reads share one), the last answer committing the run's end with it.
const HEAD: u64 = 12;
/// The step whose commit wrote CONTRIBUTING.md.
const WRITTEN: u64 = 9;

#[test]
fn every_sessions_subcommand_works_on_the_demo_session() {
    let home = Home::new();
    let id = session_id(&success(&home.demo(None)));

    let list = success(&home.run(&["sessions", "list"]));
    let row = list.lines().find(|line| line.starts_with(&id)).expect("the session is listed");
    assert!(row.contains(" finished ") && row.contains(&format!(" {HEAD} ")), "{row}");
    assert!(row.contains("claude-sonnet-4-5 (scripted)") && row.ends_with(PROMPT), "{row}");
    let out = home.run(&["sessions", "list", "--owner", "someone-else"]);
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("no sessions"), "{}", text(&out.stderr));

    let show = success(&home.run(&["sessions", "show", &id]));
    for line in [
        "status:      finished",
        "owner:       tester",
        "model:       claude-sonnet-4-5 (scripted) (provider replay)",
        "forked from: -",
        "checkpoints: 13 kept",
        "usage:       4010 input, 779 output, 2912 cache-write, 14560 cache-read tokens",
        "cost:        not priced",
    ] {
        assert!(show.contains(line), "missing {line:?} in:\n{show}");
    }
    assert!(show.contains(&format!("head:        step {HEAD}, event 14, root ")), "{show}");
    // With the model priced in a config file, show reports the cost.
    let config = home.path("config.toml");
    std::fs::write(
        &config,
        "[prices.\"claude-sonnet-4-5 (scripted)\"]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.3\n",
    )
    .unwrap();
    let show = success(&home.run(&["--config", config.to_str().unwrap(), "sessions", "show", &id]));
    assert!(show.contains("cost:        $0.0390"), "{show}");

    let log = success(&home.run(&["sessions", "log", &id]));
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 14, "{log}");
    assert!(lines[0].trim_start().starts_with("1  ") && lines[0].contains(" user ") && lines[0].ends_with(PROMPT));
    assert!(lines[1].contains(" model ") && lines[1].contains("→ list_dir"), "{}", lines[1]);
    assert!(lines[2].contains(" result ") && lines[2].contains("list_dir ok: ./"), "{}", lines[2]);
    assert!(lines[13].contains(" ended ") && lines[13].contains("finished"), "{}", lines[13]);
    let json = success(&home.run(&["sessions", "log", &id, "--json"]));
    let events: Vec<Value> =
        json.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
    assert_eq!(events.len(), 14);
    assert!(events.iter().enumerate().all(|(i, event)| event["seq"] == i as u64 + 1 && event["time"].is_string()));
    assert_eq!(events[0]["event"], "user_message");
    assert_eq!(events[0]["text"], PROMPT);
    assert_eq!(events[9]["event"], "tool_result");
    assert_eq!(events[9]["name"], "write_file");
    assert_eq!(events[13]["event"], "run_ended");
    assert_eq!(events[13]["reason"], "end_turn");

    let checkpoints = success(&home.run(&["sessions", "checkpoints", &id]));
    assert_eq!(checkpoints.lines().count(), 1 + 13, "{checkpoints}");
    assert!(checkpoints.lines().nth(1).unwrap().contains("(initial)"), "{checkpoints}");
    let written = checkpoints.lines().nth(1 + WRITTEN as usize).unwrap();
    assert!(
        written.trim_start().starts_with(&format!("{WRITTEN} ")) && written.contains("(files changed)"),
        "{written}"
    );
    assert!(checkpoints.lines().last().unwrap().ends_with("← head"), "{checkpoints}");

    let cat = home.run(&["sessions", "cat", &id, "CONTRIBUTING.md"]);
    assert_eq!(success(&cat), scripted_contributing());
    let readme = std::fs::read_to_string(demo_workspace().join("README.md")).unwrap();
    assert_eq!(success(&home.run(&["sessions", "cat", &id, "/workspace/README.md", "--at", "0"])), readme);
    let before = home.run(&["sessions", "cat", &id, "CONTRIBUTING.md", "--at", &(WRITTEN - 1).to_string()]);
    assert_eq!(before.status.code(), Some(1));
    assert!(text(&before.stderr).contains("no such file or directory"), "{}", text(&before.stderr));
    let dir = home.run(&["sessions", "cat", &id, "src"]);
    assert_eq!(dir.status.code(), Some(1));
    assert!(text(&dir.stderr).contains("is a directory"), "{}", text(&dir.stderr));

    let ls = success(&home.run(&["sessions", "ls", &id]));
    let names: Vec<&str> = ls.lines().map(|line| line.split_whitespace().last().unwrap()).collect();
    assert_eq!(names, ["CONTRIBUTING.md", "Cargo.toml", "README.md", "src/"], "{ls}");
    let size = scripted_contributing().len().to_string();
    assert!(ls.lines().next().unwrap().trim_start().starts_with(&size), "{ls}");
    let ls = success(&home.run(&["sessions", "ls", &id, "src", "--at", "0"]));
    assert!(ls.trim_end().ends_with("  main.rs") && ls.lines().count() == 1, "{ls}");
    let ls = success(&home.run(&["sessions", "ls", &id, ".", "--at", "0"]));
    assert!(!ls.contains("CONTRIBUTING.md"), "{ls}");

    assert_eq!(success(&home.run(&["sessions", "diff", &id, "0", &HEAD.to_string()])), "A  CONTRIBUTING.md\n");
    let same = home.run(&["sessions", "diff", &id, "0", "1"]);
    assert_eq!(success(&same), "");
    assert!(text(&same.stderr).contains("no changes between step 0 and step 1"));

    let fork = success(&home.run(&["sessions", "fork", &id, "--at", &WRITTEN.to_string()]));
    let fork = fork.trim();
    assert!(fork.parse::<harness::store::SessionId>().is_ok() && fork != id, "{fork}");
    let show = success(&home.run(&["sessions", "show", fork]));
    assert!(show.contains(&format!("forked from: {id} at step {WRITTEN}")), "{show}");
    assert!(show.contains("status:      idle"), "{show}");
    assert_eq!(success(&home.run(&["sessions", "cat", fork, "CONTRIBUTING.md"])), scripted_contributing());
    assert_eq!(success(&home.run(&["sessions", "list"])).lines().count(), 1 + 2);

    let export = home.path("at-zero");
    let out = success(&home.run(&["sessions", "export", &id, export.to_str().unwrap(), "--at", "0"]));
    assert!(out.contains("exported 3 files") && out.contains("from step 0"), "{out}");
    assert!(export.join("src/main.rs").is_file() && !export.join("CONTRIBUTING.md").exists());
    let again = home.run(&["sessions", "export", &id, export.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an export never writes into a non-empty directory");

    let pruned = success(&home.run(&["sessions", "prune", &id, "--keep", "2"]));
    assert!(pruned.starts_with(&format!("removed {} checkpoints", HEAD + 1 - 2)), "{pruned}");
    assert_eq!(success(&home.run(&["sessions", "checkpoints", &id])).lines().count(), 1 + 2);
    let gone = home.run(&["sessions", "cat", &id, "README.md", "--at", "3"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains("has been pruned"), "{}", text(&gone.stderr));
    // The fork keeps what it needs: its checkpoint 0 names the parent's root at step 9.
    assert_eq!(success(&home.run(&["sessions", "cat", fork, "CONTRIBUTING.md"])), scripted_contributing());

    let refused = home.run(&["sessions", "delete", &id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("has forks") && text(&refused.stderr).contains(fork));
    assert!(success(&home.run(&["sessions", "delete", fork])).starts_with(&format!("deleted {fork}")));
    let deleted = success(&home.run(&["sessions", "delete", &id]));
    assert!(deleted.starts_with(&format!("deleted {id}; freed ")), "{deleted}");
    let freed: u64 = deleted.split("freed ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(freed > 0, "the session's objects were collected: {deleted}");
    assert!(text(&home.run(&["sessions", "list"]).stderr).contains("no sessions"));
}

#[test]
fn bad_ids_unknown_sessions_and_steps_out_of_range_are_clear_errors() {
    let home = Home::new();
    let out = home.run(&["sessions", "show", "not-a-session"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("\"not-a-session\" is not a session id"), "{}", text(&out.stderr));

    let unknown = "0193b5c4-7e1a-7c3d-9f00-1234567890ab";
    for args in [
        &["sessions", "show", unknown][..],
        &["sessions", "log", unknown],
        &["sessions", "ls", unknown],
        &["sessions", "fork", unknown],
        &["sessions", "delete", unknown],
    ] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains(&format!("session {unknown} not found")), "{args:?}: {}", text(&out.stderr));
    }

    let id = session_id(&success(&home.demo(None)));
    for args in [
        &["sessions", "cat", &id, "README.md", "--at", "99"][..],
        &["sessions", "diff", &id, "0", "13"],
        &["sessions", "fork", &id, "--at", "13"],
    ] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&format!("session {id} has steps 0 to {HEAD}")), "{args:?}: {stderr}");
    }
    let out = home.run(&["sessions", "prune", &id, "--keep", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = home.run(&["sessions", "cat", &id, "../etc/passwd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).is_empty());
}
