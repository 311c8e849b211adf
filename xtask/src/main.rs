//! Project tasks: `cargo xtask setup | test | demo | site | e2e | bench`.
//!
//! `test` is what CI runs: formatting, clippy, every test of the workspace (doc tests too),
//! with the real PostgreSQL and Redis servers when they are reachable. Where they are not, it
//! says so loudly and the tests that need them skip; with `CI=true` their absence fails the run.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferrule_cli::new::Database;
use ferrule_cli::tools::{cargo, reachable};

mod bench;
mod layers;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    match task {
        "setup" => setup(),
        "test" => test(),
        "demo" => demo(),
        "site" => {
            let release = args.iter().any(|a| a == "--release");
            let app = args
                .iter()
                .position(|a| a == "-p")
                .and_then(|i| args.get(i + 1))
                .map_or("counter", String::as_str);
            setup()?;
            site(app, release).map(|_| ())
        }
        "e2e" => {
            setup()?;
            e2e().map(|_| ())
        }
        "generated" => {
            setup()?;
            generated_app().map(|_| ())
        }
        "book" => book().map(|_| ()),
        "fuzz" => fuzz(),
        "bench" => {
            let quick = args.iter().any(|a| a == "--quick");
            let root = root()?;
            if args.iter().any(|a| a == "--chaos") {
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
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  setup   install what builds and tests need (idempotent)\n  test    fmt, clippy and every test (what CI runs)\n  demo    ferrule new an app, build, migrate and serve it on FERRULE_ADDR (default 127.0.0.1:3000)\n  site    build an example's browser client into <target>/site/APP ([-p APP], default counter; --release: size-optimised)\n  e2e     browser and protocol-peer tests (headless Chromium, node)\n  generated  ferrule new and generate apps (SQLite, PostgreSQL), run their fmt, clippy, tests and browser test; compare with stock cargo generate\n  book    build the book (docs/) with mdBook into <target>/book\n  fuzz    the wire-decoding property tests with ten million cases each (FERRULE_FUZZ_CASES to change), optimised\n  bench   what one event costs, as ratios to bare socketioxide (--quick: harness check;\n          --chaos: the long chaos run, 500 tabs × 200 events, FERRULE_CHAOS_CLIENTS/_EVENTS to size)"
            );
            if task == "help" {
                Ok(())
            } else {
                bail!("unknown task `{task}`")
            }
        }
    }
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
            "npm ci (playwright-core, socket.io, socket.io-client)",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&e2e),
        )?;
    }
    eprintln!("setup: toolchain ready");
    Ok(())
}

