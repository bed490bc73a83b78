//! Signing in and out: login, refresh, logout, and who am I.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::{AccountView, TerminalView};
use super::{ApiError, ApiJson, AppState};
use crate::auth::Limiter;
use crate::auth::limiter::FailureLimiter;
use crate::auth::tokens::{TokenError, TokenKind};
use crate::auth::{ClientAddr, Principal};
use crate::ids::AccountId;
use crate::password;
use crate::store::{AuditEntry, RefreshUse};
use crate::unix_now;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "demo-lawyer")]
    pub username: String,
    #[schema(example = "demo-pass")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A signed-in session's tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Bearer token for the API and the WebSocket; short-lived.
    pub access_token: String,
    /// Single-use: exchange it at `/api/auth/refresh` for a new pair.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub account: AccountView,
}

/// The caller: an account or a terminal.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Me {
    Account {
        account: AccountView,
        /// Whether this server calls residents by phone (callbacks, appointments by phone).
        calls_back: bool,
    },
    Terminal {
        terminal: TerminalView,
    },
}

/// Signs in with a username and password.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 503, description = "`unavailable`: too many password checks at once; try again", body = super::ErrorBody), (status = 200, body = TokenResponse),
        (status = 401, description = "`invalid_credentials`", body = super::ErrorBody),
        (status = 429, description = "`rate_limited`: too many failures for this account or address", body = super::ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let username = request.username.trim().to_lowercase();
    // 1024 characters of at most 4 bytes: the longest password an account can have.
    if username.is_empty() || username.len() > 64 || request.password.len() > 4096 {
        return Err(ApiError::InvalidCredentials);
    }
    let account_key = format!("account:{username}");
    let address_key = format!("address:{source}");
    let limits = &state.limits;
    let now = Instant::now();
    // Count the attempt against both keys before checking anything.
    let mut counted = Vec::new();
    for (limiter, key) in
        [(&limits.logins_per_account, &account_key), (&limits.failures_per_address, &address_key)]
    {
        if let Err(blocked) = limiter.attempt(key, now) {
            for (limiter, key) in counted {
                FailureLimiter::succeeded(limiter, key);
            }
            if blocked.first {
                state
                    .audit(
                        "anonymous",
                        "login.rate_limited",
                        &username,
                        serde_json::json!({"key": key}),
                        &source,
                    )
                    .await?;
            }
            return Err(ApiError::TooManyRequests { retry_after_secs: blocked.retry_after_secs });
        }
        counted.push((limiter, key));
    }

    let credentials = state.store.credentials(&username).await?;
    let (hash, known) = match &credentials {
        Some(c) => (c.password_hash.clone(), true),
        None => (password::MATCHES_NOTHING.to_owned(), false),
    };
    let matches =
        password::verify_blocking(request.password, hash).await.map_err(|_| ApiError::Unavailable)? && known;
    let credentials = match credentials {
        Some(c) if matches && c.active => c,
        _ => {
            limits.failed(Limiter::Account, &account_key);
            limits.failed(Limiter::Address, &address_key);
            state.audit("anonymous", "login.failed", &username, serde_json::Value::Null, &source).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    limits.clear(Limiter::Account, &account_key);
    limits.failures_per_address.succeeded(&address_key);

    let issued_at = unix_now();
    let session_id = state
        .store
        .create_session(
            &credentials.id,
            issued_at,
            issued_at + state.tokens.config().session_ttl_secs as i64,
            &source,
            &AuditEntry::new(
                &format!("account:{}", credentials.id),
                "login",
                "",
                serde_json::Value::Null,
                &source,
            ),
        )
        .await?;
    Ok(ApiJson(token_pair(&state, &credentials.id, &session_id).await?))
}

/// Issues an access token and a fresh refresh token for a live session.
async fn token_pair(
    state: &AppState,
    account_id: &AccountId,
    session_id: &str,
) -> Result<TokenResponse, ApiError> {
    let config = state.tokens.config();
    let session = state.store.session_state(session_id).await?.ok_or(ApiError::Unauthorized)?;
    let now = unix_now();
    let refresh_ttl = (session.expires_at - now).max(0) as u64;
    if refresh_ttl == 0 {
        return Err(ApiError::Unauthorized);
    }
    let (access_token, _) = state.tokens.issue(
        TokenKind::Access,
        account_id,
        session_id,
        Duration::from_secs(config.access_ttl_secs),
        None,
    );
    let (refresh_token, refresh) = state.tokens.issue(
        TokenKind::Refresh,
        account_id,
        session_id,
        Duration::from_secs(refresh_ttl),
        None,
    );
    state.store.insert_refresh_token(&refresh.jti, session_id, now, refresh.exp).await?;
    let account = state.store.account(account_id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: config.access_ttl_secs,
        account: AccountView::from(&account),
    })
}

/// Exchanges a refresh token for a new pair. Each refresh token works once:
/// presenting one again revokes the whole session, since it must have been copied.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = super::ErrorBody))
)]
pub async fn refresh(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let claims =
        state.tokens.verify(&request.refresh_token, TokenKind::Refresh).await.map_err(|e: TokenError| {
            tracing::debug!(error = %e, "refresh token refused");
            ApiError::Unauthorized
        })?;
    let now = unix_now();
    match state.store.use_refresh_token(&claims.jti, now).await? {
        RefreshUse::Fresh { session_id } if session_id == claims.sid => {
            let session = state.store.session_state(&session_id).await?.ok_or(ApiError::Unauthorized)?;
            if !session.is_live(now) || session.account_id != claims.sub {
                return Err(ApiError::Unauthorized);
            }
            Ok(ApiJson(token_pair(&state, &AccountId::from(claims.sub.as_str()), &session_id).await?))
        }
        RefreshUse::Reused { session_id } => {
            let actor = format!("account:{}", claims.sub);
            let audit = AuditEntry::new(
                &actor,
                "session.revoked_refresh_reuse",
                &session_id,
                serde_json::Value::Null,
                &source,
            );
            state.store.revoke_session(&session_id, now, "refresh token reused", &audit).await?;
            state.connections.close_session(&session_id, "session revoked");
            Err(ApiError::Unauthorized)
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// Ends the caller's session: its tokens stop working and its WebSocket
/// connections close.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 403, description = "a terminal has no session to end", body = super::ErrorBody), (status = 204), (status = 401, body = super::ErrorBody))
)]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    let Principal::Account { session_id, .. } = &principal else { return Err(ApiError::Forbidden) };
    let audit = AuditEntry::new(&principal.actor(), "logout", session_id, serde_json::Value::Null, &source);
    state.store.revoke_session(session_id, unix_now(), "logout", &audit).await?;
    state.connections.close_session(session_id, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: an account with its roles, or a terminal.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = super::ErrorBody))
)]
pub async fn me(State(state): State<AppState>, principal: Principal) -> ApiJson<Me> {
    ApiJson(match &principal {
        Principal::Account { account, .. } => Me::Account {
            account: AccountView::from(account),
            calls_back: state.phone.get().is_some() && state.config.phone.calls_back(),
        },
        Principal::Terminal { terminal } => Me::Terminal { terminal: TerminalView::from(terminal) },
    })
}

