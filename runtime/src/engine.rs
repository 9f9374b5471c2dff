//! The engine: pooling allocator, copy-on-write memory images, epoch deadlines,
//! and component loading through the compiled cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{self, CompiledCache};
use crate::call::CallState;
use crate::component::ToolComponent;
use crate::error::LoadError;
use crate::limits::Limits;

/// How the engine is sized.
///
/// The defaults reserve, for 1,024 concurrent instances: one 4 GiB + 32 MiB
/// guard linear-memory slot each (≈ 4.1 TiB of *virtual* address space, of which
/// nothing is committed until a guest touches it; x86-64 user space is 128 TiB),
/// one 2 MiB async stack each (2 GiB virtual), and instance metadata. The 4 GiB
/// slots let compiled code skip bounds checks. Physical memory is only what
/// running guests touch, capped per call by [`Limits::memory_bytes`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Component instances that may exist at once across all sessions; a call
    /// beyond them waits for one to end.
    pub max_instances: u32,
    /// Hard ceiling on any one instance's linear memory, in bytes.
    pub max_memory_bytes: usize,
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Granularity of wall-clock deadlines; a spinning guest also yields its
    /// thread this often so other sessions keep running.
    pub epoch_tick: Duration,
    /// Limits applied when calling `describe` at load time.
    pub describe_limits: Limits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 1024,
            max_memory_bytes: 1 << 30,
            cache_dir: None,
            epoch_tick: Duration::from_millis(5),
            describe_limits: Limits { deadline: Duration::from_secs(10), ..Limits::default() },
        }
    }
}

/// Core instances a component may contain: a Rust wasip2 component has its
/// main module, the WASI adapter and a few shim modules.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;

/// Bytes of each linear-memory slot kept resident between calls. Rust guests put
/// a 1 MiB stack first, then data and heap, so 2 MiB covers what a typical call
/// touches; dirtied pages beyond it are decommitted as usual.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

/// Bytes of each table slot kept resident between calls.
const TABLE_KEEP_RESIDENT: usize = 256 << 10;

pub(crate) struct Inner {
    pub engine: Engine,
    pub linker: Linker<CallState>,
    pub cache: Option<CompiledCache>,
    pub engine_key: String,
    pub config: RuntimeConfig,
    pub instantiations: AtomicU64,
    /// One permit per instance slot of the pool. Taken before a store is created
    /// and returned after it is dropped, so a burst of calls (a model asking for
    /// hundreds of reads at once, many sessions) waits for a slot instead of
    /// failing with the pool's "maximum concurrent limit reached".
    pub slots: Semaphore,
}

/// A configured engine shared by every session; cheap to clone.
#[derive(Clone)]
pub struct Runtime(pub(crate) Arc<Inner>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.0.config).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = Engine::new(&wasmtime_config(&config)).map_err(|err| LoadError::Invalid {
            name: "engine".into(),
            reason: format!("cannot configure wasmtime: {err}"),
        })?;
        let linker = crate::linker::build(&engine)
            .map_err(|err| LoadError::Invalid { name: "linker".into(), reason: err.to_string() })?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                CompiledCache::new(dir).map_err(|source| LoadError::Io { path: dir.display().to_string(), source })?,
            ),
            None => None,
        };
        let engine_key = cache::engine_key(&engine);
        let slots = Semaphore::new(config.max_instances as usize);
        let inner =
            Arc::new(Inner { engine, linker, cache, engine_key, config, instantiations: AtomicU64::new(0), slots });
        start_ticker(Arc::downgrade(&inner), inner.config.epoch_tick);
        Ok(Runtime(inner))
    }

    /// The underlying wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The compiled cache, if one is configured.
    pub fn cache(&self) -> Option<&CompiledCache> {
        self.0.cache.as_ref()
    }

    /// Hex key of this engine's compiled-artifact compatibility.
    pub fn engine_key(&self) -> &str {
        &self.0.engine_key
    }

    /// How many stores (one per call, plus one per `describe`) this runtime has created.
    pub fn instantiations(&self) -> u64 {
        self.0.instantiations.load(Ordering::Relaxed)
    }

    /// Loads a component from a file; its stem names a plain command's tool.
    pub async fn load_file(&self, path: impl AsRef<Path>) -> Result<Arc<ToolComponent>, LoadError> {
        let path = path.as_ref();
        let bytes =
            tokio::fs::read(path).await.map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        self.load(&name, bytes).await
    }

    /// Loads a component from bytes, through the compiled cache.
    ///
    /// `name` identifies the component in errors and names the tool of a plain
    /// `wasi:cli/command` component.
    pub async fn load(&self, name: &str, bytes: Vec<u8>) -> Result<Arc<ToolComponent>, LoadError> {
        crate::component::load(self, name, bytes).await.map(Arc::new)
    }

    /// Compiles (or fetches from cache) without blocking the async runtime.
    pub(crate) async fn compile(
        &self,
        name: &str,
        bytes: Vec<u8>,
        hash: blake3::Hash,
    ) -> Result<(Component, Option<cache::Meta>), LoadError> {
        let runtime = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let inner = &runtime.0;
            if let Some(hit) = inner.cache.as_ref().and_then(|c| c.get(&inner.engine, &inner.engine_key, &hash)) {
                return Ok((hit.0, Some(hit.1)));
            }
            Component::new(&inner.engine, &bytes)
                .map(|component| (component, None))
                .map_err(|err| LoadError::Invalid { name, reason: format!("{err:#}") })
        })
        .await
        .map_err(|err| LoadError::Invalid { name: "compiler".into(), reason: err.to_string() })?
    }
}

fn wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut pooling = PoolingAllocationConfig::new();
    let instances = config.max_instances;
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(instances.saturating_mul(2))
        .max_memories_per_component(2)
        .total_tables(instances.saturating_mul(8))
        .max_tables_per_component(8)
        .total_stacks(instances)
        .max_memory_size(config.max_memory_bytes)
        // Reset freed slots in place instead of unmapping them: with PAGEMAP_SCAN
        // (Linux ≥ 6.7) only the pages a guest dirtied, within the first
        // KEEP_RESIDENT bytes, are copied back from the image; nothing is
        // unmapped, so the next call takes no page faults and no TLB shootdown.
        // Measured on the 2-core dev machine with `benches/examples/noop_loop`:
        // 28.6 µs per no-op call with wasmtime's defaults, 10.4 µs with these.
        // Without PAGEMAP_SCAN, wasmtime falls back to memset + madvise.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT);

    let mut wasm = Config::new();
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
        .memory_init_cow(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20)
        .async_stack_size(2 << 20);
    wasm
}

/// Advances the engine's epoch every `tick` until the runtime is dropped.
fn start_ticker(runtime: Weak<Inner>, tick: Duration) {
    let spawned = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(tick);
            match runtime.upgrade() {
                Some(inner) => inner.engine.increment_epoch(),
                None => break,
            }
        }
    });
    if let Err(err) = spawned {
        tracing::error!(%err, "cannot start the epoch ticker; deadlines fall back to timers only");
    }
}
