//! Live reload for `ferrule dev`: a debug build started with `FERRULE_LIVE_RELOAD=1` serves
//! `/_dev/reload.js`, which every page loads, and `/_dev/reload`, an event stream that says
//! which server this is (a new one after a rebuild makes the page reload), when the site's
//! stylesheet changed (swapped in place, no reload), and when the last build failed (shown over
//! the page, with the compiler's text, until a good build).
//!
//! The stream polls two files of the site directory four times a second: the stylesheet
//! `ferrule dev` rebundles on a change under `style/`, and [`BUILD_ERROR_FILE`], which it writes
//! when a build fails and removes when one succeeds. Polling keeps the server free of a file
//! watcher and the CLI free of a channel to the server; both only write files.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::Extension;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use leptos::config::LeptosOptions;

use crate::lifespan::Stopping;

/// The environment variable `ferrule dev` sets to turn live reload on.
pub const LIVE_RELOAD_ENV: &str = "FERRULE_LIVE_RELOAD";

/// Where in the site directory `ferrule dev` writes the text of a failed build.
pub const BUILD_ERROR_FILE: &str = "build-error.txt";

/// The script's path, which the shell loads when live reload is on.
pub(crate) const SCRIPT_PATH: &str = "/_dev/reload.js";

const STREAM_PATH: &str = "/_dev/reload";
const POLL: Duration = Duration::from_millis(250);

/// Whether this process serves live reload: a debug build (never a release one), started with
/// [`LIVE_RELOAD_ENV`] set to `1` or `true`.
pub fn live_reload_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        cfg!(debug_assertions)
            && std::env::var(LIVE_RELOAD_ENV).is_ok_and(|v| v == "1" || v == "true")
    })
}

/// This server's identity on the stream: a page that saw another one reloads.
fn server_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{}-{started}", std::process::id())
    })
}

/// The two routes, for the site of `options`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let site = PathBuf::from(&*options.site_root);
    let files = Watched {
        stylesheet: site
            .join(&*options.site_pkg_dir)
            .join(format!("{}.css", options.output_name)),
        build_error: site.join(BUILD_ERROR_FILE),
    };
    Router::new().route(SCRIPT_PATH, get(script)).route(
        STREAM_PATH,
        get(move |stopping: Option<Extension<Stopping>>| {
            stream(files.clone(), stopping.map(|Extension(s)| s))
        }),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        include_str!("live_reload.js"),
    )
}

#[derive(Clone)]
struct Watched {
    stylesheet: PathBuf,
    build_error: PathBuf,
}

/// What the stream last told the page.
struct Seen {
    stylesheet: Option<SystemTime>,
    build_error: Option<String>,
}

impl Watched {
    fn look(&self) -> Seen {
        Seen {
            stylesheet: std::fs::metadata(&self.stylesheet)
                .and_then(|m| m.modified())
                .ok(),
            build_error: std::fs::read_to_string(&self.build_error).ok(),
        }
    }
}

async fn stream(
    files: Watched,
    stopping: Option<Stopping>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let seen = files.look();
    let mut first = vec![
        Event::default()
            .event("hello")
            .data(server_id())
            .retry(Duration::from_millis(150)),
    ];
    if let Some(text) = &seen.build_error {
        first.push(build_error(text));
    }
    let events = futures_util::stream::unfold(
        (files, seen, first, stopping),
        |(files, mut seen, mut pending, stopping)| async move {
            loop {
                if !pending.is_empty() {
                    let event = pending.remove(0);
                    return Some((Ok(event), (files, seen, pending, stopping)));
                }
                // Ends the stream when the server stops, so a graceful shutdown (a restart by
                // `ferrule dev`) does not wait for open pages.
                match &stopping {
                    Some(stopping) => tokio::select! {
                        () = stopping.stopped() => return None,
                        () = tokio::time::sleep(POLL) => {}
                    },
                    None => tokio::time::sleep(POLL).await,
                }
                let now = files.look();
                // Every event carries data: a browser drops an event without any.
                if now.stylesheet != seen.stylesheet && now.stylesheet.is_some() {
                    pending.push(Event::default().event("css").data("changed"));
                }
                if now.build_error != seen.build_error {
                    pending.push(match &now.build_error {
                        Some(text) => build_error(text),
                        None => Event::default().event("build-ok").data("ok"),
                    });
                }
                seen = now;
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn build_error(text: &str) -> Event {
    // JSON keeps the compiler's newlines inside one event's data.
    let data = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    Event::default().event("build-error").data(data)
}
