//! `ferrule build --dist DIR`: a directory that holds everything a release of the app needs to
//! run, from any working directory, as `DIR/<app> serve`.
//!
//! ```text
//! DIR/<app>            the server binary (migrations and translations are compiled in)
//! DIR/Ferrule.toml     the app's settings; its presence tells the binary that DIR is its home
//! DIR/site/            manifest.json and pkg/ with the hashed client files and their .br/.gz
//! DIR/data/            the default SQLite file (the one directory the server writes)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What goes into a dist directory.
#[derive(Debug, Clone)]
pub struct Dist<'a> {
    /// The directory to fill (created when missing).
    pub dir: &'a Path,
    /// The release server binary.
    pub binary: &'a Path,
    /// The name the binary gets in `dir` (the app's package name).
    pub name: &'a str,
    /// The release site (with its manifest).
    pub site: &'a Path,
    /// The app's directory, whose `Ferrule.toml` is copied.
    pub app: &'a Path,
}

/// Written in place of an app's settings when it has none: a dist directory is recognised by
/// its `Ferrule.toml`.
const EMPTY_SETTINGS: &str =
    "# Settings of this app (none set: the defaults). `FERRULE_*` variables override them.\n";

/// Fills `dist.dir`; returns the binary's path there. The site is replaced whole (no client of
/// an earlier build stays); `data/` is kept.
pub fn assemble(dist: &Dist<'_>) -> Result<PathBuf> {
    let dir = dist.dir;
    if dir.is_file() {
        bail!("--dist {}: a file is in the way", dir.display());
    }
    let is_dist = dir.join("Ferrule.toml").is_file();
    let empty = !dir.exists()
        || std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
    if !empty && !is_dist {
        bail!(
            "--dist {}: the directory has other files in it; name a new or empty directory (or an earlier dist)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("data"))
        .with_context(|| format!("creating {}", dir.join("data").display()))?;

    let site = dir.join("site");
    if site.exists() {
        std::fs::remove_dir_all(&site).with_context(|| format!("removing {}", site.display()))?;
    }
    std::fs::create_dir_all(site.join("pkg"))?;
    for file in crate::assets::manifest_files(dist.site)? {
        copy(
            &dist.site.join("pkg").join(&file),
            &site.join("pkg").join(&file),
        )?;
    }
    copy(
        &dist.site.join(crate::assets::MANIFEST_FILE),
        &site.join(crate::assets::MANIFEST_FILE),
    )?;

    let settings = dist.app.join("Ferrule.toml");
    if settings.is_file() {
        copy(&settings, &dir.join("Ferrule.toml"))?;
    } else {
        std::fs::write(dir.join("Ferrule.toml"), EMPTY_SETTINGS)?;
    }
    let binary = dir.join(dist.name);
    // Replaced, not written over: a running server keeps its old file open.
    if binary.exists() {
        std::fs::remove_file(&binary).with_context(|| format!("removing {}", binary.display()))?;
    }
    copy(dist.binary, &binary)?;
    Ok(binary)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrule-dist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_dist_holds_the_binary_settings_and_the_hashed_site_only() {
        let work = scratch("fill");
        let (app, site) = (work.join("app"), work.join("site"));
        std::fs::create_dir_all(site.join("pkg")).unwrap();
        std::fs::create_dir_all(&app).unwrap();
        for (f, t) in [("shop_bg.wasm", "w"), ("shop.js", "j"), ("shop.css", "c")] {
            std::fs::write(site.join("pkg").join(f), t).unwrap();
        }
        let shipped = crate::assets::ship(&site, "shop", None).unwrap();
        std::fs::write(
            app.join("Ferrule.toml"),
            "allowed_hosts = [\"shop.example\"]\n",
        )
        .unwrap();
        std::fs::write(work.join("server"), "binary").unwrap();
        let dir = work.join("dist");
        let dist = Dist {
            dir: &dir,
            binary: &work.join("server"),
            name: "shop",
            site: &site,
            app: &app,
        };
        assert_eq!(assemble(&dist).unwrap(), dir.join("shop"));
        assert!(
            std::fs::read_to_string(dir.join("Ferrule.toml"))
                .unwrap()
                .contains("shop.example")
        );
        assert!(dir.join("data").is_dir());
        let pkg = dir.join("site/pkg");
        let css = &shipped.files["shop.css"];
        assert!(pkg.join(css).is_file() && pkg.join(format!("{css}.br")).is_file());
        assert!(!pkg.join("shop.css").exists(), "plain names stay behind");
        assert!(
            dir.join("site")
                .join(crate::assets::MANIFEST_FILE)
                .is_file()
        );
        std::fs::write(dir.join("data/shop.sqlite3"), "db").unwrap();
        assemble(&dist).unwrap();
        assert!(
            dir.join("data/shop.sqlite3").is_file(),
            "data survives a new dist"
        );
        let busy = work.join("busy");
        std::fs::create_dir_all(&busy).unwrap();
        std::fs::write(busy.join("notes.txt"), "mine").unwrap();
        let err = assemble(&Dist { dir: &busy, ..dist }).unwrap_err();
        assert!(err.to_string().contains("other files"), "{err}");
    }
}
