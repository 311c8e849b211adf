//! Which redirect targets are safe: the one rule the login form, the handlers' redirects and
//! the browser's navigation share.

/// `target` when it is a path on this site, safe to redirect to: it starts with one `/`, and
/// has no backslash, no whitespace and no control character anywhere (browsers drop or rewrite
/// those, so `/\t/evil.example` would become `//evil.example`, another site). Anything else
/// (`//host`, `https://..`, `javascript:..`) is `None`: callers fall back to `/`.
pub fn same_site_path(target: &str) -> Option<&str> {
    let rest = target.strip_prefix('/')?;
    if rest.starts_with('/')
        || !target.bytes().all(|b| b.is_ascii_graphic())
        || target.contains('\\')
    {
        return None;
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_redirect_targets() {
        for ok in [
            "/",
            "/orders",
            "/orders?page=2&q=a%20b",
            "/a/b#top",
            "/%2F%2Fevil.example",
        ] {
            assert_eq!(same_site_path(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "orders",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{a0}/evil.example",
            "/a\\b",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            " /orders",
            "/orders ",
        ] {
            assert_eq!(same_site_path(bad), None, "{bad:?}");
        }
    }
}
