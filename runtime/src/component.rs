//! Loading: classify the bytes, compile (or hit the cache), check the world and
//! the imports, pre-instantiate, and read the tool specs once.

use wasmtime::component::{Component, InstancePre};
use wasmtime_wasi::p2::bindings::CommandPre;

use crate::bindings::ToolComponentPre;
use crate::cache::Meta;
use crate::call::{self, CallState};
use crate::engine::Runtime;
use crate::error::LoadError;
use crate::spec::{self, CheckedSpec, ToolSpec};

/// Which contract a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// Exports `agent:tool/tool`: `describe` and `call`.
    Tool,
    /// A plain `wasi:cli/command` program: args and stdin in, stdout/stderr/exit code out.
    Command,
}

pub(crate) enum Pre {
    Tool(ToolComponentPre<CallState>),
    Command(CommandPre<CallState>),
}

/// A loaded, pre-instantiated component and the tools it offers.
pub struct ToolComponent {
    name: String,
    hash: blake3::Hash,
    pub(crate) pre: Pre,
    pub(crate) specs: Vec<CheckedSpec>,
    network: bool,
}

impl std::fmt::Debug for ToolComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolComponent")
            .field("name", &self.name)
            .field("kind", &self.kind())
            .field("tools", &self.specs().map(|s| &s.name).collect::<Vec<_>>())
            .finish()
    }
}

impl ToolComponent {
    /// The name the component was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex blake3 hash of the component's bytes.
    pub fn hash(&self) -> String {
        self.hash.to_hex().to_string()
    }

    /// Whether it is a tool-world component or a plain command.
    pub fn kind(&self) -> ComponentKind {
        match self.pre {
            Pre::Tool(_) => ComponentKind::Tool,
            Pre::Command(_) => ComponentKind::Command,
        }
    }

    /// Whether it imports `wasi:http/outgoing-handler`: only then can its tools
    /// send requests (as far as the network policy lets them). What a component
    /// imports is what it declares it may do; an unused import is still a claim.
    pub fn uses_network(&self) -> bool {
        self.network
    }

    /// The tools it offers, as cached at load time.
    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.specs.iter().map(|checked| &checked.spec)
    }

    pub(crate) fn checked_spec(&self, tool: &str) -> Option<&CheckedSpec> {
        self.specs.iter().find(|checked| checked.spec.name == tool)
    }
}

const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

pub(crate) async fn load(runtime: &Runtime, name: &str, bytes: Vec<u8>) -> Result<ToolComponent, LoadError> {
    classify(name, &bytes)?;
    let hash = blake3::hash(&bytes);
    let (component, cached) = runtime.compile(name, bytes, hash).await?;
    let instance_pre = pre_instantiate(runtime, name, &component)?;
    // A cache entry records the kind it was checked to be when it was written.
    let command = match &cached {
        Some(meta) => meta.command,
        None => is_command(runtime, name, &component)?,
    };
    let pre = if command {
        Pre::Command(CommandPre::new(instance_pre).map_err(|err| wrong_world(name, err))?)
    } else {
        Pre::Tool(ToolComponentPre::new(instance_pre).map_err(|err| wrong_world(name, err))?)
    };
    let specs = match (&cached, &pre) {
        (Some(meta), _) => meta.specs.clone(),
        (None, Pre::Command(_)) => vec![spec::command_spec(&command_tool_name(name)?)],
        (None, Pre::Tool(pre)) => describe(runtime, name, pre).await?,
    };
    let checked = check_specs(name, specs.clone())?;
    if cached.is_none()
        && let Some(cache) = runtime.cache()
    {
        cache.put(runtime.engine_key(), &hash, &component, &Meta { command, specs });
    }
    let network = component
        .component_type()
        .imports(runtime.engine())
        .any(|(import, _)| import.starts_with("wasi:http/outgoing-handler@"));
    Ok(ToolComponent { name: name.to_string(), hash, pre, specs: checked, network })
}

