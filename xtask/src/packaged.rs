//! The published packages as a user gets them: `cargo package` of `ferrule-macros`,
//! `ferrule-web` and `ferrule-cli`, unpacked into a local directory source beside every
//! third-party crate of Cargo.lock (`cargo vendor`), and a directory whose apps cargo builds from
//! that source instead of crates.io, offline. `cargo xtask generated` makes its apps there, so
//! they depend on the runtime exactly as an app made from crates.io does, and compile it once.

use crate::*;

/// The packages meant for crates.io, in dependency order; every other crate of the workspace
/// has `publish = false`.
pub(crate) const PUBLISHED: &[&str] = &["ferrule-macros", "ferrule-web", "ferrule-cli"];

/// What every published package's manifest says, beside its name and version.
const REQUIRED_FIELDS: &[&str] = &[
    "description",
    "license",
    "readme",
    "keywords",
    "categories",
    "rust_version",
    "repository",
];

/// The local stand-in for crates.io.
pub(crate) struct Packaged {
    /// Apps made under here build from `source`, offline (its `.cargo/config.toml` says so).
    pub(crate) apps: PathBuf,
    /// That `.cargo/config.toml`: commands that do not read the working directory's
    /// configuration (`cargo install`) are given it with `--config`.
    pub(crate) config: PathBuf,
    /// The target directory of everything built from `source`, apart from the workspace's.
    /// Cargo's fingerprint of a crate from a registry holds the absolute path of its source
    /// files, while its file names do not: a crate built from `source` has the same file names
    /// as the same crate built by the workspace from cargo's download cache, so in one shared
    /// directory each side rebuilt the other's crates over them, every run (the workspace after
    /// the apps, the apps after the workspace), and a doc test running beside such a rebuild
    /// could find a dependency's library missing.
    pub(crate) target: PathBuf,
}

/// Checks the packages' metadata and licence files, packages them and lays out the directory
/// source and the apps' directory under `<target>/packaged`.
pub(crate) fn prepare(root: &Path, target_dir: &Path) -> Result<Packaged> {
    check_manifests(&metadata(root)?)?;
    check_licence_copies(root)?;
    let base = target_dir.join("packaged");
    let source = base.join("registry");
    vendor(root, &source)?;
    let mut package = cargo();
    package
        .current_dir(root)
        .args(["package", "--no-verify", "--allow-dirty"]);
    for name in PUBLISHED {
        package.args(["-p", name]);
    }
    // Not verified here: that would compile each package again on its own. The apps below
    // build (and test) the runtime and the macros from these very files, and `cargo install`
    // builds the CLI from them.
    offline_first(
        "cargo package -p ferrule-macros -p ferrule-web -p ferrule-cli",
        &mut package,
    )?;
    let version = env!("CARGO_PKG_VERSION");
    let target = base.join("target");
    for name in PUBLISHED {
        let file = target_dir
            .join("package")
            .join(format!("{name}-{version}.crate"));
        if unpack_crate(&file, &source)? {
            let forgotten = forget_builds(&target, name)?;
            if forgotten > 0 {
                eprintln!("    {name} changed: its {forgotten} earlier build(s) will be redone");
            }
        }
    }
    let apps = base.join("apps");
    std::fs::create_dir_all(apps.join(".cargo"))?;
    let config = apps.join(".cargo/config.toml");
    std::fs::write(&config, source_config(&source))?;
    eprintln!(
        "    the packages and every crate of Cargo.lock, as a local source: {}",
        source.display()
    );
    Ok(Packaged {
        apps,
        config,
        target,
    })
}

