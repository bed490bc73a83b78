//! HTTP: the router, the state every handler shares, and the middleware stack.
//!
//! API routes are registered through [`utoipa_axum`]'s `routes!`, which takes
//! each handler's `#[utoipa::path]` as the single source for both the route and
//! its OpenAPI entry: the document at `/api/openapi.json` cannot drift from what
//! is served.

mod accounts;
mod appointments;
mod audit;
mod auth;
mod callbacks;
mod consultations;
mod error;
mod extract;
mod places;
mod referrals;
mod relays;
mod reports;
mod schedule;
pub mod server;
mod service;
mod system;
pub mod views;

pub use error::{ApiError, ApiJson, ApiQuery, ErrorBody};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::relay::Relays;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Limits;
use crate::auth::tokens::Tokens;
use crate::config::Config;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::store::Store;
use crate::ws::registry::Connections;

/// Largest request body the API accepts. Nothing the API takes is larger.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub relays: Relays,
    pub metrics: Arc<Metrics>,
    pub tokens: Tokens,
    pub limits: Arc<Limits>,
    pub connections: Arc<Connections>,
    pub scheduler: Arc<crate::schedule::Scheduler>,
    pub live: crate::live::Live,
    /// The hotline's dialer for callbacks, once its gateway runs.
    pub phone: Arc<std::sync::OnceLock<crate::phone::sip::Dialer>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cloud Law Office API",
        description = "Remote video legal consultations: residents at township terminals, volunteer lawyers, \
                       interpreters and coordinators. Errors share one shape, `ErrorBody`."
    ),
    tags(
        (name = "system", description = "Health, metrics and the WebSocket"),
        (name = "auth", description = "Signing in and out"),
        (name = "accounts", description = "Account management (coordinators, admins)"),
        (name = "regions", description = "Regions"),
        (name = "terminals", description = "Kiosks: registration, enrollment, revocation"),
        (name = "consultations", description = "Consultation records"),
        (name = "service records", description = "Volunteers' service records: figures, CSV, certificates and monthly reports (PDF)"),
        (name = "referrals", description = "Referrals to legal aid, mediation and other offices; the offices"),
        (name = "schedule", description = "Availability, aid teams, duty rosters, on duty and coverage"),
        (name = "appointments", description = "Booking later consultations; calendar feeds"),
        (name = "audit", description = "The audit log (admins)"),
        (name = "relays", description = "Relay nodes registering themselves"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Lists the error answers every operation of a kind can give, where its
/// `#[utoipa::path]` does not: 401 on every secured operation (no token, a bad
/// or expired one), 400 on every one that takes parameters or a body (they
/// may not parse), 413 on every one that takes a body (over [`MAX_BODY_BYTES`]).
/// Each in the one error shape. The document then lists every status an
/// operation can return; the API fuzzer in CI (`scripts/fuzz-api`) checks it.
struct ErrorResponses;

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.iter().flatten().any(|requirement| {
                    serde_json::to_value(requirement)
                        .is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                });
                let parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                if secured {
                    responses.entry("401".into()).or_insert_with(|| {
                        error("`unauthorized`: no token, or one that is expired, revoked or not for this server").into()
                    });
                }
                if parameters || body {
                    responses.entry("400".into()).or_insert_with(|| {
                        error("`invalid_query`, `invalid_field`, `malformed_json`, `unsupported_media_type`: input it cannot take").into()
                    });
                }
                if body {
                    responses
                        .entry("413".into())
                        .or_insert_with(|| error("`payload_too_large`: a body over 64 KiB").into());
                }
            }
        }
    }
}

