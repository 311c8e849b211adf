//! `cargo xtask generated`: apps made by `ferrule new` and `ferrule generate`, checked as a
//! newcomer would use them, and compared with what stock cargo-generate makes.

use crate::*;

/// What `ferrule generate` adds to the newcomer's app in the suite: one of each kind, and a
/// scaffold with every field type.
pub(crate) const NEWCOMER_GENERATE: &[&[&str]] = &[
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

/// `ferrule new` (through the library, as the binary does) into `parent`, with this
/// repository's Cargo.lock so it builds with the versions tested here; `ferrule_dep` as
/// [`ferrule_cli::new::NewOptions`] says (`None`: this checkout's runtime).
pub(crate) fn new_generated(
    root: &Path,
    parent: &Path,
    name: &str,
    database: Database,
    auth: bool,
    ferrule_dep: Option<String>,
) -> Result<PathBuf> {
    let dir = parent.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("==> ferrule new {name} (into {})", parent.display());
    ferrule_cli::new::new_app(&ferrule_cli::new::NewOptions {
        name: name.into(),
        database,
        auth,
        parent: parent.to_path_buf(),
        ferrule_dep,
    })?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    Ok(dir)
}

/// `ferrule generate …` into `dir`, each command as a user types it.
pub(crate) fn generate_into(dir: &Path, commands: &[&[&str]]) -> Result<()> {
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
pub(crate) fn check_generated(
    dir: &Path,
    target_dir: &Path,
    env: &[(&str, String)],
    total: &mut Tally,
) -> Result<()> {
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
    run_cargo_tests(&format!("{name}'s own tests"), &mut tests, total)
}

/// The stages of `cargo xtask generated`, to run some alone (`--only`) while working on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stage {
    /// The newcomer's SQLite app: `ferrule generate`, its tests, browser tests, `ferrule dev`.
    Newcomer,
    /// The same on PostgreSQL: its tests and browser tests against the real server.
    Postgres,
    /// An app without account pages.
    Lite,
    /// The stock `cargo generate` gives the same files as `ferrule new`; its app's tests.
    Stock,
    /// `cargo install ferrule-cli` from the packaged source, then `ferrule new` and `ferrule
    /// build` in an empty directory.
    InstalledCli,
    /// `ferrule build --dist` of a new app (the run's one release build), served from another
    /// directory: hashed, compressed client files over HTTP and in Chromium.
    Dist,
}

/// Apps `ferrule new` makes, checked as their users would, each depending on the published
/// runtime as an app made from crates.io does, built offline from what `cargo package` made
/// (`packaged::prepare`): the newcomer's (SQLite, account pages, one of everything `ferrule
/// generate` makes) with its browser tests and the dev loop; the same on PostgreSQL, its tests
/// and browser tests against the real server; an app without account pages; the template
/// through the stock `cargo generate` giving the same files as `ferrule new`, built and tested;
/// `cargo install ferrule-cli` making and building an app with no checkout around; and a
/// release of a new app through `ferrule build --dist`, served from elsewhere.
/// `only` empty runs every stage; otherwise those, and the rest count as skipped.
pub(crate) fn generated_app(total: &mut Tally, only: &[Stage]) -> Result<()> {
    let root = root()?;
    let target_dir = ferrule_cli::site::SiteOptions::new(&root, "counter", false)?.target_dir;
    let wanted = |stage: Stage| only.is_empty() || only.contains(&stage);
    for stage in <Stage as clap::ValueEnum>::value_variants() {
        if !wanted(*stage) {
            let name = clap::ValueEnum::to_possible_value(stage)
                .map_or_else(|| format!("{stage:?}"), |v| v.get_name().to_owned());
            total.skip_suite_in(false, &format!("generated stage {name}"), "not in --only")?;
        }
    }
    let browsers = Path::new(CHROMIUM).exists() && which("node").is_some();
    if !browsers && (wanted(Stage::Newcomer) || wanted(Stage::Postgres)) {
        total.skip_suite(
            "the generated apps' browser tests and ferrule dev loop",
            "no Chromium or no node (`cargo xtask setup` installs them)",
        )?;
    }

    let packaged = packaged::prepare(&root, &target_dir)?;
    let apps = &packaged.apps;
    // The apps' builds, apart from the workspace's (`packaged::Packaged::target` says why);
    // `target_dir` keeps the tools, the browser tests' artifacts and the workspace's `ferrule`.
    let apps_target = &packaged.target;
    // What `ferrule new` writes when it runs from no checkout: the published runtime.
    let published = || Some(ferrule_cli::new::registry_ferrule_dep());

    if wanted(Stage::Newcomer) {
        let dir = new_generated(
            &root,
            apps,
            "newcomer-app",
            Database::Sqlite,
            true,
            published(),
        )?;
        packaged::assert_default_dependency(&dir, &root)?;
        generate_into(&dir, NEWCOMER_GENERATE)?;
        check_generated(&dir, apps_target, &[], total)?;
        let bin = build_generated(&dir, apps_target)?;
        app_commands_through_ferrule(&root, &dir, &target_dir, apps_target)?;
        if browsers {
            browser_test(&root, &bin, &target_dir, &[], total)?;
            dev_loop(&root, &dir, &target_dir, apps_target, total)?;
        }
        // Built, its Cargo.lock names the packaged runtime, not this checkout's.
        packaged::assert_default_dependency(&dir, &root)?;
    }

    let postgres = reachable("127.0.0.1:5432");
    if wanted(Stage::Postgres) && postgres {
        let dir = new_generated(
            &root,
            apps,
            "newcomer-pg",
            Database::Postgres,
            true,
            published(),
        )?;
        generate_into(&dir, &NEWCOMER_GENERATE[..1])?;
        // The app's own default URL: its tests make their databases on that server.
        check_generated(&dir, apps_target, &[], total)?;
        let bin = build_generated(&dir, apps_target)?;
        if browsers {
            let admin = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
            browser_test(&root, &bin, &target_dir, &[("E2E_PG_ADMIN", admin)], total)?;
        }
        packaged::assert_default_dependency(&dir, &root)?;
    } else if wanted(Stage::Postgres) {
        total.skip_suite(
            "newcomer-pg (the PostgreSQL app)",
            "PostgreSQL on 127.0.0.1:5432 not reachable",
        )?;
    }

    if wanted(Stage::Lite) {
        let dir = new_generated(
            &root,
            apps,
            "newcomer-lite",
            Database::Sqlite,
            false,
            published(),
        )?;
        generate_into(
            &dir,
            &[
                &["scaffold", "project", "name:string"],
                &[
                    "scaffold",
                    "task",
                    "title:string",
                    "done:bool",
                    "project:references:projects",
                    "blocked_by:option<references:projects>",
                ],
            ],
        )?;
        check_generated(&dir, apps_target, &[], total)?;
        packaged::assert_default_dependency(&dir, &root)?;
    }

    if wanted(Stage::Stock) {
        stock_cargo_generate(&root, &target_dir, &packaged, total)?;
    }
    if wanted(Stage::InstalledCli) {
        installed_cli(&root, &packaged)?;
    }
    if wanted(Stage::Dist) {
        let ferrule = build_ferrule_command(&root, &target_dir)?;
        dist::dist_stage(
            &root,
            &ferrule,
            apps,
            apps_target,
            &target_dir,
            browsers,
            total,
        )?;
    }
    Ok(())
}

/// The generated app's browser client and server; returns the server binary.
pub(crate) fn build_generated(dir: &Path, target_dir: &Path) -> Result<PathBuf> {
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
        client_target_dir: None,
    };
    eprintln!("==> {package}'s browser client and server");
    ferrule_cli::site::build_client(&app)?;
    ferrule_cli::site::build_server(&app)
}