/// `cargo metadata` of the workspace's own packages.
fn metadata(root: &Path) -> Result<serde_json::Value> {
    let out = cargo()
        .current_dir(root)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Every published package has what crates.io shows and the licence files its `license` names;
/// every other package has `publish = false`.
pub(crate) fn check_manifests(metadata: &serde_json::Value) -> Result<()> {
    let mut problems = Vec::new();
    let packages = metadata["packages"].as_array().context("no packages")?;
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        let published = PUBLISHED.contains(&name);
        let publishable = package["publish"].as_array().is_none_or(|r| !r.is_empty());
        if !published {
            if publishable {
                problems.push(format!(
                    "{name}: not one of {PUBLISHED:?}: needs `publish = false`"
                ));
            }
            continue;
        }
        if !publishable {
            problems.push(format!("{name}: is published, but says `publish = false`"));
        }
        for field in REQUIRED_FIELDS {
            let value = &package[field];
            let empty = value.is_null()
                || value.as_str().is_some_and(str::is_empty)
                || value.as_array().is_some_and(Vec::is_empty);
            if empty {
                problems.push(format!("{name}: no `{}`", field.replace('_', "-")));
            }
        }
        if package["license"].as_str() != Some("MIT OR Apache-2.0") {
            problems.push(format!("{name}: license is not \"MIT OR Apache-2.0\""));
        }
        if package["repository"]
            .as_str()
            .is_some_and(|r| r.contains(".invalid"))
        {
            problems.push(format!("{name}: the repository is a placeholder"));
        }
        let dir = package["manifest_path"]
            .as_str()
            .map(Path::new)
            .and_then(Path::parent);
        for file in ["LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
            if dir.is_some_and(|d| !d.join(file).is_file()) {
                problems.push(format!("{name}: no {file} in its directory"));
            }
        }
    }
    for name in PUBLISHED {
        if !packages.iter().any(|p| p["name"].as_str() == Some(name)) {
            problems.push(format!("{name}: not in the workspace"));
        }
    }
    if !problems.is_empty() {
        bail!("the packages' manifests:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// The licence files of each published package are the repository's, byte for byte.
pub(crate) fn check_licence_copies(root: &Path) -> Result<()> {
    let mut differ = Vec::new();
    for file in ["LICENSE-MIT", "LICENSE-APACHE"] {
        let ours = std::fs::read(root.join(file)).with_context(|| format!("{file} at the root"))?;
        for dir in ["runtime", "macros", "cli"] {
            if std::fs::read(root.join(dir).join(file)).ok().as_ref() != Some(&ours) {
                differ.push(format!("{dir}/{file}"));
            }
        }
    }
    if !differ.is_empty() {
        bail!(
            "not the same as the repository's licence files (copy them again): {}",
            differ.join(", ")
        );
    }
    Ok(())
}

/// Every third-party crate of Cargo.lock into `source`, when the lock changed since the last
/// time (cargo's download cache makes it offline after the first time).
fn vendor(root: &Path, source: &Path) -> Result<()> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))?;
    let stamp = source.join(".vendored-from-Cargo.lock");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == lock) {
        eprintln!("==> third-party crates: vendored already for this Cargo.lock");
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(source);
    offline_first(
        "cargo vendor (every crate of Cargo.lock, for the apps' local source)",
        cargo()
            .current_dir(root)
            .args(["vendor", "--locked", "--versioned-dirs", "-q"])
            .arg(source)
            .stdout(std::process::Stdio::null()),
    )?;
    std::fs::write(&stamp, lock)?;
    Ok(())
}

/// Runs a cargo command `--offline`, and again online when that fails (a fresh machine, whose
/// download cache lacks a crate).
fn offline_first(what: &str, cmd: &mut Command) -> Result<()> {
    let offline = Command::new(cmd.get_program())
        .args(cmd.get_args())
        .arg("--offline")
        .current_dir(cmd.get_current_dir().unwrap_or(Path::new(".")))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if offline.is_ok_and(|s| s.success()) {
        eprintln!("==> {what}: ok, offline");
        return Ok(());
    }
    run(what, cmd)
}

