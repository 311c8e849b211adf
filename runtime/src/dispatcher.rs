//! The outer dispatcher: reserved paths go to the reactive inner app, everything else to the
//! app's HTTP routes through the middleware chain.
//!
//! | path | answer |
//! |---|---|
//! | `/_event/` | Socket.IO (Engine.IO v4 over WebSocket or polling) |
//! | `/_upload` | `POST` multipart files for an upload handler (see [`crate::upload`]) |
//! | `/_health` | readiness: `200` JSON `{"status": "ok", "database": "ok", "redis": "none", ..}`, `503` while a dependency is down or the server is stopping |
//! | `/ping` | liveness: `200` `pong` while the process serves |
//! | `/_all_routes` | `200` JSON of HTTP routes, states and handlers; `404` in production mode |
//! | any other WebSocket upgrade | accepted, then closed with code 1011 and a reason |
//!
//! Reserved paths do not run the middleware chain (events run it themselves, per event).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::bridge::resolve_client;
use crate::settings::IpNet;

/// Paths the dispatcher keeps for the inner app.
pub const RESERVED: &[&str] = &["/_event", "/_upload", "/_health", "/ping", "/_all_routes"];

/// Close code for WebSocket upgrades to paths that have no socket endpoint.
pub const UNKNOWN_SOCKET_CLOSE_CODE: u16 = 1011;

/// The inner app's plain HTTP endpoints (the socket endpoint is a layer over all of it).
pub(crate) fn reserved_routes(
    routes_doc: Arc<Option<Value>>,
    bridge: Arc<crate::bridge::EventBridge>,
    trusted: Arc<Vec<IpNet>>,
    db: Option<sea_orm::DatabaseConnection>,
) -> Router {
    Router::new()
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
            "/_upload",
            axum::routing::post(move |req: Request| {
                let bridge = bridge.clone();
                let trusted = trusted.clone();
                async move { crate::upload::handle(&bridge, &trusted, req).await }
            })
            .layer(axum::extract::DefaultBodyLimit::disable()),
        )
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
    let body = json!({
        "status": status,
        "database": database,
        "redis": redis,
        "version": env!("CARGO_PKG_VERSION"),
    });
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
            match http.oneshot(req).await {
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

/// Completes the WebSocket handshake and closes at once with 1011, as the reference does.
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
