//! Where an app's files are when it runs: beside its binary in a directory made by `ferrule
//! build --dist` (run from any working directory), else the working directory. The settings
//! file is looked for in the working directory first, then here (see `layers`).

use std::path::PathBuf;

/// The file whose presence beside the binary marks a dist directory.
pub(super) const SETTINGS_FILE: &str = "Ferrule.toml";

/// The directory of the running binary when it holds a `Ferrule.toml`: a dist directory, whose
/// binary finds its settings, site and data there wherever it is started from. `None` for
/// `cargo run`, `ferrule dev` and tests, whose binaries live in a target directory.
pub fn dist_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    dir.join(SETTINGS_FILE).is_file().then(|| dir.to_path_buf())
}

/// Where the default SQLite file goes: `data/` of a dist directory (the one directory a
/// service needs to write), else the working directory.
pub fn data_dir() -> PathBuf {
    dist_dir().map_or_else(PathBuf::new, |d| d.join("data"))
}
