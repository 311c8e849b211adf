//! The runtime's module map for the book and the crate's docs, made from [`layers::LAYERS`] so
//! none of it can drift from the layering `cargo xtask test` enforces: `cargo xtask map` draws
//! the picture and writes the layer tables of `runtime/src/lib.rs` and the architecture chapter
//! (between the [`BEGIN`] and [`END`] lines), and [`check`] fails when the committed ones differ
//! from fresh ones.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::layers::{LAYERS, Module};

/// Where the picture lives in the book.
pub(crate) const MAP_SVG: &str = "docs/src/img/architecture/layers.svg";

/// The chapter that shows the picture and the table of every module's job.
const CHAPTER: &str = "docs/src/architecture.md";

/// The crate root, whose docs show the table of layers.
const LIB_RS: &str = "runtime/src/lib.rs";

/// The line before a written table.
const BEGIN: &str =
    "<!-- layers: written by `cargo xtask map` from xtask/src/layers.rs; change them there -->";

/// The line after it.
const END: &str = "<!-- end of layers -->";

/// One line of boxes.
const ROW: u32 = 46;
/// Room for the caption above the bands.
const TOP: u32 = 40;
/// Where the first box of a line starts, right of the band's name.
const LEFT: u32 = 150;
/// The picture's width.
const WIDTH: u32 = 980;

/// The first sentence of a module's `//!` comment, for the box's tooltip.
fn job_of(src: &Path, module: &str) -> String {
    let file = src.join(format!("{module}.rs"));
    let file = if file.is_file() {
        file
    } else {
        src.join(module).join("mod.rs")
    };
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut para = String::new();
    for line in text.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            break;
        };
        let doc = doc.trim();
        if doc.is_empty() {
            break;
        }
        if !para.is_empty() {
            para.push(' ');
        }
        para.push_str(doc);
    }
    let end = para.find(". ").map_or(para.len(), |i| i + 1);
    para[..end].to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A module's box width, for its name in monospace.
fn box_width(module: &str) -> u32 {
    22 + 9 * module.len() as u32
}

/// A layer's modules in lines that fit the picture's width.
fn lines_of(layer: &[Module]) -> Vec<Vec<&'static str>> {
    let mut lines: Vec<Vec<&'static str>> = vec![Vec::new()];
    let mut x = LEFT;
    for module in layer.iter().map(|m| m.name) {
        let w = box_width(module);
        if x + w > WIDTH - 60 && lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(Vec::new());
            x = LEFT;
        }
        if let Some(line) = lines.last_mut() {
            line.push(module);
        }
        x += w + 10;
    }
    lines
}

