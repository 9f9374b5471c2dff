//! The compiled cache: hits skip compilation and `describe`; bad entries are
//! detected and recompiled, never loaded.

use runtime::{Runtime, RuntimeConfig};

async fn load_noop(dir: &std::path::Path) -> (Runtime, std::sync::Arc<runtime::ToolComponent>) {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 16,
        cache_dir: Some(dir.to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let component = runtime.load_file(fixtures::component("noop")).await.expect("noop loads");
    (runtime, component)
}

fn entry_path(runtime: &Runtime) -> std::path::PathBuf {
    let bytes = fixtures::bytes(&fixtures::component("noop"));
    runtime.cache().unwrap().entry_path(runtime.engine_key(), &blake3::hash(&bytes))
}

#[tokio::test]
async fn a_hit_runs_no_guest_code() {
    let dir = tempfile::tempdir().unwrap();
    let (first, component) = load_noop(dir.path()).await;
    assert_eq!(first.instantiations(), 1, "a miss runs `describe` once");
    assert!(entry_path(&first).exists());

    let (second, cached) = load_noop(dir.path()).await;
    assert_eq!(second.instantiations(), 0, "a hit reads the cached specs");
    assert_eq!(cached.specs().collect::<Vec<_>>(), component.specs().collect::<Vec<_>>());
    let session = crate::session(&second, &[cached], Default::default());
    assert_eq!(session.call("noop", "{}").await.unwrap().content, "");
}

async fn assert_recovers_from(damage: impl Fn(&mut Vec<u8>)) {
    let dir = tempfile::tempdir().unwrap();
    let (runtime, _) = load_noop(dir.path()).await;
    let path = entry_path(&runtime);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    damage(&mut bad);
    std::fs::write(&path, &bad).unwrap();

    let (again, component) = load_noop(dir.path()).await;
    assert_eq!(again.instantiations(), 1, "the bad entry was not used: the component was recompiled and described");
    let session = crate::session(&again, &[component], Default::default());
    assert_eq!(session.call("noop", "{}").await.unwrap().content, "");
    assert_eq!(std::fs::read(&path).unwrap().len(), good.len(), "a fresh entry replaced the bad one");
}

#[tokio::test]
async fn a_flipped_byte_is_detected() {
    assert_recovers_from(|bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
    })
    .await;
}

#[tokio::test]
async fn a_truncated_entry_is_detected() {
    assert_recovers_from(|bytes| bytes.truncate(bytes.len() - 100)).await;
}

#[tokio::test]
async fn a_garbage_entry_is_detected() {
    assert_recovers_from(|bytes| *bytes = b"definitely not an artifact".to_vec()).await;
}

#[tokio::test]
async fn damaged_metadata_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (runtime, _) = load_noop(dir.path()).await;
    let meta = entry_path(&runtime).with_extension("meta");
    let mut bytes = std::fs::read(&meta).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&meta, &bytes).unwrap();
    let (again, _) = load_noop(dir.path()).await;
    assert_eq!(again.instantiations(), 1, "recompiled and described again");
}
