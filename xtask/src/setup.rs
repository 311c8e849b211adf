//! `cargo xtask setup`: what building and testing need on a fresh machine (the wasm target,
//! Chromium, node modules), installed once.

use crate::*;

pub(crate) fn has_component(sub: &str) -> bool {
    cargo()
        .args([sub, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn setup() -> Result<()> {
    setup_build()?;
    setup_tests()?;
    eprintln!("setup: toolchain ready");
    Ok(())
}

/// What building and running an app needs, and no more: what `cargo xtask demo` installs.
/// rustfmt formats what `ferrule new` writes; the wasm32 target builds the browser client;
/// OpenSSL's headers are for the template engine's libgit2.
pub(crate) fn setup_build() -> Result<()> {
    add_components(&[("fmt", "rustfmt")])?;
    if !has_wasm_target() {
        // The browser client needs it; the protocol module is checked against it in `test`.
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Where rustup cannot fetch the target: Debian's rustc with its std source and
            // wasm-ld; the site build then compiles std itself (`-Zbuild-std`).
            eprintln!(
                "!!! rustup could not add wasm32-unknown-unknown; trying Debian's rustc-web route"
            );
            apt_install(&["rustc-web", "cargo-web", "rust-web-src", "lld-22"])?;
        }
    }
    // wasm-bindgen needs no install: the `ferrule-cli` library links the version Cargo.lock pins.
    // cargo-generate (in `ferrule new`) links libgit2 with HTTPS, which needs OpenSSL's headers.
    let has_openssl = Command::new("pkg-config")
        .args(["--exists", "openssl"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_openssl {
        apt_install(&["libssl-dev", "pkg-config"])?;
    }
    Ok(())
}

/// What the tests need beside: clippy, Chromium, psql, node and the browser tests' packages.
fn setup_tests() -> Result<()> {
    add_components(&[("clippy", "clippy")])?;
    if !Path::new(CHROMIUM).exists() {
        apt_install(&["chromium"])?;
    }
    // The generated PostgreSQL app's browser tests make their databases with psql.
    if which("psql").is_none() {
        apt_install(&["postgresql-client"])?;
    }
    if which("node").is_none() || which("npm").is_none() {
        apt_install(&["nodejs", "npm"])?;
    }
    let e2e = root()?.join("e2e");
    let lock = e2e.join("package-lock.json");
    let installed = e2e.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&installed)) {
        (Ok(l), Ok(i)) => i.modified()? >= l.modified()?,
        _ => false,
    };
    if !fresh {
        run(
            "npm ci (playwright-core, socket.io, socket.io-client, binaryen's wasm-opt)",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&e2e),
        )?;
    }
    Ok(())
}

/// `rustup component add` for each (cargo subcommand, component) not there yet.
fn add_components(components: &[(&str, &str)]) -> Result<()> {
    for (sub, component) in components {
        if !has_component(sub) {
            run(
                &format!("rustup component add {component}"),
                Command::new("rustup").args(["component", "add", component]),
            )?;
        }
    }
    Ok(())
}

/// Debian's headless Chromium, driven by playwright-core (never a downloaded browser).
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Installs Debian packages (as root, or through sudo), updating the index once if needed.
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    let what = format!("apt-get install {}", packages.join(" "));
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if is_root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd.status().is_ok_and(|s| s.success())
    };
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    eprintln!("==> {what}");
    if apt(&args) || (apt(&["update", "-q"]) && apt(&args)) {
        return Ok(());
    }
    bail!("{what} failed: install them by hand (the browser tests and the wasm client need them)")
}

/// Whether the active toolchain has the wasm32 standard library.
pub(crate) fn has_wasm_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
}
