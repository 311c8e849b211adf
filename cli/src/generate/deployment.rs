//! `ferrule generate deployment`: the files that run the app elsewhere — a multi-stage
//! `Dockerfile` (with its `.dockerignore`) that builds a dist directory and runs it as an
//! unprivileged user, and a systemd unit for a dist directory on a server.

use std::path::Path;

use anyhow::{Result, bail};

use super::{AppDir, Plan, render, split_header};

const DOCKERFILE: &str = include_str!("../../generators/deployment/Dockerfile.liquid");
const DOCKERIGNORE: &str = include_str!("../../generators/deployment/dockerignore.liquid");
const SERVICE: &str = include_str!("../../generators/deployment/service.liquid");

/// The Rust image the Dockerfile builds with (the toolchain this release is tested on).
const RUST_IMAGE_VERSION: &str = "1.95";

/// The binaryen (npm) whose wasm-opt the Dockerfile installs: the one tested with Ferrule's
/// clients (Debian's older one breaks them).
const BINARYEN_VERSION: &str = "132";

/// What `ferrule generate deployment` writes into the app at `root`.
pub(super) fn plan(root: &Path) -> Result<Plan> {
    let app = AppDir { root, auth: false };
    let name = app.package_name()?;
    let files = [
        ("Dockerfile".to_owned(), DOCKERFILE),
        (".dockerignore".to_owned(), DOCKERIGNORE),
        (format!("deploy/{name}.service"), SERVICE),
    ];
    for (file, _) in &files {
        if root.join(file).exists() {
            bail!("{file} already exists: remove it first to generate it again");
        }
    }
    let globals = liquid::object!({
        "name": name,
        "ferrule_version": env!("CARGO_PKG_VERSION"),
        "rust_version": RUST_IMAGE_VERSION,
        "binaryen_version": BINARYEN_VERSION,
    });
    let mut plan = Plan::default();
    for (file, template) in files {
        let (header, text) = split_header(&render(template, globals.clone())?)?;
        if !header.insert.is_empty() {
            bail!("the deployment templates add no lines to the app's files");
        }
        plan.notes.extend(header.notes);
        plan.create.push((file.into(), text));
    }
    Ok(plan)
}