/// Rejects what is not a component before handing it to the compiler, so the
/// error says what the file is rather than why it failed to parse.
fn classify(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm { name: name.into() });
    }
    match bytes[4..8].try_into().expect("4 bytes") {
        COMPONENT_VERSION => Ok(()),
        CORE_VERSION => Err(LoadError::CoreModule { name: name.into() }),
        other => Err(LoadError::Invalid {
            name: name.into(),
            reason: format!("unknown WebAssembly version/layer {other:02x?}"),
        }),
    }
}

fn is_command(runtime: &Runtime, name: &str, component: &Component) -> Result<bool, LoadError> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(runtime.engine()).map(|(export, _)| export).collect();
    if exports.iter().any(|e| e.starts_with("agent:tool/tool@")) {
        return Ok(false);
    }
    if exports.iter().any(|e| e.starts_with("wasi:cli/run@")) {
        return Ok(true);
    }
    let found = if exports.is_empty() { "no exports".to_string() } else { format!("exports {}", exports.join(", ")) };
    Err(LoadError::WrongWorld { name: name.into(), found })
}

fn pre_instantiate(runtime: &Runtime, name: &str, component: &Component) -> Result<InstancePre<CallState>, LoadError> {
    runtime.0.linker.instantiate_pre(component).map_err(|err| {
        let ty = component.component_type();
        let missing: Vec<String> = ty
            .imports(runtime.engine())
            .map(|(import, _)| import)
            .filter(|import| !crate::linker::is_provided(import))
            .map(|import| format!("`{import}`"))
            .collect();
        if missing.is_empty() {
            LoadError::Invalid { name: name.into(), reason: format!("cannot link: {err:#}") }
        } else {
            LoadError::UnsupportedImports { name: name.into(), imports: missing.join(", ") }
        }
    })
}

fn wrong_world(name: &str, err: wasmtime::Error) -> LoadError {
    LoadError::WrongWorld { name: name.into(), found: format!("mismatched exports ({err:#})") }
}

/// A command's tool is named after its file; anything outside the name rule is
/// replaced so `my.tool` becomes `my_tool`.
fn command_tool_name(name: &str) -> Result<String, LoadError> {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(64)
        .collect();
    spec::check_name(&cleaned).map_err(|reason| LoadError::BadSpec { name: name.into(), reason })?;
    Ok(cleaned)
}

async fn describe(
    runtime: &Runtime,
    name: &str,
    pre: &ToolComponentPre<CallState>,
) -> Result<Vec<ToolSpec>, LoadError> {
    let raw = call::describe(runtime, pre, &runtime.0.config.describe_limits)
        .await
        .map_err(|err| LoadError::BadSpec { name: name.into(), reason: format!("`describe` failed: {err}") })?;
    raw.into_iter()
        .map(|spec| {
            let input_schema = serde_json::from_str(&spec.input_schema).map_err(|err| LoadError::BadSpec {
                name: name.into(),
                reason: format!("tool `{}` has an input schema that is not JSON: {err}", spec.name),
            })?;
            Ok(ToolSpec {
                name: spec.name,
                description: spec.description,
                input_schema,
                read_only: spec.read_only,
                idempotent: spec.idempotent,
            })
        })
        .collect()
}

fn check_specs(name: &str, specs: Vec<ToolSpec>) -> Result<Vec<CheckedSpec>, LoadError> {
    if specs.is_empty() {
        return Err(LoadError::BadSpec { name: name.into(), reason: "it offers no tools".into() });
    }
    let mut checked: Vec<CheckedSpec> = Vec::with_capacity(specs.len());
    for spec in specs {
        if checked.iter().any(|c| c.spec.name == spec.name) {
            return Err(LoadError::BadSpec {
                name: name.into(),
                reason: format!("tool `{}` is declared twice", spec.name),
            });
        }
        checked.push(CheckedSpec::new(spec).map_err(|reason| LoadError::BadSpec { name: name.into(), reason })?);
    }
    Ok(checked)
}
