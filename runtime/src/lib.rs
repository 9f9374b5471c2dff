//! The sandbox: runs agent tools as WebAssembly components in wasmtime.
//!
//! Every tool call gets a fresh [`wasmtime::Store`] and instance, so nothing a
//! call leaves in linear memory, globals or tables can be seen by the next one.
//! Only compiled code is shared. Instantiation is cheap because the engine uses
//! the pooling allocator, copy-on-write memory images and one
//! [`wasmtime::component::InstancePre`] per component.
//!
//! The crate knows nothing of models, databases or HTTP servers, so an edge host
//! can embed it alone:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use runtime::{Runtime, RuntimeConfig, Toolbox, Session, Limits};
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let component = runtime.load_file("my_tool.wasm").await?;
//! let mut toolbox = Toolbox::new();
//! toolbox.add(component)?;
//! let session = Session::new(&runtime, toolbox.into(), Limits::default());
//! let output = session.call("my_tool", r#"{"text": "hi"}"#).await?;
//! println!("{}", output.content);
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod call;
mod component;
mod engine;
mod error;
mod fs;
mod limits;
mod linker;
pub mod net;
mod output;
mod session;
mod spec;
mod toolbox;
pub mod vfs;

pub use cache::CompiledCache;
pub use component::{ComponentKind, ToolComponent};
pub use engine::{Runtime, RuntimeConfig};
pub use error::{CallError, LoadError};
pub use fs::{DEFAULT_MOUNT, Workspace};
pub use limits::Limits;
pub use session::{Session, ToolOutput};
pub use spec::ToolSpec;
pub use toolbox::Toolbox;