/// `e2e/generated-app.e2e.mjs` against the generated app whose server is `bin`; its screenshots
/// and traces go under `target_dir`.
pub(crate) fn browser_test(
    root: &Path,
    bin: &Path,
    target_dir: &Path,
    env: &[(&str, String)],
    total: &mut Tally,
) -> Result<()> {
    let app = bin
        .file_name()
        .context("binary name")?
        .to_string_lossy()
        .into_owned();
    let mut cmd = Command::new("node");
    cmd.current_dir(root.join("e2e"))
        .env("E2E_BIN_DIR", bin.parent().context("binary directory")?)
        .env("E2E_APP", &app)
        .env("E2E_ARTIFACTS", target_dir.join("e2e-artifacts"))
        .env("E2E_CHROMIUM", CHROMIUM);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_node_files(
        &format!("node --test {app} in Chromium"),
        &mut cmd,
        &["generated-app.e2e.mjs".to_owned()],
        total,
        |_| {},
    )
}

/// The template through the stock `cargo generate` (installed from crates.io into
/// `<target_dir>/tools`, once), with no `ferrule_dep`, gives exactly the files `ferrule new`
/// gives with the published runtime; the SQLite one builds from the packaged source (under
/// `packaged.apps`, whose config says so) and passes its own tests.
pub(crate) fn stock_cargo_generate(
    root: &Path,
    target_dir: &Path,
    packaged: &packaged::Packaged,
    total: &mut Tally,
) -> Result<()> {
    let bin = install_tool(target_dir, "cargo-generate", "0.23.14", &[])?;
    let out = packaged.apps.join("stock");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let dep = ferrule_cli::new::registry_ferrule_dep();
    for (db, auth) in [("sqlite", true), ("postgres", false)] {
        let name = format!("stock-{db}");
        run(
            &format!(
                "cargo generate --path cli/template --name {name} -d database={db} -d auth={auth}"
            ),
            Command::new(&bin)
                .args(["generate", "--path"])
                .arg(root.join("cli/template"))
                .args(["--name", &name, "--destination"])
                .arg(&out)
                .args(["--vcs", "none", "--silent", "--define"])
                .arg(format!("database={db}"))
                .arg("--define")
                .arg(format!("auth={auth}")),
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
        packaged::assert_default_dependency(&out.join(&name), root)?;
    }
    let app = out.join("stock-sqlite");
    std::fs::copy(root.join("Cargo.lock"), app.join("Cargo.lock"))?;
    run_cargo_tests(
        "stock-sqlite's own tests (offline, from the packaged source)",
        cargo()
            .current_dir(&app)
            .env("CARGO_TARGET_DIR", &packaged.target)
            .args(["test"]),
        total,
    )?;
    packaged::assert_default_dependency(&app, root)
}

/// `cargo install ferrule-cli` from the packaged source, then that `ferrule new` in an empty
/// directory: no checkout beside its sources, so the app depends on the published runtime;
/// `ferrule build` (the server, and the browser client with the stylesheet the package carries)
/// builds it from the packaged source.
///
/// The install is a debug build, with the workspace's per-package optimisations, in the target
/// directory of the apps before it: it reuses what they compiled from the same source rather
/// than building every dependency again, optimised, in a temporary directory.
fn installed_cli(root: &Path, packaged: &packaged::Packaged) -> Result<()> {
    let started = Instant::now();
    let target_dir = &packaged.target;
    let install_root = packaged.apps.join("installed-cli");
    // A previous run's install, if any: absent is as good as removed.
    let _ = std::fs::remove_dir_all(&install_root);
    let mut install = cargo();
    install
        .current_dir(&packaged.apps)
        .args([
            "install",
            "-q",
            "--locked",
            "--offline",
            "--debug",
            "ferrule-cli",
        ])
        .arg("--version")
        .arg(format!("={}", env!("CARGO_PKG_VERSION")))
        .arg("--root")
        .arg(&install_root)
        .arg("--target-dir")
        .arg(target_dir)
        // `cargo install` reads no configuration from the directory it runs in (only cargo's
        // home), so the source replacement the apps get from there is passed in.
        .arg("--config")
        .arg(&packaged.config);
    for (package, level) in packaged::dev_opt_levels(root)? {
        install
            .arg("--config")
            .arg(format!("profile.dev.package.{package}.opt-level={level}"));
    }
    run(
        "cargo install ferrule-cli (from the packaged source)",
        &mut install,
    )?;
    let ferrule = install_root.join("bin/ferrule");
    let empty = packaged.apps.join("no-checkout");
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty)?;
    run(
        "the installed ferrule new in an empty directory",
        Command::new(&ferrule)
            .args(["new", "fresh-app", "--no-git"])
            .current_dir(&empty),
    )?;
    let app = empty.join("fresh-app");
    packaged::assert_default_dependency(&app, root)?;
    // The versions tested here (without it, the same offline source, resolved afresh).
    std::fs::copy(root.join("Cargo.lock"), app.join("Cargo.lock"))?;
    // Client and server, as the generated apps before it are built: without a wasm32
    // toolchain this fails saying how to get one, as their builds do.
    run(
        "the installed ferrule build (client and server)",
        Command::new(&ferrule)
            .arg("build")
            .current_dir(&app)
            .env("CARGO_TARGET_DIR", target_dir),
    )?;
    let css = target_dir.join("site/fresh_app/pkg/fresh_app.css");
    let css = std::fs::read_to_string(&css).with_context(|| css.display().to_string())?;
    if !css.starts_with(ferrule_cli::site::RUNTIME_CSS) {
        bail!("the installed ferrule bundled no default look into the site's stylesheet");
    }
    packaged::assert_default_dependency(&app, root)?;
    eprintln!(
        "    the installed CLI made and built an app in {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// A tool from crates.io at an exact version, installed once into `<target>/tools` (its build
/// directory removed afterwards); returns its binary.
pub(crate) fn install_tool(
    target_dir: &Path,
    name: &str,
    version: &str,
    args: &[&str],
) -> Result<PathBuf> {
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

/// How long `ferrule dev` took, edit to page, as the Chromium test measured it.
#[derive(Debug, Default)]
pub(crate) struct DevTimes {
    /// The JSON object the test printed (`handlerEditMs`, `pageEditMs`, `serverEditMs`,
    /// `cssEditMs`, `fixMs`).
    pub(crate) figures: String,
}

/// `ferrule dev` in the generated app, driven from Chromium (`e2e/dev-reload.e2e.mjs`): a saved
/// handler reloads the open page with the new code, a saved stylesheet is swapped in place, a
/// mistake shows over the page until fixed. The test edits the app's files. The workspace's
/// `ferrule` is built into `target_dir`, the app into `app_target`.
pub(crate) fn dev_loop(
    root: &Path,
    app: &Path,
    target_dir: &Path,
    app_target: &Path,
    total: &mut Tally,
) -> Result<DevTimes> {
    let ferrule = build_ferrule_command(root, target_dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    eprintln!("==> ferrule dev in the generated app, on {addr}");
    let mut dev = Command::new(ferrule)
        .arg("dev")
        .current_dir(app)
        .env("CARGO_TARGET_DIR", app_target)
        .env("FERRULE_ADDR", &addr)
        // A user's own setting: incremental builds of the app's crate (the dependencies, never
        // incremental, are shared with the rest of the run).
        .env_remove("CARGO_INCREMENTAL")
        .spawn()
        .context("could not start ferrule dev")?;
    let result = (|| -> Result<DevTimes> {
        wait_for_page(&addr, "Welcome to", Duration::from_secs(900))?;
        let figures = std::sync::Mutex::new(String::new());
        run_node_files(
            "ferrule dev in Chromium: reload, CSS swap, build error",
            Command::new("node")
                .current_dir(root.join("e2e"))
                .env("E2E_DEV_URL", format!("http://{addr}"))
                .env("E2E_DEV_APP_DIR", app)
                .env("E2E_ARTIFACTS", target_dir.join("e2e-artifacts"))
                .env("E2E_CHROMIUM", CHROMIUM),
            &["dev-reload.e2e.mjs".to_owned()],
            total,
            |line| {
                if let Some(json) = line.trim().strip_prefix("dev-times: ") {
                    *figures.lock().unwrap_or_else(|p| p.into_inner()) = json.to_owned();
                }
            },
        )?;
        let figures = figures.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(DevTimes { figures })
    })();
    // Stop the server the loop runs (politely, by its own pid), then the loop.
    for child in children_of(dev.id()) {
        if let Err(e) = Command::new("kill")
            .args(["-TERM", &child.to_string()])
            .status()
        {
            eprintln!("    could not stop the dev server {child}: {e}");
        }
    }
    if let Err(e) = dev.kill().and_then(|()| dev.wait().map(drop)) {
        eprintln!("    could not stop ferrule dev: {e}");
    }
    let times = result?;
    eprintln!("    ferrule dev, edit to page: {}", times.figures);
    Ok(times)
}

/// `cargo xtask dev-times`: a fresh generated app under `ferrule dev`, its edit-to-page times
/// printed as a table (the book's figures).
pub(crate) fn dev_times() -> Result<()> {
    let root = root()?;
    let target_dir = ferrule_cli::site::SiteOptions::new(&root, "counter", false)?.target_dir;
    let parent = target_dir.join("generated");
    let dir = new_generated(
        &root,
        &parent,
        "dev-times-app",
        Database::Sqlite,
        true,
        None,
    )?;
    let times = dev_loop(&root, &dir, &target_dir, &target_dir, &mut Tally::default())?;
    let figures: serde_json::Value =
        serde_json::from_str(&times.figures).context("the test printed no figures")?;
    println!("| edit | saved to page ready |\n|---|---|");
    for (key, what) in [
        (
            "handlerEditMs",
            "a handler in `src/counter.rs` (client and server rebuilt)",
        ),
        (
            "pageEditMs",
            "a page's text in `src/lib.rs` (client and server rebuilt)",
        ),
        (
            "catalogueEditMs",
            "a text in `locales/en/app.ftl` (client and server rebuilt)",
        ),
        ("serverEditMs", "server-only code in `src/server.rs`"),
        (
            "cssEditMs",
            "a rule in `style/app.css` (swapped, no reload)",
        ),
        (
            "fixMs",
            "fixing a build error (overlay gone, page reloaded)",
        ),
    ] {
        let ms = figures[key].as_f64().unwrap_or(f64::NAN);
        println!("| {what} | {:.1} s |", ms / 1000.0);
    }
    Ok(())
}

/// The pids whose parent is `pid` (from /proc).
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
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
pub(crate) fn wait_for_page(addr: &str, text: &str, limit: Duration) -> Result<()> {
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

/// `ferrule COMMAND` in the generated app runs the app's own command and passes its exit code
/// on: `routes` prints the table, a wrong command line exits with the app's 2, not a bare 1.
fn app_commands_through_ferrule(
    root: &Path,
    app: &Path,
    target_dir: &Path,
    app_target: &Path,
) -> Result<()> {
    let bin = build_ferrule_command(root, target_dir)?;
    eprintln!("==> ferrule routes, --help, no-such-command in the generated app");
    let ferrule = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .current_dir(app)
            .env("CARGO_TARGET_DIR", app_target)
            .output()
            .context("could not run ferrule")
    };
    let routes = ferrule(&["routes"])?;
    let table = String::from_utf8_lossy(&routes.stdout);
    if !routes.status.success() || !table.contains("notes_state") {
        bail!(
            "ferrule routes: {:?}\n{table}\n{}",
            routes.status,
            String::from_utf8_lossy(&routes.stderr)
        );
    }
    // Built once, the app's own commands are in `ferrule --help`, with the help they give.
    let help = ferrule(&["--help"])?;
    let help = String::from_utf8_lossy(&help.stdout);
    // The built-in commands the CLI knows before a build are the ones the binary has.
    let built_in_missing = ferrule_cli::app_commands::BUILT_IN
        .iter()
        .any(|(name, _)| !help.contains(&format!("\n  {name} ")));
    if built_in_missing
        || !help.contains("(from its last build):")
        || !help.contains("  seed ")
        || !help.contains("Fill the database with the app's seed data")
    {
        bail!("ferrule --help does not list the app's own commands:\n{help}");
    }
    let wrong = ferrule(&["no-such-command"])?;
    if wrong.status.code() != Some(2) {
        bail!(
            "ferrule no-such-command exited with {:?}, not the app's 2: {}",
            wrong.status,
            String::from_utf8_lossy(&wrong.stderr)
        );
    }
    Ok(())
}

/// The workspace's `ferrule` binary into `target_dir` (a no-op once built); returns its path.
fn build_ferrule_command(root: &Path, target_dir: &Path) -> Result<PathBuf> {
    run(
        "the ferrule command",
        cargo()
            .current_dir(root)
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["build", "-q", "-p", "ferrule-cli", "--bin", "ferrule"]),
    )?;
    Ok(target_dir.join("debug/ferrule"))
}
