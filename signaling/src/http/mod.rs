//! HTTP: the router, the state every handler shares, and the middleware stack.
//!
//! API routes are registered through [`utoipa_axum`]'s `routes!`, which takes
//! each handler's `#[utoipa::path]` as the single source for both the route and
//! its OpenAPI entry: the document at `/api/openapi.json` cannot drift from what
//! is served.

mod error;
mod system;

pub use error::{ApiError, ApiJson, ErrorBody};

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use media_relay::Relay;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::store::Store;

/// Largest request body the API accepts. Nothing the API takes is larger.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub relay: Relay,
    pub metrics: Arc<Metrics>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cloud Law Office API",
        description = "Remote video legal consultations: residents at township terminals, volunteer lawyers, \
                       interpreters and coordinators. Errors share one shape, `ErrorBody`."
    ),
    tags((name = "system", description = "Health and metrics")),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The API routes and their OpenAPI document, from one list.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::metrics))
        .routes(routes!(crate::ws::upgrade))
        .split_for_parts()
}

/// The OpenAPI document as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The whole application: API, WebSocket, web apps and middleware.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(doc);
    let served_doc = move || {
        let doc = Arc::clone(&doc);
        async move { Json(doc.as_ref().clone()) }
    };
    Router::new()
        .merge(api)
        .route("/api/openapi.json", get(served_doc))
        .merge(crate::web::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let request_id =
                        request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings may carry tokens (calendar feeds).
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::Internal("a handler panicked".into()).into_response()
                })),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn track_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let elapsed: Duration = started.elapsed();
    let status = response.status();
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels { method: method.clone(), route: route.clone(), status: status.as_u16() })
        .inc();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        state
            .metrics
            .http_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }
    response
}