/// The picture: one band per layer, top layer at the top, each module a box whose tooltip is
/// its job; an arrow on the right says which way uses point.
pub(crate) fn draw(root: &Path) -> Result<String> {
    let src = root.join("runtime/src");
    let bands: Vec<_> = LAYERS.iter().map(|l| lines_of(l.modules)).collect();
    let rows: u32 = bands.iter().map(|b| b.len() as u32).sum();
    let height = TOP + rows * ROW + 30;
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="14" role="img" aria-labelledby="map-title">"#
    )?;
    writeln!(
        svg,
        r#"<title id="map-title">The runtime's modules in layers: each uses only its own layer and those below</title>"#
    )?;
    writeln!(
        svg,
        r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    )?;
    writeln!(
        svg,
        r##"<text x="{LEFT}" y="24" fill="#333333">Drawn by cargo xtask map from xtask/src/layers.rs; hover a module for its job.</text>"##
    )?;
    let mut y = TOP;
    for (i, lines) in bands.iter().enumerate().rev() {
        let fill = if i % 2 == 0 { "#eef3fb" } else { "#f7f7f2" };
        writeln!(
            svg,
            r##"<rect x="8" y="{y}" width="{}" height="{}" fill="{fill}"/>"##,
            WIDTH - 60,
            lines.len() as u32 * ROW - 4
        )?;
        writeln!(
            svg,
            r##"<text x="16" y="{}" fill="#555555">{}</text>"##,
            y + 26,
            escape(&format!("{i} · {}", LAYERS[i].name))
        )?;
        for line in lines {
            let mut x = LEFT;
            for module in line {
                let w = box_width(module);
                writeln!(
                    svg,
                    r##"<g><title>{}</title><rect x="{x}" y="{}" width="{w}" height="{}" rx="6" fill="#ffffff" stroke="#3b5b8c"/><text x="{}" y="{}" text-anchor="middle" font-family="monospace" fill="#1a1a1a">{module}</text></g>"##,
                    escape(&format!("{module}: {}", job_of(&src, module))),
                    y + 7,
                    ROW - 18,
                    x + w / 2,
                    y + 26,
                )?;
                x += w + 10;
            }
            y += ROW;
        }
    }
    let bottom = y - 10;
    writeln!(
        svg,
        r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{bottom}" stroke="#3b5b8c" stroke-width="3"/><path d="M {2} {bottom} L {0} {3} L {4} {bottom} Z" fill="#3b5b8c"/>"##,
        WIDTH - 28,
        TOP + 4,
        WIDTH - 38,
        bottom + 12,
        WIDTH - 18,
    )?;
    writeln!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#3b5b8c">uses</text>"##,
        WIDTH - 28,
        height - 6
    )?;
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// The crate docs' table, top layer first: each layer's modules (linked where the crate's
/// default build documents them: `pub mod` in `lib_rs`, under no feature but `server`) and what
/// they are.
fn lib_table(lib_rs: &str) -> Vec<String> {
    let lines: Vec<&str> = lib_rs.lines().collect();
    let documented = |name: &str| {
        lines.iter().enumerate().any(|(i, l)| {
            l.trim() == format!("pub mod {name};")
                && (i == 0 || {
                    let before = lines[i - 1].trim();
                    !before.starts_with("#[") || before == "#[cfg(feature = \"server\")]"
                })
        })
    };
    let mut out = vec![
        "| layer | modules | what they are |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    for (i, layer) in LAYERS.iter().enumerate().rev() {
        let names: Vec<String> = layer
            .modules
            .iter()
            .map(|m| {
                if documented(m.name) {
                    format!("[`{}`]", m.name)
                } else {
                    format!("`{}`", m.name)
                }
            })
            .collect();
        out.push(format!("| {i} | {} | {} |", names.join(", "), layer.what));
    }
    out
}

/// The chapter's table, bottom layer first: every module and its job.
fn chapter_table() -> Vec<String> {
    let mut out = vec![
        "| layer | module | its job |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    for (i, layer) in LAYERS.iter().enumerate() {
        for (k, module) in layer.modules.iter().enumerate() {
            let n = if k == 0 {
                i.to_string()
            } else {
                " ".to_owned()
            };
            out.push(format!("| {n} | `{}` | {} |", module.name, module.job));
        }
    }
    out
}

/// `text` with the lines between its [`BEGIN`] and [`END`] lines replaced by `table`, each
/// line after `prefix` (`//! ` in Rust docs); `None` without those lines.
fn with_table(text: &str, table: &[String], prefix: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| l.contains(BEGIN))?;
    let end = begin + lines[begin..].iter().position(|l| l.contains(END))?;
    let mut out: Vec<String> = lines[..=begin].iter().map(|l| (*l).to_owned()).collect();
    // Blank lines around the table: Markdown ends an HTML comment's block at its line, but not
    // every reader ends a table at the next comment.
    out.push(prefix.trim_end().to_owned());
    out.extend(table.iter().map(|row| format!("{prefix}{row}")));
    out.push(prefix.trim_end().to_owned());
    out.extend(lines[end..].iter().map(|l| (*l).to_owned()));
    let mut text_out = out.join("\n");
    if text.ends_with('\n') {
        text_out.push('\n');
    }
    Some(text_out)
}

/// The files the map makes, as they should be: (path, text), or a problem with one.
fn made(root: &Path) -> Result<Vec<(&'static str, Result<String, String>)>> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_default();
    let lib_rs = read(LIB_RS);
    let chapter = read(CHAPTER);
    let missing = |path: &str| {
        format!("{path} has no layer table: put the lines {BEGIN} and {END} where it goes")
    };
    Ok(vec![
        (MAP_SVG, Ok(draw(root)?)),
        (
            LIB_RS,
            with_table(&lib_rs, &lib_table(&lib_rs), "//! ").ok_or_else(|| missing(LIB_RS)),
        ),
        (
            CHAPTER,
            with_table(&chapter, &chapter_table(), "").ok_or_else(|| missing(CHAPTER)),
        ),
    ])
}

