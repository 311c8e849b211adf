//! `ferrule dev`: build, migrate, serve, and on every change to the app's sources rebuild and
//! restart.
//!
//! Changes are found by polling modification times (twice a second) over `src/`, `style/`,
//! `Cargo.toml` and `Ferrule.toml`: no platform watcher to install, and editors that replace
//! files instead of writing them are seen the same way. A build that fails leaves the running
//! server as it was; cargo's errors are printed as they come.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::site::{SiteOptions, build_client, build_server};

/// What the watcher compares: the newest modification time and the number of files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint {
    newest: Option<SystemTime>,
    files: usize,
}

/// The fingerprint of the sources of the app in `dir`.
pub fn fingerprint(dir: &Path) -> Fingerprint {
    let mut fp = Fingerprint::default();
    let mut stack: Vec<PathBuf> = ["src", "style", "Cargo.toml", "Ferrule.toml"]
        .iter()
        .map(|p| dir.join(p))
        .collect();
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

/// Builds client and server; `None` (after saying why) when either does not compile.
fn rebuild(opts: &SiteOptions) -> Option<PathBuf> {
    let bar = spinner(format!("building {}", opts.package));
    let built = build_client(opts).and_then(|_| build_server(opts));
    bar.finish_and_clear();
    match built {
        Ok(bin) => Some(bin),
        Err(e) => {
            eprintln!(
                "ferrule dev: {e:#}\nferrule dev: fix it and save; the last good build keeps running"
            );
            None
        }
    }
}

/// Applies pending migrations (a dev loop should not stop at a new one), then serves.
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
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))
}

/// Stops the server politely (SIGTERM lets in-flight events finish), then for good.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the loop for the app in `dir` until interrupted.
pub fn run(dir: &Path, package: &str) -> Result<()> {
    let opts = SiteOptions::new(dir, package, false)?;
    let mut seen = fingerprint(dir);
    let mut server = match rebuild(&opts) {
        Some(bin) => Some(start(&bin, dir)?),
        None => None,
    };
    eprintln!("ferrule dev: watching {} (Ctrl-C stops)", dir.display());
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = fingerprint(dir);
        if now == seen {
            continue;
        }
        // Let an editor finish writing before building.
        std::thread::sleep(Duration::from_millis(200));
        seen = fingerprint(dir);
        eprintln!("ferrule dev: change detected, rebuilding");
        if let Some(bin) = rebuild(&opts) {
            if let Some(mut old) = server.take() {
                stop(&mut old);
            }
            server = Some(start(&bin, dir)?);
            eprintln!("ferrule dev: restarted");
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
        let first = fingerprint(&dir);
        assert_eq!(first.files, 1);
        assert_eq!(fingerprint(&dir), first, "nothing changed");
        std::fs::write(dir.join("style.css.unwatched"), "x").unwrap();
        assert_eq!(
            fingerprint(&dir),
            first,
            "files outside the sources do not count"
        );
        std::fs::create_dir_all(dir.join("style")).unwrap();
        std::fs::write(dir.join("style/app.css"), "b{}").unwrap();
        assert_ne!(fingerprint(&dir), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
