//! The Content-Security-Policy of pages: every request gets a fresh nonce, the page's scripts
//! carry it (the shell hands it to Leptos, whose hydration scripts use it), and the policy on
//! an HTML answer allows scripts with that nonce only, so a script injected into a page
//! (through an unescaped value, say) does not run.

use std::sync::Arc;

use http::{HeaderValue, header};

use crate::middleware::{Request, Response};

/// The nonce of the request being answered, for the `nonce` attribute of the page's scripts.
#[derive(Clone, Debug)]
pub struct CspNonce(pub Arc<str>);

/// What the `content_security_policy` setting asks for.
#[derive(Clone, Debug)]
pub(crate) struct CspPolicy {
    /// The policy with `{nonce}` in it; empty: no policy.
    pub(crate) template: Arc<str>,
    /// Add `frame-ancestors 'none'` (the `header_frame_deny` setting).
    pub(crate) frame_deny: bool,
}

impl CspPolicy {
    /// The header value for `nonce`; `None` when the policy is off or not a header value.
    fn header_for(&self, nonce: &str) -> Option<HeaderValue> {
        let mut value = self.template.replace("{nonce}", nonce);
        if self.frame_deny {
            value.push_str("; frame-ancestors 'none'");
        }
        match HeaderValue::from_str(&value) {
            Ok(v) => Some(v),
            Err(e) => {
                // Settings::validate refuses such a policy at startup; never expected here.
                tracing::error!(error = %e, "content_security_policy is no header value; not sent");
                None
            }
        }
    }
}

/// Axum middleware: a nonce for every request, and the policy on every HTML answer that has
/// none of its own.
pub(crate) async fn content_security_policy(
    policy: Arc<CspPolicy>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    if policy.template.is_empty() {
        return next.run(req).await;
    }
    let nonce: Arc<str> = crate::net::random_hex_128().into();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut resp = next.run(req).await;
    let is_html = crate::net::has_content_type(resp.headers(), "text/html");
    if is_html
        && !resp.headers().contains_key(header::CONTENT_SECURITY_POLICY)
        && let Some(value) = policy.header_for(&nonce)
    {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_goes_into_the_policy_and_framing_is_denied_on_request() {
        let policy = CspPolicy {
            template: crate::settings::DEFAULT_CONTENT_SECURITY_POLICY.into(),
            frame_deny: true,
        };
        let v = policy.header_for("abc123").unwrap();
        let v = v.to_str().unwrap();
        assert!(
            v.contains("script-src 'nonce-abc123' 'strict-dynamic'"),
            "{v}"
        );
        assert!(v.ends_with("; frame-ancestors 'none'"), "{v}");
        let open = CspPolicy {
            frame_deny: false,
            ..policy
        };
        assert!(
            !open
                .header_for("x")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("frame-ancestors")
        );
    }
}
