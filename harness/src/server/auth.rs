//! Bearer-token authentication, as extractors that handlers take first, so a
//! request without valid credentials is refused before anything else is looked at.
//!
//! Users present the token `Store::add_user` gave them; the admin presents the
//! token whose hash is in [`super::ServerConfig::admin_token_hash`]. The two never
//! overlap: an admin token is not a user, and a user token is refused by the admin
//! endpoints with 403 (it is valid, just not allowed there).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::ServerState;
use super::error::{ApiError, blocking};

/// The authenticated user making a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUser(pub String);

/// A request authenticated with the admin token.
#[derive(Clone, Copy, Debug)]
pub struct Admin;

/// The bearer token of a request, or why there is none.
fn bearer(parts: &Parts) -> Result<String, ApiError> {
    let missing = || ApiError::unauthorized("missing bearer token: send `Authorization: Bearer <token>`");
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token.to_owned())
}

/// Looks a token up in the user table.
async fn user_of(state: &ServerState, token: String) -> Result<Option<String>, ApiError> {
    let store = state.inner.store.clone();
    blocking(move || Ok(store.user_by_token(&token)?)).await
}

impl FromRequestParts<ServerState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let name = user_of(state, token).await?.ok_or_else(|| ApiError::unauthorized("invalid or revoked token"))?;
        tracing::Span::current().record("user", name.as_str());
        Ok(AuthUser(name))
    }
}

impl FromRequestParts<ServerState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ServerState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if let Some(hash) = &state.inner.config.admin_token_hash
            && hash.matches(&token)
        {
            tracing::Span::current().record("user", "admin");
            return Ok(Admin);
        }
        let forbidden = match &state.inner.config.admin_token_hash {
            None => "the admin API is disabled on this server (no admin token is configured)",
            Some(_) => "this endpoint needs the admin token; a user token is not enough",
        };
        // A user's token is valid but not enough (403); anything else is no credential (401).
        match user_of(state, token).await? {
            Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, forbidden)),
            None if state.inner.config.admin_token_hash.is_none() => {
                Err(ApiError::new(StatusCode::FORBIDDEN, forbidden))
            }
            None => Err(ApiError::unauthorized("invalid admin token")),
        }
    }
}
