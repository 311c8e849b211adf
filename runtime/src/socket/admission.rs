//! Who may open a socket: a place among the transports of the client's address (taken at the
//! first Engine.IO request, before any CONNECT), a valid tab token and epoch in the CONNECT
//! auth, and an allowed origin.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::SocketEnv;
use crate::net::{TOKEN_RULE, valid_token};
use crate::tab_binding::SessionEnded;

/// One open transport of a client address; dropping it (the transport is gone) frees the place.
pub(super) struct ClientSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ClientSlot {
    /// Takes a place for `ip` (counted by its network for IPv6) unless it already has `max`
    /// transports open.
    pub(super) fn take(env: &SocketEnv, ip: IpAddr) -> Result<Self, ConnectRefused> {
        let ip = crate::net::address_key(ip, env.ipv6_prefix_len);
        let mut counts = env.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let open = counts.entry(ip).or_default();
        if env.max_per_client > 0 && *open >= env.max_per_client {
            tracing::warn!(%ip, max = env.max_per_client, "socket refused: too many from one address");
            return Err(ConnectRefused(format!(
                "too many connections from your address (more than {})",
                env.max_per_client
            )));
        }
        *open += 1;
        Ok(Self {
            ip,
            counts: env.per_client.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = counts.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The place a transport holds, kept in its request's extensions: socketioxide and Engine.IO
/// keep those for as long as the transport is open, so the place is given back when the last of
/// them lets go, whether the client ever sent CONNECT or not.
#[derive(Clone)]
pub(crate) struct TransportSlot(#[allow(dead_code)] Arc<ClientSlot>);

/// Middleware in front of the Socket.IO layer: a request that opens a new Engine.IO transport
/// (no `sid` yet) takes a place among its address's transports, or is refused with 429 and
/// the reason. With the CONNECT timeout (setting `connect_timeout_ms`) this bounds what an
/// address can hold open without ever connecting.
pub(crate) async fn admit_transport(
    env: Arc<SocketEnv>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let opens_transport = req.uri().path().starts_with(crate::protocol::EVENT_PATH)
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")));
    if opens_transport {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let client = crate::net::resolve_client(peer, req.headers(), &env.trusted);
        match ClientSlot::take(&env, client.ip) {
            Ok(slot) => {
                req.extensions_mut().insert(TransportSlot(Arc::new(slot)));
            }
            Err(refused) => {
                use axum::response::IntoResponse;
                return (http::StatusCode::TOO_MANY_REQUESTS, refused.0).into_response();
            }
        }
    }
    next.run(req).await
}

/// Which origins may open the socket.
#[derive(Clone, Debug)]
pub(crate) struct OriginPolicy {
    /// Origins (`scheme://host[:port]`) allowed besides the same origin, matched whole.
    pub(crate) allowed: Arc<[String]>,
}

impl OriginPolicy {
    /// Checks the handshake. No `Origin` header (not a browser) passes: the check exists to stop
    /// other sites' pages from using a visitor's cookies (cross-site WebSocket hijacking).
    pub(crate) fn check(&self, headers: &http::HeaderMap) -> Result<(), ConnectRefused> {
        let Some(origin) = headers.get(http::header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
        if self
            .allowed
            .iter()
            .any(|a| a.trim_end_matches('/') == origin)
        {
            return Ok(());
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
        if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
            return Ok(());
        }
        Err(ConnectRefused(format!(
            "origin `{origin}` may not open this socket (allowed_origins setting)"
        )))
    }
}

/// The auth object of the Socket.IO CONNECT packet.
#[derive(serde::Deserialize)]
pub(crate) struct Auth {
    token: String,
    /// The client's page load (random per load): events resent under it are applied once.
    #[serde(default)]
    epoch: Option<String>,
}

/// Why a connection was refused; the message goes to the client as `connect_error`.
#[derive(Debug)]
pub(crate) struct ConnectRefused(pub(super) String);

impl std::fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectRefused {}

/// Checks a page-load epoch: 1 to 64 characters of `[A-Za-z0-9_-]`.
fn valid_epoch(epoch: &str) -> bool {
    (1..=64).contains(&epoch.len())
        && epoch
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the token from the CONNECT auth, refusing the connection without a valid one.
pub(super) fn check_auth<A: Adapter>(
    s: &SocketRef<A>,
    auth: Result<Auth, socketioxide::ParserError>,
) -> Result<(String, Option<String>), ConnectRefused> {
    if let Some(policy) = s.req_parts().extensions.get::<OriginPolicy>() {
        policy.check(&s.req_parts().headers)?;
    }
    if s.req_parts().extensions.get::<SessionEnded>().is_some() {
        return Err(ConnectRefused(
            "your session changed while connecting; connect again".into(),
        ));
    }
    match auth {
        Ok(Auth { epoch: Some(e), .. }) if !valid_epoch(&e) => Err(ConnectRefused(
            "invalid epoch: expected 1 to 64 characters of A-Z, a-z, 0-9, - and _".into(),
        )),
        Ok(Auth { token, epoch }) if valid_token(&token) => Ok((token, epoch)),
        Ok(_) => Err(ConnectRefused(format!(
            "invalid token: expected {TOKEN_RULE}"
        ))),
        Err(_) => Err(ConnectRefused(
            "missing auth: connect with {\"token\": \"<tab token>\"}".into(),
        )),
    }
}
