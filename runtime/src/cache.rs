//! On-disk cache of compiled components.
//!
//! Compiling a component takes hundreds of milliseconds; loading a compiled
//! artifact takes well under one. Entries are keyed by the engine's
//! precompile-compatibility hash (directory) and the wasm's blake3 hash (file).
//!
//! Each entry is `MAGIC | blake3(payload) | payload`, where the payload is the
//! component's metadata (kind and tool specs) followed by wasmtime's serialized
//! artifact. A truncated, corrupted or edited entry fails the checksum; an entry
//! made by a different engine fails wasmtime's own compatibility check. Either way
//! the entry is deleted and the component recompiled; it is never loaded. The
//! checksum guards against accidents and tampering by anyone who cannot also
//! recompute it: the directory itself must be writable by the operator only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::spec::ToolSpec;

const MAGIC: &[u8; 8] = b"AGTCWSM1";
const HEADER: usize = MAGIC.len() + blake3::OUT_LEN;

/// Kind and specs of a component, stored beside its compiled code so a cache hit
/// needs no instantiation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub command: bool,
    pub specs: Vec<ToolSpec>,
}

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
}

impl CompiledCache {
    /// Uses (and creates) `dir` for cached artifacts.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(CompiledCache { dir })
    }

    /// The directory this cache writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for one engine and wasm hash lives.
    pub fn entry_path(&self, engine_key: &str, wasm_hash: &blake3::Hash) -> PathBuf {
        self.dir.join(engine_key).join(format!("{}.cwasm", wasm_hash.to_hex()))
    }

    /// Loads a valid entry; deletes and skips an invalid one.
    pub(crate) fn get(&self, engine: &Engine, engine_key: &str, wasm_hash: &blake3::Hash) -> Option<(Component, Meta)> {
        let path = self.entry_path(engine_key, wasm_hash);
        let bytes = std::fs::read(&path).ok()?;
        match decode(engine, &bytes) {
            Ok(hit) => Some(hit),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "discarding invalid compiled-cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an entry atomically (temp file + rename). Failure only costs a
    /// recompile next time, so it is logged, not returned.
    pub(crate) fn put(&self, engine_key: &str, wasm_hash: &blake3::Hash, component: &Component, meta: &Meta) {
        let path = self.entry_path(engine_key, wasm_hash);
        if let Err(err) = write_entry(&path, component, meta) {
            tracing::warn!(path = %path.display(), %err, "cannot write compiled-cache entry");
        }
    }
}

fn write_entry(path: &Path, component: &Component, meta: &Meta) -> Result<(), Box<dyn std::error::Error>> {
    let dir = path.parent().ok_or("cache entry has no parent directory")?;
    std::fs::create_dir_all(dir)?;
    let meta = serde_json::to_vec(meta)?;
    let code = component.serialize().map_err(|err| err.to_string())?;
    let mut payload = Vec::with_capacity(4 + meta.len() + code.len());
    payload.extend_from_slice(&u32::try_from(meta.len())?.to_le_bytes());
    payload.extend_from_slice(&meta);
    payload.extend_from_slice(&code);
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(MAGIC)?;
    file.write_all(blake3::hash(&payload).as_bytes())?;
    file.write_all(&payload)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    Ok(())
}

fn decode(engine: &Engine, bytes: &[u8]) -> Result<(Component, Meta), String> {
    if bytes.len() < HEADER + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("missing header".into());
    }
    let (header, payload) = bytes.split_at(HEADER);
    if blake3::hash(payload).as_bytes() != &header[MAGIC.len()..] {
        return Err("checksum mismatch".into());
    }
    let meta_len = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
    let meta_end = 4usize.checked_add(meta_len).filter(|end| *end <= payload.len()).ok_or("metadata length out of range")?;
    let meta: Meta = serde_json::from_slice(&payload[4..meta_end]).map_err(|err| format!("bad metadata: {err}"))?;
    // SAFETY: the payload is byte-for-byte what `Component::serialize` wrote (the
    // checksum above proves it), and wasmtime rejects artifacts from another
    // engine configuration or version itself.
    let component = unsafe { Component::deserialize(engine, &payload[meta_end..]) }
        .map_err(|err| format!("incompatible artifact: {err}"))?;
    Ok((component, meta))
}

/// Hex blake3 of the engine's precompile-compatibility hash: equal for engines
/// whose artifacts are interchangeable.
pub(crate) fn engine_key(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    struct Blake3Hasher(blake3::Hasher);
    impl Hasher for Blake3Hasher {
        fn finish(&self) -> u64 {
            let hash = self.0.finalize();
            u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().to_hex()[..32].to_string()
}
