//! `cargo xtask site` and `cargo xtask e2e`: the examples' browser clients, and the browser and
//! protocol-peer tests against them.

use crate::*;

/// The examples whose pages the browser tests drive.
pub(crate) const E2E_APPS: [&str; 4] = ["counter", "uploads", "shop", "chat"];

/// Builds app `package`'s browser client into its site directory.
pub(crate) fn site(package: &str, release: bool) -> Result<PathBuf> {
    let opts = ferrule_cli::site::SiteOptions::new(&root()?, package, release)?;
    eprintln!(
        "==> browser client of {package} ({})",
        if release { "wasm-release" } else { "wasm-dev" }
    );
    let report = ferrule_cli::site::build_client(&opts)?;
    eprintln!(
        "    client: compiled in {:.1}s, wasm-bindgen {:.1}s, {} KiB of wasm → {}",
        report.compile.as_secs_f64(),
        report.bindgen.as_secs_f64(),
        report.wasm_bytes / 1024,
        report.site_root.display()
    );
    Ok(report.site_root)
}

/// The browser tests (headless Chromium) and the protocol-peer tests (official socket.io
/// packages under node), with the examples' clients and servers built first; their results are
/// added to `total`.
pub(crate) fn e2e(total: &mut Tally) -> Result<()> {
    let missing: Vec<&str> = [
        // rustup's wasm32 std, or Debian's rustc-web route (`site` picks whichever exists).
        (
            ferrule_cli::site::wasm_cargo().is_err(),
            "the wasm32 target",
        ),
        (
            !Path::new(CHROMIUM).exists(),
            "Chromium (/usr/bin/chromium)",
        ),
        (which("node").is_none(), "node"),
    ]
    .into_iter()
    .filter_map(|(gone, what)| gone.then_some(what))
    .collect();
    if !missing.is_empty() {
        return total.skip_suite(
            "e2e (browser and protocol-peer tests)",
            &format!(
                "no {} (`cargo xtask setup` installs them)",
                missing.join(", no ")
            ),
        );
    }
    let mut bin_dir = None;
    for app in E2E_APPS {
        site(app, false)?;
        let opts = ferrule_cli::site::SiteOptions::new(&root()?, app, false)?;
        eprintln!("==> {app} server");
        let server = ferrule_cli::site::build_server(&opts)?;
        bin_dir = server.parent().map(Path::to_path_buf);
    }
    let bin_dir = bin_dir.context("no example to test")?;
    // The counter again, mounted in a host axum app (`counter-host`): its lib is built already.
    eprintln!("==> counter-host server");
    let status = cargo()
        .current_dir(root()?)
        .args(["build", "-p", "counter", "--bin", "counter-host"])
        .env(
            "CARGO_TARGET_DIR",
            &ferrule_cli::site::SiteOptions::new(&root()?, "counter", false)?.target_dir,
        )
        .status()
        .context("could not run cargo for counter-host")?;
    if !status.success() {
        bail!("counter-host did not compile; the errors are above");
    }
    let opts = ferrule_cli::site::SiteOptions::new(&root()?, E2E_APPS[0], false)?;
    let artifacts = opts.target_dir.join("e2e-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let mut cmd = Command::new("node");
    cmd.arg("--test-concurrency=1")
        .current_dir(root()?.join("e2e"))
        .env("E2E_BIN_DIR", &bin_dir)
        .env("E2E_ARTIFACTS", &artifacts)
        .env("E2E_CHROMIUM", CHROMIUM);
    let files = e2e_files(&root()?.join("e2e"))?;
    let result = run_node_files(
        "node --test e2e (Chromium, socket.io peers)",
        &mut cmd,
        &files,
        total,
        |_| {},
    );
    if result.is_err() && artifacts.is_dir() {
        eprintln!("    screenshots of the failures: {}", artifacts.display());
    }
    result
}

/// The test files of `cargo xtask e2e`: every `*.test.mjs` in `dir`, which must include one per
/// example and the protocol peers' (a file renamed away would otherwise drop its tests unseen).
fn e2e_files(dir: &Path) -> Result<Vec<String>> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.mjs"))
        .collect();
    files.sort();
    let expected = E2E_APPS.iter().copied().chain(["peers"]);
    let missing: Vec<String> = expected
        .map(|name| format!("{name}.test.mjs"))
        .filter(|file| !files.contains(file))
        .collect();
    if !missing.is_empty() {
        bail!(
            "e2e/ lacks the test files {}: every example has its browser tests",
            missing.join(", ")
        );
    }
    Ok(files)
}
