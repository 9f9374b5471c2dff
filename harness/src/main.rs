//! `harness`: the command-line entry point.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An agent harness with a WebAssembly sandbox for its tools.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Directory for compiled components (default: the user's cache directory).
    #[arg(long, global = true, env = "HARNESS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Directory of extra tool components (`*.wasm`), loaded beside the built-ins
    /// (default: `tools` in the user's data directory).
    #[arg(long, global = true, env = "HARNESS_TOOLS_DIR")]
    tools_dir: Option<PathBuf>,
    /// The session database (default: `harness.redb` in the user's data directory).
    #[arg(long, global = true, env = "HARNESS_DB", value_name = "FILE")]
    db: Option<PathBuf>,
    /// The config file (default: `agent-harness/config.toml` in the user's config
    /// directory, if it exists).
    #[arg(long, global = true, env = "HARNESS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a session: send PROMPT to the model and run its tool calls in the sandbox.
    ///
    /// The run goes on until the model ends its turn, a limit is reached or Ctrl-C
    /// cancels it; every step is committed to the database as it happens. Sessions
    /// a killed process left running are finished first.
    ///
    /// Exit code: 0 when the model ended its turn, 1 when the run failed or stopped
    /// at a limit, 130 when cancelled, 2 for a mistake in the command line.
    Run(cli::run_cmd::RunArgs),
    /// Inspect, time-travel, fork, resume and tidy stored sessions.
    #[command(subcommand)]
    Sessions(cli::sessions_cmd::SessionsCommand),
    /// Check and run tool components.
    #[command(subcommand)]
    Tools(cli::tools_cmd::ToolsCommand),
    /// Serve the multi-user HTTP API (JSON + SSE) until SIGTERM or Ctrl-C.
    ///
    /// Users authenticate with tokens from `harness users add`; the admin API
    /// takes the token in HARNESS_ADMIN_TOKEN. Runs a killed or stopped server left
    /// in progress resume at start.
    Serve(cli::serve_cmd::ServeArgs),
    /// Serve the sandboxed tools to one MCP client over stdin/stdout.
    ///
    /// The client works in a session of its own (created at its first tool call,
    /// or the one `--session` names); every call is committed to the database.
    /// Point an MCP client at `harness mcp` as a stdio server.
    Mcp(cli::mcp_cmd::McpArgs),
    /// Manage the accounts of `harness serve`.
    #[command(subcommand)]
    Users(cli::serve_cmd::UsersCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let data_dir = dirs::data_dir().map(|dir| dir.join("agent-harness"));
    let default_db = data_dir.as_ref().map(|dir| dir.join("harness.redb"));
    let db_is_default = cli.db.is_none() || cli.db == default_db;
    let Some(db) = cli.db.or(default_db) else {
        eprintln!("error: no data directory is known for this user; pass --db FILE or set HARNESS_DB");
        return ExitCode::from(2);
    };
    let globals = cli::Globals {
        cache_dir: cli.cache_dir.or_else(|| dirs::cache_dir().map(|dir| dir.join("agent-harness").join("compiled"))),
        tools_dir: cli.tools_dir.or_else(|| data_dir.map(|dir| dir.join("tools"))),
        db,
        db_is_default,
        config: cli.config,
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Run(args) => cli::run_cmd::run(&globals, args).await,
            Command::Sessions(command) => cli::sessions_cmd::run(&globals, command).await,
            Command::Serve(args) => cli::serve_cmd::run(&globals, args).await,
            Command::Mcp(args) => cli::mcp_cmd::run(&globals, args).await,
            Command::Users(command) => cli::serve_cmd::users(&globals, command),
            Command::Tools(command) => {
                cli::tools_cmd::run(command, globals.cache_dir.clone(), globals.tools_dir.clone()).await
            }
        }
    });
    match result {
        Ok(code) => code,
        // The reader went away (`| head`): what it wanted has been written.
        Err(err) if cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // A mistake in the command line is told apart from a failure doing the work.
            if err.chain().any(|cause| cause.is::<cli::UsageError>()) { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARNESS_LOG")
        // rmcp logs every error answer it sends (an unknown tool, bad arguments) as a
        // warning; those are the client's mistakes, answered to the client.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rmcp=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
