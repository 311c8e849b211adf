//! The outer dispatcher: reserved paths go to the reactive inner app, everything else to the
//! app's HTTP routes through the middleware chain.
//!
//! | path | answer |
//! |---|---|
//! | `/_event/` | Socket.IO (Engine.IO v4 over WebSocket or polling) |
//! | `/_upload` | `POST` multipart files for an upload handler (see [`crate::upload`]) |
//! | `/_health` | readiness: `200` JSON `{"status": "ok", "database": "ok", "redis": "none", "states": {"tabs", "bytes"}, ..}` (`states`: the in-memory store's size), `503` while a dependency is down or the server is stopping |
//! | `/ping` | liveness: `200` `pong` while the process serves |
//! | `/_all_routes` | `200` JSON of HTTP routes, states and handlers; `404` in production mode |
//! | any other WebSocket upgrade | accepted, then closed with code 1011 and a reason |
//!
//! Reserved paths do not run the middleware chain (events run it themselves, per event).
//! Every request, reserved or not, must name an allowed host (`allowed_hosts`) and gets the
//! security headers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::net::resolve_client;
use crate::settings::IpNet;

/// Paths the dispatcher keeps for the inner app.
pub const RESERVED: &[&str] = &[
    "/_event",
    "/_upload",
    "/_health",
    "/ping",
    "/_all_routes",
    "/_i18n",
];

/// Close code for WebSocket upgrades to paths that have no socket endpoint.
pub const UNKNOWN_SOCKET_CLOSE_CODE: u16 = 1011;

