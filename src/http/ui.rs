//! The browser faces of the graph, embedded at build time (`build.rs` bundles `ui/`): the
//! playground (GraphiQL) at `/`, the service portal at `/ui` (every `/ui/...` path is the same
//! single-page app), and their files at `/assets/<name>?v=<version>`.
//!
//! Nothing is loaded from another host: the pages carry a `Content-Security-Policy` that allows
//! only this origin (and its websocket). Files are served gzip-compressed when the browser
//! accepts it, and cached for good (the `v` in their URL changes with their content).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    /// A hash of the content: the `v` of its URL.
    pub version: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

fn url_of(name: &str) -> String {
    match asset(name) {
        Some(a) => format!("/assets/{name}?v={}", a.version),
        None => format!("/assets/{name}"),
    }
}

/// Only this origin: scripts, styles (GraphiQL sets inline styles), data: images and fonts,
/// and requests to this host over HTTP and websockets.
fn csp(headers: &HeaderMap) -> HeaderValue {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .unwrap_or("");
    let ws = if host.is_empty() {
        String::new()
    } else {
        format!(" ws://{host} wss://{host}")
    };
    HeaderValue::from_str(&format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'{ws}; \
         worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

fn page(headers: &HeaderMap, title: &str, body: String) -> Response {
    let mut r = Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>{body}</html>"
    ))
    .into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp(headers));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn not_built() -> String {
    "<style>body{font:15px system-ui;margin:40px;max-width:720px}</style></head><body>\
     <h1>idp-graph</h1><p>The browser UI was not built into this binary: Node.js and npm were \
     not found when it was compiled (or <code>IDP_GRAPH_SKIP_UI</code> was set).</p>\
     <p>Install Node 20 and npm, then build again (<code>cargo build</code> runs \
     <code>npm ci</code> and <code>node build.mjs</code> in <code>ui/</code>). The GraphQL API \
     works without it: <code>POST /graphql</code>, <code>/graphql/ws</code>.</p></body>"
        .into()
}

/// `/`: the playground.
pub async fn playground(headers: HeaderMap) -> Response {
    if !UI_BUILT {
        return page(&headers, "idp-graph", not_built());
    }
    page(
        &headers,
        "idp-graph playground",
        format!(
            "<link rel=\"stylesheet\" href=\"{css}\"><style>html,body,#graphiql{{height:100%;margin:0}}</style>\
             </head><body><div id=\"graphiql\">Loading the playground…</div>\
             <script src=\"{js}\"></script></body>",
            css = url_of("playground.css"),
            js = url_of("playground.js"),
        ),
    )
}

/// `/ui` and everything under it: the portal (it routes on the client).
pub async fn portal(headers: HeaderMap) -> Response {
    if !UI_BUILT {
        return page(&headers, "idp-graph portal", not_built());
    }
    page(
        &headers,
        "idp-graph portal",
        format!(
            "<link rel=\"stylesheet\" href=\"{css}\"></head><body><div id=\"app\"></div>\
             <script src=\"{js}\"></script></body>",
            css = url_of("portal.css"),
            js = url_of("portal.js"),
        ),
    )
}

/// `/assets/<name>`: an embedded file, gzip when accepted.
pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = asset(&name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut r = if gzip {
        let mut r = a.gzip.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.raw.into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
