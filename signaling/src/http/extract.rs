//! What a handler takes from the request besides its body: the authenticated
//! caller ([`Principal`], 401 without one) and the client's address
//! ([`ClientAddr`]). The rules are `auth`'s; this is only how HTTP reads them.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::{ClientAddr, Principal, authenticate, bearer, client_ip};

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        Ok(authenticate(&state.tokens, &state.store, token).await?)
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else {
            return Ok(ClientAddr("unknown".into()));
        };
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        Ok(ClientAddr(client_ip(peer, forwarded, &state.config.trusted_proxies).to_string()))
    }
}
