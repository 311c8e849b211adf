//! Names: what a generated item may be called, and its case and plural forms.

use super::*;

/// Rust keywords and names the app template already uses at the top of the crate.
pub(crate) const TAKEN: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "try", "typeof", "unsized", "virtual", "yield", "gen", "std", "core", "alloc", "ferrule",
    "leptos", "serde", "server", "common", "app", "shell", "main", "lib",
];

pub(crate) fn check_ident(name: &str, what: &str) -> Result<()> {
    let ok_start = name.starts_with(|c: char| c.is_ascii_lowercase());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok_start || !ok_rest || name.ends_with('_') || name.contains("__") {
        bail!(
            "invalid {what} name `{name}`: use snake_case (lowercase letters, digits and single `_`, starting with a letter)"
        );
    }
    if TAKEN.contains(&name) {
        bail!("invalid {what} name `{name}`: it is a Rust keyword or already used by every app");
    }
    Ok(())
}

/// `BlogPost`, `blog-post` or `blog_post` → `blog_post`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == ' ' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

/// `blog_post` → `BlogPost`.
pub fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// English plural of a snake_case noun, enough for table and page names (`category` →
/// `categories`, `box` → `boxes`, `product` → `products`).
pub fn plural(snake: &str) -> String {
    let vowel = |c: char| "aeiou".contains(c);
    if let Some(stem) = snake.strip_suffix('y')
        && stem.chars().last().is_some_and(|c| !vowel(c))
    {
        return format!("{stem}ies");
    }
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| snake.ends_with(e))
    {
        return format!("{snake}es");
    }
    format!("{snake}s")
}

/// `blog_post` → `Blog post`.
pub(crate) fn title_of(snake: &str) -> String {
    let words = snake.replace('_', " ");
    let mut cs = words.chars();
    cs.next()
        .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
        .unwrap_or_default()
}
