//! Writing a plan: one line inserted above each marker in the app's files, new files created,
//! and everything undone when one write fails.

use super::*;

/// The app being generated into.
pub(crate) struct AppDir<'a> {
    pub(crate) root: &'a Path,
    pub(crate) auth: bool,
}

impl AppDir<'_> {
    pub(crate) fn read(&self, rel: &str) -> Result<String> {
        std::fs::read_to_string(self.root.join(rel)).with_context(|| {
            format!(
                "cannot read {rel} in {}: run `ferrule generate` in an app made by `ferrule new`",
                self.root.display()
            )
        })
    }

    /// The app's crate name as Rust code writes it (`my-shop` → `my_shop`), from the `name` of
    /// `[package]` in its `Cargo.toml`.
    pub(crate) fn crate_name(&self) -> Result<String> {
        Ok(self.package_name()?.replace('-', "_"))
    }

    /// The app's package name, which its binary has too.
    pub(crate) fn package_name(&self) -> Result<String> {
        let manifest = self.read("Cargo.toml")?;
        let package = manifest
            .split("\n[")
            .find(|section| section.trim_start_matches('[').starts_with("package]"))
            .context("Cargo.toml has no [package] section")?;
        package
            .lines()
            .filter_map(|line| line.split_once('='))
            .find(|(key, _)| key.trim() == "name")
            .map(|(_, value)| value.trim().trim_matches('"').to_owned())
            .context("Cargo.toml's [package] has no name")
    }
}

/// Inserts `line` above the line holding `// ferrule:<marker>`, with that line's indentation.
pub(crate) fn insert_at(text: &str, file: &str, marker: &str, line: &str) -> Result<String> {
    let tag = format!("// ferrule:{marker}");
    let Some(at) = text.lines().position(|l| l.trim_start().starts_with(&tag)) else {
        bail!(
            "{file} has no `{tag}` line, so `ferrule generate` does not know where to add `{}`: put the marker back where {marker} are listed (see a fresh `ferrule new` app)",
            line.trim()
        );
    };
    let lines: Vec<&str> = text.lines().collect();
    let indent: String = lines[at]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let mut out = String::with_capacity(text.len() + line.len() + 16);
    for (i, l) in lines.iter().enumerate() {
        if i == at {
            out.push_str(&indent);
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// The edits of one existing file, applied in memory.
pub(crate) struct Edit {
    pub(crate) file: String,
    pub(crate) text: String,
}

impl Edit {
    pub(crate) fn of(app: &AppDir<'_>, file: &str) -> Result<Self> {
        Ok(Self {
            file: file.to_owned(),
            text: app.read(file)?,
        })
    }

    pub(crate) fn insert(&mut self, marker: &str, line: &str) -> Result<()> {
        if self.text.lines().any(|l| l.trim() == line.trim()) {
            bail!("{} already has `{}`", self.file, line.trim());
        }
        self.text = insert_at(&self.text, &self.file, marker, line)?;
        Ok(())
    }
}

/// Writes `plan` into the app at `root`: every file or none. Returns the files written.
pub fn apply(root: &Path, plan: &Plan) -> Result<Vec<PathBuf>> {
    let mut created: Vec<PathBuf> = Vec::new();
    let mut restored: Vec<(PathBuf, String)> = Vec::new();
    let result = (|| -> Result<()> {
        for (rel, text) in &plan.create {
            let path = root.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", rel.display()))?;
            created.push(path);
            std::io::Write::write_all(&mut f, text.as_bytes())?;
        }
        for (rel, text) in &plan.edit {
            let path = root.join(rel);
            let old = std::fs::read_to_string(&path)?;
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", rel.display()))?;
            restored.push((path, old));
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Say "nothing was changed" only when putting everything back worked.
        let mut not_undone = Vec::new();
        for p in &created {
            if let Err(undo) = std::fs::remove_file(p) {
                not_undone.push(format!("{} (created): {undo}", p.display()));
            }
        }
        for (p, old) in &restored {
            if let Err(undo) = std::fs::write(p, old) {
                not_undone.push(format!("{} (changed): {undo}", p.display()));
            }
        }
        return Err(if not_undone.is_empty() {
            e.context("nothing was changed")
        } else {
            e.context(format!(
                "and these could not be put back: {}",
                not_undone.join("; ")
            ))
        });
    }
    // In rustfmt's layout, as `cargo fmt` would leave them: new files, and the edited ones
    // (whose module lists rustfmt keeps sorted).
    crate::new::rustfmt(
        plan.create
            .iter()
            .chain(plan.edit.iter())
            .map(|(p, _)| root.join(p)),
    );
    Ok(plan
        .create
        .iter()
        .chain(plan.edit.iter())
        .map(|(p, _)| p.clone())
        .collect())
}