/// Unpacks a `.crate` into the directory source, with the `.cargo-checksum.json` cargo wants
/// there: the archive's sha256 (what Cargo.lock records), no per-file sums. An archive that
/// did not change is left as it was; one that did is unpacked anew with the current time (`tar
/// --touch`; `cargo package` stores 2006) and `true` returned: cargo does not look at a
/// registry package's files again once it has built that version, so the caller makes it
/// forget those builds ([`forget_builds`]).
fn unpack_crate(file: &Path, source: &Path) -> Result<bool> {
    let stem = file
        .file_stem()
        .context("crate file name")?
        .to_string_lossy()
        .into_owned();
    let dir = source.join(&stem);
    let sum = Command::new("sha256sum")
        .arg(file)
        .output()
        .context("could not run sha256sum")?;
    let sum = String::from_utf8_lossy(&sum.stdout);
    let sum = sum.split_whitespace().next().unwrap_or("");
    if sum.len() != 64 {
        bail!("no sha256 for {}", file.display());
    }
    let checksum = dir.join(".cargo-checksum.json");
    if std::fs::read_to_string(&checksum).is_ok_and(|c| c == checksum_json(sum)) {
        return Ok(false);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(source)?;
    let status = Command::new("tar")
        .arg("--touch")
        .arg("-xzf")
        .arg(file)
        .arg("-C")
        .arg(source)
        .status()
        .context("could not run tar")?;
    if !status.success() || !dir.join("Cargo.toml").is_file() {
        bail!(
            "could not unpack {} into {}",
            file.display(),
            source.display()
        );
    }
    std::fs::write(checksum, checksum_json(sum))?;
    Ok(true)
}

/// Removes cargo's fingerprints of `package` from every profile under `target` (`debug`,
/// `wasm32-unknown-unknown/wasm-dev`, …); returns how many. Cargo treats a registry package of
/// one version as never changing, so after the packaged runtime changed without a new version
/// the apps would still link the build of the old code; without its fingerprint cargo compiles
/// it again, and everything that depends on it.
pub(crate) fn forget_builds(target: &Path, package: &str) -> Result<usize> {
    let is_build_of = |name: &str| {
        name.strip_prefix(package)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let mut removed = 0;
    let mut dirs = vec![(target.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name() == ".fingerprint" {
                for unit in std::fs::read_dir(&path)?.flatten() {
                    if is_build_of(&unit.file_name().to_string_lossy()) {
                        std::fs::remove_dir_all(unit.path())?;
                        removed += 1;
                    }
                }
            } else if depth < 2 {
                dirs.push((path, depth + 1));
            }
        }
    }
    Ok(removed)
}

/// A `.cargo-checksum.json` for a package whose archive has sha256 `sum`.
pub(crate) fn checksum_json(sum: &str) -> String {
    serde_json::json!({ "files": {}, "package": sum }).to_string()
}

/// The `.cargo/config.toml` that makes cargo take crates.io's crates from `source`, offline.
pub(crate) fn source_config(source: &Path) -> String {
    format!(
        "# Written by `cargo xtask generated`: apps under this directory build from the packages\n\
         # `cargo package` made and the vendored crates of Cargo.lock, never from crates.io.\n\
         [source.crates-io]\n\
         replace-with = \"ferrule-packaged\"\n\n\
         [source.ferrule-packaged]\n\
         directory = {:?}\n\n\
         [net]\n\
         offline = true\n",
        source.display().to_string()
    )
}

/// The workspace's `[profile.dev.package.NAME] opt-level = N` settings, as `(NAME, N)`: a
/// package built outside the workspace (`cargo install`) gets them too, so that it shares the
/// workspace's compiled dependencies instead of building those again unoptimised.
pub(crate) fn dev_opt_levels(root: &Path) -> Result<Vec<(String, String)>> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let mut out = Vec::new();
    let mut package = None;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            package = line
                .strip_prefix("[profile.dev.package.")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned);
        } else if let (Some(name), Some(level)) = (&package, line.strip_prefix("opt-level = ")) {
            out.push((name.clone(), level.trim_matches('"').to_owned()));
        }
    }
    Ok(out)
}

