//! Admin endpoints, behind the admin token: users, and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::ServerState;
use super::api::{CreatedUser, NewUser, UserInfo};
use super::auth::Admin;
use super::error::{ApiError, ApiJson, ApiPath, blocking};

/// `POST /admin/users`: adds a user and answers their token, shown this once.
pub(super) async fn add_user(
    State(state): State<ServerState>,
    _admin: Admin,
    ApiJson(request): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    let store = state.inner.store.clone();
    let name = request.name.clone();
    let token = blocking(move || Ok(store.add_user(&name)?)).await?;
    tracing::info!(user = %request.name, "user added");
    Ok((StatusCode::CREATED, Json(CreatedUser { name: request.name, token })))
}

/// `GET /admin/users`: every user, by name.
pub(super) async fn list_users(
    State(state): State<ServerState>,
    _admin: Admin,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    let store = state.inner.store.clone();
    let users = blocking(move || Ok(store.users()?)).await?;
    Ok(Json(users.iter().map(UserInfo::of).collect()))
}

/// `DELETE /admin/users/{name}`: removes a user; their token stops working at once.
pub(super) async fn remove_user(
    State(state): State<ServerState>,
    _admin: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.inner.store.clone();
    let removed = name.clone();
    blocking(move || Ok(store.remove_user(&removed)?)).await?;
    tracing::info!(user = %name, "user removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /metrics`: the Prometheus text format.
pub(super) async fn metrics(State(state): State<ServerState>, _admin: Admin) -> impl IntoResponse {
    let body = state.inner.metrics.render(state.inner.runs.active());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
