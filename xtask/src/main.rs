//! Project tasks: `cargo xtask setup | test | demo | site | e2e | book | map | bench`.
//!
//! `test` is what CI runs: formatting, clippy, every test of the workspace (doc tests too),
//! with the real PostgreSQL and Redis servers when they are reachable. Where they are not, it
//! says so loudly and the tests that need them skip; a suite this machine cannot run (no
//! Chromium, no wasm32 toolchain) counts as one skip, named on the last line. With `CI=true` (as
//! `.ci/run` sets) a missing service or tool fails the run instead.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferrule_cli::new::Database;
use ferrule_cli::tools::{cargo, reachable};

mod bench;
mod book;
mod demo;
mod dist;
mod e2e;
mod generated;
mod layers;
mod map;
mod packaged;
mod setup;
mod tally;
mod test;

use book::*;
use demo::*;
use e2e::*;
use generated::*;
use setup::*;
use tally::*;
use test::*;

/// The repository's tasks.
#[derive(clap::Parser)]
#[command(name = "cargo xtask", about = "Ferrule's repository tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(clap::Subcommand)]
enum Task {
    /// Install what builds and tests need (idempotent).
    Setup,
    /// fmt, clippy and every test (what CI runs).
    Test,
    /// `ferrule new` an app, build, migrate and serve it on FERRULE_ADDR (default 127.0.0.1:3000).
    Demo,
    /// Build an example's browser client into <target>/site/APP.
    Site {
        /// The example.
        #[arg(short = 'p', long = "package", default_value = "counter")]
        app: String,
        /// Size-optimised.
        #[arg(long)]
        release: bool,
    },
    /// Browser and protocol-peer tests (headless Chromium, node).
    E2e,
    /// `ferrule new` and `generate` apps (SQLite, PostgreSQL): their fmt, clippy, tests and
    /// browser test; compared with stock cargo-generate; `cargo install` of the packaged CLI.
    /// All of them build from the packaged crates (`cargo package`), offline.
    Generated {
        /// Only these stages (repeat or comma-separate); the others are counted as skipped.
        /// Every stage packages the crates first.
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<Stage>,
    },
    /// `ferrule dev` on a fresh generated app in Chromium: how long from saving an edit to the
    /// page showing it (handler, server-only, CSS, a fixed build error).
    DevTimes,
    /// Build the book (docs/) with mdBook into <target>/book.
    Book,
    /// Draw the runtime's module map and write the layer tables of `runtime/src/lib.rs` and the
    /// architecture chapter, all from `xtask/src/layers.rs`.
    Map,
    /// The wire-decoding property tests with ten million cases each (FERRULE_FUZZ_CASES to
    /// change), optimised.
    Fuzz,
    /// What one event costs, as ratios to bare socketioxide.
    Bench {
        /// Harness check only.
        #[arg(long)]
        quick: bool,
        /// The long chaos run, 500 tabs x 200 events (FERRULE_CHAOS_CLIENTS/_EVENTS to size).
        #[arg(long)]
        chaos: bool,
    },
}

fn main() -> Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    match cli.task {
        Task::Setup => setup(),
        Task::Test => counted(test),
        Task::Demo => demo(),
        Task::Site { app, release } => {
            setup()?;
            site(&app, release).map(|_| ())
        }
        Task::E2e => {
            setup()?;
            counted(e2e)
        }
        Task::Generated { only } => {
            setup()?;
            counted(|total| generated_app(total, &only))
        }
        Task::DevTimes => {
            setup()?;
            generated::dev_times()
        }
        Task::Book => book(),
        Task::Map => map::write(&root()?),
        Task::Fuzz => fuzz(),
        Task::Bench { quick, chaos } => {
            let root = root()?;
            if chaos {
                return bench::chaos(&root);
            }
            let pg = reachable("127.0.0.1:5432").then(|| {
                std::env::var("FERRULE_TEST_POSTGRES")
                    .ok()
                    .and_then(|u| u.rsplit_once('/').map(|(b, _)| b.to_owned()))
                    .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
            });
            let redis = reachable("127.0.0.1:6379").then(|| "redis://127.0.0.1:6379".to_owned());
            bench::run(&root, &bench::target_dir(&root), quick, pg, redis)
        }
    }
}

/// Runs `tests`, which add to a tally, and ends with the tally's line whatever happened, so it
/// is the last thing CI prints: after the error, if any. A step that failed outside the tests
/// (fmt, clippy, setup, a build) counts as one failure there, so a red run never ends with
/// "0 failed".
fn counted(tests: impl FnOnce(&mut Tally) -> Result<()>) -> Result<()> {
    let mut total = Tally::default();
    let outcome = tests(&mut total);
    if let Err(e) = &outcome {
        total.failed = total.failed.max(1);
        eprintln!("Error: {e:?}");
    }
    println!("{}", total.line());
    if outcome.is_err() {
        std::process::exit(1);
    }
    Ok(())
}

pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {what}");
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    eprintln!("    {what}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The checkout `cargo xtask` was run in: the nearest directory up from here that holds
/// `xtask/Cargo.toml`. Not the path compiled in: checkouts sharing one target dir reuse one
/// xtask binary, which must act on the checkout it was started from.
pub(crate) fn root() -> Result<PathBuf> {
    let here = std::env::current_dir()?;
    let found = here
        .ancestors()
        .find(|dir| dir.join("xtask/Cargo.toml").is_file())
        .map(Path::to_path_buf);
    Ok(match found {
        Some(dir) => dir,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
    .canonicalize()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Task, clap::Error> {
        let mut argv = vec!["cargo xtask"];
        argv.extend_from_slice(args);
        <Cli as clap::Parser>::try_parse_from(argv).map(|cli| cli.task)
    }

    #[test]
    fn generated_runs_the_stages_named_by_only_and_every_stage_without_it() {
        let only = |args: &[&str]| match parse(args) {
            Ok(Task::Generated { only }) => only,
            _ => panic!("{args:?} is not `generated`"),
        };
        assert_eq!(only(&["generated"]), []);
        assert_eq!(
            only(&["generated", "--only", "installed-cli,stock"]),
            [Stage::InstalledCli, Stage::Stock]
        );
        assert_eq!(
            only(&["generated", "--only", "postgres", "--only", "lite"]),
            [Stage::Postgres, Stage::Lite]
        );
        let err = parse(&["generated", "--only", "installed"])
            .err()
            .expect("an unknown stage is refused")
            .to_string();
        assert!(err.contains("installed-cli"), "names the stages: {err}");
    }
}