impl AppState {
    /// Appends to the audit log. Fails closed: if the trace cannot be written,
    /// the action it records does not happen.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
        source: &str,
    ) -> Result<(), ApiError> {
        self.store.append_audit(&AuditEntry::new(actor, action, subject, detail, source)).await?;
        Ok(())
    }

    /// A refusal (403), audited first as `action` on `subject`, so that
    /// whoever tried what they may not do leaves a trace.
    pub async fn refuse(&self, principal: &Principal, action: &str, subject: &str, source: &str) -> ApiError {
        let detail = serde_json::json!({"status": 403});
        match self.audit(&principal.actor(), action, subject, detail, source).await {
            Ok(()) => ApiError::Forbidden,
            Err(error) => error,
        }
    }

    /// Passes `result` on; a refusal (403) is audited first ([`Self::refuse`]).
    pub async fn audit_refusal<T, E: Into<ApiError>>(
        &self,
        principal: &Principal,
        action: &str,
        subject: &str,
        source: &str,
        result: Result<T, E>,
    ) -> Result<T, ApiError> {
        match result.map_err(Into::into) {
            Err(ApiError::Forbidden | ApiError::Denied { .. }) => {
                Err(self.refuse(principal, action, subject, source).await)
            }
            other => other,
        }
    }
}
