//! The browser apps, embedded in the binary from the repository's `web/` folder
//! so that `cloudlaw` serves them from any working directory.
//!
//! `/terminal`, `/lawyer` and `/coordinator` are the three apps' pages; their
//! scripts, styles, translations and fonts are under `/web/...`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../web/"]
#[exclude = "*.md"]
struct Assets;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/terminal", get(|| async { page("terminal/index.html") }))
        .route("/lawyer", get(|| async { page("lawyer/index.html") }))
        .route("/coordinator", get(|| async { page("coordinator/index.html") }))
        .route("/web/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

/// An app's page. Pages are not cached, so a new release is picked up at once.
fn page(path: &str) -> Response {
    let mut response = asset(path);
    if response.status().is_success() {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

fn asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = (
        [
            (header::CONTENT_TYPE, mime.essence_str().to_owned()),
            (header::CACHE_CONTROL, "public, max-age=300".to_owned()),
        ],
        file.data,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if mime.type_() == mime_guess::mime::TEXT && mime.subtype() == mime_guess::mime::HTML {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                 connect-src 'self' ws: wss:; frame-ancestors 'none'",
            ),
        );
    }
    response
}
