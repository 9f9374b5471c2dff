//! `harness`: the command-line entry point.

mod tools_cmd;

use std::path::PathBuf;

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
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check and run tool components.
    #[command(subcommand)]
    Tools(tools_cmd::ToolsCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cache_dir = cli.cache_dir.or_else(|| dirs::cache_dir().map(|dir| dir.join("agent-harness").join("compiled")));
    let result = rt.block_on(async {
        match cli.command {
            Command::Tools(command) => {
                let tools_dir =
                    cli.tools_dir.or_else(|| dirs::data_dir().map(|dir| dir.join("agent-harness").join("tools")));
                tools_cmd::run(command, cache_dir, tools_dir).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARNESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
