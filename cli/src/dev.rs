//! `ferrule dev`: build, migrate, serve, and on every change to the app's sources rebuild,
//! restart, and have the open pages reload.
//!
//! Changes are found by polling modification times (four times a second) over `src/`, `style/`,
//! `locales/`, `Cargo.toml` and the settings files (`Ferrule.toml`, `Ferrule.<env>.toml`,
//! `.env`): no platform watcher to install, and editors that replace
//! files instead of writing them are seen the same way. A change under `style/` alone only
//! rebundles the stylesheet, which the pages swap in place. A build that fails leaves the running
//! server as it was; cargo's errors are printed as they come (above the spinner, never under it)
//! and written to the site directory, where the server's live reload shows them over the page.
//! Client and server build at once, the client in a target directory of its own (cargo builds
//! one thing at a time in a target directory).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::site::{CargoOutput, SiteOptions, build_client_with, build_server_with};

/// The file in the site directory the server's live reload shows over the page (the runtime's
/// `ferrule::ssr::BUILD_ERROR_FILE`).
pub const BUILD_ERROR_FILE: &str = "build-error.txt";

/// The variable that turns the server's live reload on (the runtime's
/// `ferrule::ssr::LIVE_RELOAD_ENV`).
pub const LIVE_RELOAD_ENV: &str = "FERRULE_LIVE_RELOAD";

/// The variable of the `browser_log` setting, which `ferrule dev` turns on.
pub const BROWSER_LOG_ENV: &str = "FERRULE_BROWSER_LOG";

/// The sources a change to which needs a Rust build.
pub const CODE: &[&str] = &["src", "locales", "Cargo.toml", "Ferrule.toml"];
/// The fingerprint of the app's code and of its settings files (`Ferrule.toml`, every
/// `Ferrule.<environment>.toml`, `.env`): the server reads those at start, so a change to one
/// restarts it too.
pub fn code_fingerprint(dir: &Path) -> Fingerprint {
    let settings: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name == ".env"
                || (name.starts_with("Ferrule.")
                    && name.ends_with(".toml")
                    && name != "Ferrule.toml")
        })
        .collect();
    let parts: Vec<&str> = CODE
        .iter()
        .copied()
        .chain(settings.iter().map(String::as_str))
        .collect();
    fingerprint(dir, &parts)
}

/// The sources a change to which needs only the stylesheet bundled again.
pub const STYLE: &[&str] = &["style"];

/// What the watcher compares: the newest modification time and the number of files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint {
    newest: Option<SystemTime>,
    files: usize,
}

/// The fingerprint of the files and directories `parts` of the app in `dir`.
pub fn fingerprint(dir: &Path, parts: &[&str]) -> Fingerprint {
    let mut fp = Fingerprint::default();
    let mut stack: Vec<PathBuf> = parts.iter().map(|p| dir.join(p)).collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
            continue;
        }
        fp.files += 1;
        if let Ok(modified) = meta.modified() {
            fp.newest = fp.newest.max(Some(modified));
        }
    }
    fp
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The compiler's messages in cargo's output: from the first error or warning on, without
/// colours (the progress lines before them say nothing about the failure).
pub fn diagnostics(log: &str) -> String {
    let plain = anstream::adapter::strip_str(log).to_string();
    let lines: Vec<&str> = plain.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("error") || l.starts_with("warning"))
        .unwrap_or(0);
    lines[first..].join("\n")
}

/// Builds client and server; `None` (after saying why, in the terminal and in the site
/// directory for the pages) when either does not compile.
fn rebuild(opts: &SiteOptions) -> Option<PathBuf> {
    let bar = spinner(format!("building {}", opts.package));
    let started = Instant::now();
    let log = std::sync::Mutex::new(String::new());
    let sink = || {
        |line: &str| {
            // Above the spinner, which redraws below it: the two never share a line.
            bar.suspend(|| eprintln!("{line}"));
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.push_str(line);
            log.push('\n');
        }
    };
    // Client and server at once: they are two cargo builds in two target directories.
    let (client, server) = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let mut each = sink();
            build_client_with(opts, CargoOutput::Lines(&mut each))
        });
        let mut each = sink();
        let server = build_server_with(opts, CargoOutput::Lines(&mut each));
        let client = client
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the client's build panicked")));
        (client, server)
    });
    let built = client.and(server);
    let log = log.into_inner().unwrap_or_else(|p| p.into_inner());
    bar.finish_and_clear();
    let error_file = opts.site_root().join(BUILD_ERROR_FILE);
    match built {
        Ok(bin) => {
            match std::fs::remove_file(&error_file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => eprintln!(
                    "ferrule dev: could not remove {} ({e}); the pages keep showing the old error",
                    error_file.display()
                ),
                _ => {}
            }
            eprintln!(
                "ferrule dev: built in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            let cache = crate::app_commands::cache_path(&opts.target_dir, &opts.package);
            crate::app_commands::refresh(&bin, &opts.workspace, &cache);
            Some(bin)
        }
        Err(e) => {
            eprintln!(
                "ferrule dev: {e:#}\nferrule dev: fix it and save; the last good build keeps running"
            );
            let text = format!("{}\n\n{e:#}", diagnostics(&log));
            if let Err(io) = std::fs::create_dir_all(opts.site_root())
                .and_then(|()| std::fs::write(&error_file, text.trim_start()))
            {
                eprintln!(
                    "ferrule dev: could not write {} ({io}); the pages will not show the error",
                    error_file.display()
                );
            }
            None
        }
    }
}

