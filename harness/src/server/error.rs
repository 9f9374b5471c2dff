//! The one error type of the API, and extractors whose rejections use it.
//!
//! Every error answers with a status and a JSON body `{"error": "message"}` that
//! says what was wrong. axum's own extractors answer rejections in plain text, so
//! the handlers use [`ApiJson`], [`ApiPath`] and [`ApiQuery`], which keep axum's
//! status and message but wrap them in that body. Internal failures are logged in
//! full and answered with a short message, so no file path or database detail
//! reaches a client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::agent::AgentError;
use crate::store::{SessionId, StoreError, UserError};

/// An error answer: a status and a message for the client.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the client.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 404 for a session that doesn't exist or isn't the caller's: the same answer
    /// for both, so a session's existence doesn't leak to other users.
    pub fn session_not_found(id: &SessionId) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("session {id} not found"))
    }

    /// 409: the request conflicts with the session's state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 500, logging `detail` and telling the client only that it happened.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error; the server log has the details")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match &err {
            StoreError::SessionNotFound(id) => ApiError::session_not_found(id),
            StoreError::CheckpointNotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, err.to_string()),
            StoreError::HasForks { .. } => ApiError::conflict(err.to_string()),
            _ => ApiError::internal(err),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(err: AgentError) -> ApiError {
        match err {
            AgentError::Store(err) => err.into(),
            AgentError::Busy(id) => {
                ApiError::conflict(format!("session {id} has a run in progress; wait for it to end or cancel it"))
            }
            AgentError::InvalidSettings(message) => ApiError::bad_request(message),
            AgentError::Filesystem { .. } => ApiError::internal(err),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(err: UserError) -> ApiError {
        match err {
            UserError::InvalidName { .. } => ApiError::bad_request(err.to_string()),
            UserError::Exists(_) => ApiError::conflict(err.to_string()),
            UserError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, err.to_string()),
            UserError::Random(_) | UserError::Store(_) => ApiError::internal(err),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON with `Content-Type: application/json`".to_owned()
            }
            _ => rejection.body_text(),
        };
        ApiError::new(rejection.status(), message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

/// A JSON body, rejected with an [`ApiError`]: 400 for a syntax error, 415 without
/// a JSON content type, 413 past the body limit, 422 for wrong types or unknown fields.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Path parameters, rejected with an [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// Query parameters, rejected with an [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// Parses a session id from a path, answering 400 with what is wrong.
pub(super) fn parse_session_id(text: &str) -> Result<SessionId, ApiError> {
    text.parse().map_err(|err: crate::store::ParseSessionIdError| ApiError::bad_request(err.to_string()))
}

/// Runs blocking store work on the blocking pool (redb is synchronous).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)?
}
