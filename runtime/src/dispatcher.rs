//! The outer dispatcher: reserved paths go to the reactive inner app, everything else to the
//! app's HTTP routes through the middleware chain.
//!
//! | path | answer |
//! |---|---|
//! | `/_event/` | Socket.IO (Engine.IO v4 over WebSocket or polling) |
//! | `/_upload` | `POST` multipart files for an upload handler (see [`crate::upload`]) |
//! | `/_health` | `200` JSON `{"status": "ok", ...}` |
//! | `/ping` | `200` `pong` |
//! | `/_all_routes` | `200` JSON of HTTP routes, states and handlers |
//! | any other WebSocket upgrade | accepted, then closed with code 1011 and a reason |
//!
//! Reserved paths do not run the middleware chain (events run it themselves, per event).

use std::net::SocketAddr;
use std::sync::Arc;

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
    routes_doc: Arc<Value>,
    bridge: Arc<crate::bridge::EventBridge>,
    trusted: Arc<Vec<IpNet>>,
) -> Router {
    Router::new()
        .route(
            "/_health",
            get(|| async {
                axum::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
            }),
        )
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/_all_routes",
            get(move || {
                let doc = routes_doc.clone();
                async move { axum::Json((*doc).clone()) }
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
