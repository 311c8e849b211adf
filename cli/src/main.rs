//! The `ferrule` command: `new` creates an app from the embedded template, `build` and `serve`
//! build its server and browser client, `doctor` checks the machine, and any other command
//! (`migrate`, `createsuperuser`, `routes`, ...) goes to the app's own binary.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ferrule_cli::app_commands::{self, AppCommand};
use ferrule_cli::new::{Database, NewOptions, new_app};
use ferrule_cli::site::{SiteOptions, build_client, build_server};

#[derive(Parser)]
#[command(name = "ferrule", version, about = "Ferrule: full-stack Rust apps")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check the toolchain and services and say how to fix what is missing.
    Doctor,
    /// Create a new app in ./NAME (or PATH/NAME).
    New {
        /// The app's name: lowercase letters, digits, `-` and `_`.
        name: String,
        /// The database the app uses by default.
        #[arg(long, value_enum, default_value = "sqlite")]
        db: Database,
        /// Leave out the account pages (log in, register, log out, the private page).
        #[arg(long)]
        no_auth: bool,
        /// The directory to create the app in.
        #[arg(long)]
        path: Option<PathBuf>,
        /// A Ferrule checkout's `runtime/` to depend on (default: the checkout this binary was
        /// built from, else the published `ferrule-web` of this version).
        #[arg(long)]
        ferrule_path: Option<PathBuf>,
        /// Do not make the app a git repository with a first commit.
        #[arg(long)]
        no_git: bool,
    },
    /// Add code to the app in this directory: a state, a page, a middleware, or a scaffold (a
    /// table with its migration, a CRUD state with pagination, search and validation, its page,
    /// and tests); or its deployment files (a Dockerfile and a systemd unit).
    Generate {
        /// What to make.
        #[arg(value_enum)]
        kind: ferrule_cli::generate::Kind,
        /// Its name (snake_case, e.g. `product` or `blog_post`); none for `deployment`.
        name: Option<String>,
        /// For a scaffold: its fields as name:type (string, text, i32, i64, f64, bool).
        fields: Vec<String>,
    },
    /// Build the app in this directory: its server and its browser client.
    Build {
        /// Optimised builds: the client run through wasm-opt, its files content-hashed and
        /// compressed (brotli, gzip).
        #[arg(long)]
        release: bool,
        /// Also put a release build into DIR (implies --release): the server binary, its site
        /// and Ferrule.toml, run from anywhere as `DIR/<app> serve`.
        #[arg(long, value_name = "DIR")]
        dist: Option<PathBuf>,
    },
    /// Build and serve the app in this directory; rebuild and restart on every change.
    Dev,
    /// Build, then serve the app in this directory on FERRULE_ADDR (default 127.0.0.1:3000).
    Serve {
        /// Optimised builds.
        #[arg(long)]
        release: bool,
    },
    /// Any other command runs the app's binary: migrate, createsuperuser, changepassword,
    /// routes, and the app's own (listed below).
    #[command(external_subcommand)]
    App(Vec<String>),
}

