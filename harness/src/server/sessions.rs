//! Session endpoints: create, list, show, delete, fork, post a message, cancel.
//!
//! Every handler first authenticates ([`AuthUser`]), then resolves the session with
//! [`owned`], which answers another user's session exactly like a missing one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use runtime::vfs::{FsError, OpenOptions, Quota, Snapshot, Vfs};

use super::ServerState;
use super::api::{CancelAnswer, CreateSession, ForkRequest, MessageAccepted, PostMessage, SessionInfo};
use super::auth::AuthUser;
use super::error::{ApiError, ApiJson, ApiPath, blocking, parse_session_id};
use super::runs::RunKind;
use crate::agent::AgentError;
use crate::store::{Session, SessionId, Store, StoreError};

/// The session `id` if it exists and belongs to `user`; 404 otherwise, the same
/// answer either way.
pub(super) fn owned(store: &Store, user: &str, id: &SessionId) -> Result<Session, ApiError> {
    match store.session(id) {
        Ok(session) if session.owner == user => Ok(session),
        Ok(_) | Err(StoreError::SessionNotFound(_)) => Err(ApiError::session_not_found(id)),
        Err(err) => Err(err.into()),
    }
}

/// Authenticates, parses the id and checks ownership, off the async threads.
pub(super) async fn resolve(state: &ServerState, user: &AuthUser, id: &str) -> Result<Session, ApiError> {
    let id = parse_session_id(id)?;
    let (store, user) = (state.inner.store.clone(), user.0.clone());
    blocking(move || owned(&store, &user, &id)).await
}

/// `POST /v1/sessions`: a new idle session, with initial files if given. The files
/// are written into a filesystem in memory first and the session is created in one
/// transaction, so a refused request leaves nothing behind.
pub(super) async fn create(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiJson(request): ApiJson<CreateSession>,
) -> Result<(StatusCode, Json<SessionInfo>), ApiError> {
    let quota = state.inner.config.quota;
    let agent = state.inner.agent.clone();
    let store = state.inner.store.clone();
    let session = blocking(move || {
        let snapshot = initial_files(&request, quota)?;
        let id = agent.create_session(&user.0, request.options(), snapshot.as_ref())?;
        Ok(store.session(&id)?)
    })
    .await?;
    tracing::info!(session = %session.id, "session created");
    Ok((StatusCode::CREATED, Json(SessionInfo::of(&session, false))))
}

/// The initial workspace holding `request.files`, or `None` for an empty one.
fn initial_files(request: &CreateSession, quota: Quota) -> Result<Option<Snapshot>, ApiError> {
    if request.files.is_empty() {
        return Ok(None);
    }
    let mut vfs = Vfs::new(quota);
    let root = vfs.root();
    for (path, content) in &request.files {
        let refuse = |err: FsError| file_error(path, err);
        if path.is_empty() || path.starts_with('/') || path.ends_with('/') {
            return Err(ApiError::bad_request(format!(
                "file path `{path}` must be relative, like `src/main.rs`, and name a file"
            )));
        }
        let mut parent = String::new();
        for part in path.split('/').take(path.split('/').count() - 1) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            match vfs.create_dir_at(root, &parent) {
                Ok(_) | Err(FsError::Exists) => {}
                Err(err) => return Err(refuse(err)),
            }
        }
        let options = OpenOptions { create: true, truncate: true, ..OpenOptions::default() };
        let node = vfs.open_at(root, path, options).map_err(refuse)?;
        vfs.write(node, 0, content.as_bytes()).map_err(refuse)?;
    }
    vfs.snapshot().map(Some).map_err(ApiError::internal)
}

/// Says which initial file was refused and why.
fn file_error(path: &str, err: FsError) -> ApiError {
    let status = match err {
        FsError::InsufficientSpace | FsError::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FsError::Io(_) => return ApiError::internal(err),
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, format!("file `{path}`: {err}"))
}

/// `GET /v1/sessions`: the caller's sessions, oldest first.
pub(super) async fn list(State(state): State<ServerState>, user: AuthUser) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let store = state.inner.store.clone();
    let sessions = blocking(move || Ok(store.list_sessions(Some(&user.0))?)).await?;
    let runs = &state.inner.runs;
    Ok(Json(sessions.iter().map(|session| SessionInfo::of(session, runs.is_running(&session.id))).collect()))
}

/// `GET /v1/sessions/{id}`: status, head and usage.
pub(super) async fn show(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionInfo>, ApiError> {
    let session = resolve(&state, &user, &id).await?;
    Ok(Json(SessionInfo::of(&session, state.inner.runs.is_running(&session.id))))
}

/// `DELETE /v1/sessions/{id}`: 204; 409 while it runs or has forks.
pub(super) async fn delete(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let session = resolve(&state, &user, &id).await?;
    let _deleting = state.inner.runs.begin_delete(session.id)?;
    let store = state.inner.store.clone();
    blocking(move || Ok(store.delete_session(&session.id)?)).await?;
    tracing::info!(session = %session.id, "session deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/fork`: a new idle session of the caller's, starting from
/// a checkpoint (the latest if `at` is absent).
pub(super) async fn fork(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<ForkRequest>,
) -> Result<(StatusCode, Json<SessionInfo>), ApiError> {
    let session = resolve(&state, &user, &id).await?;
    let step = request.at.unwrap_or(session.head.last_step);
    let store = state.inner.store.clone();
    let fork = blocking(move || Ok(store.fork(&session.id, step, &user.0)?)).await?;
    tracing::info!(session = %fork.id, parent = %id, step, "session forked");
    Ok((StatusCode::CREATED, Json(SessionInfo::of(&fork, false))))
}

/// `POST /v1/sessions/{id}/messages`: commits the message and runs in the
/// background; answers 202 once the message is committed, 409 while a run is in progress.
pub(super) async fn post_message(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<PostMessage>,
) -> Result<(StatusCode, Json<MessageAccepted>), ApiError> {
    if request.text.trim().is_empty() {
        return Err(ApiError::bad_request("`text` must not be empty"));
    }
    let session = resolve(&state, &user, &id).await?;
    let accepted = state.spawn_run(session.id, RunKind::Message(request.text))?;
    match accepted.await {
        Ok(Ok(seq)) => Ok((StatusCode::ACCEPTED, Json(MessageAccepted { session: session.id, seq }))),
        // Deleted between the check and the commit: as missing as ever.
        Ok(Err(AgentError::Store(StoreError::SessionNotFound(_)))) => Err(ApiError::session_not_found(&session.id)),
        Ok(Err(err)) => Err(err.into()),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the run was stopped before the message was committed (the server is shutting down); send it again",
        )),
    }
}

/// `POST /v1/sessions/{id}/cancel`: cancels the run in progress, if any.
pub(super) async fn cancel(
    State(state): State<ServerState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CancelAnswer>, ApiError> {
    let session = resolve(&state, &user, &id).await?;
    let cancelled = state.inner.runs.cancel(&session.id);
    if cancelled {
        tracing::info!(session = %session.id, "run cancelled");
    }
    Ok(Json(CancelAnswer { cancelled }))
}
