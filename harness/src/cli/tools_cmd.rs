//! `harness tools …`: check a component and run its tools in a scratch session.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use runtime::{Limits, Runtime, RuntimeConfig, Session, ToolComponent, Toolbox, vfs};

/// Subcommands of `harness tools`.
#[derive(Subcommand)]
pub enum ToolsCommand {
    /// List the built-in tools and those in the tools directory.
    List,
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
        /// Seed the scratch workspace (`/workspace` in the guest) from this host directory.
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Write the workspace to this host directory afterwards (must not contain the files yet).
        #[arg(long)]
        export: Option<PathBuf>,
    },
}

/// Loads a component from a file, or from the built-ins when no such file exists.
async fn load(runtime: &Runtime, component: &Path) -> anyhow::Result<Arc<ToolComponent>> {
    if !component.exists()
        && let Some(bytes) = component.to_str().and_then(harness::builtin::find)
    {
        let name = component.to_string_lossy();
        return Ok(runtime.load(&name, bytes.to_vec()).await?);
    }
    Ok(runtime.load_file(component).await?)
}

/// Opens a host directory as a capability: nothing reached through it can escape it.
fn open_dir(path: &Path) -> anyhow::Result<cap_std::fs::Dir> {
    cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("cannot open directory {}", path.display()))
}

/// Runs a `tools` subcommand.
pub async fn run(
    command: ToolsCommand,
    cache_dir: Option<PathBuf>,
    tools_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeConfig { max_instances: 64, cache_dir, ..RuntimeConfig::default() })
        .context("cannot start the sandbox")?;
    match command {
        ToolsCommand::List => {
            let set = harness::toolset::load(&runtime, tools_dir.as_deref()).await;
            for (component, origin) in &set.origins {
                let source = match origin {
                    harness::toolset::Origin::Builtin => "built-in".to_string(),
                    harness::toolset::Origin::File(path) => path.display().to_string(),
                };
                for spec in component.specs() {
                    let mode = if spec.read_only { "read-only" } else { "read-write" };
                    println!("{:<16} {:<10} {}", spec.name, mode, source);
                }
            }
            for rejected in &set.rejected {
                eprintln!("warning: not loaded: {rejected}");
            }
            Ok(ExitCode::SUCCESS)
        }
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
        ToolsCommand::Run { component, tool, input, workspace, export } => {
            let loaded = load(&runtime, &component).await?;
            let mut toolbox = Toolbox::new();
            toolbox.add(loaded)?;
            let session = Session::new(&runtime, Arc::new(toolbox), Limits::default());
            if let Some(dir) = &workspace {
                let host = open_dir(dir)?;
                let moved = vfs::import_dir(&mut session.workspace().lock(), &host)?;
                for skipped in &moved.skipped {
                    eprintln!("warning: skipped {} (symlinks and special files are not imported)", skipped.display());
                }
            }
            let outcome = session.call(&tool, &input).await;
            if let Some(dir) = &export {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                vfs::export_dir(&mut session.workspace().lock(), &open_dir(dir)?)?;
            }
            match outcome {
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
