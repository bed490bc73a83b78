//! The API's one error type, mapped to HTTP in one place.
//!
//! Every error body has the same shape, `{"error": {"code", "message"}}`, where
//! `code` is a stable machine-readable word and `message` is safe to show.
//! Internal causes are logged with the request's span and never sent.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is out of range.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("this enrollment code is unknown, used or expired")]
    InvalidEnrollmentCode,
    #[error("not allowed")]
    Forbidden,
    /// Not allowed, and why, with a specific code (`serves_elsewhere`).
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A conflict with a specific code (`slot_taken`, `no_lawyer_available`...).
    #[error("{message}")]
    Clash { code: &'static str, message: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("the server is not ready")]
    Unavailable,
    /// Another status, for answers made outside the handlers (see [`error_for_status`]).
    #[error("{message}")]
    Status { status: StatusCode, code: &'static str, message: &'static str },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code, message: message.into() }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidCredentials | ApiError::InvalidEnrollmentCode => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden | ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::Clash { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Status { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidEnrollmentCode => "invalid_code",
            ApiError::Forbidden => "forbidden",
            ApiError::Denied { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Clash { code, .. } => code,
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable => "unavailable",
            ApiError::Status { code, .. } => code,
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable word: `bad_request`, `malformed_json`, `invalid_field`, `invalid_query`, `unauthorized`,
    /// `invalid_credentials`, `invalid_code`, `forbidden`, `serves_elsewhere`, `unknown_reference`,
    /// `not_found`, `conflict`, `payload_too_large`, `rate_limited`, `unavailable`, `internal`,
    /// `method_not_allowed`, `unsupported_media_type`, `not_websocket`, and the specific
    /// codes an operation lists (`slot_taken`, `not_booked`, ...).
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence safe to show to the person.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status();
        let body = ErrorBody { error: ErrorDetail { code: self.code().into(), message: self.to_string() } };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_secs } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(error: crate::domain::Invalid) -> Self {
        ApiError::bad_request("invalid_field", error.0)
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(error: crate::auth::AuthError) -> Self {
        match error {
            crate::auth::AuthError::Unauthenticated => ApiError::Unauthorized,
            crate::auth::AuthError::Forbidden => ApiError::Forbidden,
            crate::auth::AuthError::Store(error) => error.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Reference(cause) => {
                tracing::info!(%cause, "refused: a reference to nothing");
                ApiError::bad_request("unknown_reference", "the request names something that does not exist")
            }
            StoreError::Constraint(cause) => {
                tracing::info!(%cause, "refused: a constraint");
                ApiError::bad_request("invalid_field", "a value is not allowed here")
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::password::HashError> for ApiError {
    fn from(error: crate::password::HashError) -> Self {
        match error {
            crate::password::HashError::Busy(_) => ApiError::Unavailable,
            crate::password::HashError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}

/// `axum::Json`, but a body that is not the expected JSON becomes an
/// [`ApiError`] with the usual error shape instead of axum's plain-text reply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    ApiError::bad_request("unsupported_media_type", "send the body as application/json")
                }
                JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", e.body_text()),
                JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_field", e.body_text()),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge
                }
                other => ApiError::bad_request("bad_request", other.body_text()),
            }),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string, parsed only when the handler asks for it ([`ApiQuery::parse`]),
/// after it has checked who is asking: a caller who may not use the endpoint
/// learns that (403), not what its parameters are. A bad query string is a
/// 400 `invalid_query` with the usual error shape, not axum's plain text.
#[derive(Debug)]
pub struct ApiQuery<T>(Result<T, ApiError>);

impl<T> ApiQuery<T> {
    pub fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let parsed = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| value)
            .map_err(|rejection| {
                let detail = rejection.body_text();
                let detail = detail.strip_prefix("Failed to deserialize query string: ").unwrap_or(&detail);
                ApiError::bad_request("invalid_query", format!("query string: {detail}"))
            });
        Ok(ApiQuery(parsed))
    }
}

/// What an error status means, for an answer that left the API without the
/// error shape (axum's own: a path that does not decode, a method the route
/// does not have).
pub fn error_for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::FORBIDDEN => ApiError::Forbidden,
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::Status {
            status,
            code: "method_not_allowed",
            message: "this method is not allowed here",
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::Status {
            status,
            code: "unsupported_media_type",
            message: "send the body as application/json",
        },
        status if status.is_server_error() => ApiError::Internal(format!("status {status} without a body")),
        status => ApiError::Status {
            status,
            code: "bad_request",
            message: "the request is not one this endpoint takes",
        },
    }
}
