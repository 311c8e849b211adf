//! Where the app is mounted: `""` when it is served whole, `/app` when a host axum app nests it
//! there (`Router::nest("/app", parts.router)`, see [`App::into_parts`](crate::App::into_parts)).
//!
//! Inside the app every path stays the app's own: routes, redirects, `next`, the page a socket
//! event names. The prefix is added only where a path leaves for the browser: the page's links
//! to its scripts and styles, the client's socket and upload addresses (the page tells the client
//! in `<meta name="ferrule-base">`), Ferrule's own forms, and the `Location` of redirects, which
//! [`settle`] rewrites on the way out, as a reverse proxy would.

use std::sync::Arc;

use axum::extract::OriginalUri;
use http::{HeaderValue, header};

/// The path prefix the request came in under, in every request's extensions: `""` at the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountPath(Arc<str>);

impl MountPath {
    /// The prefix, without a trailing `/` (`""` at the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` (the app's own, starting with `/`) as the browser must ask for it.
    pub fn join(&self, path: &str) -> String {
        crate::protocol::mounted_path(&self.0, path)
    }

    /// The prefix of the request with these parts (`""` when none was recorded).
    pub fn of(parts: &http::request::Parts) -> &str {
        parts.extensions.get::<Self>().map_or("", Self::as_str)
    }
}

/// The prefix that `original` (the path the client asked for) has over `inner` (the path the
/// app sees once the host's router stripped its prefix), or `""`.
fn prefix_of<'a>(original: &'a str, inner: &str) -> &'a str {
    let prefix = match original.strip_suffix(inner) {
        Some(prefix) => prefix.trim_end_matches('/'),
        // `/app` reaches the nested router as `/`.
        None if inner == "/" => original.trim_end_matches('/'),
        None => "",
    };
    // Put in front of a redirect, `//host` or `/\host` would send the browser to another site.
    if prefix.starts_with("//") || prefix.starts_with("/\\") {
        return "";
    }
    prefix
}

/// Records the request's [`MountPath`] and puts it in front of a site-absolute `Location` on
/// the way out, so a redirect the app wrote as `/login` sends the browser to `/app/login`.
pub(crate) async fn settle(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let prefix = req
        .extensions()
        .get::<OriginalUri>()
        .map(|original| prefix_of(original.path(), req.uri().path()).to_owned())
        .unwrap_or_default();
    if prefix.is_empty() {
        req.extensions_mut().insert(MountPath::default());
        return next.run(req).await;
    }
    req.extensions_mut()
        .insert(MountPath(Arc::from(prefix.as_str())));
    let mut resp = next.run(req).await;
    let moved = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        // `//host/...` is another site; only the app's own absolute paths move.
        .filter(|l| l.starts_with('/') && !l.starts_with("//"))
        .and_then(|l| HeaderValue::from_str(&crate::protocol::mounted_path(&prefix, l)).ok());
    if let Some(location) = moved {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::prefix_of;

    #[test]
    fn the_prefix_is_what_the_host_stripped() {
        assert_eq!(prefix_of("/_event/", "/_event/"), "", "served whole");
        assert_eq!(prefix_of("/app/_event/", "/_event/"), "/app");
        assert_eq!(prefix_of("/a/b/login", "/login"), "/a/b", "nested twice");
        assert_eq!(prefix_of("/app", "/"), "/app", "the mount point itself");
        assert_eq!(prefix_of("/app/", "/"), "/app");
        assert_eq!(prefix_of("/", "/"), "");
        assert_eq!(
            prefix_of("/elsewhere", "/login"),
            "",
            "not a suffix: no guess"
        );
        assert_eq!(
            prefix_of("//evil.example/login", "/login"),
            "",
            "never another site"
        );
        assert_eq!(prefix_of("/\\evil.example/login", "/login"), "");
    }
}
