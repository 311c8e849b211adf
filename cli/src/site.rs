//! The build pipeline of an app's site: the browser client compiled to wasm32 with feature
//! `hydrate`, passed through wasm-bindgen (as a library, at exactly the `wasm-bindgen` version in
//! Cargo.lock), and the app's CSS, into `<target dir>/site/<app>/pkg`, where the server finds it;
//! a release build then ships them hashed and compressed ([`crate::assets`]).

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::tools::cargo;

use anyhow::{Context, Result, bail};

/// The wasm-bindgen version this build of the CLI generates bindings for. Cargo.lock pins the
/// runtime's `wasm-bindgen` to the same version (`=` requirement in cli/Cargo.toml), and a test
/// checks that the two agree.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The versions of `package` a Cargo.lock's text pins (usually one).
pub fn locked_versions(lock: &str, package: &str) -> Vec<String> {
    let name = format!("\nname = \"{package}\"\n");
    lock.split("[[package]]")
        .filter(|p| p.contains(&name))
        .filter_map(|p| p.split("\nversion = \"").nth(1)?.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// What to build.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// The directory cargo runs in (the app's workspace).
    pub workspace: PathBuf,
    /// The app's package name (`counter`); its library is the client.
    pub package: String,
    /// Where the package's sources are (its `style/*.css` are bundled).
    pub package_dir: PathBuf,
    /// Optimised for size (`wasm-release` profile) instead of quick to build (`wasm-dev`).
    pub release: bool,
    /// The cargo target directory (the server's, and where the site goes).
    pub target_dir: PathBuf,
    /// Another target directory for the client's cargo build, so that it can run while the
    /// server builds (cargo locks a target directory for one build at a time); `None`: the same.
    pub client_target_dir: Option<PathBuf>,
}

/// How long each step took, for progress output and the build-time table in the docs.
#[derive(Debug, Clone)]
pub struct SiteReport {
    /// The site directory (pass it as `FERRULE_SITE_ROOT` when it is not beside the binary).
    pub site_root: PathBuf,
    /// `cargo rustc` of the client.
    pub compile: Duration,
    /// wasm-bindgen.
    pub bindgen: Duration,
    /// Size of the wasm file served to browsers.
    pub wasm_bytes: u64,
    /// A release build's hashed, compressed files (`None` for a dev build, whose names stay
    /// fixed so `ferrule dev` can swap the stylesheet in place).
    pub shipped: Option<crate::assets::Shipped>,
}

impl SiteOptions {
    /// Options for `package` in `workspace`, with the target directory cargo reports.
    pub fn new(workspace: &Path, package: &str, release: bool) -> Result<Self> {
        let meta = cargo_metadata(workspace)?;
        let target_dir = PathBuf::from(
            meta["target_directory"]
                .as_str()
                .context("cargo metadata has no target_directory")?,
        );
        let package_dir = meta["packages"]
            .as_array()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["name"].as_str() == Some(package))?
                    .get("manifest_path")?
                    .as_str()
                    .map(|m| {
                        Path::new(m)
                            .parent()
                            .unwrap_or(Path::new("."))
                            .to_path_buf()
                    })
            })
            .with_context(|| {
                format!(
                    "no package `{package}` in the workspace at {}",
                    workspace.display()
                )
            })?;
        Ok(Self {
            workspace: workspace.to_path_buf(),
            package: package.to_owned(),
            package_dir,
            release,
            target_dir,
            client_target_dir: None,
        })
    }

    /// `<target dir>/site/<crate name>` (the package name with `_` for `-`): where the server
    /// looks by default (`ferrule::ssr::site_options(<crate name>)`).
    pub fn site_root(&self) -> PathBuf {
        self.target_dir.join("site").join(self.crate_name())
    }

    fn profile(&self) -> &'static str {
        if self.release {
            "wasm-release"
        } else {
            "wasm-dev"
        }
    }

    fn crate_name(&self) -> String {
        self.package.replace('-', "_")
    }
}

