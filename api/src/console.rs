//! The console: a browser UI served by the node itself at `/`, built from
//! the files under `console/` and compiled into the executable, so it works
//! offline with nothing fetched at run time. Its pages call the public API
//! with the user's bearer token; this module only serves the files.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::error_body;

/// One file of the console.
pub struct Asset {
    /// Its path under `console/`, as requested under `/console/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../console/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the console is made of (a test checks none is missing).
pub const ASSETS: &[Asset] = &[
    asset!("src/index.html", "text/html; charset=utf-8"),
    asset!("src/style.css", "text/css; charset=utf-8"),
    asset!("src/app.js", JS),
    asset!("src/lib/api.js", JS),
    asset!("src/lib/charts.js", JS),
    asset!("src/lib/format.js", JS),
    asset!("src/lib/metrics.js", JS),
    asset!("src/lib/dom.js", JS),
    asset!("src/pages/live.js", JS),
    asset!("src/pages/spend.js", JS),
    asset!("src/pages/usage.js", JS),
    asset!("src/pages/workflows.js", JS),
    asset!("src/pages/marketplace.js", JS),
    asset!("src/pages/sql.js", JS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
];

/// Scripts, styles and data from this origin only: the console loads
/// nothing from elsewhere, and an injected script could not either.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /`: the console's page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("src/index.html", &headers)
}

/// `GET /console/{*path}`: one of its files.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(error_body(
                "not_found",
                &format!("the console has no file {path}; open / for the console"),
            )),
        )
            .into_response();
    };
    let etag = &etags()[index];
    // Revalidated on every load (cheap: a 304), so a new binary's console
    // is never mixed with an old one's cached files.
    let revalidated = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag.clone()),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if revalidated {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        StatusCode::OK,
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

/// Each asset's ETag, the hash of its bytes, computed once.
fn etags() -> &'static [HeaderValue] {
    static ETAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = xxhash_rust::xxh3::xxh3_64(a.body);
                HeaderValue::from_str(&format!("\"{hash:016x}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `console/src` and `console/vendor` is served: one
    /// forgotten here would be a 404 in the browser, not a build error.
    #[test]
    fn every_console_file_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../console");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.join("src"), root.join("vendor")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        served.sort();
        assert_eq!(served, on_disk);
    }

    #[test]
    fn a_known_etag_is_not_modified_and_an_unknown_file_is_404() {
        let first = serve("src/app.js", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve("src/app.js", &headers).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
