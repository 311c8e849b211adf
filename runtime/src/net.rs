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
    let forwarded = header_list(headers, "x-forwarded-for");
    // How many hops from the right the client's entry is: the proxies' entries are the
    // rightmost, whatever a client wrote at the left is not believed.
    let mut hops = 0;
    for (n, hop) in forwarded.iter().rev().enumerate() {
        let Ok(hop) = hop.parse::<IpAddr>() else {
            break;
        };
        ip = hop;
        hops = n;
        if !is_trusted(hop) {
            break;
        }
    }
    // The scheme list lines up with the address list: each proxy appends what it received.
    // A list shorter than that was set whole by a proxy: its first entry is the one we have.
    let protos = header_list(headers, "x-forwarded-proto");
    let proto = protos
        .iter()
        .rev()
        .nth(hops)
        .or_else(|| protos.first())
        .copied();
    let https = proto.is_some_and(|p| p.eq_ignore_ascii_case("https"));
    ClientAddr { ip, https }
}

/// The address an attacker cannot multiply: an IPv4 address as it is (an IPv4-mapped IPv6 one
/// as IPv4), an IPv6 address cut to its first `v6_prefix_len` bits (a /64 is what one
/// customer usually gets). Limits per client address count by it.
pub(crate) fn address_key(ip: IpAddr, v6_prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let len = u32::from(v6_prefix_len.min(128));
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
    }
}

/// The comma-separated values of every `name` header, in order.
fn header_list<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
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

/// Every cookie of `headers` but `name`'s, joined as one `Cookie` header's value.
pub(crate) fn cookies_without(headers: &http::HeaderMap, name: &str) -> String {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| !kv.is_empty() && kv.split_once('=').is_none_or(|(k, _)| k != name))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The header that carries a request's id, set on every request and answer (see
/// `app::request_trace`); a socket keeps its handshake's.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

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
        // Likewise the scheme: the client's own `https` at the left is not believed.
        let mut spoofed = HeaderMap::new();
        spoofed.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        spoofed.insert("x-forwarded-proto", "https, http".parse().unwrap());
        let one_proxy = nets(&["10.0.0.0/8"]);
        let seen = resolve_client(Some("10.0.0.1".parse().unwrap()), &spoofed, &one_proxy);
        assert!(!seen.https, "the proxy said http");
        // Two proxies, each appending: the scheme the client used is at the client's hop.
        let mut two = HeaderMap::new();
        two.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        two.insert("x-forwarded-proto", "https, http".parse().unwrap());
        let seen = resolve_client(Some("10.0.0.1".parse().unwrap()), &two, &one_proxy);
        assert_eq!(
            (seen.ip.to_string().as_str(), seen.https),
            ("203.0.113.9", true)
        );
    }

    #[test]
    fn ipv6_addresses_count_by_their_network() {
        let key = |s: &str, len| address_key(s.parse().unwrap(), len).to_string();
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 128), "2001:db8:1:2:3:4:5:6");
        assert_eq!(key("2001:db8:1:2:3:4:5:6", 0), "::");
        assert_eq!(key("::ffff:203.0.113.9", 64), "203.0.113.9");
        assert_eq!(key("203.0.113.9", 64), "203.0.113.9");
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
