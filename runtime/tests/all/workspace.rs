//! The session filesystem as tools see it: mounted at /workspace, private to
//! the session, read-only for read-only tools, bounded by quotas.

use runtime::vfs::{Quota, Vfs};
use runtime::{DEFAULT_MOUNT, Limits, Workspace};

use crate::{hostile_session, session};

async fn call(session: &runtime::Session, tool: &str, input: serde_json::Value) -> String {
    session.call(tool, &input.to_string()).await.unwrap_or_else(|err| panic!("{tool}: {err}")).content
}

#[tokio::test]
async fn files_persist_across_calls_of_one_session() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let path = "/workspace/notes/ünïcode.txt";
    assert_eq!(call(&session, "fs_write", serde_json::json!({"path": path, "text": "x"})).await, "err NotFound 44");
    {
        let mut vfs = session.workspace().lock();
        let root = vfs.root();
        vfs.create_dir_at(root, "notes").expect("the host can prepare the workspace");
    }
    assert_eq!(call(&session, "fs_write", serde_json::json!({"path": path, "text": "kept"})).await, "ok");
    assert_eq!(call(&session, "fs_read", serde_json::json!({"path": path})).await, "ok kept");
    assert_eq!(call(&session, "fs_list", serde_json::json!({"path": "/workspace/notes"})).await, "ok ünïcode.txt");
}

#[tokio::test]
async fn sessions_do_not_see_each_other() {
    let (runtime, first) = hostile_session(Limits::default()).await;
    let second = session(&runtime, first.toolbox().components(), Limits::default());
    assert_eq!(call(&first, "fs_write", serde_json::json!({"path": "/workspace/secret", "text": "mine"})).await, "ok");
    assert_eq!(call(&second, "fs_read", serde_json::json!({"path": "/workspace/secret"})).await, "err NotFound 44");
    assert_eq!(call(&second, "fs_list", serde_json::json!({"path": "/workspace"})).await, "ok ");
}

#[tokio::test]
async fn read_only_tools_get_a_read_only_mount() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    assert_eq!(call(&session, "fs_write", serde_json::json!({"path": "/workspace/a", "text": "1"})).await, "ok");
    let refused = call(&session, "fs_write_read_only", serde_json::json!({"path": "/workspace/a", "text": "2"})).await;
    assert_eq!(refused, "err ReadOnlyFilesystem 69", "EROFS, not a host failure");
    let created = call(&session, "fs_write_read_only", serde_json::json!({"path": "/workspace/b", "text": "2"})).await;
    assert_eq!(created, "err ReadOnlyFilesystem 69");
    assert_eq!(call(&session, "fs_read", serde_json::json!({"path": "/workspace/a"})).await, "ok 1", "unchanged");
}

#[tokio::test]
async fn no_path_leads_out_of_the_workspace() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    for path in ["/workspace/../etc/passwd", "/workspace/a/../../etc", "/etc/passwd", "/", "../x", "/proc/self/environ"]
    {
        let read = call(&session, "fs_read", serde_json::json!({"path": path})).await;
        assert!(read.starts_with("err "), "{path}: {read}");
        let write = call(&session, "fs_write", serde_json::json!({"path": path, "text": "x"})).await;
        assert!(write.starts_with("err "), "{path}: {write}");
    }
    assert_eq!(
        call(&session, "fs_read", serde_json::json!({"path": "/workspace/../workspace/../x"})).await,
        "err PermissionDenied 63"
    );
}

#[tokio::test]
async fn quotas_answer_with_filesystem_errors() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let quota = Quota { max_bytes: 1 << 20, max_file_size: 512 << 10, ..Quota::default() };
    let quota = Quota { max_files: 20, ..quota };
    let session = session.with_workspace(Workspace::new(Vfs::new(quota), DEFAULT_MOUNT));
    // Calls that return a filesystem error code directly carry the precise code.
    assert_eq!(call(&session, "fs_set_len", serde_json::json!({"n": 600 << 10})).await, "err FileTooLarge 22");
    assert_eq!(call(&session, "fs_many", serde_json::json!({"n": 50})).await, "err StorageFull 51", "ENOSPC");
    assert_eq!(session.workspace().lock().usage().files, 20, "files up to the quota were created, no more");
    // Streamed writes fail too; wasi-libc reports any stream failure as EIO.
    let session = session.with_workspace(Workspace::new(Vfs::new(quota), DEFAULT_MOUNT));
    let too_big = call(&session, "fs_fill", serde_json::json!({"n": 600 << 10})).await;
    assert_eq!(too_big, "err Uncategorized 29");
    assert_eq!(session.workspace().lock().usage().bytes, 512 << 10, "the file stopped at the size limit");
    let fits = call(&session, "fs_fill", serde_json::json!({"n": 256 << 10})).await;
    assert_eq!(fits, format!("ok {}", 256 << 10), "the session carries on");
    assert_eq!(session.workspace().lock().usage().bytes, 256 << 10);
}

#[tokio::test]
async fn links_are_refused() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    assert_eq!(call(&session, "fs_write", serde_json::json!({"path": "/workspace/a", "text": "1"})).await, "ok");
    let out = call(&session, "fs_link", serde_json::json!({"path": "/workspace/a"})).await;
    assert_eq!(out, "hard: err Unsupported 58; symlink: err Unsupported 58");
}

#[tokio::test]
async fn the_mount_point_is_configurable() {
    let (_runtime, session) = hostile_session(Limits::default()).await;
    let session = session.with_workspace(Workspace::new(Vfs::new(Quota::default()), "/data"));
    assert_eq!(call(&session, "fs_write", serde_json::json!({"path": "/data/x", "text": "here"})).await, "ok");
    assert_eq!(call(&session, "fs_read", serde_json::json!({"path": "/workspace/x"})).await, "err NotFound 44");
    assert_eq!(call(&session, "fs_list", serde_json::json!({"path": "/data"})).await, "ok x");
}
