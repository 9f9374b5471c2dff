//! `harness sessions …`: list, inspect, time-travel and tidy stored sessions.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use harness::config::Config;
use harness::event::Event;
use harness::store::{LoggedEvent, SessionId, Store};

use super::render::{self, clock, compact_json, cut, datetime};
use super::run_cmd::{ResumeArgs, resume};
use super::setup::open_store;
use super::{Globals, outln, owner, workspace_cmd};

/// Subcommands of `harness sessions`.
#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List sessions, oldest first.
    List {
        /// Only this owner's sessions.
        #[arg(long)]
        owner: Option<String>,
    },
    /// A session's metadata, usage, cost and head.
    Show {
        /// The session.
        id: SessionId,
    },
    /// Every event of a session's log, with its sequence number.
    Log {
        /// The session.
        id: SessionId,
        /// One JSON object per line (`seq`, `time` and the event's own fields).
        #[arg(long)]
        json: bool,
    },
    /// The checkpoints a session keeps: one per committed step.
    Checkpoints {
        /// The session.
        id: SessionId,
    },
    /// Print a file of a session's workspace.
    Cat {
        /// The session.
        id: SessionId,
        /// The file, relative to the workspace (or under /workspace).
        path: String,
        /// At this step's checkpoint (default: the latest).
        #[arg(long, value_name = "STEP")]
        at: Option<u64>,
    },
    /// List a directory of a session's workspace.
    Ls {
        /// The session.
        id: SessionId,
        /// The directory (default: the workspace root).
        #[arg(default_value = ".")]
        path: String,
        /// At this step's checkpoint (default: the latest).
        #[arg(long, value_name = "STEP")]
        at: Option<u64>,
    },
    /// The files that changed between two checkpoints (A added, M modified, D removed).
    Diff {
        /// The session.
        id: SessionId,
        /// The earlier step.
        from: u64,
        /// The later step.
        to: u64,
    },
    /// Start a new session from a checkpoint of this one; prints the new id.
    Fork {
        /// The session.
        id: SessionId,
        /// The step to branch from (default: the latest).
        #[arg(long, value_name = "STEP")]
        at: Option<u64>,
        /// Owner of the fork (default: $USER, else "local").
        #[arg(long)]
        owner: Option<String>,
    },
    /// Write a session's workspace to a new or empty host directory.
    Export {
        /// The session.
        id: SessionId,
        /// The directory to write.
        dir: PathBuf,
        /// At this step's checkpoint (default: the latest).
        #[arg(long, value_name = "STEP")]
        at: Option<u64>,
    },
    /// Keep only a session's last N checkpoints and collect what nothing else uses.
    Prune {
        /// The session.
        id: SessionId,
        /// Checkpoints to keep (at least 1: the latest).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        keep: u64,
    },
    /// Continue a session left running by a stopped process (default: all of them).
    Resume(ResumeArgs),
    /// Delete a session (not one others were forked from) and collect its files.
    Delete {
        /// The session.
        id: SessionId,
    },
}