fn cargo_metadata(workspace: &Path) -> Result<serde_json::Value> {
    let out = cargo()
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed in {}: {}",
            workspace.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Whether the active rustc has the wasm32 standard library (`rustup target add` installed it).
pub fn has_native_wasm_std() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    std::fs::read_dir(
        Path::new(&sysroot)
            .join("lib/rustlib")
            .join(WASM_TARGET)
            .join("lib"),
    )
    .map(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
    .unwrap_or(false)
}

/// Debian's rustc-web with its std source and wasm-ld: the route for machines where rustup cannot
/// add the wasm32 target (std is then built from source with `-Zbuild-std`).
pub const DEBIAN_WASM_LINKER: &str = "/usr/lib/llvm-22/bin/wasm-ld";

fn has_debian_route() -> bool {
    Path::new("/usr/lib/rustlib/src/rust/library").is_dir()
        && Path::new(DEBIAN_WASM_LINKER).exists()
        && Path::new("/usr/bin/cargo").exists()
}

/// A cargo command for wasm32 builds: rustup's toolchain when it has the target, else the Debian
/// route. Errors say how to get either.
pub fn wasm_cargo() -> Result<(Command, Vec<String>)> {
    let forced = std::env::var("FERRULE_WASM_MODE").ok();
    if forced.as_deref() != Some("debian") && has_native_wasm_std() {
        let mut cmd = cargo();
        cmd.env_remove("RUSTC_BOOTSTRAP");
        return Ok((cmd, Vec::new()));
    }
    if has_debian_route() {
        let mut cmd = Command::new("/usr/bin/cargo");
        cmd.env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
                DEBIAN_WASM_LINKER,
            );
        return Ok((cmd, vec!["-Zbuild-std=std,panic_abort".to_owned()]));
    }
    bail!(
        "no Rust standard library for {WASM_TARGET}: run `rustup target add {WASM_TARGET}` \
         (or, where rustup cannot, `apt-get install rustc-web cargo-web rust-web-src lld-22`); \
         `cargo xtask setup` does this"
    )
}

/// Where cargo's messages go: straight to the terminal, or a line at a time to a function (which
/// `ferrule dev` uses to print them above its spinner and keep a failed build's text).
pub enum CargoOutput<'a> {
    /// cargo writes to this process's stderr itself.
    Inherit,
    /// Each line of cargo's stderr, coloured when this process's stderr is a terminal.
    Lines(&'a mut dyn FnMut(&str)),
}

fn run_cargo(cmd: &mut Command, output: CargoOutput<'_>) -> std::io::Result<ExitStatus> {
    let CargoOutput::Lines(each) = output else {
        return cmd.status();
    };
    if std::io::stderr().is_terminal() {
        cmd.arg("--color=always");
    }
    let mut child = cmd.stderr(Stdio::piped()).spawn()?;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).split(b'\n') {
            each(String::from_utf8_lossy(&line?).trim_end_matches('\r'));
        }
    }
    child.wait()
}

/// Builds the browser client of `opts.package` into its site directory.
pub fn build_client(opts: &SiteOptions) -> Result<SiteReport> {
    build_client_with(opts, CargoOutput::Inherit)
}

/// [`build_client`], with cargo's messages going to `output`.
pub fn build_client_with(opts: &SiteOptions, output: CargoOutput<'_>) -> Result<SiteReport> {
    let (mut cmd, extra) = wasm_cargo()?;
    let cargo_dir = opts.client_target_dir.as_ref().unwrap_or(&opts.target_dir);
    cmd.current_dir(&opts.workspace)
        .env("CARGO_TARGET_DIR", cargo_dir)
        .args([
            "rustc",
            "-p",
            &opts.package,
            "--lib",
            "--crate-type",
            "cdylib",
        ])
        .args([
            "--target",
            WASM_TARGET,
            "--no-default-features",
            "--features",
            "hydrate",
        ])
        .args(["--profile", opts.profile()])
        .args(&extra);
    let started = Instant::now();
    let status = run_cargo(&mut cmd, output).context("could not run cargo for the wasm client")?;
    if !status.success() {
        bail!(
            "the browser client of `{}` did not compile (features `hydrate`, target {WASM_TARGET}); the errors are above",
            opts.package
        );
    }
    let compile = started.elapsed();
    let wasm = cargo_dir
        .join(WASM_TARGET)
        .join(opts.profile())
        .join(format!("{}.wasm", opts.crate_name()));
    let pkg = opts.site_root().join("pkg");
    std::fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;
    let started = Instant::now();
    let outputs = [
        pkg.join(format!("{}_bg.wasm", opts.crate_name())),
        pkg.join(format!("{}.js", opts.crate_name())),
    ];
    // After a server-only edit cargo leaves the wasm as it was: its bindings are still good,
    // and `ferrule dev` saves the bindgen pass.
    if !newer_than(&outputs, &wasm) {
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(&wasm)
            .web(true)?
            .typescript(false)
            .out_name(&opts.crate_name())
            .generate(&pkg)
            .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    }
    let bindgen = started.elapsed();
    bundle_site_css(opts)?;
    let shipped = if opts.release {
        let wasm_opt = crate::assets::find_wasm_opt(&crate::assets::wasm_opt_dirs(&opts.workspace));
        Some(crate::assets::ship(
            &opts.site_root(),
            &opts.crate_name(),
            wasm_opt.as_deref(),
        )?)
    } else {
        crate::assets::forget_release(&opts.site_root())?;
        None
    };
    let wasm_bytes = match &shipped {
        Some(s) => s.wasm_bytes,
        None => std::fs::metadata(pkg.join(format!("{}_bg.wasm", opts.crate_name())))
            .map(|m| m.len())
            .unwrap_or(0),
    };
    Ok(SiteReport {
        site_root: opts.site_root(),
        compile,
        bindgen,
        wasm_bytes,
        shipped,
    })
}

