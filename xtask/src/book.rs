//! `cargo xtask book`: the book built with mdBook, its includes checked.

use crate::*;

/// The book builds with mdBook (its Rust code blocks are doc tests of `ferrule`, run with the
/// workspace's tests); a chapter SUMMARY.md lists but nobody wrote fails the build.
pub(crate) fn book() -> Result<()> {
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
    Ok(())
}

/// The repository's top-level directories, which a path in the book starts with.
const REPOSITORY_DIRS: &[&str] = &[
    "runtime", "macros", "cli", "xtask", "examples", "docs", "e2e", "bench",
];

/// Every `{{#include FILE:ANCHOR}}` of the book names a file and an anchor that exist (mdBook
/// would quietly include nothing), so a renamed function cannot empty a chapter's listing; and
/// every image a chapter shows (`![…](img/…)`) is there (mdBook would show a broken one); and
/// every repository path a chapter names in code quotes (`` `runtime/src/bridge/mod.rs` ``)
/// exists, so a moved file cannot leave the book pointing at nothing.
pub(crate) fn check_includes(src: &Path) -> Result<()> {
    let repo = src.parent().and_then(Path::parent).unwrap_or(src);
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(src)?.flatten() {
        let chapter = entry.path();
        if chapter.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&chapter)?;
        for part in text.split("](img/").skip(1) {
            let Some(file) = part.split(')').next() else {
                continue;
            };
            if !src.join("img").join(file).is_file() {
                let name = chapter.file_name().unwrap_or_default().to_string_lossy();
                problems.push(format!("{name}: the image img/{file} does not exist"));
            }
        }
        let quotes = text.lines().flat_map(|l| l.split('`').skip(1).step_by(2));
        for quoted in quotes {
            let top = quoted.split('/').next().unwrap_or("");
            let named = quoted.contains('/')
                && REPOSITORY_DIRS.contains(&top)
                && !quoted.contains(['{', '*', '<', ' ']);
            if named && !repo.join(quoted).exists() {
                let name = chapter.file_name().unwrap_or_default().to_string_lossy();
                problems.push(format!(
                    "{name}: `{quoted}` does not exist in the repository"
                ));
            }
        }
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
pub(crate) fn tree(dir: &Path) -> Result<Vec<(String, String)>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chapter_showing_a_missing_image_fails_the_check() {
        let src = std::env::temp_dir().join(format!("ferrule-book-img-{}", std::process::id()));
        std::fs::create_dir_all(src.join("img")).unwrap();
        std::fs::write(src.join("a.md"), "# A\n\n![the home page](img/home.jpeg)\n").unwrap();
        let err = check_includes(&src).unwrap_err().to_string();
        assert!(
            err.contains("a.md: the image img/home.jpeg does not exist"),
            "{err}"
        );
        std::fs::write(src.join("img/home.jpeg"), b"\xff\xd8").unwrap();
        check_includes(&src).unwrap();
        std::fs::remove_dir_all(&src).unwrap();
    }

    #[test]
    fn a_chapter_naming_a_file_that_moved_fails_the_check() {
        let repo = std::env::temp_dir().join(format!("ferrule-book-path-{}", std::process::id()));
        let src = repo.join("docs/src");
        std::fs::create_dir_all(repo.join("runtime/src")).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("a.md"),
            "The bridge is in `runtime/src/bridge.rs`; `{state}.rs` and `a/b` are not paths.\n",
        )
        .unwrap();
        let err = check_includes(&src).unwrap_err().to_string();
        assert!(
            err.contains("a.md: `runtime/src/bridge.rs` does not exist"),
            "{err}"
        );
        assert!(!err.contains("a/b"), "{err}");
        std::fs::write(repo.join("runtime/src/bridge.rs"), "").unwrap();
        check_includes(&src).unwrap();
        std::fs::remove_dir_all(&repo).unwrap();
    }
}
