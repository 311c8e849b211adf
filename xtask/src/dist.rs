//! The `dist` stage of `cargo xtask generated`: a generated app through `ferrule build --dist`
//! (its one release build), served from another working directory, checked over raw HTTP and
//! in Chromium (`e2e/dist.e2e.mjs`).

use std::io::{Read, Write};

use crate::*;

/// The dist stage; `ferrule` is the workspace's command, `apps`/`apps_target` where generated
/// apps and their builds go.
pub(crate) fn dist_stage(
    root: &Path,
    ferrule: &Path,
    apps: &Path,
    apps_target: &Path,
    target_dir: &Path,
    browsers: bool,
    total: &mut Tally,
) -> Result<()> {
    let app = new_generated(
        root,
        apps,
        "dist-app",
        Database::Sqlite,
        true,
        Some(ferrule_cli::new::registry_ferrule_dep()),
    )?;
    let dist = apps.join("dist-app-dist");
    let _ = std::fs::remove_dir_all(&dist);
    run(
        "ferrule build --dist (release: wasm-opt, hashed and compressed client)",
        Command::new(ferrule)
            .args(["build", "--dist"])
            .arg(&dist)
            .current_dir(&app)
            .env("CARGO_TARGET_DIR", apps_target),
    )?;
    // Somewhere with no Ferrule.toml, no site and no database: all of them come from the dist.
    let elsewhere = apps.join("dist-elsewhere");
    let _ = std::fs::remove_dir_all(&elsewhere);
    std::fs::create_dir_all(&elsewhere)?;
    let bin = dist.join("dist-app");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .current_dir(&elsewhere)
            .env_remove("DATABASE_URL")
            .env_remove("FERRULE_SITE_ROOT")
            .env_remove("FERRULE_CONFIG")
            .env("FERRULE_ADDR", &addr);
        cmd
    };
    run(
        "dist-app migrate (from another directory)",
        &mut server(&["migrate"]),
    )?;
    if !dist.join("data/dist_app.sqlite3").is_file() {
        bail!("migrate made no database in the dist's data/ directory");
    }
    let mut child = server(&["serve"])
        .spawn()
        .context("could not start the dist's server")?;
    let checked = (|| -> Result<()> {
        wait_for_page(&addr, "<html", Duration::from_secs(60))?;
        check_headers(&addr, &dist)?;
        if browsers {
            run_node_files(
                "the dist in Chromium: hydrated from hashed, compressed files",
                Command::new("node")
                    .current_dir(root.join("e2e"))
                    .env("E2E_URL", format!("http://{addr}"))
                    .env("E2E_ARTIFACTS", target_dir.join("e2e-artifacts"))
                    .env("E2E_CHROMIUM", CHROMIUM),
                &["dist.e2e.mjs".to_owned()],
                total,
                |_| {},
            )?;
        }
        Ok(())
    })();
    if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
        eprintln!("    could not stop the dist's server: {e}");
    }
    checked?;
    let stray: Vec<_> = std::fs::read_dir(&elsewhere)?.flatten().collect();
    if !stray.is_empty() {
        bail!(
            "the dist's server wrote into its working directory: {:?}",
            stray.iter().map(|e| e.file_name()).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// The page names the hashed files; each comes as brotli when asked, plain when not, with the
/// right type and `immutable`; a plain name (a dev build's) is not in the dist.
fn check_headers(addr: &str, dist: &Path) -> Result<()> {
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        dist.join("site").join(ferrule_cli::assets::MANIFEST_FILE),
    )?)?;
    let wasm = manifest["files"]["dist_app_bg.wasm"]
        .as_str()
        .context("the manifest names the wasm")?;
    let css = manifest["files"]["dist_app.css"]
        .as_str()
        .context("the manifest names the stylesheet")?;
    let (head, page) = get(addr, "/", None)?;
    let page = String::from_utf8_lossy(&page);
    for name in [wasm, css] {
        if !page.contains(&format!("/pkg/{name}")) {
            bail!("the page does not refer to {name}:\n{head}");
        }
    }
    let raw_size = std::fs::metadata(dist.join("site/pkg").join(wasm))?.len();
    let br_size = std::fs::metadata(dist.join("site/pkg").join(format!("{wasm}.br")))?.len();
    let path = format!("/pkg/{wasm}");
    let (br, body) = get(addr, &path, Some("br, gzip"))?;
    expect(&br, &path, "content-encoding: br")?;
    expect(&br, &path, "content-type: application/wasm")?;
    expect(
        &br,
        &path,
        "cache-control: public, max-age=31536000, immutable",
    )?;
    expect(&br, &path, "vary: accept-encoding")?;
    if body.len() as u64 != br_size {
        bail!(
            "{path} with br: {} bytes, its .br has {br_size}",
            body.len()
        );
    }
    let (plain, body) = get(addr, &path, None)?;
    if plain.to_ascii_lowercase().contains("content-encoding") {
        bail!("{path} without Accept-Encoding came encoded:\n{plain}");
    }
    if body.len() as u64 != raw_size {
        bail!(
            "{path} plain: {} bytes, the file has {raw_size}",
            body.len()
        );
    }
    let (gz, _) = get(addr, &format!("/pkg/{css}"), Some("gzip"))?;
    expect(&gz, css, "content-encoding: gzip")?;
    let (missing, _) = get(addr, "/pkg/dist_app.css", Some("br"))?;
    expect(&missing, "/pkg/dist_app.css", "404")?;
    expect(&missing, "/pkg/dist_app.css", "cache-control: no-cache")?;
    eprintln!(
        "    dist: {wasm} {} KiB, {} KiB as brotli, served from another directory",
        raw_size / 1024,
        br_size / 1024
    );
    Ok(())
}

fn expect(head: &str, what: &str, line: &str) -> Result<()> {
    if head.to_ascii_lowercase().contains(line) {
        Ok(())
    } else {
        bail!("{what}: no `{line}` in\n{head}")
    }
}

/// `GET path` over HTTP/1.0 (the body ends with the connection); returns the head and body.
fn get(addr: &str, path: &str, encoding: Option<&str>) -> Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let accept = encoding.map_or_else(String::new, |e| format!("Accept-Encoding: {e}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{accept}\r\n")?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&out[..at]).into_owned();
    Ok((head, out[at + 4..].to_vec()))
}
