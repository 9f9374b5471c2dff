//! `harness serve` and `harness users …`: the multi-user HTTP API and its accounts.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use harness::config::Config;
use harness::server::{ServerConfig, ServerState, serve};
use harness::store::TokenHash;

use super::Globals;
use super::setup::{AgentArgs, Parts, choose, open_store};

/// Options of `harness serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How the sessions reach a model.
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Seconds a shutdown waits for open requests to end and runs to commit their current step.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace: u64,
}

/// Serves until SIGTERM or Ctrl-C: stops accepting, lets each run commit its
/// current step, and exits; the runs resume at the next start.
pub async fn run(globals: &Globals, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(globals.config.as_deref())?;
    let choice = choose(&config, &args.agent, None, |name| std::env::var(name).ok())?;
    let parts = Parts::assemble(globals, &config, args.agent.fixed_clock).await?;
    let agent = Arc::new(parts.agent(parts.provider(&choice.provider)?, &choice.model));
    // The admin token is a secret of the operator's: only its hash stays in memory.
    let admin_token_hash =
        std::env::var("HARNESS_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()).map(|t| TokenHash::of(&t));
    let server = ServerConfig {
        admin_token_hash,
        shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
        quota: agent.quota(),
        ..ServerConfig::default()
    };
    // Installed before the address is printed: a SIGTERM sent as soon as the
    // server says it is up must stop it gracefully, not kill it.
    let shutdown = shutdown_signal().context("cannot install the SIGTERM and Ctrl-C handlers")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    eprintln!("harness: serving on http://{address} (database {})", globals.db.display());
    let state = ServerState::new(agent, server);
    serve(listener, state, shutdown).await.context("the server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// A future that resolves on SIGTERM or Ctrl-C. The handlers are installed by
/// this call, not when the future is first polled, so no signal is missed in between.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// A future that resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// `harness users …`: the accounts of `harness serve`.
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user and print their API token; it is shown only this once.
    Add {
        /// The user's name.
        name: String,
    },
    /// List the users.
    List,
    /// Remove a user: their token stops working; their sessions stay.
    Remove {
        /// The user's name.
        name: String,
    },
}

/// Runs a `users` subcommand against the database.
pub fn users(globals: &Globals, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(&globals.db)?;
    match command {
        UsersCommand::Add { name } => {
            let token = store.add_user(&name)?;
            println!("{token}");
            eprintln!("user `{name}` added; keep this token: it is not stored and can't be shown again");
        }
        UsersCommand::List => {
            for user in store.users()? {
                println!("{}", user.name);
            }
        }
        UsersCommand::Remove { name } => {
            store.remove_user(&name)?;
            eprintln!("user `{name}` removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
