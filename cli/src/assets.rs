//! What a release build ships: the client's wasm run through `wasm-opt`, the wasm, its JS glue
//! and the stylesheet under content-hashed names, a `.br` and a `.gz` copy of each, and the
//! manifest (`<site>/manifest.json`) that tells the server the hashed names.
//!
//! The client's wasm and JS share one hash (of both files): Leptos's hydration script derives
//! both names from one stem (`app.<hash>.js`, `app.<hash>_bg.wasm`). The stylesheet has its own,
//! so a CSS-only change leaves the wasm in the browsers' caches.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The manifest's file name, in the site directory (beside `pkg/`, so it is not served).
pub const MANIFEST_FILE: &str = "manifest.json";

/// How many hex digits of the SHA-256 a hashed name carries (64 bits: no two builds collide).
const HASH_DIGITS: usize = 16;

/// What [`ship`] did, for the build's report and the performance chapter.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// Logical name (`app.js`) → hashed name (`app.0123456789abcdef.js`), as in the manifest.
    pub files: BTreeMap<String, String>,
    /// The wasm as wasm-bindgen wrote it.
    pub wasm_before_opt: u64,
    /// The wasm served (after wasm-opt when it ran).
    pub wasm_bytes: u64,
    /// Its brotli copy.
    pub wasm_br_bytes: u64,
    /// Its gzip copy.
    pub wasm_gz_bytes: u64,
    /// The wasm-opt that ran, or `None` when none was found (the wasm is then unoptimised).
    pub wasm_opt: Option<PathBuf>,
}

/// Finds `wasm-opt`: on `PATH`, else in `node_modules/.bin` of each of `dirs` (the app, the
/// Ferrule checkout's `e2e/`), where `npm install binaryen` puts it.
pub fn find_wasm_opt(dirs: &[PathBuf]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|dir| dir.join("wasm-opt"))
        .chain(dirs.iter().map(|d| d.join("node_modules/.bin/wasm-opt")))
        .find(|p| p.is_file())
}

/// The directories [`ship`] looks in for wasm-opt besides `PATH`: the app's, and the `e2e/` of
/// the Ferrule checkout this CLI was built from (when it still exists).
pub fn wasm_opt_dirs(app: &Path) -> Vec<PathBuf> {
    let checkout_e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e");
    vec![app.to_path_buf(), checkout_e2e]
}

/// Makes the release files of the client `name` in `site/pkg` (written there by wasm-bindgen
/// and the CSS bundler under their plain names), writes the manifest, and removes the hashed
/// files of earlier builds. Without a `wasm_opt` the wasm ships unoptimised.
pub fn ship(site: &Path, name: &str, wasm_opt: Option<&Path>) -> Result<Shipped> {
    let pkg = site.join("pkg");
    let wasm_in = pkg.join(format!("{name}_bg.wasm"));
    let wasm_before_opt = std::fs::metadata(&wasm_in)
        .with_context(|| format!("no client at {}", wasm_in.display()))?
        .len();
    let wasm = match wasm_opt {
        Some(tool) => optimise(tool, &wasm_in)?,
        None => read(&wasm_in)?,
    };
    let js = read(&pkg.join(format!("{name}.js")))?;
    let css = read(&pkg.join(format!("{name}.css")))?;
    let client = hash(&[&wasm, &js]);
    let style = hash(&[&css]);
    let outputs = [
        (format!("{name}.js"), format!("{name}.{client}.js"), js),
        (
            format!("{name}_bg.wasm"),
            format!("{name}.{client}_bg.wasm"),
            wasm,
        ),
        (format!("{name}.css"), format!("{name}.{style}.css"), css),
    ];
    let mut files = BTreeMap::new();
    let (mut wasm_br_bytes, mut wasm_gz_bytes) = (0, 0);
    for (logical, hashed, bytes) in &outputs {
        let (br, gz) = write_with_compressed(&pkg.join(hashed), bytes)?;
        if logical.ends_with(".wasm") {
            (wasm_br_bytes, wasm_gz_bytes) = (br, gz);
        }
        files.insert(logical.clone(), hashed.clone());
    }
    let manifest = serde_json::json!({ "files": files });
    write(
        &site.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    prune(&pkg, name, &files)?;
    Ok(Shipped {
        wasm_bytes: outputs[1].2.len() as u64,
        files,
        wasm_before_opt,
        wasm_br_bytes,
        wasm_gz_bytes,
        wasm_opt: wasm_opt.map(Path::to_path_buf),
    })
}

/// Removes the manifest of an earlier release build, so that a dev build's server serves the
/// plain names it just wrote (`ferrule dev` swaps `pkg/<app>.css` in place).
pub fn forget_release(site: &Path) -> Result<()> {
    match std::fs::remove_file(site.join(MANIFEST_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", site.join(MANIFEST_FILE).display()))
        }
        _ => Ok(()),
    }
}

/// The hashed names (and their compressed copies) a site's manifest lists, relative to `pkg/`:
/// what a dist directory copies.
pub fn manifest_files(site: &Path) -> Result<Vec<String>> {
    let path = site.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no release build at {} (run a release build)",
            path.display()
        )
    })?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let files = manifest["files"]
        .as_object()
        .with_context(|| format!("{} has no `files`", path.display()))?;
    Ok(files
        .values()
        .filter_map(|v| v.as_str())
        .flat_map(|f| [f.to_owned(), format!("{f}.br"), format!("{f}.gz")])
        .collect())
}

