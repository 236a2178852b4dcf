//! The operators' dashboard: the page that `dashboard/` builds, embedded in the
//! binary, served by the dashboard function (and the local stack) at `GET /`.
//!
//! Vite writes each file with a gzip and a brotli twin; the handler picks the
//! smallest one the browser accepts. Asset names carry a content hash, so they are
//! cached for good; the page itself is revalidated on every load (its `ETag`).

use std::borrow::Cow;

use http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use rust_embed::RustEmbed;
use serde_json::json;

use crate::config::{ConfigError, Source};
use crate::handlers::ApiError;

/// `dashboard/dist`, as committed: the test command rebuilds it and fails on a difference.
#[derive(RustEmbed)]
#[folder = "../dashboard/dist"]
struct Assets;

/// What the page needs to know of its deployment.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// `WEBSOCKET_URL`, where the page's live feed connects.
    pub websocket_url: http::Uri,
}

impl DashboardConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        Ok(Self {
            websocket_url: crate::config::websocket_url(source)?,
        })
    }
}

/// Serves the page, its assets and `/config.json`.
pub struct DashboardHandler {
    config_json: String,
    content_security_policy: HeaderValue,
}

const PAGE: &str = "index.html";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

impl DashboardHandler {
    pub fn new(config: DashboardConfig) -> Self {
        let url = &config.websocket_url;
        let origin = format!(
            "{}://{}",
            url.scheme_str().unwrap_or("wss"),
            url.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        // The page's own origin and the WebSocket API, nothing else: no CDN, no
        // inline script, no framing.
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' {origin}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        Self {
            // The known buttons too, so that the page shows them first and
            // always, from the one list the metrics use.
            config_json: json!({
                "websocket_url": url.to_string(),
                "known_buttons": crate::event::KNOWN_BUTTONS,
            })
            .to_string(),
            content_security_policy: HeaderValue::from_str(&policy)
                .expect("a URI's parts are valid in a header"),
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use GET",
            )
            .into_response();
        }
        let path = request.uri().path();
        let mut response = match path {
            "/config.json" => self.config(),
            "/" | "/index.html" => serve(PAGE, "no-cache", &request),
            _ => match path.strip_prefix('/').filter(|p| p.starts_with("assets/")) {
                Some(asset) => serve(asset, IMMUTABLE, &request),
                None => not_found(),
            },
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            self.content_security_policy.clone(),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if request.method() == Method::HEAD {
            *response.body_mut() = Body::Empty;
        }
        response
    }

    fn config(&self) -> Response<Body> {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::Text(self.config_json.clone()))
            .expect("a valid response")
    }
}

fn not_found() -> Response<Body> {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such page").into_response()
}

/// The file, in the best encoding the request accepts, or 304 when the browser
/// already holds this very version.
fn serve(name: &str, cache_control: &'static str, request: &Request) -> Response<Body> {
    let Some(original) = Assets::get(name) else {
        return not_found();
    };
    let accepted = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (file, encoding) = ["br", "gzip"]
        .into_iter()
        .filter(|encoding| accepts(accepted, encoding))
        .find_map(|encoding| {
            Some((
                Assets::get(&format!("{name}.{}", extension(encoding)))?,
                Some(encoding),
            ))
        })
        .unwrap_or((original.clone(), None));
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let builder = Response::builder()
        .header(header::CACHE_CONTROL, cache_control)
        .header(header::VARY, "Accept-Encoding")
        .header(header::ETAG, &etag);
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    if unchanged {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::Empty)
            .expect("a valid response");
    }
    let builder = builder.status(StatusCode::OK).header(
        header::CONTENT_TYPE,
        content_type(original.metadata.mimetype()),
    );
    let builder = match encoding {
        Some(encoding) => builder.header(header::CONTENT_ENCODING, encoding),
        None => builder,
    };
    let bytes = match file.data {
        Cow::Borrowed(bytes) => bytes.to_vec(),
        Cow::Owned(bytes) => bytes,
    };
    builder.body(Body::Binary(bytes)).expect("a valid response")
}

/// Text is UTF-8 (Vite writes it so); the browser should not have to guess.
fn content_type(mimetype: &str) -> String {
    if mimetype.starts_with("text/") || mimetype.ends_with("javascript") {
        format!("{mimetype}; charset=utf-8")
    } else {
        mimetype.to_owned()
    }
}

fn extension(encoding: &str) -> &'static str {
    if encoding == "br" {
        "br"
    } else {
        "gz"
    }
}

