//! The browser apps, embedded in the binary from the repository's `web/` folder
//! so that `cloudlaw` serves them from any working directory.
//!
//! `/terminal`, `/lawyer` and `/coordinator` are the three apps' pages; their
//! scripts, styles and translations are under `/web/...`.
//!
//! The Tibetan webfont is not in the repository: it is Noto Serif Tibetan from
//! the operating system's font package (Debian: `fonts-noto-core`), read from
//! `web.font_dir` and served as `/web/fonts/tibetan-{regular,bold}.ttf`, so a
//! kiosk without a Tibetan system font still renders stacked letters.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../web/"]
#[exclude = "*.md"]
// The type checker's settings (scripts/test), not part of any app.
#[exclude = "jsconfig.json"]
struct Assets;

/// Where the served fonts come from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The directory holding `NotoSerifTibetan-Regular.ttf` and
    /// `NotoSerifTibetan-Bold.ttf` (Debian's `fonts-noto-core` puts them here).
    pub font_dir: PathBuf,
    /// The Chinese font (or collection) the server's PDF documents are set in,
    /// beside `font_dir`'s Tibetan (Debian's `fonts-noto-cjk` puts it here).
    pub cjk_font: PathBuf,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            font_dir: PathBuf::from("/usr/share/fonts/truetype/noto"),
            cjk_font: PathBuf::from("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
        }
    }
}

/// The fonts served under `/web/fonts/`: the served name and the file's name.
const FONTS: [(&str, &str); 2] = [
    ("tibetan-regular.ttf", "NotoSerifTibetan-Regular.ttf"),
    ("tibetan-bold.ttf", "NotoSerifTibetan-Bold.ttf"),
];

impl WebConfig {
    /// The fonts of PDF documents: Noto Serif Tibetan from `font_dir`, and `cjk_font`.
    pub fn pdf_fonts(&self) -> Result<crate::pdf::Fonts, crate::pdf::PdfError> {
        crate::pdf::Fonts::load(&self.font_dir.join(FONTS[0].1), &self.cjk_font)
    }

    /// The served fonts whose files are missing (said once at startup).
    pub fn missing_fonts(&self) -> Vec<PathBuf> {
        FONTS.iter().map(|(_, file)| self.font_dir.join(file)).filter(|path| !path.is_file()).collect()
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { page("index.html", &headers) }))
        .route("/terminal", get(|headers: HeaderMap| async move { page("terminal/index.html", &headers) }))
        .route("/lawyer", get(|headers: HeaderMap| async move { page("lawyer/index.html", &headers) }))
        .route(
            "/coordinator",
            get(|headers: HeaderMap| async move { page("coordinator/index.html", &headers) }),
        )
        .route("/web/fonts/{name}", get(font))
        .route("/web/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

/// A font from `web.font_dir`; only the names in [`FONTS`], never a path.
async fn font(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let Some((_, file)) = FONTS.iter().find(|(served, _)| *served == name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    match tokio::fs::read(state.config.web.font_dir.join(file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "font/ttf"),
                // The file changes only with the operating system's package.
                (header::CACHE_CONTROL, "public, max-age=604800"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "font not installed").into_response(),
    }
}

/// An app's page. Pages are not cached, so a new release is picked up at once.
/// Its policy lets it connect only to its own origin, over HTTP(S) and WebSocket.
fn page(path: &str, headers: &HeaderMap) -> Response {
    let mut response = asset(path);
    if response.status().is_success() {
        let response_headers = response.headers_mut();
        response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response_headers.insert(header::CONTENT_SECURITY_POLICY, page_policy(headers.get(header::HOST)));
    }
    response
}

/// The apps' Content-Security-Policy. `connect-src` names the page's own
/// origin's WebSocket forms (`ws://` and `wss://` of the host it was loaded
/// from: behind a TLS proxy the page is https and its socket wss) beside
/// `'self'`, since older browsers do not count ws: as 'self'. A Host header
/// that is not a plain host name or address gets `'self'` alone.
fn page_policy(host: Option<&HeaderValue>) -> HeaderValue {
    let host = host.and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    let sockets = host.map(|h| format!(" ws://{h} wss://{h}")).unwrap_or_default();
    let policy = format!(
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
         connect-src 'self'{sockets}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
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
        headers.insert(header::CONTENT_SECURITY_POLICY, page_policy(None));
    }
    response
}