/// Whether every file of `outputs` exists and was written after `input` was.
pub(crate) fn newer_than(outputs: &[PathBuf], input: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(source) = modified(input) else {
        return false;
    };
    outputs
        .iter()
        .all(|out| modified(out).is_some_and(|written| written > source))
}

/// Bundles the app's stylesheet into its site directory (`pkg/<crate>.css`): Ferrule's look,
/// then the app's `style/*.css`. Takes milliseconds: `ferrule dev` runs it alone when only
/// `style/` changed.
pub fn bundle_site_css(opts: &SiteOptions) -> Result<()> {
    let pkg = opts.site_root().join("pkg");
    std::fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;
    bundle_css(
        &opts.package_dir.join("style"),
        &pkg.join(format!("{}.css", opts.crate_name())),
    )
}

/// The stylesheet of Ferrule's own components, first in every site's bundle. It lives in this
/// package because this is what bundles it: the published `ferrule-cli` carries it.
pub const RUNTIME_CSS: &str = include_str!("../style/ferrule.css");

/// Writes [`RUNTIME_CSS`], then `dir/*.css` in name order, into `out` (the app's rules come
/// after Ferrule's, so they override them; a missing `dir` still gives a stylesheet).
fn bundle_css(dir: &Path, out: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "css"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut css = format!("{RUNTIME_CSS}\n");
    for f in files {
        css.push_str(
            &std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?,
        );
        css.push('\n');
    }
    std::fs::write(out, css).with_context(|| format!("writing {}", out.display()))
}

/// Builds the server binary of `opts.package` (feature `ssr`, the default).
pub fn build_server(opts: &SiteOptions) -> Result<PathBuf> {
    build_server_with(opts, CargoOutput::Inherit)
}

/// [`build_server`], with cargo's messages going to `output`.
pub fn build_server_with(opts: &SiteOptions, output: CargoOutput<'_>) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.current_dir(&opts.workspace)
        .env("CARGO_TARGET_DIR", &opts.target_dir)
        .args(["build", "-p", &opts.package, "--bin", &opts.package]);
    if opts.release {
        cmd.arg("--release");
    }
    let status = run_cargo(&mut cmd, output).context("could not run cargo for the server")?;
    if !status.success() {
        bail!(
            "the server of `{}` did not compile; the errors are above",
            opts.package
        );
    }
    let profile = if opts.release { "release" } else { "debug" };
    Ok(opts.target_dir.join(profile).join(&opts.package))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bindgen_library_matches_the_lockfile_wasm_bindgen() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("Cargo.lock at the workspace root");
        let mut versions = lock
            .split("[[package]]")
            .filter(|p| p.contains("\nname = \"wasm-bindgen\"\n"))
            .filter_map(|p| p.split("\nversion = \"").nth(1)?.split('"').next());
        assert_eq!(versions.next(), Some(WASM_BINDGEN_VERSION));
        assert_eq!(
            versions.next(),
            None,
            "one wasm-bindgen version in the lock"
        );
    }

    #[test]
    fn bindings_are_made_again_only_when_the_wasm_is_newer() {
        let dir = std::env::temp_dir().join(format!("ferrule-bindgen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (wasm, out) = (
            dir.join("app.wasm"),
            [dir.join("app_bg.wasm"), dir.join("app.js")],
        );
        assert!(!newer_than(&out, &wasm), "no input yet");
        std::fs::write(&wasm, "1").unwrap();
        assert!(!newer_than(&out, &wasm), "no bindings yet");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&out[0], "b").unwrap();
        assert!(!newer_than(&out, &wasm), "one of the two");
        std::fs::write(&out[1], "j").unwrap();
        assert!(newer_than(&out, &wasm));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&wasm, "2").unwrap();
        assert!(
            !newer_than(&out, &wasm),
            "a rebuilt wasm needs new bindings"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn css_is_bundled_after_ferrules_own_in_name_order() {
        let dir = std::env::temp_dir().join(format!("ferrule-css-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.css"), "b{}").unwrap();
        std::fs::write(dir.join("a.css"), "a{}").unwrap();
        std::fs::write(dir.join("notes.txt"), "no").unwrap();
        let out = dir.join("out.css");
        bundle_css(&dir, &out).unwrap();
        let ours = format!("{RUNTIME_CSS}\n");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("{ours}a{{}}\nb{{}}\n")
        );
        assert!(ours.contains(".ferrule-toast-error"), "{ours}");
        bundle_css(&dir.join("nope"), &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), ours);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