/// Whether `Accept-Encoding` allows `encoding` (listed, or `*`, and not `q=0`).
fn accepts(header: &str, encoding: &str) -> bool {
    let mut wildcard = false;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        if name.eq_ignore_ascii_case(encoding) {
            return !refused;
        }
        if name == "*" {
            wildcard = !refused;
        }
    }
    wildcard
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler() -> DashboardHandler {
        DashboardHandler::new(
            DashboardConfig::from_source(&[("WEBSOCKET_URL", "wss://ws.example.com/live")])
                .unwrap(),
        )
    }

    async fn get(path: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut request = http::Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        handler().handle(request.body(Body::Empty).unwrap()).await
    }

    fn bytes(response: &Response<Body>) -> &[u8] {
        match response.body() {
            Body::Binary(bytes) => bytes,
            Body::Text(text) => text.as_bytes(),
            _ => &[],
        }
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn the_page_is_revalidated_and_compressed_as_the_browser_accepts() {
        let plain = get("/", &[]).await;
        assert_eq!(plain.status(), 200);
        assert_eq!(header(&plain, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&plain, "cache-control"), "no-cache");
        assert_eq!(header(&plain, "content-encoding"), "");
        assert!(bytes(&plain).starts_with(b"<!doctype html>"));
        let policy = header(&plain, "content-security-policy");
        assert!(
            policy.contains("connect-src 'self' wss://ws.example.com;"),
            "{policy}"
        );
        assert!(policy.contains("script-src 'self';"), "{policy}");

        let brotli = get("/", &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(header(&brotli, "content-encoding"), "br");
        assert_eq!(
            bytes(&brotli),
            &Assets::get("index.html.br").unwrap().data[..]
        );
        let gzip = get("/", &[("accept-encoding", "gzip, br;q=0")]).await;
        assert_eq!(header(&gzip, "content-encoding"), "gzip");
        assert_eq!(
            bytes(&gzip),
            &Assets::get("index.html.gz").unwrap().data[..]
        );
        assert_eq!(header(&gzip, "vary"), "Accept-Encoding");

        let etag = header(&brotli, "etag").to_owned();
        let again = get("/", &[("accept-encoding", "br"), ("if-none-match", &etag)]).await;
        assert_eq!(again.status(), 304);
        assert!(bytes(&again).is_empty());
        let other = get(
            "/",
            &[("accept-encoding", "gzip"), ("if-none-match", &etag)],
        )
        .await;
        assert_eq!(other.status(), 200, "another encoding is another entity");
    }

    #[tokio::test]
    async fn assets_named_by_their_hash_are_cached_for_good() {
        let script = Assets::iter()
            .find(|name| name.starts_with("assets/") && name.ends_with(".js"))
            .expect("the build has a script");
        let response = get(&format!("/{script}"), &[("accept-encoding", "br")]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "cache-control"), IMMUTABLE);
        assert_eq!(
            header(&response, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(get("/assets/missing.js", &[]).await.status(), 404);
        assert_eq!(get("/assets/../index.html", &[]).await.status(), 404);
        assert_eq!(get("/src/main.ts", &[]).await.status(), 404);
    }

    #[tokio::test]
    async fn config_names_the_websocket_url_and_the_known_buttons() {
        let response = get("/config.json", &[]).await;
        assert_eq!(response.status(), 200);
        let config: serde_json::Value = serde_json::from_slice(bytes(&response)).unwrap();
        assert_eq!(
            config,
            json!({"websocket_url": "wss://ws.example.com/live",
                   "known_buttons": ["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"]})
        );
    }

    #[test]
    fn a_websocket_url_must_be_one() {
        for bad in ["https://ws.example.com/live", "ws.example.com", "wss://"] {
            assert!(
                DashboardConfig::from_source(&[("WEBSOCKET_URL", bad)]).is_err(),
                "{bad}"
            );
        }
        assert!(DashboardConfig::from_source(&[("OTHER", "x")]).is_err());
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        assert!(accepts("gzip, deflate, br", "br"));
        assert!(accepts("gzip, deflate, br", "gzip"));
        assert!(accepts("BR;q=0.5", "br"));
        assert!(!accepts("gzip, br;q=0", "br"));
        assert!(!accepts("", "gzip"));
        assert!(accepts("*", "gzip"));
        assert!(!accepts("*, gzip;q=0", "gzip"));
        assert!(!accepts("identity", "br"));
    }
}
