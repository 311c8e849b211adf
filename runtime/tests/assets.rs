//! The client's files under `/pkg` as a browser gets them: after a release build (a site with
//! `manifest.json`) the page names the hashed files, which come cached for good and compressed
//! when the browser accepts it; after a dev build the plain names, `no-cache`.

use std::path::{Path, PathBuf};

use ferrule::App;
use ferrule::testing::TestServer;
use leptos::prelude::*;

#[component]
fn Root() -> impl IntoView {
    view! { <h1>"Shop"</h1> }
}

/// A site directory as the client build leaves it: plain names, and with `release` the hashed
/// copies, their `.br`/`.gz` and the manifest (contents stand in for real files).
fn site(tag: &str, release: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrule-assets-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for (file, text) in [
        ("shop.js", "plain js"),
        ("shop_bg.wasm", "plain wasm"),
        ("shop.css", "plain css"),
    ] {
        std::fs::write(pkg.join(file), text).unwrap();
    }
    if release {
        for file in ["shop.0a1b.js", "shop.0a1b_bg.wasm", "shop.9c8d.css"] {
            std::fs::write(pkg.join(file), format!("raw {file}")).unwrap();
            std::fs::write(pkg.join(format!("{file}.br")), format!("br {file}")).unwrap();
            std::fs::write(pkg.join(format!("{file}.gz")), format!("gz {file}")).unwrap();
        }
        std::fs::write(
            dir.join(ferrule::ssr::MANIFEST_FILE),
            r#"{"files": {"shop.js": "shop.0a1b.js", "shop_bg.wasm": "shop.0a1b_bg.wasm", "shop.css": "shop.9c8d.css"}}"#,
        )
        .unwrap();
    }
    dir
}

fn pages(site: &Path) -> axum::Router {
    let options = leptos::config::LeptosOptions::builder()
        .output_name("shop")
        .site_root(site.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build();
    ferrule::ssr::pages(options, ferrule::ssr::shell("Shop", Root), Root)
}

async fn serve(site: &Path) -> TestServer {
    TestServer::start(App::new().merge(pages(site)))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_file_kept_by_shared_caches_carries_no_visitors_cookie() {
    let site = site("cookies", true);
    let db = ferrule::testing::TestDatabase::create("sqlite://assets")
        .await
        .unwrap();
    let server = TestServer::start_on(db, |db| App::new().database(db).merge(pages(&site)))
        .await
        .unwrap();
    // A first visit: the page gives the visitor a CSRF token of their own...
    let page = server.get("/").await.unwrap();
    assert!(page.cookie("csrftoken").is_some(), "{:?}", page.headers);
    // ...but a file any visitor may get from a CDN's copy must not carry one.
    let wasm = server.get("/pkg/shop.0a1b_bg.wasm").await.unwrap();
    assert_eq!(wasm.header("cache-control"), Some(ferrule::ssr::IMMUTABLE));
    assert_eq!(wasm.header("set-cookie"), None, "{:?}", wasm.headers);
    // A file revalidated with the server is no shared copy: it may still set one.
    let plain = server.get("/pkg/shop.css").await.unwrap();
    assert!(plain.cookie("csrftoken").is_some(), "{:?}", plain.headers);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_release_page_names_its_hashed_files_served_compressed_and_immutable() {
    let site = site("release", true);
    let server = serve(&site).await;
    let page = server.get("/").await.unwrap();
    let html = String::from_utf8_lossy(&page.body);
    for name in [
        "/pkg/shop.9c8d.css",
        "/pkg/shop.0a1b.js",
        "/pkg/shop.0a1b_bg.wasm",
    ] {
        assert!(html.contains(name), "{name} in {html}");
    }
    assert!(!html.contains("/pkg/shop.css"), "{html}");

    let wasm = server
        .http(
            "GET",
            "/pkg/shop.0a1b_bg.wasm",
            &[("accept-encoding", "gzip, deflate, br")],
            b"",
        )
        .await
        .unwrap();
    assert_eq!(wasm.status, 200);
    assert_eq!(wasm.body, b"br shop.0a1b_bg.wasm");
    assert_eq!(wasm.header("content-encoding"), Some("br"));
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.header("cache-control"), Some(ferrule::ssr::IMMUTABLE));
    assert_eq!(wasm.header("vary"), Some("accept-encoding"));

    let gz = server
        .http(
            "GET",
            "/pkg/shop.9c8d.css",
            &[("accept-encoding", "gzip")],
            b"",
        )
        .await
        .unwrap();
    assert_eq!(gz.body, b"gz shop.9c8d.css");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.header("content-type").unwrap().starts_with("text/css"));

    let plain = server.get("/pkg/shop.0a1b.js").await.unwrap();
    assert_eq!(plain.body, b"raw shop.0a1b.js");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("cache-control"), Some(ferrule::ssr::IMMUTABLE));

    // Only hashed names are kept for good; a missing one is not kept at all.
    let unhashed = server.get("/pkg/shop.css").await.unwrap();
    assert_eq!(unhashed.header("cache-control"), Some("no-cache"));
    let missing = server.get("/pkg/shop.ffff.css").await.unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("cache-control"), Some("no-cache"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_dev_page_names_the_plain_files_revalidated_on_every_use() {
    let site = site("dev", false);
    let server = serve(&site).await;
    let html = String::from_utf8_lossy(&server.get("/").await.unwrap().body).into_owned();
    for name in ["/pkg/shop.css", "/pkg/shop.js", "/pkg/shop_bg.wasm"] {
        assert!(html.contains(name), "{name} in {html}");
    }
    let wasm = server
        .http(
            "GET",
            "/pkg/shop_bg.wasm",
            &[("accept-encoding", "br")],
            b"",
        )
        .await
        .unwrap();
    assert_eq!(wasm.body, b"plain wasm", "no .br copy: the file itself");
    assert_eq!(wasm.header("content-encoding"), None);
    assert_eq!(wasm.header("cache-control"), Some("no-cache"));
    server.stop().await.unwrap();
}
