//! `harness run PROMPT` and `harness sessions resume [ID]`: a session streamed to
//! the terminal, after finishing whatever a killed process left running.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use harness::agent::{Agent, RunOutcome, SessionOptions};
use harness::config::Config;
use harness::event::EndReason;
use harness::store::{SessionId, Status};
use runtime::vfs::{self, Vfs};
use tokio_util::sync::CancellationToken;

use super::render::{Terminal, summary};
use super::setup::{AgentArgs, Kind, Parts, cancel_on_ctrl_c, choose};
use super::{Globals, outln, owner, usage};

/// Arguments of `harness run`.
#[derive(Args)]
pub struct RunArgs {
    /// What to ask the model.
    pub prompt: String,
    // How to reach the model.
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Seed the session's workspace (`/workspace` in the tools) from this host directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// After the run, write the session's workspace to this new or empty directory.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Owner of the new session (default: $USER, else "local").
    #[arg(long)]
    pub owner: Option<String>,
    /// Title for listings (default: the prompt's first line).
    #[arg(long)]
    pub title: Option<String>,
}

/// Arguments of `harness sessions resume`.
#[derive(Args)]
pub struct ResumeArgs {
    /// The session to continue (default: every session a killed process left running).
    pub id: Option<SessionId>,
    // How to reach the model.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// The exit code of a run that ended this way: 0 when the model ended its turn, 130
/// when cancelled (as for SIGINT), 1 otherwise (failed, or stopped at a limit).
pub fn exit_code(reason: &EndReason) -> ExitCode {
    match reason {
        EndReason::EndTurn => ExitCode::SUCCESS,
        EndReason::Cancelled => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    }
}

/// Runs `harness run`.
pub async fn run(globals: &Globals, args: RunArgs) -> anyhow::Result<ExitCode> {
    // Checked before any model call: a run is not worth paying for if its result can't be written.
    if let Some(dir) = &args.export {
        check_export_target(dir)?;
    }
    if let Some(dir) = &args.workspace
        && !dir.is_dir()
    {
        usage!("--workspace {}: not a directory", dir.display());
    }
    let config = Config::load(globals.config.as_deref())?;
    let choice = choose(&config, &args.agent, None, |name| std::env::var(name).ok())?;
    let parts = Parts::assemble(globals, &config, args.agent.fixed_clock).await?;
    let cancel = cancel_on_ctrl_c();

    // What a killed process left running is finished first, without recording: a
    // cassette being recorded belongs to the new session only.
    let mut plain = choice.provider.clone();
    plain.record = None;
    let plain = parts.provider(&plain)?;
    let resumer = parts.agent(plain.clone(), &choice.model);
    resume_interrupted(globals, &config, &resumer, plain.name(), &cancel).await?;
    if cancel.is_cancelled() {
        return Ok(ExitCode::from(130));
    }

    let agent = parts.agent(parts.provider(&choice.provider)?, &choice.model);
    let snapshot = match &args.workspace {
        Some(dir) => {
            let mut vfs = Vfs::new(parts.config.quota);
            let moved = vfs::import_dir(&mut vfs, &open_dir(dir)?)
                .with_context(|| format!("cannot import the workspace {}", dir.display()))?;
            for skipped in &moved.skipped {
                eprintln!("warning: skipped {} (symlinks and special files are not imported)", skipped.display());
            }
            Some(vfs.snapshot().context("cannot snapshot the imported workspace")?)
        }
        None => None,
    };
    let title = args.title.clone().unwrap_or_else(|| super::render::cut(args.prompt.lines().next().unwrap_or(""), 72));
    // The store keeps titles as given: one must not carry a secret the prompt held.
    let title = Some(parts.network().redactor().redact_str(&title)).filter(|title| !title.trim().is_empty());
    let terminal = Terminal::default();
    let options = SessionOptions { title, ..SessionOptions::default() };
    let (id, outcome) =
        agent.start(&owner(args.owner.clone()), options, snapshot.as_ref(), &args.prompt, &terminal, &cancel).await?;
    if let Some(dir) = &args.export {
        let written = export_head(&agent, &id, dir)?;
        // A run's output is a courtesy: a closed stdout must not stop the run.
        let _ = outln!("\nexported {written} to {}", dir.display());
    }
    report(globals, &config, &id, &outcome, &choice.model);
    Ok(exit_code(&outcome.reason))
}

/// Runs `harness sessions resume`.
pub async fn resume(globals: &Globals, mut args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let store = super::setup::open_store(&globals.db)?;
    let first = match &args.id {
        Some(id) => store.session(id)?,
        None => match store.sessions_with_status(Status::Running)?.into_iter().next() {
            Some(session) => session,
            None => {
                eprintln!("no interrupted sessions");
                return Ok(ExitCode::SUCCESS);
            }
        },
    };
    // The agent opens the database itself.
    drop(store);
    if args.id.is_some() && first.status != Status::Running {
        let status = super::render::status(first.status);
        eprintln!("session {} has no run in progress (it is {status}); nothing to resume", first.id);
        return Ok(ExitCode::SUCCESS);
    }
    // Unless told otherwise, a session continues with the API it started on.
    if args.agent.provider.is_none() && args.agent.replay.is_none() {
        match first.provider.as_str() {
            "anthropic" => args.agent.provider = Some(Kind::Anthropic),
            "openai" => args.agent.provider = Some(Kind::Openai),
            "replay" => usage!(
                "session {} was run from a cassette; pass --replay CASSETTE (the same file) to resume it",
                first.id
            ),
            _ => {}
        }
    }
    let choice = choose(&config, &args.agent, Some(&first.model), |name| std::env::var(name).ok())?;
    let parts = Parts::assemble(globals, &config, args.agent.fixed_clock).await?;
    let provider = parts.provider(&choice.provider)?;
    let agent = parts.agent(provider.clone(), &choice.model);
    let cancel = cancel_on_ctrl_c();
    let Some(id) = args.id else {
        let worst = resume_interrupted(globals, &config, &agent, provider.name(), &cancel).await?;
        return Ok(worst.map_or(ExitCode::SUCCESS, |reason| exit_code(&reason)));
    };
    let outcome = agent.resume(&id, &Terminal::default(), &cancel).await?;
    report(globals, &config, &id, &outcome, &first.model);
    Ok(exit_code(&outcome.reason))
}

/// Resumes every session left `Running` by `provider`, one after another. Others
/// are left alone with a note: their conversation belongs to that provider, and a
/// cassette only answers the conversation it recorded. Returns the first reason
/// that wasn't a normal end, if any.
async fn resume_interrupted(
    globals: &Globals,
    config: &Config,
    agent: &Agent,
    provider: &str,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<EndReason>> {
    let mut worst = None;
    for id in agent.interrupted_sessions()? {
        if cancel.is_cancelled() {
            break;
        }
        let session = agent.store().session(&id)?;
        let title = session.title.as_deref().map(|title| format!(" ({title})")).unwrap_or_default();
        if session.provider != provider {
            eprintln!(
                "note: session {id}{title} was left running by the {} provider; resume it with \
                 `{} sessions resume {id}` and that provider",
                session.provider,
                globals.command_prefix()
            );
            continue;
        }
        let _ = outln!("── resuming session {id}{title}, left running by a stopped process");
        let outcome = agent.resume(&id, &Terminal::default(), cancel).await?;
        report(globals, config, &id, &outcome, &session.model);
        if outcome.reason != EndReason::EndTurn && worst.is_none() {
            worst = Some(outcome.reason);
        }
    }
    Ok(worst)
}

/// Prints the end-of-run report.
fn report(globals: &Globals, config: &Config, id: &SessionId, outcome: &RunOutcome, model: &str) {
    let priced = config.prices.0.contains_key(model);
    let _ = outln!("{}", summary(id, outcome, model, priced, &globals.command_prefix()).trim_end());
}

/// Refuses an export target that already holds something.
pub fn check_export_target(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                usage!("export directory {} is not empty; name a new or empty directory", dir.display());
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot read export directory {}", dir.display())),
    }
}

/// Opens a host directory as a capability: nothing reached through it can escape it.
pub fn open_dir(path: &Path) -> anyhow::Result<cap_std::fs::Dir> {
    cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("cannot open directory {}", path.display()))
}

/// Writes the session's workspace at its head into `dir`; says what was written.
fn export_head(agent: &Agent, id: &SessionId, dir: &Path) -> anyhow::Result<String> {
    let head = agent.store().session(id)?.head.last_step;
    super::workspace_cmd::export(agent.store(), id, head, dir)
}
