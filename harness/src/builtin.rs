//! Tool components compiled from `tools-wasm/` and embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtin_tools.rs"));

/// The bytes of the built-in component called `name`.
pub fn find(name: &str) -> Option<&'static [u8]> {
    BUILTIN_TOOLS.iter().find(|(builtin, _)| *builtin == name).map(|(_, bytes)| *bytes)
}