/// Applies pending migrations (a dev loop should not stop at a new one), then serves with live
/// reload on.
fn start(bin: &Path, dir: &Path) -> Result<Child> {
    let migrated = Command::new(bin)
        .arg("migrate")
        .current_dir(dir)
        .status()
        .with_context(|| format!("could not run {} migrate", bin.display()))?;
    if !migrated.success() {
        eprintln!("ferrule dev: migrate failed (above); serving anyway");
    }
    Command::new(bin)
        .arg("serve")
        .current_dir(dir)
        .env(LIVE_RELOAD_ENV, "1")
        // Each event, its answer and its round trip in the browser's console.
        .env(BROWSER_LOG_ENV, "1")
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))
}

/// Stops the server politely (SIGTERM lets in-flight events finish), then for good.
fn stop(child: &mut Child) {
    let asked = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if asked {
        for _ in 0..100 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if let Err(e) = child.kill().and_then(|()| child.wait().map(drop)) {
        eprintln!("ferrule dev: could not stop the old server ({e})");
    }
}

/// Runs the loop for the app in `dir` until interrupted.
pub fn run(dir: &Path, package: &str) -> Result<()> {
    let mut opts = SiteOptions::new(dir, package, false)?;
    opts.client_target_dir = Some(opts.target_dir.join("ferrule-dev-client"));
    let mut seen = (code_fingerprint(dir), fingerprint(dir, STYLE));
    let mut server = match rebuild(&opts) {
        Some(bin) => Some(start(&bin, dir)?),
        None => None,
    };
    eprintln!("ferrule dev: watching {} (Ctrl-C stops)", dir.display());
    loop {
        std::thread::sleep(Duration::from_millis(250));
        if (code_fingerprint(dir), fingerprint(dir, STYLE)) == seen {
            continue;
        }
        // Let an editor finish writing before building.
        std::thread::sleep(Duration::from_millis(100));
        let now = (code_fingerprint(dir), fingerprint(dir, STYLE));
        let code_changed = now.0 != seen.0;
        seen = now;
        if !code_changed {
            match crate::site::bundle_site_css(&opts) {
                Ok(()) => eprintln!("ferrule dev: style/ changed; stylesheet swapped in the pages"),
                Err(e) => eprintln!("ferrule dev: could not bundle the stylesheet: {e:#}"),
            }
            continue;
        }
        eprintln!("ferrule dev: change detected, rebuilding");
        if let Some(bin) = rebuild(&opts) {
            if let Some(mut old) = server.take() {
                stop(&mut old);
            }
            server = Some(start(&bin, dir)?);
            eprintln!("ferrule dev: restarted; open pages reload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_or_changed_source_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("ferrule-dev-fp-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "a").unwrap();
        let all = ["src", "style"];
        let first = fingerprint(&dir, &all);
        assert_eq!(first.files, 1);
        assert_eq!(fingerprint(&dir, &all), first, "nothing changed");
        std::fs::write(dir.join("style.css.unwatched"), "x").unwrap();
        assert_eq!(
            fingerprint(&dir, &all),
            first,
            "files outside the sources do not count"
        );
        std::fs::create_dir_all(dir.join("style")).unwrap();
        let code = fingerprint(&dir, CODE);
        std::fs::write(dir.join("style/app.css"), "b{}").unwrap();
        assert_ne!(fingerprint(&dir, &all), first);
        assert_eq!(
            fingerprint(&dir, CODE),
            code,
            "a stylesheet is not code: no Rust build"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_settings_file_new_or_changed_restarts_the_server() {
        let dir = std::env::temp_dir().join(format!("ferrule-dev-settings-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "a").unwrap();
        let first = code_fingerprint(&dir);
        std::fs::write(dir.join("Ferrule.production.toml"), "[ferrule]\n").unwrap();
        let with_env_file = code_fingerprint(&dir);
        assert_ne!(with_env_file, first, "a new per-environment file");
        std::fs::write(dir.join(".env"), "APP_GREETING=hi\n").unwrap();
        let with_dotenv = code_fingerprint(&dir);
        assert_ne!(with_dotenv, with_env_file, "a new .env");
        std::fs::write(dir.join("notes.toml"), "x").unwrap();
        assert_eq!(
            code_fingerprint(&dir),
            with_dotenv,
            "other files are not settings"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_build_shows_the_compilers_messages_without_colours_or_progress() {
        let log = "   Compiling app v0.1.0\n\u{1b}[1m\u{1b}[31merror[E0425]\u{1b}[0m: cannot find value `x`\n --> src/lib.rs:3:5\n";
        assert_eq!(
            diagnostics(log),
            "error[E0425]: cannot find value `x`\n --> src/lib.rs:3:5"
        );
        assert_eq!(diagnostics("no messages\n"), "no messages");
    }
}
