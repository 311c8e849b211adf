//! Leptos pages on the server: rendered through the app's HTTP middleware chain, with the built
//! client (wasm, JS, CSS) served from the site directory.
//!
//! ```ignore
//! let options = ferrule::ssr::site_options("counter");
//! let shell = ferrule::ssr::shell("Ferrule counter", Root);
//! App::new().merge(ferrule::ssr::pages(options, shell, Root))
//! ```
//!
//! [`shell`] renders the whole document (with `<HydrationScripts>`), the app's `Root` component
//! (not called `App`, which is Ferrule's builder) the routes; the router
//! that [`pages`] returns is merged into [`App`](crate::App) like any other, so the page routes
//! sit behind the same middleware as every HTTP route.

use std::path::{Path, PathBuf};

use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::IntoView;
use leptos_axum::{LeptosRoutes, generate_route_list};

mod assets;
mod live_reload;

pub use assets::{IMMUTABLE, MANIFEST_FILE};
pub use live_reload::{BUILD_ERROR_FILE, LIVE_RELOAD_ENV, live_reload_enabled};

/// The environment variable naming the site directory (the client build's output).
pub const SITE_ROOT_ENV: &str = "FERRULE_SITE_ROOT";

/// Where the built client of app `name` (its crate name, `_` for `-`) is: `FERRULE_SITE_ROOT`
/// when set, else `site` of a dist directory the binary runs from (`ferrule build --dist`),
/// else `<target dir>/site/<name>` beside the running binary (where `cargo xtask site` and
/// `ferrule build` put it), else `site` in the working directory.
pub fn site_root(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(SITE_ROOT_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dist) = crate::settings::dist_dir() {
        return dist.join("site");
    }
    let name = name.replace('-', "_");
    let beside_binary = std::env::current_exe().ok().and_then(|exe| {
        // <target>/<profile>/<bin> or <target>/<profile>/deps/<test bin>
        exe.ancestors()
            .skip(1)
            .take(3)
            .map(|dir| dir.join("site").join(&name))
            .find(|dir| dir.join("pkg").is_dir())
    });
    beside_binary.unwrap_or_else(|| PathBuf::from("site"))
}

