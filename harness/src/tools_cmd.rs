//! `harness tools …`: check a component and run its tools in a scratch session.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use runtime::{Limits, Runtime, RuntimeConfig, Session, ToolComponent, Toolbox};

/// Subcommands of `harness tools`.
#[derive(Subcommand)]
pub enum ToolsCommand {
    /// Validate a component (world, imports, tool names and schemas) and list its tools.
    Check {
        /// A `.wasm` component file, or the name of a built-in component.
        component: PathBuf,
    },
    /// Run one tool of a component with a JSON input.
    Run {
        /// A `.wasm` component file, or the name of a built-in component.
        component: PathBuf,
        /// The tool to call.
        tool: String,
        /// The input, as a JSON document.
        input: String,
    },
}

/// Loads a component from a file, or from the built-ins when no such file exists.
async fn load(runtime: &Runtime, component: &Path) -> anyhow::Result<Arc<ToolComponent>> {
    if !component.exists()
        && let Some(bytes) = component.to_str().and_then(crate::builtin::find)
    {
        let name = component.to_string_lossy();
        return Ok(runtime.load(&name, bytes.to_vec()).await?);
    }
    Ok(runtime.load_file(component).await?)
}

/// Runs a `tools` subcommand.
pub async fn run(command: ToolsCommand, cache_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeConfig { max_instances: 64, cache_dir, ..RuntimeConfig::default() })
        .context("cannot start the sandbox")?;
    match command {
        ToolsCommand::Check { component } => {
            let loaded = load(&runtime, &component).await?;
            println!("{}: ok ({:?} component, {} tool(s))", component.display(), loaded.kind(), loaded.specs().count());
            for spec in loaded.specs() {
                let flags = [("read-only", spec.read_only), ("idempotent", spec.idempotent)]
                    .iter()
                    .filter(|(_, on)| *on)
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ");
                println!("\n{} [{}]\n  {}", spec.name, flags, spec.description);
                println!("  input schema: {}", spec.input_schema);
            }
            Ok(ExitCode::SUCCESS)
        }
        ToolsCommand::Run { component, tool, input } => {
            let loaded = load(&runtime, &component).await?;
            let mut toolbox = Toolbox::new();
            toolbox.add(loaded)?;
            let session = Session::new(&runtime, Arc::new(toolbox), Limits::default());
            match session.call(&tool, &input).await {
                Ok(output) => {
                    if !output.stderr.is_empty() {
                        eprint!("{}", output.stderr);
                    }
                    println!("{}", output.content);
                    Ok(if output.is_error { ExitCode::FAILURE } else { ExitCode::SUCCESS })
                }
                Err(err) => {
                    eprintln!("error: {err}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