/// Debian's headless Chromium, driven by playwright-core (never a downloaded browser).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The checkout `cargo xtask` was run in: the nearest directory up from here that holds
/// `xtask/Cargo.toml`. Not the path compiled in: checkouts sharing one target dir reuse one
/// xtask binary, which must act on the checkout it was started from.
fn root() -> Result<PathBuf> {
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

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Installs Debian packages (as root, or through sudo), updating the index once if needed.
fn apt_install(packages: &[&str]) -> Result<()> {
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
fn has_wasm_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
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
    layers::check(&root()?)?;
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
fn fuzz() -> Result<()> {
    let cases = std::env::var("FERRULE_FUZZ_CASES").unwrap_or_else(|_| "10000000".to_owned());
    let mut cmd = bench::optimised_runtime_test("wire_fuzz", "testing");
    cmd.env("FERRULE_FUZZ_CASES", &cases).current_dir(root()?);
    run(
        &format!("wire_fuzz with {cases} cases per property (release)"),
        &mut cmd,
    )
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

/// Features for the native test and clippy runs: everything but the browser client (which only
/// builds for wasm32 and is linted there).
const TEST_FEATURES: &str = "ferrule/testing,ferrule/redis,ferrule/ssr,ferrule/client";

/// The examples whose pages the browser tests drive.
const E2E_APPS: [&str; 4] = ["counter", "uploads", "shop", "chat"];

/// Builds app `package`'s browser client into its site directory.
fn site(package: &str, release: bool) -> Result<PathBuf> {
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
/// packages under node), with the counter example's client and server built first. Returns
/// (passed, failed).
fn e2e() -> Result<(u64, u64)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
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
        let list = missing.join(", ");
        if ci {
            bail!("CI=true but {list} is missing: the browser tests cannot run");
        }
        eprintln!(
            "\n!!! {list} missing: the browser and protocol-peer tests SKIP (`cargo xtask setup` installs them)\n"
        );
        return Ok((0, 0));
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
    let opts = ferrule_cli::site::SiteOptions::new(&root()?, E2E_APPS[0], false)?;
    let artifacts = opts.target_dir.join("e2e-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .current_dir(root()?.join("e2e"))
        .env("E2E_BIN_DIR", &bin_dir)
        .env("E2E_ARTIFACTS", &artifacts)
        .env("E2E_CHROMIUM", CHROMIUM);
    let result = run_node_tests("node --test e2e (Chromium, socket.io peers)", &mut cmd);
    if result.is_err() && artifacts.is_dir() {
        eprintln!("    screenshots of the failures: {}", artifacts.display());
    }
    result
}

/// What `ferrule generate` adds to the newcomer's app in the suite: one of each kind, and a
/// scaffold with every field type.
const NEWCOMER_GENERATE: &[&[&str]] = &[
    &[
        "scaffold",
        "product",
        "name:string",
        "description:text",
        "price:i64",
        "weight:f64",
        "in_stock:bool",
    ],
    &["state", "cart"],
    &["page", "about"],
    &["middleware", "audit"],
];

/// `ferrule new` (through the library, as the binary does) into `<target>/generated`, with this
/// repository's Cargo.lock so it builds with the versions tested here.
fn new_generated(
    root: &Path,
    target_dir: &Path,
    name: &str,
    database: Database,
    auth: bool,
) -> Result<PathBuf> {
    let parent = target_dir.join("generated");
    let dir = parent.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("==> ferrule new {name} (into {})", parent.display());
    ferrule_cli::new::new_app(&ferrule_cli::new::NewOptions {
        name: name.into(),
        database,
        auth,
        parent,
        ferrule_dep: None,
    })?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    Ok(dir)
}

/// `ferrule generate …` into `dir`, each command as a user types it.
fn generate_into(dir: &Path, commands: &[&[&str]]) -> Result<()> {
    for words in commands {
        eprintln!("==> ferrule generate {}", words.join(" "));
        let kind = match words[0] {
            "state" => ferrule_cli::generate::Kind::State,
            "page" => ferrule_cli::generate::Kind::Page,
            "middleware" => ferrule_cli::generate::Kind::Middleware,
            _ => ferrule_cli::generate::Kind::Scaffold,
        };
        let fields: Vec<String> = words[2..].iter().map(|w| (*w).to_owned()).collect();
        let plan = ferrule_cli::generate::plan(dir, kind, words[1], &fields)?;
        ferrule_cli::generate::apply(dir, &plan)?;
    }
    Ok(())
}

/// fmt, clippy -D warnings and the app's own tests; `env` goes to the tests.
fn check_generated(dir: &Path, target_dir: &Path, env: &[(&str, String)]) -> Result<(u64, u64)> {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    run(
        &format!("cargo fmt --check in {name}"),
        cargo().current_dir(dir).args(["fmt", "--", "--check"]),
    )?;
    run(
        &format!("cargo clippy -D warnings in {name}"),
        cargo()
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["clippy", "-q", "--all-targets", "--", "-D", "warnings"]),
    )?;
    let mut tests = cargo();
    tests
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["test"]);
    for (k, v) in env {
        tests.env(k, v);
    }
    run_counting(&format!("{name}'s own tests"), &mut tests)
}

/// Apps `ferrule new` makes, checked as their users would: the newcomer's (SQLite, account
/// pages, one of everything `ferrule generate` makes) with its browser tests and the dev loop;
/// the same on PostgreSQL, its tests and browser tests against the real server; an app without
/// account pages; and the template through the stock `cargo generate` giving the same files as
/// `ferrule new`.
fn generated_app() -> Result<(u64, u64)> {
    let root = root()?;
    let target_dir = ferrule_cli::site::SiteOptions::new(&root, "counter", false)?.target_dir;
    let browsers = Path::new(CHROMIUM).exists() && which("node").is_some();
    if !browsers {
        eprintln!("!!! no Chromium or node: the generated apps' browser tests SKIP");
    }
    let mut counts = (0, 0);
    let mut add = |(p, f): (u64, u64)| counts = (counts.0 + p, counts.1 + f);

    let dir = new_generated(&root, &target_dir, "newcomer-app", Database::Sqlite, true)?;
    generate_into(&dir, NEWCOMER_GENERATE)?;
    add(check_generated(&dir, &target_dir, &[])?);
    let bin = build_generated(&dir, &target_dir)?;
    if browsers {
        add(browser_test(&root, &bin, &target_dir, &[])?);
        dev_loop(&root, &dir, &target_dir)?;
        add((1, 0));
    }

    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if reachable("127.0.0.1:5432") {
        let dir = new_generated(&root, &target_dir, "newcomer-pg", Database::Postgres, true)?;
        generate_into(&dir, &NEWCOMER_GENERATE[..1])?;
        // The app's own default URL: its tests make their databases on that server.
        add(check_generated(&dir, &target_dir, &[])?);
        let bin = build_generated(&dir, &target_dir)?;
        if browsers {
            let admin = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
            add(browser_test(
                &root,
                &bin,
                &target_dir,
                &[("E2E_PG_ADMIN", admin)],
            )?);
        }
    } else if ci {
        bail!(
            "CI=true but PostgreSQL on 127.0.0.1:5432 is not reachable: newcomer-pg cannot be tested"
        );
    } else {
        eprintln!("\n!!! PostgreSQL on 127.0.0.1:5432 not reachable: newcomer-pg SKIPS\n");
    }

    let dir = new_generated(&root, &target_dir, "newcomer-lite", Database::Sqlite, false)?;
    generate_into(&dir, &[&["scaffold", "task", "title:string", "done:bool"]])?;
    add(check_generated(&dir, &target_dir, &[])?);

    stock_cargo_generate(&root, &target_dir)?;
    add((1, 0));
    Ok(counts)
}

/// The generated app's browser client and server; returns the server binary.
fn build_generated(dir: &Path, target_dir: &Path) -> Result<PathBuf> {
    let package = dir
        .file_name()
        .context("app directory")?
        .to_string_lossy()
        .into_owned();
    let app = ferrule_cli::site::SiteOptions {
        workspace: dir.to_path_buf(),
        package: package.clone(),
        package_dir: dir.to_path_buf(),
        release: false,
        target_dir: target_dir.to_path_buf(),
    };
    eprintln!("==> {package}'s browser client and server");
    ferrule_cli::site::build_client(&app)?;
    ferrule_cli::site::build_server(&app)
}

/// `e2e/generated-app.e2e.mjs` against the generated app whose server is `bin`.
fn browser_test(
    root: &Path,
    bin: &Path,
    target_dir: &Path,
    env: &[(&str, String)],
) -> Result<(u64, u64)> {
    let app = bin
        .file_name()
        .context("binary name")?
        .to_string_lossy()
        .into_owned();
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=spec", "generated-app.e2e.mjs"])
        .current_dir(root.join("e2e"))
        .env("E2E_BIN_DIR", bin.parent().context("binary directory")?)
        .env("E2E_APP", &app)
        .env("E2E_ARTIFACTS", target_dir.join("e2e-artifacts"))
        .env("E2E_CHROMIUM", CHROMIUM);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_node_tests(&format!("node --test {app} in Chromium"), &mut cmd)
}

/// The template through the stock `cargo generate` (installed from crates.io into
/// `<target>/tools`, once) gives exactly the files `ferrule new` gives.
fn stock_cargo_generate(root: &Path, target_dir: &Path) -> Result<()> {
    let bin = install_tool(target_dir, "cargo-generate", "0.23.14", &[])?;
    let out = target_dir.join("generated/stock");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let dep = ferrule_cli::new::local_ferrule_dep().context("this checkout's runtime")?;
    for (db, auth) in [("sqlite", true), ("postgres", false)] {
        let name = format!("stock-{db}");
        run(
            &format!(
                "cargo generate --path template --name {name} -d database={db} -d auth={auth}"
            ),
            Command::new(&bin)
                .args(["generate", "--path"])
                .arg(root.join("template"))
                .args(["--name", &name, "--destination"])
                .arg(&out)
                .args(["--vcs", "none", "--silent", "--define"])
                .arg(format!("database={db}"))
                .arg("--define")
                .arg(format!("auth={auth}"))
                .arg("--define")
                .arg(format!("ferrule_dep={dep}")),
        )?;
        let ours = out.join("ours");
        ferrule_cli::new::new_app(&ferrule_cli::new::NewOptions {
            name: name.clone(),
            database: if db == "sqlite" {
                Database::Sqlite
            } else {
                Database::Postgres
            },
            auth,
            parent: ours.clone(),
            ferrule_dep: Some(dep.clone()),
        })?;
        let (a, b) = (tree(&out.join(&name))?, tree(&ours.join(&name))?);
        if a != b {
            let names =
                |t: &[(String, String)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
            let differ: Vec<&String> = a
                .iter()
                .filter(|x| !b.contains(x))
                .map(|(p, _)| p)
                .collect();
            bail!(
                "cargo generate and ferrule new disagree for {name}: files {:?} vs {:?}; differing: {differ:?}",
                names(&a),
                names(&b)
            );
        }
        eprintln!(
            "    {name}: cargo generate and ferrule new made the same {} files",
            a.len()
        );
    }
    Ok(())
}

/// A tool from crates.io at an exact version, installed once into `<target>/tools` (its build
/// directory removed afterwards); returns its binary.
fn install_tool(target_dir: &Path, name: &str, version: &str, args: &[&str]) -> Result<PathBuf> {
    let tools = target_dir.join("tools");
    let bin = tools.join("bin").join(name);
    let stamp = tools.join(format!("{name}.version"));
    if bin.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|v| v == version) {
        return Ok(bin);
    }
    let build = target_dir.join("tools-build");
    run(
        &format!(
            "cargo install {name} {version} (once, into {})",
            tools.display()
        ),
        cargo()
            .args(["install", "-q", "--locked", "--force", name, "--version"])
            .arg(format!("={version}"))
            .args(args)
            .arg("--root")
            .arg(&tools)
            .env("CARGO_TARGET_DIR", &build),
    )?;
    let _ = std::fs::remove_dir_all(&build);
    std::fs::write(&stamp, version)?;
    Ok(bin)
}

/// The book builds with mdBook (its Rust code blocks are doc tests of `ferrule`, run with the
/// workspace's tests); a chapter SUMMARY.md lists but nobody wrote fails the build.
fn book() -> Result<(u64, u64)> {
    let root = root()?;
    let target_dir = ferrule_cli::site::SiteOptions::new(&root, "counter", false)?.target_dir;
    check_includes(&root.join("docs/src"))?;
    let mdbook = install_tool(&target_dir, "mdbook", "0.5.4", &["--no-default-features"])?;
    let out = target_dir.join("book");
    run(
        "mdbook build docs",
        Command::new(&mdbook)
            .args(["build", "docs", "--dest-dir"])
            .arg(&out)
            .current_dir(&root),
    )?;
    if !out.join("index.html").is_file() {
        bail!("mdbook wrote no {}", out.join("index.html").display());
    }
    eprintln!("    the book: {}", out.join("index.html").display());
    Ok((1, 0))
}

/// Every `{{#include FILE:ANCHOR}}` of the book names a file and an anchor that exist (mdBook
/// would quietly include nothing), so a renamed function cannot empty a chapter's listing.
fn check_includes(src: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(src)?.flatten() {
        let chapter = entry.path();
        if chapter.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&chapter)?;
        for part in text.split("{{#include ").skip(1) {
            let Some(spec) = part.split("}}").next() else {
                continue;
            };
            let (file, anchor) = spec.trim().split_once(':').unwrap_or((spec.trim(), ""));
            let path = src.join(file);
            let name = chapter.file_name().unwrap_or_default().to_string_lossy();
            match std::fs::read_to_string(&path) {
                Err(_) => problems.push(format!("{name}: {file} does not exist")),
                Ok(code) => {
                    let marked = code.contains(&format!("ANCHOR: {anchor}\n"))
                        && code.contains(&format!("ANCHOR_END: {anchor}\n"));
                    if !anchor.is_empty() && !marked {
                        problems.push(format!("{name}: {file} has no anchor `{anchor}`"));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the book includes what is not there:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// Every file under `dir` with its text, sorted by path.
fn tree(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir)?.display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `ferrule dev` in the generated app: it serves, and an edited page is rebuilt and served
/// again without anyone restarting anything.
fn dev_loop(root: &Path, app: &Path, target_dir: &Path) -> Result<()> {
    run(
        "the ferrule command",
        cargo()
            .current_dir(root)
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["build", "-q", "-p", "ferrule-cli", "--bin", "ferrule"]),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    eprintln!("==> ferrule dev in the generated app, on {addr}");
    let started = Instant::now();
    let mut dev = Command::new(target_dir.join("debug/ferrule"))
        .arg("dev")
        .current_dir(app)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("FERRULE_ADDR", &addr)
        .spawn()
        .context("could not start ferrule dev")?;
    let result = (|| {
        wait_for_page(&addr, "Welcome to newcomer-app", Duration::from_secs(300))?;
        let lib = app.join("src/lib.rs");
        let text = std::fs::read_to_string(&lib)?;
        std::fs::write(&lib, text.replace("Welcome to", "Hello from"))?;
        wait_for_page(&addr, "Hello from newcomer-app", Duration::from_secs(300))
    })();
    // Stop the server the loop runs (politely, by its own pid), then the loop.
    for child in children_of(dev.id()) {
        let _ = Command::new("kill")
            .args(["-TERM", &child.to_string()])
            .status();
    }
    let _ = dev.kill();
    let _ = dev.wait();
    result?;
    eprintln!(
        "    ferrule dev: an edit was served again after {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Polls `GET /` on `addr` until the page contains `text`.
fn wait_for_page(addr: &str, text: &str, limit: Duration) -> Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + limit;
    loop {
        let body = TcpStream::connect(addr).ok().and_then(|mut s| {
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            Some(out)
        });
        if body.is_some_and(|b| b.contains(text)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("`{text}` not served on {addr} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs node's test runner, echoing its output, and reads its `ℹ pass N` / `ℹ fail N` summary.
fn run_node_tests(what: &str, cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("==> {what}");
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start: {what}"))?;
    let out = child.stdout.take().context("test output")?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [_, key, n] = words.as_slice() {
            match (*key, n.parse::<u64>()) {
                ("pass", Ok(n)) => passed = n,
                ("fail", Ok(n)) => failed = n,
                _ => {}
            }
        }
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

/// The newcomer path: `ferrule new` an app (SQLite, the default), build its server and client,
/// migrate its database and serve it. The app is kept in `<target dir>/demo/demo-app` and reused
/// on later runs, so what was saved there (users, data) survives.
fn demo() -> Result<()> {
    setup()?;
    let root = root()?;
    let target_dir = ferrule_cli::site::SiteOptions::new(&root, "counter", false)?.target_dir;
    let parent = target_dir.join("demo");
    let dir = parent.join("demo-app");
    if dir.join("Cargo.toml").is_file() {
        eprintln!("==> reusing the app generated earlier in {}", dir.display());
    } else {
        eprintln!("==> ferrule new demo-app (in {})", parent.display());
        ferrule_cli::new::new_app(&ferrule_cli::new::NewOptions {
            name: "demo-app".into(),
            database: Database::Sqlite,
            auth: true,
            parent,
            ferrule_dep: None,
        })?;
        // The versions this repository is tested with, and builds shared with it.
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    let app = ferrule_cli::site::SiteOptions {
        workspace: dir.clone(),
        package: "demo-app".into(),
        package_dir: dir.clone(),
        release: false,
        target_dir,
    };
    eprintln!("==> its browser client");
    ferrule_cli::site::build_client(&app)?;
    eprintln!("==> its server");
    let bin = ferrule_cli::site::build_server(&app)?;
    run(
        "demo-app migrate",
        Command::new(&bin).arg("migrate").current_dir(&dir),
    )?;
    let addr = std::env::var("FERRULE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    eprintln!(
        "serving {} on http://{addr}: register, log in, click (Ctrl-C stops it)",
        dir.display()
    );
    run(
        "demo-app serve",
        Command::new(&bin).arg("serve").current_dir(&dir),
    )
}