/// The binaryen features Rust's wasm32 target emits by default; wasm-opt must allow each one
/// the module uses, and wasm-bindgen drops the section that would tell it.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-sign-ext",
    "--enable-multivalue",
];

/// `wasm-opt -Oz` on `wasm`; returns the optimised module.
fn optimise(tool: &Path, wasm: &Path) -> Result<Vec<u8>> {
    let out = wasm.with_extension("opt.wasm");
    let run = Command::new(tool)
        .arg("-Oz")
        .args(WASM_FEATURES)
        .arg(wasm)
        .arg("-o")
        .arg(&out)
        .output()
        .with_context(|| format!("could not run {}", tool.display()))?;
    if !run.status.success() {
        bail!(
            "{} -Oz failed on {}: {}",
            tool.display(),
            wasm.display(),
            String::from_utf8_lossy(&run.stderr).trim()
        );
    }
    let bytes = read(&out)?;
    std::fs::remove_file(&out).with_context(|| format!("removing {}", out.display()))?;
    Ok(bytes)
}

fn hash(parts: &[&[u8]]) -> String {
    let mut sha = Sha256::new();
    for part in parts {
        sha.update(part);
    }
    let digest = sha.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..HASH_DIGITS].to_owned()
}

/// Writes `bytes` to `path`, and brotli (quality 11) and gzip (level 9) copies beside it;
/// returns the sizes of the two copies. Done once per build, so the slowest, smallest settings.
fn write_with_compressed(path: &Path, bytes: &[u8]) -> Result<(u64, u64)> {
    write(path, bytes)?;
    let mut br = Vec::new();
    {
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: 22,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &bytes[..], &mut br, &params).context("brotli")?;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).context("gzip")?;
    let gz = gz.finish().context("gzip")?;
    write(&with_suffix(path, ".br"), &br)?;
    write(&with_suffix(path, ".gz"), &gz)?;
    Ok((br.len() as u64, gz.len() as u64))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Removes `pkg/<name>.<16 hex>…` files no longer in `files` (and their compressed copies):
/// each release build would otherwise leave its client behind.
fn prune(pkg: &Path, name: &str, files: &BTreeMap<String, String>) -> Result<()> {
    let prefix = format!("{name}.");
    for entry in std::fs::read_dir(pkg).with_context(|| format!("reading {}", pkg.display()))? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let hashed_name = rest.len() > HASH_DIGITS
            && rest[..HASH_DIGITS].bytes().all(|b| b.is_ascii_hexdigit())
            && matches!(rest.as_bytes()[HASH_DIGITS], b'.' | b'_');
        let current = files.values().any(|f| {
            file == *f || file.strip_suffix(".br") == Some(f) || file.strip_suffix(".gz") == Some(f)
        });
        if hashed_name && !current {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferrule-ship-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        for (file, text) in [
            ("app_bg.wasm", "\0asm wasm"),
            ("app.js", "glue"),
            ("app.css", "body{}"),
        ] {
            std::fs::write(dir.join("pkg").join(file), text).unwrap();
        }
        dir
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
        out
    }

    #[test]
    fn release_files_are_hashed_compressed_and_listed() {
        let site = site("hashed");
        let shipped = ship(&site, "app", None).unwrap();
        let js = &shipped.files["app.js"];
        let wasm = &shipped.files["app_bg.wasm"];
        let css = &shipped.files["app.css"];
        let stem = js.strip_suffix(".js").unwrap();
        assert_eq!(*wasm, format!("{stem}_bg.wasm"), "one stem for the client");
        assert!(css.starts_with("app.") && css.ends_with(".css") && css != "app.css");
        let pkg = site.join("pkg");
        assert_eq!(std::fs::read_to_string(pkg.join(css)).unwrap(), "body{}");
        assert_eq!(
            gunzip(&std::fs::read(pkg.join(format!("{css}.gz"))).unwrap()),
            "body{}"
        );
        let mut br = Vec::new();
        brotli::BrotliDecompress(
            &mut &std::fs::read(pkg.join(format!("{js}.br"))).unwrap()[..],
            &mut br,
        )
        .unwrap();
        assert_eq!(br, b"glue");
        let listed = manifest_files(&site).unwrap();
        assert_eq!(listed.len(), 9, "{listed:?}");
        assert!(listed.contains(&format!("{wasm}.br")));
    }

    #[test]
    fn a_changed_stylesheet_renames_only_itself_and_old_builds_are_removed() {
        let site = site("rebuild");
        let first = ship(&site, "app", None).unwrap();
        std::fs::write(site.join("pkg/app.css"), "body{color:red}").unwrap();
        let second = ship(&site, "app", None).unwrap();
        assert_eq!(first.files["app.js"], second.files["app.js"]);
        assert_ne!(first.files["app.css"], second.files["app.css"]);
        let pkg = site.join("pkg");
        assert!(!pkg.join(&first.files["app.css"]).exists());
        assert!(!pkg.join(format!("{}.br", first.files["app.css"])).exists());
        assert!(pkg.join(&second.files["app.css"]).exists());
        assert!(pkg.join("app.css").exists(), "the plain names stay");
        forget_release(&site).unwrap();
        assert!(!site.join(MANIFEST_FILE).exists());
        forget_release(&site).unwrap();
    }
}
