//! Generated host bindings for `wasi:filesystem` (types + preopens).

use wasmtime::component::{HasData, Linker};

wasmtime::component::bindgen!({
    path: "wasi-wit",
    world: "agent:host/vfs",
    imports: { default: trappable },
    require_store_data_send: true,
    with: {
        "wasi:io": wasmtime_wasi_io::bindings::wasi::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:filesystem/types.descriptor": super::Descriptor,
        "wasi:filesystem/types.directory-entry-stream": super::DirStream,
    },
});

pub(crate) use wasi::filesystem::{preopens, types};

/// Links `wasi:filesystem/types` and `/preopens`.
pub(crate) fn add_to_linker<T: Send + 'static, D>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> D::Data<'_>,
) -> wasmtime::Result<()>
where
    D: HasData,
    for<'a> D::Data<'a>: types::Host + preopens::Host,
{
    types::add_to_linker::<T, D>(linker, view)?;
    preopens::add_to_linker::<T, D>(linker, view)
}
