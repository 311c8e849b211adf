//! `cargo xtask test`, what CI runs: fmt, the layering check, clippy, every test with the real
//! servers, the browser tests, the generated apps, the book and the benchmark harness; and
//! `cargo xtask fuzz`.

use crate::*;

/// Finds the real servers and tells the tests where they are through the environment.
pub(crate) fn services(cmd: &mut Command) -> Result<()> {
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

pub(crate) fn test() -> Result<()> {
    setup()?;
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    layers::check(&root()?)?;
    map::check(&root()?)?;
    run(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            TEST_FEATURES,
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
        run(
            "cargo clippy -D warnings on the browser client (wasm32, hydrate)",
            cargo().args([
                "clippy",
                "-q",
                "-p",
                "counter",
                "-p",
                "uploads",
                "-p",
                "shop",
                "-p",
                "chat",
                "--lib",
                "--no-default-features",
                "--features",
                "hydrate",
                "--target",
                "wasm32-unknown-unknown",
                "--profile",
                "wasm-dev",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    } else {
        eprintln!("!!! no wasm32 target: skipping the wasm32 build of the protocol types");
    }
    let mut tests = cargo();
    tests
        .args(["test", "--workspace", "--features", TEST_FEATURES])
        .env("RUST_BACKTRACE", "1");
    services(&mut tests)?;
    let (mut passed, mut failed) = run_counting("cargo test (unit, integration, doc)", &mut tests)?;
    let (e2e_passed, e2e_failed) = e2e()?;
    passed += e2e_passed;
    failed += e2e_failed;
    let (gen_passed, gen_failed) = generated_app()?;
    passed += gen_passed;
    failed += gen_failed;
    let (book_passed, book_failed) = book()?;
    passed += book_passed;
    failed += book_failed;
    // Benchmarks are not tests: nothing fails on a number, but the harness must keep working.
    let root = root()?;
    eprintln!("==> cargo xtask bench --quick (harness check)");
    let pg = reachable("127.0.0.1:5432").then(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    let redis = reachable("127.0.0.1:6379").then(|| "redis://127.0.0.1:6379".to_owned());
    bench::run(&root, &bench::target_dir(&root), true, pg, redis)?;
    eprintln!("\nall checks passed");
    // The summary line CI reads: every test binary's results added up.
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// The long run of the wire-decoding property tests (the quick one is part of `test`).
pub(crate) fn fuzz() -> Result<()> {
    let cases = std::env::var("FERRULE_FUZZ_CASES").unwrap_or_else(|_| "10000000".to_owned());
    let mut cmd = bench::optimised_runtime_test("wire_fuzz", "testing");
    cmd.env("FERRULE_FUZZ_CASES", &cases).current_dir(root()?);
    run(
        &format!("wire_fuzz with {cases} cases per property (release)"),
        &mut cmd,
    )
}

/// Runs test command `cmd`, echoing its output line by line to `tally` (which counts passed
/// and failed tests as its runner prints them); fails when the command or a test fails.
pub(crate) fn run_tallying(
    what: &str,
    cmd: &mut Command,
    tally: impl Fn(&str, &mut u64, &mut u64),
) -> Result<(u64, u64)> {
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
        tally(&line, &mut passed, &mut failed);
    }
    let status = child.wait()?;
    if !status.success() || failed > 0 {
        println!("tests: {passed} passed, {failed} failed");
        bail!("{what} failed ({status})");
    }
    eprintln!(
        "    {what}: {passed} passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok((passed, failed))
}

/// Runs `cmd` (a `cargo test`) and adds up its `test result:` lines.
pub(crate) fn run_counting(what: &str, cmd: &mut Command) -> Result<(u64, u64)> {
    run_tallying(what, cmd, |line, passed, failed| {
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
            *passed += count("passed");
            *failed += count("failed");
        }
    })
}

/// Features for the native test and clippy runs: everything but the browser client (which only
/// builds for wasm32 and is linted there).
pub(crate) const TEST_FEATURES: &str = "ferrule/testing,ferrule/redis,ferrule/ssr,ferrule/client";