/// `cargo xtask map`: draws the picture into the book and writes the layer tables.
pub(crate) fn write(root: &Path) -> Result<()> {
    for (path, text) in made(root)? {
        let text = text.map_err(anyhow::Error::msg)?;
        let path = root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text)?;
            eprintln!("map: wrote {}", path.display());
        }
    }
    Ok(())
}

/// The committed picture and tables are what [`write`] would make now.
pub(crate) fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for (path, text) in made(root)? {
        match (std::fs::read_to_string(root.join(path)), text) {
            (_, Err(problem)) => problems.push(problem),
            (Ok(now), Ok(text)) if now == text => {}
            (Ok(_), Ok(_)) => problems.push(format!(
                "{path} does not show the layers of xtask/src/layers.rs: run `cargo xtask map`"
            )),
            (Err(e), Ok(_)) => problems.push(format!("{path}: {e} (run `cargo xtask map`)")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the map of the runtime is behind xtask/src/layers.rs:\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!(
        "map: the picture, the crate docs and the architecture chapter show the layers as they are"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::modules;

    #[test]
    fn every_module_is_drawn_with_its_job() {
        let root = crate::root().unwrap();
        let svg = draw(&root).unwrap();
        for module in modules() {
            assert!(
                svg.contains(&format!(">{}</text>", module.name)),
                "{}",
                module.name
            );
        }
        assert!(svg.contains("<title>rooms: Rooms of tabs, and broadcasts to them"));
        assert!(svg.contains(">5 · pages</text>"));
    }

    #[test]
    fn the_book_shows_the_layers_as_they_are() {
        check(&crate::root().unwrap()).unwrap();
    }

    /// The tables are made from the layers: a table edited by hand (here one missing a module,
    /// as the crate docs' once were) fails the check until `cargo xtask map` writes it again.
    #[test]
    fn a_table_that_differs_from_the_layers_fails_until_written() {
        let root = std::env::temp_dir().join(format!("xtask-map-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("runtime/src")).unwrap();
        std::fs::create_dir_all(root.join("docs/src")).unwrap();
        let lib_rs = format!(
            "//! The map:\n//!\n//! {BEGIN}\n//! | 0 | `protocol` | wire types |\n//! {END}\n//!\n//! More.\n\n#[cfg(feature = \"server\")]\npub mod auth;\n#[cfg(feature = \"client\")]\npub mod client;\nmod net;\n"
        );
        std::fs::write(root.join(LIB_RS), &lib_rs).unwrap();
        std::fs::write(
            root.join(CHAPTER),
            format!(
                "# Architecture\n\n{BEGIN}\n| 0 | `protocol` | wire types |\n{END}\n\nAfter.\n"
            ),
        )
        .unwrap();
        let err = check(&root).unwrap_err().to_string();
        for path in [MAP_SVG, LIB_RS, CHAPTER] {
            assert!(err.contains(path), "{path}: {err}");
        }
        write(&root).unwrap();
        check(&root).unwrap();
        let lib_now = std::fs::read_to_string(root.join(LIB_RS)).unwrap();
        assert!(
            lib_now.starts_with("//! The map:\n//!\n//! <!--"),
            "{lib_now}"
        );
        assert!(
            lib_now.contains(
                "\n//! | 2 | `session`, `csp`, `csrf`, [`auth`], `tab_binding`, `messages` |"
            ),
            "{lib_now}"
        );
        assert!(
            lib_now.contains("`net`, `middleware`, `rooms`, `client`, `i18n`, `jobs`, `mail` |"),
            "{lib_now}"
        );
        assert!(lib_now.contains("\n//!\n//! More.\n"), "{lib_now}");
        let chapter = std::fs::read_to_string(root.join(CHAPTER)).unwrap();
        for module in modules() {
            assert!(chapter.contains(&format!("| `{}` | {} |", module.name, module.job)));
        }
        assert!(chapter.ends_with(&format!("{END}\n\nAfter.\n")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