/// Leptos options for app `name` (the crate name of its client), with the site directory of
/// [`site_root`] and the client's files under `/pkg`.
pub fn site_options(name: &str) -> LeptosOptions {
    let root = site_root(name);
    LeptosOptions::builder()
        .output_name(name.replace('-', "_"))
        .site_root(root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build()
}

/// The page routes of `app` rendered inside `shell`, plus the client's files under `/pkg`.
///
/// A release build's hashed files (named in the site's `manifest.json`, read here once) are
/// served `immutable` and the pages point at them; plain names (a dev build) are served
/// `no-cache`: browsers keep them and revalidate with `If-Modified-Since`, so a rebuilt client is
/// picked up at once and an unchanged one costs a 304. Either is served from its `.br` or `.gz`
/// copy when there is one and the browser accepts it.
pub fn pages<Shell, ShellView, AppFn, AppView>(
    options: LeptosOptions,
    shell: Shell,
    app: AppFn,
) -> Router
where
    Shell: Fn(LeptosOptions) -> ShellView + Clone + Send + Sync + 'static,
    ShellView: IntoView + 'static,
    AppFn: Fn() -> AppView + Clone + Send + Sync + 'static,
    AppView: IntoView + 'static,
{
    let routes = generate_route_list(app);
    let pkg_dir = Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    if !pkg_dir.is_dir() {
        tracing::warn!(
            dir = %pkg_dir.display(),
            "the client is not built: pages render but will not hydrate (build it with `cargo xtask site`, or set {SITE_ROOT_ENV})"
        );
    }
    let assets = assets::SiteAssets::load(Path::new(&*options.site_root));
    let files = assets::files(&pkg_dir, &assets);
    // Leptos's hydration scripts name the client after `output_name`: the hashed stem.
    let mut render_options = options.clone();
    render_options.output_name = assets.client_stem(&options.output_name).into();
    let router = Router::new()
        .leptos_routes(&options, routes, move || {
            leptos::prelude::provide_context(assets.clone());
            shell(render_options.clone())
        })
        .layer(axum::middleware::from_fn(render_at_browser_path))
        .layer(axum::middleware::from_fn(load_page))
        // Outside the loaders: the page, not a loader's answer, shows the session's messages.
        .layer(axum::middleware::from_fn(crate::messages::take_for_render))
        .nest_service(&format!("/{}", options.site_pkg_dir), files);
    let router = if live_reload_enabled() {
        router.merge(live_reload::routes(&options))
    } else {
        router
    };
    router.with_state(options)
}

/// Under a host app's prefix, Leptos renders the path the browser asked for (`/app/notes`):
/// its router, given the prefix as its base, matches below it on the server as in the browser,
/// and its links resolve into it. The loaders (outside this layer) saw the app's own path.
async fn render_at_browser_path(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mounted = req
        .extensions()
        .get::<crate::mount::MountPath>()
        .is_some_and(|m| !m.as_str().is_empty());
    if mounted && let Some(original) = req.extensions().get::<axum::extract::OriginalUri>() {
        *req.uri_mut() = original.0.clone();
    }
    next.run(req).await
}

/// Runs the page loaders of a page request before it renders: inside the app's middleware
/// chain (this layer wraps the page routes only), so with the request's user, session and
/// whatever middleware added. What they leave is rendered and embedded for hydration.
async fn load_page(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let loads = req
        .extensions()
        .get::<crate::state::PageLoads>()
        .cloned()
        .filter(|_| req.method() == http::Method::GET || req.method() == http::Method::HEAD);
    let Some(crate::state::PageLoads(loads)) = loads else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let states = loads.load(parts.clone()).await;
    let mut req = axum::extract::Request::from_parts(parts, body);
    if !states.is_empty() {
        req.extensions_mut()
            .insert(crate::state::RenderedLoaded(states));
    }
    next.run(req).await
}

/// The whole HTML document around the app's root component `root`: the page title, the
/// viewport for phones, the site's stylesheet (`/pkg/<app>.css`, or its hashed name after a
/// release build), the hydration scripts, and
/// under `ferrule dev` the live reload script; the scripts carry the request's CSP nonce.
/// What every app renders around its pages, so none carries its own copy.
pub fn shell<Root, RootView>(
    title: impl Into<String>,
    root: Root,
) -> impl Fn(LeptosOptions) -> leptos::prelude::AnyView + Clone + Send + Sync + 'static
where
    Root: Fn() -> RootView + Clone + Send + Sync + 'static,
    RootView: IntoView + 'static,
{
    use leptos::prelude::*;
    let title: String = title.into();
    move |options: LeptosOptions| {
        // The request's CSP nonce goes to Leptos, whose hydration scripts carry it.
        if let Some(nonce) = use_context::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<crate::csp::CspNonce>().cloned())
        {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0));
        }
        // `pages` renders with the client's hashed stem as `output_name`; the stylesheet has a
        // hash of its own.
        let plain = options
            .output_name
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let css = format!("{plain}.css");
        let css =
            use_context::<assets::SiteAssets>().map_or(css.clone(), |a| a.name(&css).to_owned());
        // Under a host app's prefix every address the page gives the browser carries it.
        let base = use_context::<http::request::Parts>()
            .map(|p| crate::mount::MountPath::of(&p).to_owned())
            .unwrap_or_default();
        let stylesheet = format!("{base}/{}/{css}", options.site_pkg_dir);
        let catalogue = use_context::<http::request::Parts>()
            .and_then(|p| crate::i18n::script_url(&p))
            .map(|url| format!("{base}{url}"));
        let browser_log = use_context::<http::request::Parts>()
            .is_some_and(|p| p.extensions.get::<BrowserLog>().is_some());
        let title = title.clone();
        let root = root.clone();
        view! {
            <!DOCTYPE html>
            <html lang=crate::i18n::current_language()>
                <head>
                    <meta charset="utf-8"/>
                    <meta name="viewport" content="width=device-width, initial-scale=1"/>
                    <link rel="icon" href="data:,"/>
                    <title>{title}</title>
                    <link rel="stylesheet" href=stylesheet/>
                    // The page language's texts for `t!` in the browser, before the client.
                    {catalogue.map(|src| {
                        view! { <script src=src nonce=leptos::nonce::use_nonce()></script> }
                    })}
                    {(!base.is_empty())
                        .then(|| {
                            view! { <meta name=crate::protocol::BASE_META content=base.clone()/> }
                        })}
                    {browser_log
                        .then(|| {
                            view! { <meta name=crate::protocol::BROWSER_LOG_META content="on"/> }
                        })}
                    {live_reload_enabled()
                        .then(|| {
                            view! {
                                <script
                                    src=live_reload::SCRIPT_PATH
                                    nonce=leptos::nonce::use_nonce()
                                    defer
                                ></script>
                            }
                        })}
                    <HydrationScripts options root=base.clone()/>
                </head>
                <body>{root()}</body>
            </html>
        }
        .into_any()
    }
}

/// In every request's extensions when the `browser_log` setting is on: the shell then asks the
/// browser client to log its events to the console.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BrowserLog;

/// The CSRF token of the request being rendered, for the `csrf_token` field of a plain HTML form
/// (`None` outside a server render or without the CSRF middleware).
pub fn rendered_csrf_token() -> Option<String> {
    leptos::prelude::use_context::<http::request::Parts>().and_then(|p| {
        p.extensions
            .get::<crate::csrf::CsrfToken>()
            .map(|t| t.0.clone())
    })
}

/// The user of the request being rendered (anonymous outside a server render).
pub fn rendered_user() -> crate::CurrentUser {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<crate::CurrentUser>().cloned())
        .unwrap_or_default()
}
