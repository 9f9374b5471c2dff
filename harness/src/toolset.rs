//! The tools a harness offers: the built-ins embedded in the binary, then every
//! component in the tools directory. A component that fails to load, or whose
//! tool names collide with one already loaded, is reported and skipped; the
//! others still load.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runtime::{Runtime, ToolComponent, Toolbox};

/// Where a loaded component came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Embedded in the `harness` binary.
    Builtin,
    /// A `.wasm` file in the tools directory.
    File(PathBuf),
}

/// The loaded tools and what was refused.
pub struct Toolset {
    /// Every tool that loaded.
    pub toolbox: Toolbox,
    /// Each loaded component and its origin, in load order.
    pub origins: Vec<(Arc<ToolComponent>, Origin)>,
    /// One message per refused component.
    pub rejected: Vec<String>,
}

/// Loads the built-ins, then `tools_dir`'s `*.wasm` files in name order.
pub async fn load(runtime: &Runtime, tools_dir: Option<&Path>) -> Toolset {
    let mut set = Toolset { toolbox: Toolbox::new(), origins: Vec::new(), rejected: Vec::new() };
    for (name, bytes) in crate::builtin::BUILTIN_TOOLS {
        match runtime.load(name, bytes.to_vec()).await {
            Ok(component) => set.add(component, Origin::Builtin),
            Err(err) => set.rejected.push(format!("built-in `{name}`: {err}")),
        }
    }
    let Some(dir) = tools_dir else { return set };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => {
            set.rejected.push(format!("tools directory {}: {err}", dir.display()));
            Vec::new()
        }
    };
    files.sort();
    for path in files {
        match runtime.load_file(&path).await {
            Ok(component) => set.add(component, Origin::File(path)),
            Err(err) => set.rejected.push(format!("{}: {err}", path.display())),
        }
    }
    set
}

impl Toolset {
    fn add(&mut self, component: Arc<ToolComponent>, origin: Origin) {
        let label = match &origin {
            Origin::Builtin => format!("built-in `{}`", component.name()),
            Origin::File(path) => path.display().to_string(),
        };
        match self.toolbox.add(component.clone()) {
            Ok(()) => self.origins.push((component, origin)),
            Err(err) => self.rejected.push(format!("{label}: {err}")),
        }
    }
}