/// The inner app's plain HTTP endpoints (the socket endpoint is a layer over all of it).
pub(crate) fn reserved_routes(
    routes_doc: Arc<Option<Value>>,
    bridge: Arc<crate::bridge::EventBridge>,
    trusted: Arc<Vec<IpNet>>,
    db: Option<sea_orm::DatabaseConnection>,
    catalogues: Arc<crate::i18n::Catalogues>,
) -> Router {
    Router::new()
        // Outside the app's middleware: a page that may be shown (a login page behind a
        // "log in everywhere" rule, say) must get its texts, which are the same for everyone.
        .route(
            &format!("{}{{file}}", crate::i18n::SCRIPT_PREFIX),
            get(move |Path(file): Path<String>| {
                let catalogues = catalogues.clone();
                async move { catalogue_script(&catalogues, &file) }
            }),
        )
        .route(
            "/_health",
            get({
                let bridge = bridge.clone();
                move || {
                    let (bridge, db) = (bridge.clone(), db.clone());
                    async move { readiness(&bridge, db.as_ref()).await }
                }
            }),
        )
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/_all_routes",
            get(move || {
                let doc = routes_doc.clone();
                async move {
                    // In production the map of every state and handler is not published.
                    match doc.as_ref() {
                        Some(doc) => axum::Json(doc.clone()).into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
        .route(
            crate::protocol::UPLOAD_PATH,
            axum::routing::post(move |req: Request| {
                let bridge = bridge.clone();
                let trusted = trusted.clone();
                async move { crate::upload::handle(&bridge, &trusted, req).await }
            })
            .layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

/// The host names the server answers to (see [`Settings::allowed_hosts`](crate::settings::Settings::allowed_hosts)).
#[derive(Clone, Debug)]
pub(crate) struct HostPolicy {
    allowed: Arc<[String]>,
}

impl HostPolicy {
    /// The listen address, the loopback names, and what `settings` lists.
    pub(crate) fn new(settings: &crate::settings::Settings) -> Self {
        let mut allowed: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
        allowed.push(settings.addr.ip().to_string());
        allowed.extend(
            settings
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase()),
        );
        Self {
            allowed: allowed.into(),
        }
    }

    /// Whether a `Host` header (with or without a port) names this server.
    pub(crate) fn allows(&self, host_header: &str) -> bool {
        let host = host_name(host_header).to_ascii_lowercase();
        !host.is_empty()
            && self.allowed.iter().any(|a| {
                a == "*"
                    || *a == host
                    || a.strip_prefix('.')
                        .is_some_and(|domain| host == domain || host.ends_with(a.as_str()))
            })
    }
}

/// `shop.example:8080` → `shop.example`, `[::1]:3000` → `::1`.
fn host_name(header: &str) -> &str {
    if let Some(rest) = header.strip_prefix('[') {
        return rest.split_once(']').map_or("", |(ip, _)| ip);
    }
    match header.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => header,
    }
}

/// Answers 400 to a request whose `Host` the policy does not allow (sockets included: their
/// handshake is a request too).
pub(crate) async fn check_host(
    policy: HostPolicy,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    if policy.allows(host) {
        return next.run(req).await;
    }
    tracing::warn!(host, "request refused: its Host is not in allowed_hosts");
    (
        StatusCode::BAD_REQUEST,
        format!("Bad Request: the host `{host}` is not served here (allowed_hosts setting)"),
    )
        .into_response()
}

/// Adds the security headers the settings ask for to every answer that has none of its own.
pub(crate) async fn security_headers(
    headers: Arc<Vec<(header::HeaderName, HeaderValue)>>,
    mut resp: Response,
) -> Response {
    for (name, value) in headers.iter() {
        if !resp.headers().contains_key(name) {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    resp
}

/// The security headers `settings` turn on.
pub(crate) fn security_header_list(
    settings: &crate::settings::Settings,
) -> Vec<(header::HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if settings.header_nosniff {
        out.push((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    }
    if settings.header_frame_deny {
        out.push((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
        out.push((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ));
    }
    if let Ok(policy) = HeaderValue::from_str(&settings.referrer_policy)
        && !settings.referrer_policy.is_empty()
    {
        out.push((header::REFERRER_POLICY, policy));
    }
    if settings.secure_cookies && settings.hsts_seconds > 0 {
        let value = format!("max-age={}; includeSubDomains", settings.hsts_seconds);
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.push((header::STRICT_TRANSPORT_SECURITY, v));
        }
    }
    out
}

/// How long the readiness check waits for each dependency before calling it down.
const READINESS_LIMIT: Duration = Duration::from_secs(2);

/// The readiness check: whether this server can serve events now, dependency by dependency.
/// A load balancer stops sending it traffic on a 503; `/ping` says only that the process lives.
async fn readiness(
    bridge: &crate::bridge::EventBridge,
    db: Option<&sea_orm::DatabaseConnection>,
) -> Response {
    let database = match db {
        None => "none",
        Some(db) => match tokio::time::timeout(READINESS_LIMIT, db.ping()).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: the database does not answer");
                "down"
            }
            Err(_) => "down",
        },
    };
    let redis = match tokio::time::timeout(READINESS_LIMIT, bridge.ping_states()).await {
        Ok(None) => "none",
        Ok(Some(Ok(()))) => "ok",
        Ok(Some(Err(e))) => {
            tracing::warn!(error = %e, "readiness: the state store does not answer");
            "down"
        }
        Err(_) => "down",
    };
    let stopping = bridge.shutdown_token().is_cancelled();
    let (code, status) = if stopping {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping")
    } else if database == "down" || redis == "down" {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else {
        (StatusCode::OK, "ok")
    };
    let mut body = json!({
        "status": status,
        "database": database,
        "redis": redis,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(size) = bridge.states_size() {
        body["states"] = json!(size);
    }
    (code, axum::Json(body)).into_response()
}

/// Sends every non-reserved request to `http`, after recording the client address; WebSocket
/// upgrades are closed with 1011.
pub(crate) fn http_fallback(http: Router, trusted: Arc<Vec<IpNet>>) -> Router {
    Router::new().fallback(move |mut req: Request| {
        let http = http.clone();
        let trusted = trusted.clone();
        async move {
            if is_websocket_upgrade(&req) {
                return close_unknown_socket(req);
            }
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            let client = resolve_client(peer, req.headers(), &trusted);
            req.extensions_mut().insert(client);
            // `Auth::authenticate` in an app's HTTP handler counts the attempt against this
            // address, as it does in an event's handler.
            match crate::net::with_client(Some(client), http.oneshot(req)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    })
}

fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Completes the WebSocket handshake and closes at once with 1011, as reflex-django does.
fn close_unknown_socket(mut req: Request) -> Response {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return (StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key").into_response();
    };
    let path = req.uri().path().to_owned();
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use tokio_tungstenite::tungstenite::protocol::{
            CloseFrame, Role, frame::coding::CloseCode,
        };
        let Ok(upgraded) = upgrade.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let mut ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let frame = CloseFrame {
            code: CloseCode::from(UNKNOWN_SOCKET_CLOSE_CODE),
            reason: format!("no socket endpoint at {path}; events use /_event/").into(),
        };
        let _ = ws.close(Some(frame)).await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// `/_i18n/<language>.js`: a language's catalogue for the browser. Its URL carries the
/// catalogue's version, so it is cached for a year.
fn catalogue_script(catalogues: &crate::i18n::Catalogues, file: &str) -> Response {
    let language = file.strip_suffix(".js").unwrap_or_default();
    if !catalogues.supports(language) {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        crate::i18n::script(catalogues, language),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_whole_or_as_subdomains_of_a_dotted_entry() {
        let settings = crate::settings::Settings {
            allowed_hosts: vec!["shop.example".into(), ".example.org".into()],
            ..crate::settings::Settings::default()
        };
        let policy = HostPolicy::new(&settings);
        for ok in [
            "127.0.0.1:3000",
            "localhost",
            "LOCALHOST:80",
            "[::1]:3000",
            "shop.example",
            "shop.example:443",
            "example.org",
            "a.example.org",
        ] {
            assert!(policy.allows(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "shop.example.evil.io",
            "evilshop.example",
            "notexample.org",
            "example.org.evil.io",
            "[::2]:3000",
        ] {
            assert!(!policy.allows(bad), "{bad}");
        }
        let any = HostPolicy::new(&crate::settings::Settings {
            allowed_hosts: vec!["*".into()],
            ..crate::settings::Settings::default()
        });
        assert!(any.allows("anything.example"));
    }
}