/// Declares the `bearer` security scheme the endpoints refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// The API routes and their OpenAPI document, from one list.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::metrics))
        .routes(routes!(crate::ws::upgrade))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::read, accounts::update))
        .routes(routes!(accounts::set_password))
        .routes(routes!(reports::consultations))
        .routes(routes!(places::regions, places::create_region))
        .routes(routes!(places::region_terminals))
        .routes(routes!(places::create_terminal))
        .routes(routes!(places::enroll))
        .routes(routes!(places::new_code))
        .routes(routes!(places::revoke))
        .routes(routes!(consultations::list))
        .routes(routes!(consultations::read))
        .routes(routes!(consultations::write_record))
        .routes(routes!(callbacks::consultation))
        .routes(routes!(referrals::of_consultation, referrals::propose))
        .routes(routes!(referrals::offices, referrals::create_office))
        .routes(routes!(referrals::update_office))
        .routes(routes!(referrals::consent))
        .routes(routes!(referrals::status))
        .routes(routes!(referrals::list))
        .routes(routes!(referrals::summary))
        .routes(routes!(referrals::proposed))
        .routes(routes!(referrals::read))
        .routes(routes!(referrals::accept))
        .routes(routes!(referrals::assign))
        .routes(routes!(referrals::close))
        .routes(routes!(referrals::note))
        .routes(routes!(service::records))
        .routes(routes!(service::certificate))
        .routes(routes!(service::monthly_report))
        .routes(routes!(audit::recent))
        .routes(routes!(schedule::get_availability, schedule::put_availability))
        .routes(routes!(schedule::teams, schedule::create_team))
        .routes(routes!(schedule::update_team))
        .routes(routes!(schedule::rosters))
        .routes(routes!(schedule::create_roster))
        .routes(routes!(schedule::delete_roster))
        .routes(routes!(schedule::on_duty))
        .routes(routes!(schedule::coverage))
        .routes(routes!(appointments::slots))
        .routes(routes!(appointments::book, appointments::list))
        .routes(routes!(appointments::read))
        .routes(routes!(appointments::cancel))
        .routes(routes!(appointments::reschedule))
        .routes(routes!(appointments::no_show))
        .routes(routes!(callbacks::appointment))
        .routes(routes!(appointments::follow_up))
        .routes(routes!(appointments::create_feed, appointments::delete_feed))
        .routes(routes!(appointments::feed))
        .routes(routes!(relays::register))
        .split_for_parts();
    // After the routes: a modifier in `#[openapi]` would run on no paths yet.
    utoipa::Modify::modify(&ErrorResponses, &mut doc);
    (router, doc)
}

/// A file to download: `body` as `content_type`, saved as `filename` (which
/// the caller makes of ids, dates and fixed words only).
fn attachment(
    content_type: &'static str,
    filename: &str,
    body: impl axum::response::IntoResponse,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let disposition = format!("attachment; filename=\"{filename}\"");
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// A text cell of a CSV file, quoted. A text that begins like a formula (`=`,
/// `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so that a
/// spreadsheet opening the file shows it and runs nothing: names are typed by
/// people, and a name is not a formula.
fn csv_text(text: &str) -> String {
    let guard = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { "'" } else { "" };
    format!("\"{guard}{}\"", text.replace('"', "\"\""))
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
        .layer(middleware::from_fn(protective_headers))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let request_id =
                        request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The matched route, never the raw path or query: both can carry
                    // secrets (a calendar feed's token, a WebSocket token).
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map(MatchedPath::as_str)
                        .unwrap_or("unmatched");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        route = %route,
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

/// What a standby node serves (another node holds the serving lease):
/// `/healthz` says `standby`, everything else is 503 `standby` with
/// `Retry-After`, so a proxy in front sends clients to the active node and
/// the apps' reconnecting finds it.
pub fn standby_router(store: crate::store::Store) -> Router {
    let health = move || {
        let store = store.clone();
        async move {
            let database_ok = store.ping().await;
            let body = serde_json::json!({
                "status": "standby",
                "version": env!("CARGO_PKG_VERSION"),
                "database": {"backend": store.backend(), "ok": database_ok},
            });
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    };
    let refuse = || async {
        let body = serde_json::json!({"error": {
            "code": "standby",
            "message": "this node is on standby: another node serves; try again shortly",
        }});
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::RETRY_AFTER, "2")], Json(body))
    };
    Router::new().route("/healthz", get(health)).fallback(refuse)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Headers every answer carries: `nosniff` everywhere; `no-store` on the API
/// and the calendar feeds, whose answers carry tokens or personal data, so no
/// browser or proxy keeps a copy. And the API's errors all in one shape.
async fn protective_headers(request: Request, next: Next) -> Response {
    let private = {
        let path = request.uri().path();
        path.starts_with("/api/") || path.starts_with("/calendar/") || path == "/ws"
    };
    let mut response = next.run(request).await;
    if private && (response.status().is_client_error() || response.status().is_server_error()) {
        let json = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        if !json {
            // axum's own answers (a path that does not decode, a method the
            // route lacks) get the API's one error shape too.
            let allow = response.headers().get(axum::http::header::ALLOW).cloned();
            response = error::error_for_status(response.status()).into_response();
            if let Some(allow) = allow {
                response.headers_mut().insert(axum::http::header::ALLOW, allow);
            }
        }
    }
    let headers = response.headers_mut();
    headers
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    if private {
        headers.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    }
    response
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
