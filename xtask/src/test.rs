//! `cargo xtask test`, what CI runs: fmt, the layering check, clippy, every test with the real
//! servers, the browser tests, the generated apps, the book and the benchmark harness; and
//! `cargo xtask fuzz`.

use crate::*;

/// Finds the real servers and tells the tests where they are through the environment.
/// Where one is missing the tests that need it skip one by one (each counted as skipped), and
/// `total` names why; in CI that is an error instead.
pub(crate) fn services(cmd: &mut Command, total: &mut Tally) -> Result<()> {
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
        total.skips_ahead_in(
            is_ci(),
            "the tests that need it",
            &format!(
                "{list} not reachable (start it, or set FERRULE_TEST_POSTGRES / FERRULE_TEST_REDIS)"
            ),
        )?;
        cmd.env("FERRULE_TEST_SKIP_MISSING", "1");
    }
    Ok(())
}

/// Every check and test, what CI runs; the tests' results are added to `total`.
pub(crate) fn test(total: &mut Tally) -> Result<()> {
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
                "ferrule-web",
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
        let suite = "the wasm32 checks (protocol types, clippy on the browser clients)";
        if ferrule_cli::site::wasm_cargo().is_ok() {
            // Where rustup cannot add the target, setup installs Debian's rustc-web instead: it
            // builds the browser clients (e2e), but clippy is rustup's. Nothing to install.
            total.skip_suite_in(
                false,
                suite,
                "rustup has no wasm32 target and Debian's rustc-web route has no clippy",
            )?;
        } else {
            total.skip_suite(
                suite,
                "no wasm32 toolchain (`cargo xtask setup` installs one)",
            )?;
        }
    }
    let mut tests = cargo();
    tests
        .args(["test", "--workspace", "--features", TEST_FEATURES])
        .env("RUST_BACKTRACE", "1");
    services(&mut tests, total)?;
    run_cargo_tests("cargo test (unit, integration, doc)", &mut tests, total)?;
    e2e(total)?;
    generated_app(total, &[])?;
    book()?;
    // Benchmarks are not tests: nothing fails on a number, but the harness must keep working.
    let root = root()?;
    eprintln!("==> cargo xtask bench --quick (harness check)");
    let pg = reachable("127.0.0.1:5432").then(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    let redis = reachable("127.0.0.1:6379").then(|| "redis://127.0.0.1:6379".to_owned());
    bench::run(&root, &bench::target_dir(&root), true, pg, redis)?;
    eprintln!("\nall checks passed");
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

/// Features for the native test and clippy runs: everything but the browser client (which only
/// builds for wasm32 and is linted there).
pub(crate) const TEST_FEATURES: &str = "ferrule-web/testing,ferrule-web/redis,ferrule-web/ssr,ferrule-web/client,ferrule-web/otel,ferrule-web/admin";
