//! The runtime's module map as a picture for the book, drawn from [`layers::LAYERS`] so the
//! picture cannot drift from the layering `cargo xtask test` enforces: `cargo xtask map` writes
//! it, and the layering check fails when the committed picture differs from a fresh drawing.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use crate::layers::LAYERS;

/// Where the picture lives in the book.
pub(crate) const MAP_SVG: &str = "docs/src/img/architecture/layers.svg";

/// The chapter that shows the picture and names every module.
const CHAPTER: &str = "docs/src/architecture.md";

/// One line of boxes.
const ROW: u32 = 46;
/// Room for the caption above the bands.
const TOP: u32 = 40;
/// Where the first box of a line starts, right of the band's name.
const LEFT: u32 = 150;
/// The picture's width.
const WIDTH: u32 = 980;

/// What each row is, bottom layer first (the same order as [`LAYERS`]).
const ROW_NAMES: &[&str] = &[
    "0 · ground",
    "1 · plumbing",
    "2 · who asks",
    "3 · context",
    "4 · states",
    "5 · the bridge",
    "6 · ways in",
    "7 · dispatcher",
    "8 · the app",
    "pages",
];

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
fn lines_of(layer: &[&'static str]) -> Vec<Vec<&'static str>> {
    let mut lines: Vec<Vec<&'static str>> = vec![Vec::new()];
    let mut x = LEFT;
    for module in layer {
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
    let bands: Vec<_> = LAYERS.iter().map(|l| lines_of(l)).collect();
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
            escape(ROW_NAMES.get(i).copied().unwrap_or(""))
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

/// `cargo xtask map`: draws the picture into the book.
pub(crate) fn write(root: &Path) -> Result<()> {
    let path = root.join(MAP_SVG);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, draw(root)?)?;
    eprintln!("map: wrote {}", path.display());
    Ok(())
}

/// The committed picture is a fresh drawing of the layers, and the chapter names every module.
pub(crate) fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    match std::fs::read_to_string(root.join(MAP_SVG)) {
        Ok(svg) if svg == draw(root)? => {}
        Ok(_) => problems.push(format!(
            "{MAP_SVG} is not what the layers draw now: run `cargo xtask map`"
        )),
        Err(e) => problems.push(format!("{MAP_SVG}: {e} (run `cargo xtask map`)")),
    }
    let chapter = std::fs::read_to_string(root.join(CHAPTER)).unwrap_or_default();
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        if !chapter.contains(&format!("`{module}`")) {
            problems.push(format!("{CHAPTER} does not name the module `{module}`"));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the architecture chapter is behind the code:\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!("map: the architecture chapter shows the layers as they are");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_drawn_with_its_job() {
        let root = crate::root().unwrap();
        let svg = draw(&root).unwrap();
        for module in LAYERS.iter().flat_map(|l| l.iter()) {
            assert!(svg.contains(&format!(">{module}</text>")), "{module}");
        }
        assert!(svg.contains("<title>rooms: Rooms of tabs, and broadcasts to them"));
        assert_eq!(ROW_NAMES.len(), LAYERS.len());
    }

    #[test]
    fn the_book_shows_the_layers_as_they_are() {
        check(&crate::root().unwrap()).unwrap();
    }
}
