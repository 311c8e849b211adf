//! Helpers of the generator tests: scratch directories and what is in them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A new empty directory under the system temp dir, unique to this call.
pub(crate) fn scratch(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "ferrule-test-{what}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir` but git's own, relative, sorted.
pub(crate) fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Says the running test skips, and why, and records it in the file `FERRULE_TEST_SKIPS` names
/// so `cargo xtask test` counts it as skipped, not passed. The same record as
/// `ferrule::testing::skipped` writes: the CLI's tests do not build the runtime.
pub(crate) fn skipped(why: &str) {
    use std::io::Write as _;
    eprintln!("SKIPPED: {why}");
    let Ok(path) = std::env::var("FERRULE_TEST_SKIPS") else {
        return;
    };
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let test = std::thread::current().name().unwrap_or("main").to_owned();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{binary} {test}"))
        .unwrap_or_else(|e| panic!("could not record the skip in {path}: {e}"));
}
