//! Time travel over HTTP: a session's checkpoints, and its files as they were at
//! any of them.
//!
//! `GET /v1/sessions/{id}/files/{path}?at=STEP` answers a file with its raw bytes
//! (`application/octet-stream`) and a directory with a JSON [`DirListing`]; the
//! `Content-Type` tells them apart. The filesystem is restored lazily from the
//! store, so reading one file loads only the directories on its path and its chunks.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use runtime::vfs::{FsError, NodeKind, Quota};
use serde::Deserialize;

use super::ServerState;
use super::api::{CheckpointInfo, DirEntryInfo, DirListing};
use super::auth::AuthUser;
use super::error::{ApiError, ApiPath, ApiQuery, blocking};
use super::sessions::resolve;

/// The header naming the checkpoint a file was read at.
const STEP_HEADER: HeaderName = HeaderName::from_static("x-harness-step");

/// `?at=STEP`: the checkpoint to read at; the latest if absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct At {
    at: Option<u64>,
}

/// `GET /v1/sessions/{id}/checkpoints`: the kept checkpoints, oldest first.
pub(super) async fn checkpoints(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<CheckpointInfo>>, ApiError> {
    let session = resolve(&state, &user, &id).await?;
    let store = state.inner.store.clone();
    let checkpoints = blocking(move || Ok(store.checkpoints(&session.id)?)).await?;
    Ok(Json(checkpoints.iter().map(CheckpointInfo::of).collect()))
}

/// `GET /v1/sessions/{id}/files`: the workspace root's listing.
pub(super) async fn root(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(at): ApiQuery<At>,
) -> Result<Response, ApiError> {
    read(state, user, id, String::new(), at).await
}

/// `GET /v1/sessions/{id}/files/{*path}`: a file's bytes or a directory's listing.
pub(super) async fn path(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath((id, path)): ApiPath<(String, String)>,
    ApiQuery(at): ApiQuery<At>,
) -> Result<Response, ApiError> {
    read(state, user, id, path, at).await
}

/// What a path is at a checkpoint.
enum Found {
    File(Vec<u8>),
    Dir(DirListing),
}

async fn read(state: ServerState, user: AuthUser, id: String, path: String, at: At) -> Result<Response, ApiError> {
    let session = resolve(&state, &user, &id).await?;
    let step = at.at.unwrap_or(session.head.last_step);
    let store = state.inner.store.clone();
    let found = blocking(move || {
        // Reading never grows the filesystem, so the quota is only the restore's bound.
        let mut vfs = store.restore(&session.id, step, Quota::default())?;
        let root = vfs.root();
        let not_found = |err: FsError| fs_error(&path, step, err);
        let node = if path.is_empty() { root } else { vfs.lookup(root, &path).map_err(not_found)? };
        match vfs.kind(node).map_err(not_found)? {
            NodeKind::File => {
                let size = vfs.stat(node).map_err(not_found)?.size;
                let len = usize::try_from(size).map_err(ApiError::internal)?;
                Ok(Found::File(vfs.read(node, 0, len).map_err(not_found)?))
            }
            NodeKind::Dir => {
                let mut entries = Vec::new();
                for entry in vfs.read_dir(node).map_err(not_found)? {
                    let stat = vfs.stat_at(node, &entry.name).map_err(not_found)?;
                    let kind = match entry.kind {
                        NodeKind::File => "file",
                        NodeKind::Dir => "dir",
                    };
                    entries.push(DirEntryInfo { name: entry.name, kind: kind.to_owned(), size: stat.size });
                }
                Ok(Found::Dir(DirListing { path: path.clone(), step, entries }))
            }
        }
    })
    .await?;
    let step_value = step.to_string();
    Ok(match found {
        Found::File(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream"), (STEP_HEADER, step_value.as_str())], bytes)
                .into_response()
        }
        Found::Dir(listing) => ([(STEP_HEADER, step_value.as_str())], Json(listing)).into_response(),
    })
}

/// A filesystem error on a client's path: 404 for what isn't there, 400 for a
/// path that can't name anything in a workspace.
fn fs_error(path: &str, step: u64, err: FsError) -> ApiError {
    match err {
        FsError::NotFound | FsError::NotDirectory => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no file or directory `{path}` at step {step}"))
        }
        FsError::NotPermitted | FsError::Invalid | FsError::NameTooLong => {
            ApiError::bad_request(format!("path `{path}`: {err}"))
        }
        _ => ApiError::internal(format!("reading `{path}` at step {step}: {err}")),
    }
}
