//! Host bindings for the `agent:tool/tool-component` world in `runtime/wit/`.

wasmtime::component::bindgen!({
    path: "wit",
    world: "tool-component",
    exports: { default: async },
});
