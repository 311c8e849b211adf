//! The runtime's layering, checked: every `crate::<module>` path in `runtime/src` must point to
//! a module on the same layer or below (the map at the top of `runtime/src/lib.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

/// The runtime's modules, bottom layer first. A module may use its own layer and those before.
pub(crate) const LAYERS: &[&[&str]] = &[
    &[
        "protocol",
        "error",
        "settings",
        "cache",
        "metrics",
        "in_flight",
        "db",
        "lifespan",
        "password_prompt",
        "fault_proxy",
    ],
    // `client` (the browser's state mirror and connection machine, no I/O) stands on the
    // protocol alone; the test client mirrors states with it.
    &["net", "middleware", "rooms", "client"],
    &["session", "csp", "csrf", "auth", "tab_binding"],
    &["context"],
    &["state"],
    &["bridge", "redis_state"],
    &["background", "socket", "upload"],
    &["dispatcher"],
    &["app", "testing"],
    // The browser's side, on the protocol only.
    &["ssr", "ui"],
];

/// Names the crate root re-exports, and the module each comes from.
const ROOT_NAMES: &[(&str, &str)] = &[
    ("App", "app"),
    ("BuildError", "app"),
    ("shutdown_signal", "app"),
    ("CurrentUser", "auth"),
    ("User", "auth"),
    ("EventContext", "context"),
    ("current_context", "context"),
    ("current_request", "context"),
    ("current_session", "context"),
    ("current_user", "context"),
    ("State", "state"),
    ("Handlers", "state"),
    ("MiddlewareChain", "middleware"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The edges `crate::x` from each top-level module of `src` (comments and tests left out),
/// as (from, to, file:line).
fn edges(src: &Path) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    collect(src, &mut files)?;
    for file in files {
        let rel = file.strip_prefix(src)?.to_string_lossy().replace('\\', "/");
        let from = rel
            .split('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_owned();
        if from == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let to = ROOT_NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, m)| (*m).to_owned())
                    .unwrap_or(name);
                if to != from && layer_of(&to).is_some() {
                    out.push((from.clone(), to, format!("runtime/src/{rel}:{}", n + 1)));
                }
            }
        }
    }
    Ok(out)
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Fails, naming each one, when a module uses one on a higher layer or is on no layer.
pub(crate) fn check(root: &Path) -> Result<()> {
    let src = root.join("runtime/src");
    let mut unknown = BTreeMap::new();
    let mut up = Vec::new();
    for (from, to, at) in edges(&src)? {
        match (layer_of(&from), layer_of(&to)) {
            (None, _) => {
                unknown.insert(from, at);
            }
            (Some(f), Some(t)) if t > f => {
                up.push(format!("{at}: `{from}` uses `{to}`, a layer up"))
            }
            _ => {}
        }
    }
    for (module, at) in &unknown {
        up.push(format!("{at}: module `{module}` is on no layer (add it to xtask/src/layers.rs and the map in lib.rs)"));
    }
    if !up.is_empty() {
        bail!("the runtime's layering is broken:\n  {}", up.join("\n  "));
    }
    eprintln!("layers: every use in runtime/src points down the map");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upward_use_is_found_and_a_downward_one_is_not() {
        let dir = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        let src = dir.join("runtime/src");
        std::fs::create_dir_all(src.join("state")).unwrap();
        std::fs::write(src.join("net.rs"), "use crate::protocol::Event;\n").unwrap();
        std::fs::write(
            src.join("state/mod.rs"),
            "// crate::app in a comment\nuse crate::net::x;\n",
        )
        .unwrap();
        assert!(check(&dir).is_ok());
        std::fs::write(
            src.join("net.rs"),
            "fn f() { crate::EventContext::new(); }\n",
        )
        .unwrap();
        let err = check(&dir).unwrap_err().to_string();
        assert!(err.contains("`net` uses `context`"), "{err}");
        assert!(err.contains("runtime/src/net.rs:1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_use_in_the_runtime_points_down() {
        check(&crate::root().unwrap()).unwrap();
    }
}