/// The files under `dir` (not `.git`, not a `target`) whose text contains `needle`.
pub(crate) fn files_naming(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() {
                if name != ".git" && name != "target" {
                    stack.push(p);
                }
            } else if std::fs::read(&p).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle))
            {
                found.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// An app made the default way names no path of this checkout: it depends on the published
/// runtime, `ferrule = { package = "ferrule-web", version = "…" }`.
pub(crate) fn assert_default_dependency(app: &Path, root: &Path) -> Result<()> {
    let leaks = files_naming(app, &root.display().to_string());
    if !leaks.is_empty() {
        bail!(
            "{} names this checkout ({}) in {leaks:?}",
            app.display(),
            root.display()
        );
    }
    let manifest = std::fs::read_to_string(app.join("Cargo.toml"))?;
    let dep = format!(
        "ferrule = {{ package = \"{}\", {}",
        ferrule_cli::new::RUNTIME_PACKAGE,
        ferrule_cli::new::registry_ferrule_dep()
    );
    if manifest.matches(&dep).count() != 2 || manifest.contains("path = ") {
        bail!(
            "{}/Cargo.toml does not depend on the published runtime (`{dep}`):\n{manifest}",
            app.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrule-xtask-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn package(name: &str, dir: &Path) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "publish": null,
            "description": "d",
            "license": "MIT OR Apache-2.0",
            "readme": "README.md",
            "keywords": ["web"],
            "categories": ["web-programming"],
            "rust_version": "1.94",
            "repository": "https://github.com/ferrule-web/ferrule",
            "manifest_path": dir.join("Cargo.toml").display().to_string(),
        })
    }

    #[test]
    fn a_published_package_without_its_metadata_or_licences_fails_the_check() {
        let dir = scratch("manifests");
        for file in ["LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
            std::fs::write(dir.join(file), "x").unwrap();
        }
        let mut packages: Vec<_> = PUBLISHED.iter().map(|n| package(n, &dir)).collect();
        let mut xtask = package("xtask", &dir);
        xtask["publish"] = serde_json::json!([]);
        packages.push(xtask);
        check_manifests(&serde_json::json!({ "packages": packages.clone() })).unwrap();

        let mut broken = packages.clone();
        broken[1]["keywords"] = serde_json::json!([]);
        broken[1]["license"] = serde_json::json!("MIT");
        broken[2]["repository"] = serde_json::json!("https://example.invalid/ferrule");
        broken[3]["publish"] = serde_json::Value::Null;
        let err = check_manifests(&serde_json::json!({ "packages": broken }))
            .unwrap_err()
            .to_string();
        for said in [
            "ferrule-web: no `keywords`",
            "ferrule-web: license is not",
            "ferrule-cli: the repository is a placeholder",
            "xtask: not one of",
        ] {
            assert!(err.contains(said), "{said}: {err}");
        }

        std::fs::remove_file(dir.join("LICENSE-APACHE")).unwrap();
        let err = check_manifests(&serde_json::json!({ "packages": packages }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ferrule-macros: no LICENSE-APACHE"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_workspace_passes_its_own_checks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        check_manifests(&metadata(&root).unwrap()).unwrap();
        check_licence_copies(&root).unwrap();
    }

    #[test]
    fn a_licence_copy_that_drifted_is_named() {
        let root = scratch("licences");
        for dir in ["", "runtime", "macros", "cli"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("LICENSE-MIT"), "mit").unwrap();
            std::fs::write(root.join(dir).join("LICENSE-APACHE"), "apache").unwrap();
        }
        check_licence_copies(&root).unwrap();
        std::fs::write(root.join("macros/LICENSE-MIT"), "mit, edited").unwrap();
        let err = check_licence_copies(&root).unwrap_err().to_string();
        assert!(err.contains("macros/LICENSE-MIT"), "{err}");
        assert!(!err.contains("cli/"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_workspace_dev_optimisations_are_read_from_its_manifest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let levels = dev_opt_levels(&root).unwrap();
        for package in ["argon2", "walrus", "wasm-bindgen-cli-support"] {
            assert!(
                levels.contains(&(package.to_owned(), "3".to_owned())),
                "{package}: {levels:?}"
            );
        }
        assert!(
            levels.iter().all(|(p, _)| !p.contains(['[', ']', '.'])),
            "{levels:?}"
        );
    }

    #[test]
    fn a_changed_package_is_unpacked_anew_with_fresh_times_and_an_unchanged_one_is_left() {
        let dir = scratch("unpack");
        let (work, source) = (dir.join("work"), dir.join("source"));
        std::fs::create_dir_all(work.join("demo-0.1.0")).unwrap();
        let crate_file = dir.join("demo-0.1.0.crate");
        let pack = |code: &str| {
            std::fs::write(work.join("demo-0.1.0/Cargo.toml"), "[package]\n").unwrap();
            std::fs::write(work.join("demo-0.1.0/lib.rs"), code).unwrap();
            // As `cargo package` does: every file stored with one time in 2006.
            let status = Command::new("tar")
                .args(["--mtime=2006-07-24 01:21:28", "-czf"])
                .arg(&crate_file)
                .arg("-C")
                .arg(&work)
                .arg("demo-0.1.0")
                .status()
                .unwrap();
            assert!(status.success());
        };
        let modified = || {
            std::fs::metadata(source.join("demo-0.1.0/lib.rs"))
                .unwrap()
                .modified()
                .unwrap()
        };
        let recent = std::time::SystemTime::now() - Duration::from_secs(3600);

        pack("old");
        assert!(unpack_crate(&crate_file, &source).unwrap());
        let first = modified();
        assert!(first > recent, "unpacked with the current time, not 2006");
        let json = std::fs::read_to_string(source.join("demo-0.1.0/.cargo-checksum.json")).unwrap();
        assert!(json.starts_with(r#"{"files":{},"package":""#), "{json}");

        std::thread::sleep(Duration::from_millis(20));
        assert!(!unpack_crate(&crate_file, &source).unwrap());
        assert_eq!(modified(), first, "the same archive leaves the files alone");

        pack("new");
        assert!(unpack_crate(&crate_file, &source).unwrap());
        let code = std::fs::read_to_string(source.join("demo-0.1.0/lib.rs")).unwrap();
        assert_eq!(code, "new");
        assert!(
            modified() > first,
            "changed code is newer than what was built from the old"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_package_is_built_anew_in_every_profile_and_no_other_package_is() {
        let target = scratch("forget");
        let units = [
            "debug/.fingerprint/ferrule-web-3ed36de959d9b887",
            "debug/.fingerprint/ferrule-web-b8cedee57a100b55",
            "wasm32-unknown-unknown/wasm-dev/.fingerprint/ferrule-web-0123456789abcdef",
            "debug/.fingerprint/ferrule-web-extra-0123456789abcdef",
            "debug/.fingerprint/ferrule-macros-0123456789abcdef",
            "debug/.fingerprint/tokio-0123456789abcdef",
        ];
        for unit in units {
            std::fs::create_dir_all(target.join(unit)).unwrap();
        }
        assert_eq!(forget_builds(&target, "ferrule-web").unwrap(), 3);
        for (unit, kept) in units.iter().zip([false, false, false, true, true, true]) {
            assert_eq!(target.join(unit).exists(), kept, "{unit}");
        }
        assert_eq!(forget_builds(&target, "ferrule-web").unwrap(), 0);
        assert_eq!(
            forget_builds(&target.join("none"), "ferrule-web").unwrap(),
            0
        );
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn the_source_config_replaces_crates_io_offline() {
        let config = source_config(Path::new("/t/packaged/registry"));
        assert!(config.contains("[source.crates-io]\nreplace-with = \"ferrule-packaged\""));
        assert!(config.contains("directory = \"/t/packaged/registry\""));
        assert!(config.contains("[net]\noffline = true"));
        assert_eq!(checksum_json("ab"), r#"{"files":{},"package":"ab"}"#);
    }

    #[test]
    fn an_app_naming_the_checkout_or_a_path_dependency_is_caught() {
        let app = scratch("leak");
        let checkout = Path::new("/work/some-checkout");
        let dep = ferrule_cli::new::registry_ferrule_dep();
        let good = format!(
            "ferrule = {{ package = \"ferrule-web\", {dep}, default-features = false }}\n\
             ferrule = {{ package = \"ferrule-web\", {dep}, features = [\"testing\"] }}\n"
        );
        std::fs::write(app.join("Cargo.toml"), &good).unwrap();
        std::fs::create_dir_all(app.join("src")).unwrap();
        std::fs::write(app.join("src/lib.rs"), "// fine\n").unwrap();
        assert_default_dependency(&app, checkout).unwrap();

        std::fs::write(
            app.join("src/lib.rs"),
            "// see /work/some-checkout/runtime\n",
        )
        .unwrap();
        let err = assert_default_dependency(&app, checkout)
            .unwrap_err()
            .to_string();
        assert!(err.contains("src/lib.rs"), "{err}");
        std::fs::write(app.join("src/lib.rs"), "// fine\n").unwrap();

        let path_dep = good.replace(&dep, "path = \"/elsewhere/runtime\"");
        std::fs::write(app.join("Cargo.toml"), path_dep).unwrap();
        assert!(assert_default_dependency(&app, checkout).is_err());
        std::fs::remove_dir_all(&app).unwrap();
    }
}
