//! `ferrule new`: a complete app from the template embedded in this binary, expanded with
//! cargo-generate (local template only, so it works offline).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use include_dir::{Dir, include_dir};

/// The template, compiled into the binary so `ferrule new` needs no checkout and no network.
/// It lives in this package (not beside it) so that the published `ferrule-cli` carries it.
static TEMPLATE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/template");

/// The package Ferrule's runtime is published as (its library is `ferrule`).
pub const RUNTIME_PACKAGE: &str = "ferrule-web";

/// The database a new app uses by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    /// A SQLite file beside the app: nothing to install.
    Sqlite,
    /// PostgreSQL on 127.0.0.1 (or `DATABASE_URL`).
    Postgres,
}

impl Database {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// What `ferrule new` makes.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// The app's name: its package, binary and directory.
    pub name: String,
    /// Its default database.
    pub database: Database,
    /// Whether it gets the account pages (log in, register, log out, a private page).
    pub auth: bool,
    /// The directory to create the app in (the current one by default).
    pub parent: PathBuf,
    /// Where the app takes Ferrule's runtime (the `ferrule-web` package) from, as the source
    /// part of a Cargo dependency (`path = ".."` or `version = ".."`); `None` picks the checkout
    /// this binary was built from when it exists, else [`registry_ferrule_dep`].
    pub ferrule_dep: Option<String>,
}

/// Words a package may not be called: Rust keywords (the crate name would not compile) and
/// names that clash with what every app already has.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "gen",
    "test",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "ferrule",
    // The runtime's packages: an app of that name would depend on itself.
    "ferrule_web",
    "ferrule_macros",
    "leptos",
    "build",
];

/// Checks `name` is a usable app name, saying what is wrong when it is not.
pub fn check_name(name: &str) -> Result<()> {
    let Some(first) = name.chars().next() else {
        bail!("the app needs a name, e.g. `ferrule new shop`");
    };
    if !first.is_ascii_lowercase() {
        bail!("invalid app name `{name}`: it must start with a lowercase letter (a-z)");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        bail!(
            "invalid app name `{name}`: `{bad}` is not allowed; use lowercase letters, digits, `-` and `_`"
        );
    }
    if name.len() > 64 {
        bail!("invalid app name `{name}`: at most 64 characters");
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        bail!(
            "invalid app name `{name}`: it is a Rust keyword or clashes with a crate every app uses"
        );
    }
    Ok(())
}

/// The dependency spec for the Ferrule checkout this binary was built from, if it still exists:
/// a contributor's `ferrule` works on the runtime beside it. A binary built from the published
/// package (`cargo install ferrule-cli`) has no `runtime/` beside its sources, so gets `None`.
pub fn local_ferrule_dep() -> Option<String> {
    checkout_runtime(Path::new(env!("CARGO_MANIFEST_DIR")))
        .map(|runtime| format!("path = {:?}", runtime.display().to_string()))
}

/// The runtime of the checkout whose CLI package is `cli_dir`: `cli_dir/../runtime`, when its
/// manifest is the `ferrule-web` package.
fn checkout_runtime(cli_dir: &Path) -> Option<PathBuf> {
    let runtime = cli_dir.join("../runtime").canonicalize().ok()?;
    let manifest = std::fs::read_to_string(runtime.join("Cargo.toml")).ok()?;
    manifest
        .contains(&format!("name = \"{RUNTIME_PACKAGE}\""))
        .then_some(runtime)
}

/// The dependency spec of the published runtime this CLI goes with: `version = "MAJOR.MINOR"`
/// of this CLI's own version, so `ferrule-cli` 0.1.x makes apps on `ferrule-web` 0.1.x (semver:
/// any 0.1 release, never 0.2). The template's default `ferrule_dep` is the same.
pub fn registry_ferrule_dep() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let major_minor: Vec<&str> = version.split('.').take(2).collect();
    format!("version = \"{}\"", major_minor.join("."))
}

/// Creates the app; returns its directory. Nothing is left behind when it fails.
pub fn new_app(opts: &NewOptions) -> Result<PathBuf> {
    check_name(&opts.name)?;
    let dest = opts.parent.join(&opts.name);
    if dest.exists() {
        let empty = std::fs::read_dir(&dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            bail!(
                "{} already exists and is not empty: refusing to overwrite it (pick another name or --path)",
                dest.display()
            );
        }
    }
    std::fs::create_dir_all(&opts.parent)
        .with_context(|| format!("cannot create {}", opts.parent.display()))?;
    let dep = opts
        .ferrule_dep
        .clone()
        .or_else(local_ferrule_dep)
        .unwrap_or_else(registry_ferrule_dep);

    let scratch = tempdir("template")?;
    TEMPLATE
        .extract(&scratch)
        .with_context(|| format!("cannot unpack the template into {}", scratch.display()))?;
    let args = cargo_generate::GenerateArgs {
        template_path: cargo_generate::TemplatePath {
            path: Some(scratch.display().to_string()),
            ..Default::default()
        },
        name: Some(opts.name.clone()),
        destination: Some(opts.parent.clone()),
        silent: true,
        quiet: true,
        vcs: Some(cargo_generate::Vcs::None),
        no_workspace: true,
        define: vec![
            format!("database={}", opts.database.as_str()),
            format!("auth={}", opts.auth),
            format!("ferrule_dep={dep}"),
        ],
        ..Default::default()
    };
    let created_dir = !dest.exists();
    let result = cargo_generate::generate(args);
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok(dir) => {
            // The template is laid out as rustfmt would for a short name; a long one can
            // push a line past the width, so the new app is formatted as `cargo fmt` would.
            rustfmt(rust_files(&dir));
            Ok(dir)
        }
        Err(e) => {
            if created_dir {
                let _ = std::fs::remove_dir_all(&dest);
            }
            Err(e.context(format!("could not generate {}", opts.name)))
        }
    }
}

