//! Project tasks: `cargo xtask setup | test | demo`.
//!
//! `test` is what CI runs: formatting, clippy, every test of the workspace (doc tests too),
//! with the real PostgreSQL and Redis servers when they are reachable. Where they are not, it
//! says so loudly and the tests that need them skip; with `CI=true` their absence fails the run.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod bench;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    match task {
        "setup" => setup(),
        "test" => test(),
        "demo" => demo(),
        "bench" => {
            let quick = args.iter().any(|a| a == "--quick");
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let root = root.canonicalize()?;
            let pg = reachable("127.0.0.1:5432").then(|| {
                std::env::var("FERRULE_TEST_POSTGRES")
                    .ok()
                    .and_then(|u| u.rsplit_once('/').map(|(b, _)| b.to_owned()))
                    .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
            });
            let redis = reachable("127.0.0.1:6379").then(|| "redis://127.0.0.1:6379".to_owned());
            bench::run(&root, &bench::target_dir(&root), quick, pg, redis)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  setup   install what builds and tests need (idempotent)\n  test    fmt, clippy and every test (what CI runs)\n  demo    build and serve the counter example on FERRULE_ADDR (default 127.0.0.1:3000)\n  bench   what one event costs, as ratios to bare socketioxide (--quick: harness check)"
            );
            if task == "help" {
                Ok(())
            } else {
                bail!("unknown task `{task}`")
            }
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
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

fn has_component(sub: &str) -> bool {
    cargo()
        .args([sub, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn setup() -> Result<()> {
    for (sub, component) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        if !has_component(sub) {
            run(
                &format!("rustup component add {component}"),
                Command::new("rustup").args(["component", "add", component]),
            )?;
        }
    }
    if !has_wasm_target() {
        // The browser client needs it; the protocol module is checked against it in `test`.
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "!!! could not install the wasm32-unknown-unknown target with rustup; the fallback route is in the shared toolchain notes (Debian rustc-web, -Zbuild-std)"
            );
        }
    }
    eprintln!("setup: toolchain ready");
    Ok(())
}

/// Whether the active toolchain has the wasm32 standard library.
fn has_wasm_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
}

fn reachable(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("static address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Finds the real servers and tells the tests where they are through the environment.
fn services(cmd: &mut Command) -> Result<()> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let mut missing = Vec::new();
    let pg = std::env::var("FERRULE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    if reachable("127.0.0.1:5432") || std::env::var("FERRULE_TEST_POSTGRES").is_ok() {
        cmd.env("FERRULE_TEST_POSTGRES", pg);
    } else {
        missing.push("PostgreSQL on 127.0.0.1:5432");
    }
    let redis =
        std::env::var("FERRULE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    if reachable("127.0.0.1:6379") || std::env::var("FERRULE_TEST_REDIS").is_ok() {
        cmd.env("FERRULE_TEST_REDIS", redis);
    } else {
        missing.push("Redis on 127.0.0.1:6379");
    }
    if !missing.is_empty() {
        let list = missing.join(" and ");
        if ci {
            bail!("CI=true but {list} is not reachable: the tests that need it cannot run");
        }
        eprintln!(
            "\n!!! {list} not reachable: the tests that need it will SKIP.\n!!! Start it (or set FERRULE_TEST_POSTGRES / FERRULE_TEST_REDIS) to run them.\n"
        );
        cmd.env("FERRULE_TEST_SKIP_MISSING", "1");
    }
    Ok(())
}

fn test() -> Result<()> {
    setup()?;
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    if has_wasm_target() {
        run(
            "protocol types build for wasm32 (no I/O in them)",
            cargo().args([
                "check",
                "-q",
                "-p",
                "ferrule",
                "--no-default-features",
                "--target",
                "wasm32-unknown-unknown",
            ]),
        )?;
    } else {
        eprintln!("!!! no wasm32 target: skipping the wasm32 build of the protocol types");
    }
    let mut tests = cargo();
    tests
        .args(["test", "--workspace", "--all-features"])
        .env("RUST_BACKTRACE", "1");
    services(&mut tests)?;
    let (passed, failed) = run_counting("cargo test (unit, integration, doc)", &mut tests)?;
    // Benchmarks are not tests: nothing fails on a number, but the harness must keep working.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?;
    eprintln!("==> cargo xtask bench --quick (harness check)");
    let pg = reachable("127.0.0.1:5432").then(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    let redis = reachable("127.0.0.1:6379").then(|| "redis://127.0.0.1:6379".to_owned());
    bench::run(&root, &bench::target_dir(&root), true, pg, redis)?;
    eprintln!("\nall checks passed");
    // The summary line CI reads: every test binary's results added up.
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs `cmd` (a `cargo test`), echoing its output, and adds up its `test result:` lines.
fn run_counting(what: &str, cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("==> {what}");
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start: {what}"))?;
    let (mut passed, mut failed) = (0, 0);
    let out = child.stdout.take().context("test output")?;
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .strip_suffix(word)?
                            .trim()
                            .rsplit(' ')
                            .next()?
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0)
            };
            passed += count("passed");
            failed += count("failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        println!("tests: {passed} passed, {failed} failed");
        bail!("{what} failed ({status})");
    }
    eprintln!("    {what}: ok in {:.1}s", started.elapsed().as_secs_f64());
    Ok((passed, failed))
}

fn demo() -> Result<()> {
    setup()?;
    let addr = std::env::var("FERRULE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    // The app's SQLite file sits beside it, as in a generated app.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/counter");
    run(
        "counter migrate",
        cargo()
            .args(["run", "-q", "-p", "counter", "--", "migrate"])
            .current_dir(&dir),
    )?;
    eprintln!("serving the counter example on http://{addr} (Ctrl-C stops it)");
    run(
        "counter serve",
        cargo()
            .args(["run", "-q", "-p", "counter", "--", "serve"])
            .current_dir(&dir),
    )
}