/// Runs a `sessions` subcommand.
pub async fn run(globals: &Globals, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let store = || open_store(&globals.db);
    match command {
        SessionsCommand::Resume(args) => return resume(globals, args).await,
        SessionsCommand::List { owner } => list(&store()?, owner.as_deref())?,
        SessionsCommand::Show { id } => show(&store()?, &id, &Config::load(globals.config.as_deref())?)?,
        SessionsCommand::Log { id, json } => log(&store()?, &id, json)?,
        SessionsCommand::Checkpoints { id } => {
            let store = store()?;
            let head = store.session(&id)?.head;
            outln!("{:>5}  {:>5}  {:<19}  root", "step", "seq", "time (UTC)")?;
            let mut previous = None;
            for checkpoint in store.checkpoints(&id)? {
                let root = checkpoint.root.to_string();
                let note = if previous == Some(checkpoint.root) { "" } else { "  (files changed)" };
                let note = if checkpoint.step == 0 { "  (initial)" } else { note };
                let head_mark = if checkpoint.step == head.last_step { "  ← head" } else { "" };
                outln!(
                    "{:>5}  {:>5}  {}  {}{note}{head_mark}",
                    checkpoint.step,
                    checkpoint.last_seq,
                    datetime(checkpoint.time),
                    &root[..12]
                )?;
                previous = Some(checkpoint.root);
            }
        }
        SessionsCommand::Cat { id, path, at } => workspace_cmd::cat(&store()?, &id, &path, at)?,
        SessionsCommand::Ls { id, path, at } => workspace_cmd::ls(&store()?, &id, &path, at)?,
        SessionsCommand::Diff { id, from, to } => workspace_cmd::diff(&store()?, &id, from, to)?,
        SessionsCommand::Fork { id, at, owner: fork_owner } => {
            let store = store()?;
            let step = workspace_cmd::step(&store, &id, at)?;
            let parent = store.session(&id)?;
            let fork = store.fork(&id, step, &fork_owner.map_or(parent.owner, |name| owner(Some(name))))?;
            outln!("{}", fork.id)?;
        }
        SessionsCommand::Export { id, dir, at } => {
            let store = store()?;
            let step = workspace_cmd::step(&store, &id, at)?;
            let written = workspace_cmd::export(&store, &id, step, &dir)?;
            outln!("exported {written} to {}", dir.display())?;
        }
        SessionsCommand::Prune { id, keep } => {
            let stats = store()?.prune(&id, usize::try_from(keep).unwrap_or(usize::MAX))?;
            outln!(
                "removed {} checkpoints; freed {} objects ({} bytes)",
                stats.checkpoints_removed,
                stats.objects_removed,
                stats.bytes_freed
            )?;
        }
        SessionsCommand::Delete { id } => {
            let store = store()?;
            store.delete_session(&id)?;
            let stats = store.collect_garbage()?;
            outln!("deleted {id}; freed {} objects ({} bytes)", stats.objects_removed, stats.bytes_freed)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(store: &Store, owner: Option<&str>) -> anyhow::Result<()> {
    let sessions = store.list_sessions(owner)?;
    if sessions.is_empty() {
        eprintln!("no sessions in {}", store.path().display());
        return Ok(());
    }
    outln!("{:<36}  {:<9}  {:>5}  {:<28}  {:<19}  title", "id", "status", "steps", "model", "created (UTC)")?;
    for session in sessions {
        outln!(
            "{}  {:<9}  {:>5}  {:<28}  {}  {}",
            session.id,
            render::status(session.status),
            session.head.last_step,
            cut(&session.model, 28),
            datetime(session.created),
            session.title.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

fn show(store: &Store, id: &SessionId, config: &Config) -> anyhow::Result<()> {
    let session = store.session(id)?;
    let checkpoints = store.checkpoints(id)?;
    let field = |name: &str, value: &dyn std::fmt::Display| outln!("{:<12} {value}", format!("{name}:"));
    field("id", &session.id)?;
    field("title", &session.title.as_deref().unwrap_or("-"))?;
    field("owner", &session.owner)?;
    field("status", &render::status(session.status))?;
    field("model", &format!("{} (provider {})", session.model, session.provider))?;
    field("created", &format!("{} UTC", datetime(session.created)))?;
    field("harness", &session.harness_version)?;
    let tools: Vec<&str> = session.tool_versions.keys().map(String::as_str).collect();
    field("tools", &tools.join(", "))?;
    let settings = &session.settings;
    if let Some(policy) = &settings.network {
        let hosts: Vec<String> =
            policy.allow.iter().map(|rule| format!("{}://{}{}", rule.scheme, rule.host, rule.path_prefix)).collect();
        let hosts = if hosts.is_empty() { "nothing".to_string() } else { hosts.join(", ") };
        field("network", &format!("only {hosts} (within the configured policy)"))?;
    }
    let limits: Vec<String> = [
        settings.max_turns.map(|n| format!("{n} turns per run")),
        settings.max_tokens.map(|n| format!("{n} tokens")),
        settings.max_cost_usd.map(|usd| format!("${usd:.2}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !limits.is_empty() {
        field("limits", &limits.join(", "))?;
    }
    let parent = match &session.parent {
        Some(fork) => format!("{} at step {} (event {})", fork.session, fork.step, fork.seq),
        None => "-".into(),
    };
    field("forked from", &parent)?;
    let head = &session.head;
    let root = head.root.to_string();
    field("head", &format!("step {}, event {}, root {}", head.last_step, head.last_seq, &root[..12]))?;
    field("checkpoints", &format!("{} kept", checkpoints.len()))?;
    field("usage", &render::usage(&session.usage))?;
    let cost = config.prices.cost(&session.model, &session.usage);
    field("cost", &render::cost(cost, &session.model, config.prices.0.contains_key(&session.model)))?;
    Ok(())
}

fn log(store: &Store, id: &SessionId, json: bool) -> anyhow::Result<()> {
    for logged in store.events(id)? {
        if json {
            let mut value = serde_json::to_value(&logged.event)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("seq".into(), logged.seq.into());
                object.insert("time".into(), render::rfc3339(logged.time).into());
            }
            outln!("{value}")?;
        } else {
            outln!("{}", log_line(&logged))?;
        }
    }
    Ok(())
}

/// One event on one line.
fn log_line(logged: &LoggedEvent) -> String {
    let first_line = |text: &str, max: usize| {
        let mut lines = text.trim().lines();
        let first = cut(lines.next().unwrap_or(""), max);
        let more = lines.count();
        if more > 0 { format!("{first} (+{more} lines)") } else { first }
    };
    let (kind, detail) = match &logged.event {
        Event::UserMessage { text } => ("user", first_line(text, 100)),
        Event::ModelAnswer(answer) => {
            let mut detail = first_line(&answer.text(), 80);
            for (_, name, input) in answer.tool_calls() {
                detail.push_str(&format!(" → {name} {}", compact_json(input, 60)));
            }
            let usage = &answer.usage;
            (
                "model",
                format!(
                    "{detail}  [{} in, {} out]",
                    usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens,
                    usage.output_tokens
                ),
            )
        }
        Event::ToolStarted { name, .. } => ("started", name.clone()),
        Event::ToolResult { name, content, is_error, .. } => {
            let verdict = if *is_error { "error" } else { "ok" };
            ("result", format!("{name} {verdict}: {}", first_line(content, 80)))
        }
        Event::ClientToolCall { name, input, content, is_error, .. } => {
            let verdict = if *is_error { "error" } else { "ok" };
            ("client", format!("{name} {} {verdict}: {}", compact_json(input, 60), first_line(content, 60)))
        }
        Event::Error { message } => ("error", first_line(message, 120)),
        Event::RunEnded { reason } => ("ended", render::reason(reason).to_string()),
    };
    format!("{:>5}  {}  {kind:<8} {}", logged.seq, clock(logged.time), detail.trim())
}