/// Formats `files` with rustfmt (edition 2024), those ending in `.rs` only. Best effort: without
/// rustfmt the code is still valid, only laid out as written.
pub fn rustfmt(files: impl IntoIterator<Item = PathBuf>) {
    let rs: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    if !rs.is_empty() {
        let _ = std::process::Command::new("rustfmt")
            .args(["--edition", "2024"])
            .args(&rs)
            .status();
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out
}

fn tempdir(what: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("ferrule-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Makes `dir` a git repository with everything in a first commit. Without a configured
/// identity the commit is made as "Ferrule" so that it works on a fresh machine; the user's own
/// identity is used when git has one.
pub fn git_init(dir: &Path) -> Result<()> {
    let git = |args: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .context("could not run git (is it installed?)")
    };
    let init = git(&["init", "-q"])?;
    if !init.status.success() {
        bail!("git init: {}", String::from_utf8_lossy(&init.stderr).trim());
    }
    let add = git(&["add", "-A"])?;
    if !add.status.success() {
        bail!("git add: {}", String::from_utf8_lossy(&add.stderr).trim());
    }
    let has_identity = git(&["config", "user.email"])?.status.success();
    let mut commit = vec!["commit", "-q", "-m", "A new Ferrule app (ferrule new)"];
    if !has_identity {
        commit.splice(
            0..0,
            [
                "-c",
                "user.name=Ferrule",
                "-c",
                "user.email=ferrule@localhost",
            ],
        );
    }
    let out = git(&commit)?;
    if !out.status.success() {
        bail!(
            "git commit: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_with_a_reason() {
        assert!(check_name("shop").is_ok());
        assert!(check_name("my-shop_2").is_ok());
        for (bad, why) in [
            ("", "needs a name"),
            ("Shop", "lowercase letter"),
            ("9lives", "lowercase letter"),
            ("my shop", "` ` is not allowed"),
            ("café", "`é` is not allowed"),
            ("fn", "Rust keyword"),
            ("ferrule", "clashes"),
            ("ferrule-web", "clashes"),
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_template_is_embedded() {
        assert!(TEMPLATE.get_file("cargo-generate.toml").is_some());
        assert!(TEMPLATE.get_file("src/lib.rs").is_some());
        // Not `Cargo.toml`: that would make the template a package of its own, left out of the
        // CLI's package by `cargo package`.
        assert!(TEMPLATE.get_file("Cargo.toml.liquid").is_some());
        assert!(TEMPLATE.get_file("Cargo.toml").is_none());
    }

    #[test]
    fn the_default_dependency_is_the_published_runtime_of_this_version() {
        let (major, minor) = (
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR"),
        );
        assert_eq!(
            registry_ferrule_dep(),
            format!("version = \"{major}.{minor}\"")
        );
        // The stock `cargo generate` (no `-d ferrule_dep`) gives the same dependency.
        let config = TEMPLATE
            .get_file("cargo-generate.toml")
            .and_then(|f| f.contents_utf8())
            .unwrap();
        let default = config
            .split("[placeholders.ferrule_dep]")
            .nth(1)
            .and_then(|rest| rest.lines().find(|l| l.starts_with("default = ")))
            .unwrap();
        assert_eq!(default, format!("default = '{}'", registry_ferrule_dep()));
        // And the template names the package, so that the code's `ferrule` is ours.
        let manifest = TEMPLATE
            .get_file("Cargo.toml.liquid")
            .and_then(|f| f.contents_utf8())
            .unwrap();
        let ours = format!("ferrule = {{ package = \"{RUNTIME_PACKAGE}\", {{{{ferrule_dep}}}},");
        assert_eq!(manifest.matches(&ours).count(), 2, "{manifest}");
    }

    #[test]
    fn the_checkout_is_found_only_beside_a_ferrule_web_runtime() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
        let runtime = checkout_runtime(checkout).expect("this checkout's runtime");
        assert!(runtime.ends_with("runtime"), "{}", runtime.display());
        // An unpacked package (`cargo install ferrule-cli`) has no runtime beside it.
        let scratch = tempdir("no-checkout").unwrap();
        let cli = scratch.join("ferrule-cli-0.1.0");
        std::fs::create_dir_all(&cli).unwrap();
        assert_eq!(checkout_runtime(&cli), None);
        // Nor does a directory whose `runtime/` is some other package.
        std::fs::create_dir_all(scratch.join("runtime")).unwrap();
        std::fs::write(
            scratch.join("runtime/Cargo.toml"),
            "[package]\nname = \"ferrule\"\n",
        )
        .unwrap();
        assert_eq!(checkout_runtime(&cli), None);
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
