//! The client's side of a request, as the server sees it: its address behind trusted proxies,
//! the handshake's headers and cookies, and the tab token it names. Small helpers the socket,
//! upload and auth layers above all need; nothing here knows about states or events.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue, header};

use crate::settings::IpNet;

tokio::task_local! {
    /// The client address of the event being handled (bound around each handler run).
    static CURRENT_CLIENT: ClientAddr;
}

/// 128 random bits from the operating system's CSPRNG, as 32 hex digits: session bindings,
/// CSRF tokens, flow-marker nonces.
pub(crate) fn random_hex_128() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `headers` say the body is of media type `prefix` (`text/html`, ...), whatever its
/// parameters.
pub(crate) fn has_content_type(headers: &HeaderMap, prefix: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(prefix))
}

/// The client's address and scheme, after trusted-proxy headers were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's IP (the peer's, or the forwarded one when the peer is a trusted proxy).
    pub ip: IpAddr,
    /// Whether the client reached the first proxy (or us) over HTTPS.
    pub https: bool,
}

/// Runs `fut` with `client` as the current client address.
pub(crate) async fn with_client<F: Future>(client: Option<ClientAddr>, fut: F) -> F::Output {
    match client {
        Some(c) => CURRENT_CLIENT.scope(c, fut).await,
        None => fut.await,
    }
}

/// The client address of the event being handled, or `None` outside one.
pub(crate) fn current_client() -> Option<ClientAddr> {
    CURRENT_CLIENT.try_with(|c| *c).ok()
}

/// The client's address: the peer's, or the forwarded one when the peer is a trusted proxy.
pub(crate) fn resolve_client(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> ClientAddr {
    let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return ClientAddr {
            ip: peer,
            https: false,
        };
    }
    let mut ip = peer;
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        let Ok(hop) = hop.parse::<IpAddr>() else {
            break;
        };
        ip = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    ClientAddr { ip, https }
}

/// Handshake headers that describe the WebSocket upgrade, not the client; dropped from events.
pub(crate) fn strip_upgrade_headers(headers: &mut HeaderMap) {
    for name in [
        header::UPGRADE,
        header::CONNECTION,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
        header::SEC_WEBSOCKET_EXTENSIONS,
        header::SEC_WEBSOCKET_PROTOCOL,
    ] {
        headers.remove(name);
    }
}

/// Replaces (or removes, with `None`) cookie `name` in the `Cookie` header of `headers`.
pub(crate) fn set_cookie_in_header(headers: &mut HeaderMap, name: &str, value: Option<&str>) {
    let mut pairs: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some(name))
        .map(str::to_owned)
        .collect();
    if let Some(v) = value {
        pairs.push(format!("{name}={v}"));
    }
    headers.remove(header::COOKIE);
    if !pairs.is_empty()
        && let Ok(v) = HeaderValue::from_str(&pairs.join("; "))
    {
        headers.insert(header::COOKIE, v);
    }
}

/// The value of cookie `name` in the `Cookie` headers of `headers`.
pub(crate) fn cookie_in(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// The room every socket of one tab is in, for pushes (uploads, background handlers).
pub(crate) fn tab_room(token: &str) -> String {
    format!("tab:{token}")
}

/// Fewest characters in a tab token: 22 base64url characters carry 128 bits (the browser
/// sends 32 hex digits of the CSPRNG). A shorter token could be guessed.
pub(crate) const MIN_TOKEN_CHARS: usize = 22;

/// What a refused token is told.
pub(crate) const TOKEN_RULE: &str =
    "22 to 128 characters of A-Z, a-z, 0-9, - and _ (at least 128 random bits)";

/// Checks the tab token: [`MIN_TOKEN_CHARS`] to 128 characters of `[A-Za-z0-9_-]`.
pub(crate) fn valid_token(token: &str) -> bool {
    (MIN_TOKEN_CHARS..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| IpNet::parse(s).unwrap()).collect()
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let untrusted = resolve_client(
            Some("198.51.100.1".parse().unwrap()),
            &h,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(untrusted.ip.to_string(), "198.51.100.1");
        assert!(!untrusted.https);
        let trusted = resolve_client(
            Some("10.0.0.1".parse().unwrap()),
            &h,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(trusted.ip.to_string(), "203.0.113.9");
        assert!(trusted.https);
        // The client writes what it likes at the left: only the hops our proxies added count.
        let mut spoofed = HeaderMap::new();
        spoofed.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().unwrap(),
        );
        let seen = resolve_client(
            Some("10.0.0.1".parse().unwrap()),
            &spoofed,
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(seen.ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn cookie_header_is_rewritten() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; ferrule_session=old; csrftoken=x".parse().unwrap(),
        );
        set_cookie_in_header(&mut h, "ferrule_session", Some("new"));
        assert_eq!(h[header::COOKIE], "a=1; csrftoken=x; ferrule_session=new");
        set_cookie_in_header(&mut h, "ferrule_session", None);
        assert_eq!(h[header::COOKIE], "a=1; csrftoken=x");
    }
}