/// The package of the app in `dir` (the root package of its workspace).
fn app_package(dir: &std::path::Path) -> Result<String> {
    let out = Command::new("cargo")
        .current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        anyhow::bail!(
            "no app here: {} (run this in an app's directory)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    meta["packages"]
        .as_array()
        .and_then(|p| p.first())
        .and_then(|p| p["name"].as_str())
        .map(str::to_owned)
        .context("cargo metadata lists no package")
}

/// Builds client and server of the app in the current directory; returns its binary and the
/// build's options.
fn build(release: bool) -> Result<(PathBuf, SiteOptions)> {
    let dir = std::env::current_dir()?;
    let package = app_package(&dir)?;
    let opts = SiteOptions::new(&dir, &package, release)?;
    eprintln!("building the browser client of {package}…");
    let report = build_client(&opts)?;
    eprintln!(
        "  client: {:.1}s to compile, {:.1}s wasm-bindgen, {} KiB",
        report.compile.as_secs_f64(),
        report.bindgen.as_secs_f64(),
        report.wasm_bytes / 1024
    );
    if let Some(shipped) = &report.shipped {
        report_shipped(shipped);
    }
    eprintln!("building the server of {package}…");
    let bin = build_server(&opts)?;
    app_commands::refresh(
        &bin,
        &dir,
        &app_commands::cache_path(&opts.target_dir, &package),
    );
    Ok((bin, opts))
}

/// What a release build made of the client, and how to get wasm-opt when it was missing.
fn report_shipped(shipped: &ferrule_cli::assets::Shipped) {
    match &shipped.wasm_opt {
        Some(tool) => eprintln!(
            "  wasm-opt -Oz ({}): {} KiB → {} KiB",
            tool.display(),
            shipped.wasm_before_opt / 1024,
            shipped.wasm_bytes / 1024
        ),
        None => eprintln!(
            "  warning: wasm-opt not found, the client ships unoptimised ({} KiB); install it \
             with `npm install binaryen` in the app's directory (or put binaryen's wasm-opt on \
             PATH; not Debian's `binaryen` package, whose old wasm-opt breaks the client)",
            shipped.wasm_bytes / 1024
        ),
    }
    eprintln!(
        "  shipped: {} ({} KiB brotli, {} KiB gzip)",
        shipped
            .files
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        shipped.wasm_br_bytes / 1024,
        shipped.wasm_gz_bytes / 1024
    );
}

/// The app binary's commands as known without building: the built-in ones, and the app's own
/// from its last build; `None` outside an app's directory.
fn known_commands(dir: &std::path::Path) -> Option<(String, Option<Vec<AppCommand>>)> {
    let package = app_package(dir).ok()?;
    let target = SiteOptions::new(dir, &package, false).ok()?.target_dir;
    let kept = app_commands::remembered(&app_commands::cache_path(&target, &package));
    Some((package, kept))
}

/// The end of `ferrule --help`: the commands of the app in this directory.
fn app_commands_help() -> String {
    let dir = std::env::current_dir().unwrap_or_default();
    let (title, commands) = match known_commands(&dir) {
        Some((package, Some(kept))) => (
            format!("Commands of {package} (from its last build):"),
            kept,
        ),
        Some((package, None)) => (
            format!("Commands of {package} (its own appear here after its first build):"),
            app_commands::built_in(),
        ),
        None => (
            "Commands of an app (in its directory):".to_owned(),
            app_commands::built_in(),
        ),
    };
    let width = commands.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut text = title;
    for c in &commands {
        text.push_str(&format!("\n  {:<width$}  {}", c.name, c.help));
    }
    text
}

fn run_app(bin: &std::path::Path, args: &[String]) -> Result<ExitCode> {
    let status = Command::new(bin)
        .args(args)
        .status()
        .with_context(|| format!("could not run {}", bin.display()))?;
    // The app's own exit code, so scripts can tell its failures apart (2: a wrong command
    // line; 1: the command failed); a signal's end is a failure.
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn run(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Doctor => Ok(report_doctor()),
        Cmd::New {
            name,
            db,
            no_auth,
            path,
            ferrule_path,
            no_git,
        } => {
            let parent = match path {
                Some(p) => p,
                None => std::env::current_dir()?,
            };
            let ferrule_dep = match ferrule_path {
                Some(p) => {
                    let p = p
                        .canonicalize()
                        .with_context(|| format!("--ferrule-path {}", p.display()))?;
                    Some(format!("path = {:?}", p.display().to_string()))
                }
                None => None,
            };
            let dir = new_app(&NewOptions {
                name,
                database: db,
                auth: !no_auth,
                parent,
                ferrule_dep,
            })?;
            println!("created {}", dir.display());
            if !no_git {
                match ferrule_cli::new::git_init(&dir) {
                    Ok(()) => println!("made it a git repository with a first commit"),
                    // The app is complete without it: say so and go on.
                    Err(e) => eprintln!("note: no git repository: {e:#}"),
                }
            }
            println!("\nnext:\n  cd {} && ferrule dev", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Generate { kind, name, fields } => {
            let dir = std::env::current_dir()?;
            let plan = ferrule_cli::generate::plan_kind(&dir, kind, name.as_deref(), &fields)?;
            for path in ferrule_cli::generate::apply(&dir, &plan)? {
                let verb = if plan.create.iter().any(|(p, _)| *p == path) {
                    "created"
                } else {
                    "updated"
                };
                println!("{verb:>8} {}", path.display());
            }
            for note in &plan.notes {
                println!("\n{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Build { release, dist } => {
            let (bin, opts) = build(release || dist.is_some())?;
            println!("built {}", bin.display());
            if let Some(dir) = dist {
                let bin = ferrule_cli::dist::assemble(&ferrule_cli::dist::Dist {
                    dir: &dir,
                    binary: &bin,
                    name: &opts.package,
                    site: &opts.site_root(),
                    app: &opts.package_dir,
                })?;
                println!(
                    "made {}: run it from anywhere as `{} serve`",
                    dir.display(),
                    bin.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Dev => {
            let dir = std::env::current_dir()?;
            let package = app_package(&dir)?;
            ferrule_cli::dev::run(&dir, &package)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { release } => {
            let (bin, _) = build(release)?;
            run_app(&bin, &["serve".to_owned()])
        }
        Cmd::App(args) => {
            let dir = std::env::current_dir()?;
            let package = app_package(&dir)?;
            let opts = SiteOptions::new(&dir, &package, false)?;
            let cache = app_commands::cache_path(&opts.target_dir, &package);
            let mut known = app_commands::built_in();
            known.extend(app_commands::remembered(&cache).unwrap_or_default());
            let name = args.first().map(String::as_str).unwrap_or_default();
            // A typo fails at once, not after a build of the whole server.
            if !known.iter().any(|c| c.name == name)
                && let Some(near) = app_commands::did_you_mean(name, &known)
            {
                report_error(&format!(
                    "`{name}` is not a command of {package}; did you mean `{near}`? \
                     (`ferrule --help` lists them; a command just added to the app is known after \
                     `ferrule build`)"
                ));
                return Ok(ExitCode::from(2));
            }
            let bin = build_server(&opts)?;
            app_commands::refresh(&bin, &dir, &cache);
            run_app(&bin, &args)
        }
    }
}

/// One line of the doctor's report.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
    required: bool,
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `rustc 1.95.0 (...)` → (1, 95).
fn rustc_minor(version: &str) -> Option<(u32, u32)> {
    let v = version.split_whitespace().nth(1)?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn doctor() -> Vec<Check> {
    let mut checks = Vec::new();
    let rustc = output("rustc", &["--version"]);
    checks.push(Check {
        name: "rustc >= 1.94",
        ok: rustc
            .as_deref()
            .and_then(rustc_minor)
            .is_some_and(|v| v >= (1, 94)),
        detail: rustc.unwrap_or_else(|| "not found".into()),
        fix: "install Rust with rustup, then `rustup update stable`",
        required: true,
    });
    let sysroot = output("rustc", &["--print", "sysroot"]).unwrap_or_default();
    let wasm_std = std::fs::read_dir(format!("{sysroot}/lib/rustlib/wasm32-unknown-unknown/lib"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false);
    checks.push(Check {
        name: "wasm32 target",
        ok: wasm_std,
        detail: if wasm_std {
            "installed".into()
        } else {
            "missing".into()
        },
        fix: "`rustup target add wasm32-unknown-unknown` (needed for the browser client)",
        required: false,
    });
    // An app's wasm-bindgen must be the version this tool generates bindings for.
    if let Ok(lock) = std::fs::read_to_string("Cargo.lock") {
        let want = ferrule_cli::site::WASM_BINDGEN_VERSION;
        let have = ferrule_cli::site::locked_versions(&lock, "wasm-bindgen");
        if !have.is_empty() {
            checks.push(Check {
                name: "wasm-bindgen",
                ok: have.iter().all(|v| v == want),
                detail: format!("Cargo.lock pins {}; this tool generates {want}", have.join(", ")),
                fix: "`cargo update -p wasm-bindgen --precise 0.2.130` (the version `ferrule` links)",
                required: true,
            });
        }
    }
    let db = std::env::var("DATABASE_URL").unwrap_or_default();
    let db_ok = db.is_empty() || db.starts_with("sqlite:") || db.starts_with("postgres");
    checks.push(Check {
        name: "DATABASE_URL",
        ok: db_ok,
        detail: if db.is_empty() {
            "unset: apps use a SQLite file beside them".into()
        } else {
            db.split('@').next_back().unwrap_or("").to_owned()
        },
        fix: "use sqlite://PATH?mode=rwc or postgres://USER@HOST:PORT/DB",
        required: true,
    });
    for (name, addr, fix) in [
        (
            "PostgreSQL",
            "127.0.0.1:5432",
            "start PostgreSQL to run the PostgreSQL tests",
        ),
        (
            "Redis",
            "127.0.0.1:6379",
            "start Redis to run the Redis tests",
        ),
    ] {
        let ok = ferrule_cli::tools::reachable(addr);
        checks.push(Check {
            name,
            ok,
            detail: format!("{addr}: {}", if ok { "reachable" } else { "not reachable" }),
            fix,
            required: false,
        });
    }
    checks
}

/// `error: …` on stderr, the word in bold red on a terminal (plain when piped or NO_COLOR).
fn report_error(message: &str) {
    let style = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Red.into()));
    anstream::eprintln!("{style}error:{style:#} {message}");
}

fn main() -> ExitCode {
    let mut command = Cli::command();
    // Only `ferrule --help` asks cargo where the app's command list is.
    if matches!(
        std::env::args().nth(1).as_deref(),
        Some("-h" | "--help" | "help")
    ) {
        command = command.after_help(app_commands_help());
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            report_error(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn report_doctor() -> ExitCode {
    let checks = doctor();
    let mut failed = false;
    for c in &checks {
        let mark = if c.ok {
            "ok  "
        } else if c.required {
            "FAIL"
        } else {
            "warn"
        };
        println!("[{mark}] {:<16} {}", c.name, c.detail);
        if !c.ok {
            println!("       fix: {}", c.fix);
            failed |= c.required;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_versions() {
        assert_eq!(
            rustc_minor("rustc 1.95.0 (59807616e 2026-04-14)"),
            Some((1, 95))
        );
        assert_eq!(rustc_minor("rustc 1.94.1"), Some((1, 94)));
        assert_eq!(rustc_minor("garbage"), None);
    }

    #[test]
    fn doctor_finds_this_machines_rustc() {
        let checks = doctor();
        let rustc = checks.iter().find(|c| c.name.starts_with("rustc")).unwrap();
        assert!(rustc.ok, "{}", rustc.detail);
    }
}
