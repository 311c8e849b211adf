//! The client's files under `/pkg`: a release build's content-hashed names, read from the site's
//! `manifest.json` at startup, and how each file is served.
//!
//! Hashed files never change under their name, so browsers keep them for a year without asking
//! again (`immutable`); plain names (a dev build) are `no-cache`, revalidated on every use so a
//! rebuild shows at once. Both are served from their `.br` or `.gz` copy when the browser takes
//! that encoding and the copy exists, with `Vary: Accept-Encoding` for caches between.
//!
//! Leptos 0.8 has its own hashing (`hash_files`, reading `hash.txt`), but it looks for that file
//! beside the running executable, where every app of a target directory would share one and
//! test binaries in `deps/` find none, and reads it on every render; the manifest lives in the
//! site directory, which moves with the site.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use http::header::{CACHE_CONTROL, VARY};

/// The manifest a release build writes into the site directory (beside `pkg/`).
pub const MANIFEST_FILE: &str = "manifest.json";

/// How hashed files are cached: a year, and never revalidated.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The names a page refers to its client by, read once at startup.
#[derive(Debug, Clone, Default)]
pub(crate) struct SiteAssets {
    /// Logical name (`app.js`) → hashed name (`app.0123456789abcdef.js`); empty for a dev build.
    files: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct Manifest {
    files: BTreeMap<String, String>,
}

impl SiteAssets {
    /// The manifest of the site at `site_root`; none (a dev build) gives the plain names. A
    /// manifest that does not parse is logged and ignored: the plain names are still there.
    pub(crate) fn load(site_root: &Path) -> Self {
        let path = site_root.join(MANIFEST_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Self::default();
        };
        match serde_json::from_str::<Manifest>(&text) {
            Ok(m) => Self { files: m.files },
            Err(e) => {
                tracing::warn!(file = %path.display(), "ignoring an unreadable asset manifest: {e}");
                Self::default()
            }
        }
    }

    /// The name `logical` is served under (itself without a manifest).
    pub(crate) fn name<'a>(&'a self, logical: &'a str) -> &'a str {
        self.files.get(logical).map_or(logical, String::as_str)
    }

    /// The stem Leptos's hydration scripts derive the client's names from: `app.<hash>` for a
    /// release build (`app.<hash>.js`, `app.<hash>_bg.wasm`), else `output_name`.
    pub(crate) fn client_stem(&self, output_name: &str) -> String {
        let js = format!("{output_name}.js");
        self.name(&js)
            .strip_suffix(".js")
            .unwrap_or(output_name)
            .to_owned()
    }

    /// The hashed file names, each cached for good.
    fn hashed(&self) -> HashSet<String> {
        self.files.values().cloned().collect()
    }
}

/// The files of `pkg_dir`, precompressed copies preferred, with the cache headers above.
pub(crate) fn files(pkg_dir: &Path, assets: &SiteAssets) -> Router {
    let hashed = Arc::new(assets.hashed());
    Router::new()
        .fallback_service(
            tower_http::services::ServeDir::new(pkg_dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(axum::middleware::from_fn_with_state(hashed, cache_headers))
}

async fn cache_headers(
    State(hashed): State<Arc<HashSet<String>>>,
    req: Request,
    next: Next,
) -> Response {
    let file = req.uri().path().rsplit('/').next().unwrap_or_default();
    let immutable = hashed.contains(file);
    let mut res = next.run(req).await;
    // An error is never kept: the file may be there on the next try. A 304 carries the same
    // header as the 200 it confirms, or the browser would store the weaker one.
    let kept = res.status().is_success() || res.status() == http::StatusCode::NOT_MODIFIED;
    let cache = if immutable && kept {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let headers = res.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_manifest_the_plain_names_are_served() {
        let none = SiteAssets::load(Path::new("/nonexistent-site"));
        assert_eq!(none.name("app.css"), "app.css");
        assert_eq!(none.client_stem("app"), "app");
    }

    #[test]
    fn a_manifest_names_the_hashed_files() {
        let dir = std::env::temp_dir().join(format!("ferrule-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(MANIFEST_FILE),
            r#"{"files": {"app.js": "app.00ff.js", "app_bg.wasm": "app.00ff_bg.wasm", "app.css": "app.11ee.css"}}"#,
        )
        .unwrap();
        let assets = SiteAssets::load(&dir);
        assert_eq!(assets.client_stem("app"), "app.00ff");
        assert_eq!(assets.name("app.css"), "app.11ee.css");
        assert!(assets.hashed().contains("app.00ff_bg.wasm"));
        std::fs::write(dir.join(MANIFEST_FILE), "{").unwrap();
        assert_eq!(SiteAssets::load(&dir).name("app.css"), "app.css");
    }
}
