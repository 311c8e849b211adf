//! `cargo xtask demo`: the README's first command.

use crate::*;

/// The newcomer path: `ferrule new` an app (SQLite, the default), build its server and client,
/// migrate its database and serve it. The app is kept in `<target dir>/demo/demo-app` and reused
/// on later runs, so what was saved there (users, data) survives.
pub(crate) fn demo() -> Result<()> {
    // Only what the demo needs: no Chromium, psql or node, which only the tests use.
    setup_build()?;
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
        client_target_dir: None,
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
