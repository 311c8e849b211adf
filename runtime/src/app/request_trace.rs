//! Every HTTP request's id and span: an `x-request-id` (a fresh UUID, or the one a trusted
//! proxy set), sent back on the answer, and an `http.request` span around the whole request
//! (tower-http's `TraceLayer`). A socket's events carry the id of its handshake
//! (`handshake_id` on `ferrule.event`), so an event's logs lead to the request that opened the
//! socket, and on to the proxy's logs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use http::HeaderName;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::net::REQUEST_ID_HEADER;
use crate::settings::IpNet;

/// Wraps `router` in the request id and trace layers, outermost, so every other layer and the
/// socket handshake see the id. An incoming `x-request-id` is kept only from `trusted` proxies:
/// from anyone else it could tie unrelated requests together in the logs, or carry text made
/// to mislead whoever reads them.
pub(super) fn layer(router: Router, trusted: Arc<Vec<IpNet>>) -> Router {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .layer(TraceLayer::new_for_http().make_span_with(http_span))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .layer(axum::middleware::map_request(
            move |mut req: axum::extract::Request| {
                let trusted = trusted.clone();
                async move {
                    let peer = req
                        .extensions()
                        .get::<axum::extract::ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip());
                    if !peer.is_some_and(|ip| trusted.iter().any(|n| n.contains(ip))) {
                        req.headers_mut().remove(REQUEST_ID_HEADER);
                    }
                    req
                }
            },
        ))
}

/// The span of one request: its method, path (never the query, which may hold secrets) and id.
fn http_span<B>(req: &http::Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    tracing::info_span!(
        "http.request",
        method = %req.method(),
        path = req.uri().path(),
        request_id = id,
    )
}
