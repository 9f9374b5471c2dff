//! On-disk cache of compiled components.
//!
//! Compiling a component takes hundreds of milliseconds; loading a compiled
//! artifact takes well under one. Entries are keyed by the engine's
//! precompile-compatibility hash (directory) and the wasm's blake3 hash (file
//! name). Each entry is two files:
//!
//! - `<hash>.cwasm`: wasmtime's serialized artifact, byte for byte, so it can be
//!   memory-mapped straight from the page cache instead of copied;
//! - `<hash>.meta`: `MAGIC | blake3(body) | body`, where the JSON body holds the
//!   artifact's blake3 and the component's kind and tool specs (so a cache hit
//!   runs no guest code).
//!
//! A truncated, corrupted or edited entry fails a checksum; an artifact made by a
//! different engine fails wasmtime's own compatibility check. Either way the
//! entry is deleted and the component recompiled; it is never loaded. The
//! checksums guard against accidents and against tampering by anyone who cannot
//! also recompute them: the directory itself must be writable by the operator only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::spec::ToolSpec;

const MAGIC: &[u8; 8] = b"AGTMETA1";
const HEADER: usize = MAGIC.len() + blake3::OUT_LEN;

/// Kind and specs of a component, stored beside its compiled code so a cache hit
/// needs no instantiation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub command: bool,
    pub specs: Vec<ToolSpec>,
}

#[derive(Serialize, Deserialize)]
struct MetaFile {
    artifact_blake3: String,
    #[serde(flatten)]
    meta: Meta,
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

    /// Where the compiled artifact for one engine and wasm hash lives; its
    /// metadata sits beside it with the extension `meta`.
    pub fn entry_path(&self, engine_key: &str, wasm_hash: &blake3::Hash) -> PathBuf {
        self.dir.join(engine_key).join(format!("{}.cwasm", wasm_hash.to_hex()))
    }

    /// Loads a valid entry; deletes and skips an invalid one.
    pub(crate) fn get(&self, engine: &Engine, engine_key: &str, wasm_hash: &blake3::Hash) -> Option<(Component, Meta)> {
        let artifact = self.entry_path(engine_key, wasm_hash);
        let meta_path = artifact.with_extension("meta");
        let meta_bytes = std::fs::read(&meta_path).ok()?;
        match load_entry(engine, &artifact, &meta_bytes) {
            Ok(hit) => Some(hit),
            Err(reason) => {
                tracing::warn!(path = %artifact.display(), %reason, "discarding invalid compiled-cache entry");
                let _ = std::fs::remove_file(&meta_path);
                let _ = std::fs::remove_file(&artifact);
                None
            }
        }
    }

    /// Stores an entry: artifact first, then the metadata that vouches for it,
    /// each atomically (temp file + rename). Failure only costs a recompile next
    /// time, so it is logged, not returned.
    pub(crate) fn put(&self, engine_key: &str, wasm_hash: &blake3::Hash, component: &Component, meta: &Meta) {
        let path = self.entry_path(engine_key, wasm_hash);
        if let Err(err) = write_entry(&path, component, meta) {
            tracing::warn!(path = %path.display(), %err, "cannot write compiled-cache entry");
        }
    }
}

fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache entry has no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.as_file().sync_all()?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}

fn write_entry(path: &Path, component: &Component, meta: &Meta) -> Result<(), Box<dyn std::error::Error>> {
    let code = component.serialize().map_err(|err| err.to_string())?;
    let body = serde_json::to_vec(&MetaFile {
        artifact_blake3: blake3::hash(&code).to_hex().to_string(),
        meta: meta.clone(),
    })?;
    write_atomically(path, &[&code])?;
    write_atomically(&path.with_extension("meta"), &[MAGIC, blake3::hash(&body).as_bytes(), &body])?;
    Ok(())
}

fn load_entry(engine: &Engine, artifact: &Path, meta_bytes: &[u8]) -> Result<(Component, Meta), String> {
    if meta_bytes.len() < HEADER || &meta_bytes[..MAGIC.len()] != MAGIC {
        return Err("metadata has no header".into());
    }
    let (header, body) = meta_bytes.split_at(HEADER);
    if blake3::hash(body).as_bytes() != &header[MAGIC.len()..] {
        return Err("metadata checksum mismatch".into());
    }
    let file: MetaFile = serde_json::from_slice(body).map_err(|err| format!("bad metadata: {err}"))?;
    let mapped = map_file(artifact)?;
    if blake3::hash(&mapped).to_hex().as_str() != file.artifact_blake3 {
        return Err("artifact checksum mismatch".into());
    }
    // SAFETY: the file is byte-for-byte what `Component::serialize` wrote (the
    // checksum above proves it; the directory is the operator's, so nobody swaps
    // it in between), and wasmtime itself rejects artifacts from another engine
    // configuration or version.
    let component = unsafe { Component::deserialize_file(engine, artifact) }
        .map_err(|err| format!("incompatible artifact: {err}"))?;
    Ok((component, file.meta))
}

/// Maps a file read-only: hashing from the page cache avoids copying it.
fn map_file(path: &Path) -> Result<memmap2::Mmap, String> {
    let file = std::fs::File::open(path).map_err(|err| format!("cannot open artifact: {err}"))?;
    // SAFETY: the mapping is read-only and only hashed; a concurrent writer could
    // only make the checksum fail.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|err| format!("cannot map artifact: {err}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta { command: false, specs: Vec::new() }
    }

    #[test]
    fn an_artifact_from_another_engine_is_rejected_and_deleted() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let ours = Engine::new(&config).unwrap();
        let foreign = Engine::default();
        let wasm = wat::parse_str("(component)").unwrap();
        let hash = blake3::hash(&wasm);
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::new(dir.path()).unwrap();
        let key = engine_key(&ours);
        assert_ne!(key, engine_key(&foreign), "the engines are not interchangeable");

        // Checksums are valid: only wasmtime's compatibility check can catch this.
        cache.put(&key, &hash, &Component::new(&foreign, &wasm).unwrap(), &meta());
        assert!(cache.entry_path(&key, &hash).exists());
        assert!(cache.get(&ours, &key, &hash).is_none(), "a foreign artifact is never loaded");
        assert!(!cache.entry_path(&key, &hash).exists(), "and it is deleted");

        cache.put(&key, &hash, &Component::new(&ours, &wasm).unwrap(), &meta());
        assert!(cache.get(&ours, &key, &hash).is_some(), "a genuine artifact loads");
    }

    #[test]
    fn edited_metadata_is_rejected() {
        let engine = Engine::default();
        let wasm = wat::parse_str("(component)").unwrap();
        let hash = blake3::hash(&wasm);
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::new(dir.path()).unwrap();
        let key = engine_key(&engine);
        cache.put(&key, &hash, &Component::new(&engine, &wasm).unwrap(), &meta());
        let meta_path = cache.entry_path(&key, &hash).with_extension("meta");
        let text = std::fs::read(&meta_path).unwrap();
        let edited = String::from_utf8_lossy(&text).replace("\"command\":false", "\"command\":true ");
        assert_ne!(edited.as_bytes(), &text[..], "the edit changed something");
        std::fs::write(&meta_path, edited.as_bytes()).unwrap();
        assert!(cache.get(&engine, &key, &hash).is_none());
    }
}
