//! Builds the tools in `tools-wasm/` for wasm32-wasip2 and embeds them, so the
//! `harness` binary carries its built-in tools.

use std::path::Path;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = manifest.parent().expect("harness/ lies in the repository");
    let wasm_dir = wasm_build::build_workspace(&repo.join("tools-wasm"), &[&repo.join("runtime/wit")]);
    let tools_dir = repo.join("tools-wasm/tools");
    let mut names: Vec<String> = std::fs::read_dir(&tools_dir)
        .expect("read tools-wasm/tools")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().replace('-', "_"))
        .collect();
    names.sort();
    let entries: String = names
        .iter()
        .map(|name| {
            format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                wasm_dir.join(format!("{name}.wasm")).display().to_string()
            )
        })
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_tools.rs");
    std::fs::write(out, format!("/// Built-in tool components: (name, wasm bytes).\npub const BUILTIN_TOOLS: &[(&str, &[u8])] = &[\n{entries}];\n"))
        .expect("write builtin_tools.rs");
}
