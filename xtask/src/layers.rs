//! The runtime's layering, in one place: [`LAYERS`] says which modules stand on which layer and
//! what each is for. Everything else is made from it or checked against it: `check` reads every
//! path into the crate in `runtime/src` and fails on one that points up; `cargo xtask map` draws
//! the picture and writes the tables of `runtime/src/lib.rs` and the architecture chapter, and
//! `map::check` fails when they are not what it would write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One layer: its name in the picture, what its modules are in a few words (the crate's doc
/// table), and its modules.
pub(crate) struct Layer {
    pub(crate) name: &'static str,
    pub(crate) what: &'static str,
    pub(crate) modules: &'static [Module],
}

/// A top-level module of the runtime and its job (the architecture chapter's table).
pub(crate) struct Module {
    pub(crate) name: &'static str,
    pub(crate) job: &'static str,
}

const fn m(name: &'static str, job: &'static str) -> Module {
    Module { name, job }
}

/// The runtime's modules, bottom layer first. A module may use its own layer and those before.
pub(crate) const LAYERS: &[Layer] = &[
    Layer {
        name: "ground",
        what: "wire types, errors, forms, settings, the database, hooks, the prompt and the fault proxy",
        modules: &[
            m(
                "protocol",
                "the wire types both sides share: events, state updates, client commands, state names, the packet codec; no I/O, so it builds for the browser too",
            ),
            m(
                "error",
                "the error type of handlers and middleware, and what each kind shows a user",
            ),
            m(
                "forms",
                "typed forms checked by garde rules on both sides, and their messages per field",
            ),
            m(
                "settings",
                "typed settings layered from files, `.env` and variables, the app's own among them, checked at startup",
            ),
            m(
                "cache",
                "a small time-bounded cache for the per-event session and user reads",
            ),
            m(
                "metrics",
                "where an event's time goes, phase by phase, and how events end, through the `metrics` facade",
            ),
            m(
                "otel",
                "spans to an OpenTelemetry collector over OTLP (feature `otel`)",
            ),
            m(
                "logging",
                "where logs and spans go: text or JSON lines on stderr, OTLP with feature `otel`",
            ),
            m("in_flight", "counts the work a stopping server waits for"),
            m(
                "mount",
                "the path prefix a host app mounted this one under, added where paths leave for the browser",
            ),
            m(
                "db",
                "the database (sea-orm over SQLite or PostgreSQL) and the runtime's own tables",
            ),
            m(
                "lifespan",
                "startup and shutdown hooks, supervised background tasks",
            ),
            m(
                "password_prompt",
                "reads a password for the app binary's commands from the terminal, never from argv",
            ),
            m(
                "redis_conn",
                "what the runtime's Redis users share: the connection, a deployment's keys, what an error means (feature `redis`)",
            ),
            m(
                "fault_proxy",
                "a fault-injecting TCP proxy for outage tests (feature `testing`)",
            ),
        ],
    },
    // `client` (the browser's state mirror and connection machine, no I/O) stands on the
    // protocol alone; the test client mirrors states with it.
    Layer {
        name: "plumbing",
        what: "the client's address and cookies, the chain, rooms; the browser's state mirror; languages; durable jobs and the mail they send",
        modules: &[
            m(
                "net",
                "the client's side of a request as the server sees it: its address behind trusted proxies, cookies, handshake headers",
            ),
            m(
                "middleware",
                "the one ordered chain that HTTP requests and socket events both go through",
            ),
            m(
                "rooms",
                "rooms of tabs and broadcasts to them, with the push size cap",
            ),
            m(
                "client",
                "the browser's side of the protocol: the connection machine and the state mirror (no I/O in its core)",
            ),
            m(
                "i18n",
                "languages and translations: a request's language, the Fluent catalogues, `t!` on both sides",
            ),
            m(
                "jobs",
                "durable jobs in the app's database or in Redis: enqueued, claimed under a lease, retried, run once across nodes",
            ),
            m(
                "mail",
                "messages with text and HTML parts, composed from Fluent texts, sent by a job through the mailer of `mail_url`",
            ),
        ],
    },
    Layer {
        name: "who asks",
        what: "who is asking, what a page may run, what it was told",
        modules: &[
            m(
                "session",
                "sessions in the app's database, as a `tower_sessions` store",
            ),
            m(
                "csp",
                "the Content-Security-Policy of pages, with a fresh nonce per request",
            ),
            m(
                "csrf",
                "the CSRF token cookie and its check on unsafe HTTP methods",
            ),
            m(
                "auth",
                "who the user is: users and groups, passwords, the login pages, the guards",
            ),
            m(
                "tab_binding",
                "tab tokens bound to sessions, so a token alone opens no one's states",
            ),
            m(
                "messages",
                "flash messages kept in the session and shown once, on the next page or in an event's answer",
            ),
        ],
    },
    Layer {
        name: "context",
        what: "what a handler sees of its event",
        modules: &[m(
            "context",
            "what a handler sees of its event: the request as the middleware left it, the session, the user",
        )],
    },
    Layer {
        name: "states",
        what: "states, handlers, where a tab's states live",
        modules: &[m(
            "state",
            "states, their handlers, and where each tab's states live between events",
        )],
    },
    // The pages know who asks and the session's shared states, not how events travel: `ui`'s
    // browser half uses `client` and the protocol; its server half (feature `ssr`) and `ssr`
    // read the request, the user and the states a page is rendered with.
    Layer {
        name: "pages",
        what: "pages rendered on the server through the HTTP chain; the components that show states; the admin",
        modules: &[
            m(
                "ssr",
                "Leptos pages on the server, rendered through the app's HTTP middleware chain",
            ),
            m(
                "ui",
                "Ferrule in Leptos components: reactive states, typed actions, toasts, the connection status",
            ),
            m(
                "admin",
                "staff browse, search and edit the app's models and the accounts, every change logged (feature `admin`)",
            ),
        ],
    },
    Layer {
        name: "the bridge",
        what: "an event through the chain to its handler and back; states in Redis",
        modules: &[
            m(
                "bridge",
                "an event through the middleware chain to its handler and back as a state update",
            ),
            m(
                "redis_state",
                "states in Redis, for several server processes (feature `redis`)",
            ),
        ],
    },
    Layer {
        name: "ways in",
        what: "where events come in (a socket, `/_upload`) and detached work",
        modules: &[
            m(
                "background",
                "handlers that run detached from the tab's queue and push what they change",
            ),
            m(
                "socket",
                "the Socket.IO side of `/_event`: who may connect, one ordered queue and worker per socket, the outgoing byte budget",
            ),
            m(
                "upload",
                "`POST /_upload`: files for an upload handler, bridged like an event",
            ),
        ],
    },
    Layer {
        name: "dispatcher",
        what: "the reserved paths in front of the app's routes",
        modules: &[m(
            "dispatcher",
            "the reserved paths (`/_event`, `/_upload`, `/_health`, …) in front of the app's own routes",
        )],
    },
    Layer {
        name: "the app",
        what: "the builder, assembly, serving, the app binary's CLI; the test server and client",
        modules: &[
            m(
                "app",
                "the `App` builder, its assembly into a router, serving, the app binary's commands",
            ),
            m(
                "testing",
                "a real server on 127.0.0.1 and a native Socket.IO client for tests (feature `testing`)",
            ),
        ],
    },
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|l| l.modules.iter().any(|m| m.name == module))
}

/// Every module of [`LAYERS`], bottom layer first.
pub(crate) fn modules() -> impl Iterator<Item = &'static Module> {
    LAYERS.iter().flat_map(|l| l.modules.iter())
}

// ---- Reading Rust: just enough of it to find paths into the crate. ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    /// A string literal's contents (escapes left as written).
    Str(String),
    /// A number, a character or a lifetime: nothing a path is made of.
    Other,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The tokens of `text`, comments left out, each with its line (from 1).
fn lex(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let ident_start = |ch: char| ch.is_alphabetic() || ch == '_';
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        let start_line = line;
        let mut push = |tok: Tok| {
            out.push(Token {
                tok,
                line: start_line,
            })
        };
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            // Block comments nest.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(after_prefix) = raw_string_start(&c, i) {
            // r"…", r#"…"#, br#"…"#, cr"…": ends at a quote followed by as many #.
            let hashes = after_prefix - i - prefix_len(&c, i) - 2;
            let mut j = after_prefix;
            let mut body = String::new();
            while j < c.len() {
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if c[j] == '\n' {
                    line += 1;
                }
                body.push(c[j]);
                j += 1;
            }
            i = j;
            push(Tok::Str(body));
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && next == Some('"')) {
            let mut j = if ch == '"' { i + 1 } else { i + 2 };
            let mut body = String::new();
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    body.push(c[j]);
                    j += 1;
                }
                if let Some(&x) = c.get(j) {
                    if x == '\n' {
                        line += 1;
                    }
                    body.push(x);
                }
                j += 1;
            }
            i = j + 1;
            push(Tok::Str(body));
        } else if ch == '\'' || (ch == 'b' && next == Some('\'')) {
            // A character ('x', '\n', '\u{7f}', b'x') or a lifetime ('a, 'static).
            let j = if ch == 'b' { i + 1 } else { i };
            if c.get(j + 1) == Some(&'\\') {
                // Past the backslash and the character it escapes.
                let mut k = j + 3;
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                i = k + 1;
            } else if c.get(j + 2) == Some(&'\'') {
                i = j + 3;
            } else {
                i = j + 1;
                while i < c.len() && ident_char(c[i]) {
                    i += 1;
                }
            }
            push(Tok::Other);
        } else if ch == 'r' && next == Some('#') && c.get(i + 2).is_some_and(|&x| ident_start(x)) {
            // A raw identifier: r#type.
            let mut j = i + 2;
            while j < c.len() && ident_char(c[j]) {
                j += 1;
            }
            push(Tok::Ident(c[i + 2..j].iter().collect()));
            i = j;
        } else if ident_start(ch) {
            let mut j = i;
            while j < c.len() && ident_char(c[j]) {
                j += 1;
            }
            push(Tok::Ident(c[i..j].iter().collect()));
            i = j;
        } else if ch.is_ascii_digit() {
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            push(Tok::Other);
        } else if ch == ':' && next == Some(':') {
            push(Tok::PathSep);
            i += 2;
        } else {
            push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// `b`, `c` or nothing before a raw string's `r`.
fn prefix_len(c: &[char], i: usize) -> usize {
    usize::from(c[i] == 'b' || c[i] == 'c')
}

/// Where a raw string's body starts, if one starts at `i`.
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let r = i + prefix_len(c, i);
    if c.get(r) != Some(&'r') {
        return None;
    }
    // Not the end of an identifier such as `for` or `bar`.
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = r + 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(j + 1)
}

fn is_ident(t: Option<&Token>, name: &str) -> bool {
    matches!(t, Some(Token { tok: Tok::Ident(s), .. }) if s == name)
}

fn is_punct(t: Option<&Token>, ch: char) -> bool {
    matches!(t, Some(Token { tok: Tok::Punct(p), .. }) if *p == ch)
}

/// The index just past the bracket that closes the one at `open` (`{`, `[` or `(`).
fn matching(toks: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('{' | '[' | '(') => depth += 1,
            Tok::Punct('}' | ']' | ')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// `toks` without the `#[cfg(test)] mod … { … }` items, and the files of the out-of-line ones
/// (`#[cfg(test)] mod tests;`, `#[path = …]` or not), relative to `file`'s directory.
fn without_test_modules(toks: &[Token], file: &Path) -> (Vec<Token>, Vec<PathBuf>) {
    let mut kept = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let cfg_test = is_punct(toks.get(i), '#')
            && is_punct(toks.get(i + 1), '[')
            && is_ident(toks.get(i + 2), "cfg")
            && is_punct(toks.get(i + 3), '(')
            && is_ident(toks.get(i + 4), "test")
            && is_punct(toks.get(i + 5), ')')
            && is_punct(toks.get(i + 6), ']');
        if cfg_test {
            // Further attributes, then the visibility, then `mod name`?
            let mut j = i + 7;
            let mut path_attr = None;
            while is_punct(toks.get(j), '#') && is_punct(toks.get(j + 1), '[') {
                if is_ident(toks.get(j + 2), "path")
                    && let Some(Token {
                        tok: Tok::Str(p), ..
                    }) = toks.get(j + 4)
                {
                    path_attr = Some(p.clone());
                }
                j = matching(toks, j + 1);
            }
            if is_ident(toks.get(j), "pub") {
                j += 1;
                if is_punct(toks.get(j), '(') {
                    j = matching(toks, j);
                }
            }
            if is_ident(toks.get(j), "mod")
                && let Some(Token {
                    tok: Tok::Ident(name),
                    ..
                }) = toks.get(j + 1)
            {
                if is_punct(toks.get(j + 2), '{') {
                    i = matching(toks, j + 2);
                    continue;
                }
                if is_punct(toks.get(j + 2), ';') {
                    let dir = file.parent().unwrap_or(Path::new(""));
                    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                    files.push(match path_attr {
                        Some(p) => dir.join(p),
                        None if matches!(stem, "mod" | "lib") => dir.join(format!("{name}.rs")),
                        None => dir.join(stem).join(format!("{name}.rs")),
                    });
                    i = j + 3;
                    continue;
                }
            }
        }
        kept.push(toks[i].clone());
        i += 1;
    }
    (kept, files)
}

/// One path of a use tree or an expression: its segments (each with its line) and the name it
/// is known by (its alias, or its last segment).
#[derive(Debug)]
struct Leaf {
    segments: Vec<(String, usize)>,
    name: String,
}

/// Reads the use tree (or plain path) at `i` into `out`, under `prefix`; returns where it ends.
/// `a::b`, `a::{b, c::{d, e as f}}`, `a::*`, `{a, b}`; a path in an expression stops at the
/// first thing that is not a segment (`::<`, `(`, `.`).
fn use_tree(
    toks: &[Token],
    mut i: usize,
    prefix: Vec<(String, usize)>,
    out: &mut Vec<Leaf>,
) -> usize {
    if is_punct(toks.get(i), '{') {
        let end = matching(toks, i);
        i += 1;
        while i < end.saturating_sub(1) {
            if is_punct(toks.get(i), ',') {
                i += 1;
                continue;
            }
            let next = use_tree(toks, i, prefix.clone(), out);
            // Skip what is not a tree (a stray token) rather than loop on it.
            i = next.max(i + 1);
        }
        return end;
    }
    if is_punct(toks.get(i), '*') {
        out.push(Leaf {
            segments: prefix,
            name: "*".to_owned(),
        });
        return i + 1;
    }
    let mut segments = prefix;
    let Some(Token {
        tok: Tok::Ident(first),
        line,
    }) = toks.get(i)
    else {
        return i;
    };
    segments.push((first.clone(), *line));
    i += 1;
    while matches!(toks.get(i).map(|t| &t.tok), Some(Tok::PathSep)) {
        match toks.get(i + 1) {
            Some(Token {
                tok: Tok::Ident(s),
                line,
            }) => {
                segments.push((s.clone(), *line));
                i += 2;
            }
            Some(t) if matches!(t.tok, Tok::Punct('{' | '*')) => {
                return use_tree(toks, i + 1, segments, out);
            }
            _ => break,
        }
    }
    let mut name = segments.last().map(|(s, _)| s.clone()).unwrap_or_default();
    if is_ident(toks.get(i), "as")
        && let Some(Token {
            tok: Tok::Ident(alias),
            ..
        }) = toks.get(i + 1)
    {
        name = alias.clone();
        i += 2;
    }
    out.push(Leaf { segments, name });
    i
}

/// The paths in `toks` that start at the crate's root, as (first segment, line): `crate::…`,
/// `$crate::…`, `::ferrule::…` / `ferrule::…` (the crate's own name), and `super::…` chains
/// that climb out of `module` (the file's module path) to the root. Inline `mod … { }` blocks
/// deepen the module path inside them.
fn root_paths(toks: &[Token], module: &[String]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    // Brace depths at which inline modules opened.
    let mut inline: Vec<i32> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let after_sep = matches!(
            toks.get(i.wrapping_sub(1)).map(|t| &t.tok),
            Some(Tok::PathSep)
        );
        // `x::ferrule` is not the crate; `::ferrule` at a path's start is.
        let starts_path = !after_sep
            || !matches!(
                toks.get(i.wrapping_sub(2)).map(|t| &t.tok),
                Some(Tok::Ident(_) | Tok::Punct('>'))
            );
        let sep_next = matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::PathSep));
        match &t.tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            Tok::Ident(s)
                if s == "mod"
                    && matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::Ident(_)))
                    && is_punct(toks.get(i + 2), '{') =>
            {
                inline.push(depth);
            }
            Tok::Ident(s) if (s == "crate" || s == "ferrule") && sep_next && starts_path => {
                let mut leaves = Vec::new();
                let end = use_tree(toks, i + 2, Vec::new(), &mut leaves);
                // `#[ferrule::state]` names the attribute macro the root re-exports, not the
                // module of the same name.
                let attribute = is_punct(toks.get(i.wrapping_sub(1)), '[')
                    && is_punct(toks.get(i.wrapping_sub(2)), '#')
                    && leaves.len() == 1
                    && leaves[0].segments.len() == 1;
                if !attribute {
                    out.extend(
                        leaves
                            .into_iter()
                            .filter_map(|l| l.segments.into_iter().next()),
                    );
                }
                i = end;
                continue;
            }
            Tok::Ident(s) if s == "super" && sep_next && !after_sep => {
                let mut j = i;
                let mut up = 0;
                while is_ident(toks.get(j), "super")
                    && matches!(toks.get(j + 1).map(|t| &t.tok), Some(Tok::PathSep))
                {
                    up += 1;
                    j += 2;
                }
                if up >= module.len() + inline.len() {
                    let mut leaves = Vec::new();
                    let end = use_tree(toks, j, Vec::new(), &mut leaves);
                    out.extend(
                        leaves
                            .into_iter()
                            .filter_map(|l| l.segments.into_iter().next()),
                    );
                    i = end;
                } else {
                    i = j;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.retain(|(name, _)| name != "self" && name != "super" && name != "crate");
    out
}

/// The names the crate root re-exports from its modules (`pub use app::{App, …};` in
/// `lib.rs`), each with the module it comes from.
fn root_names(lib_rs: &str) -> BTreeMap<String, String> {
    let toks = lex(lib_rs);
    let mut names = BTreeMap::new();
    for i in 0..toks.len() {
        if is_ident(toks.get(i), "pub") && is_ident(toks.get(i + 1), "use") {
            let mut leaves = Vec::new();
            use_tree(&toks, i + 2, Vec::new(), &mut leaves);
            for leaf in leaves {
                if let Some((module, _)) = leaf.segments.first()
                    && layer_of(module).is_some()
                    && leaf.name != "*"
                {
                    names.insert(leaf.name, module.clone());
                }
            }
        }
    }
    names
}

/// A use of one top-level module by another.
#[derive(Debug)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

/// Every use of one top-level module by another in `src` (the files of `#[cfg(test)]` modules
/// left out); and the top-level modules that have files.
fn edges(src: &Path) -> Result<(Vec<Edge>, Vec<String>)> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let reexports = root_names(&lib);
    let mut files = Vec::new();
    collect(src, &mut files)?;
    files.sort();
    let mut read = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        read.push((file.clone(), text));
    }
    // First the files that only tests compile.
    let mut test_files = Vec::new();
    for (file, text) in &read {
        test_files.extend(without_test_modules(&lex(text), file).1);
    }
    let mut out = Vec::new();
    let mut modules = Vec::new();
    for (file, text) in &read {
        if test_files.iter().any(|t| t == file) {
            continue;
        }
        let rel = file.strip_prefix(src)?.to_string_lossy().replace('\\', "/");
        if rel == "lib.rs" {
            continue;
        }
        let mut module: Vec<String> = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_owned)
            .collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let from = module[0].clone();
        if !modules.contains(&from) {
            modules.push(from.clone());
        }
        let (toks, _) = without_test_modules(&lex(text), file);
        for (name, line) in root_paths(&toks, &module) {
            let to = reexports.get(&name).cloned().unwrap_or(name);
            if to != from && layer_of(&to).is_some() {
                out.push(Edge {
                    from: from.clone(),
                    to,
                    at: format!("runtime/src/{rel}:{line}"),
                });
            }
        }
    }
    Ok((out, modules))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
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

/// Fails, naming each one, when a module uses one on a higher layer, is on no layer, or is on
/// a layer but has no file.
pub(crate) fn check(root: &Path) -> Result<()> {
    let src = root.join("runtime/src");
    let (edges, modules) = edges(&src)?;
    let mut problems = Vec::new();
    for edge in &edges {
        if let (Some(f), Some(t)) = (layer_of(&edge.from), layer_of(&edge.to))
            && t > f
        {
            problems.push(format!(
                "{}: `{}` uses `{}`, a layer up",
                edge.at, edge.from, edge.to
            ));
        }
    }
    for module in &modules {
        if layer_of(module).is_none() {
            problems.push(format!(
                "runtime/src: module `{module}` is on no layer (add it to LAYERS in xtask/src/layers.rs, then run `cargo xtask map`)"
            ));
        }
    }
    // In a checkout (not a test's scratch tree), every module on a layer has its file.
    if root.join("xtask/src/layers.rs").is_file() {
        for module in self::modules() {
            if !modules.iter().any(|m| m == module.name) {
                problems.push(format!(
                    "xtask/src/layers.rs: module `{}` has no file in runtime/src",
                    module.name
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the runtime's layering is broken:\n  {}",
            problems.join("\n  ")
        );
    }
    eprintln!("layers: every use in runtime/src points down the map");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upward_use_is_found_and_a_downward_one_is_not() {
        let tree = Tree::new(
            "up-down",
            &[
                ("lib.rs", "pub use context::{EventContext, current_user};\n"),
                ("net.rs", "use crate::protocol::Event;\n"),
                (
                    "state/mod.rs",
                    "// crate::app in a comment\nuse crate::net::x;\n",
                ),
            ],
        );
        assert_eq!(tree.complaints(), "");
        std::fs::write(
            tree.0.join("runtime/src/net.rs"),
            "fn f() { crate::EventContext::new(); }\n",
        )
        .unwrap();
        let err = tree.complaints();
        assert!(
            err.contains("runtime/src/net.rs:1: `net` uses `context`, a layer up"),
            "{err}"
        );
    }

    #[test]
    fn every_use_in_the_runtime_points_down() {
        check(&crate::root().unwrap()).unwrap();
    }

    /// A throwaway checkout whose `runtime/src` holds `files`; removed when dropped.
    struct Tree(std::path::PathBuf);

    impl Tree {
        fn new(test: &str, files: &[(&str, &str)]) -> Self {
            let dir =
                std::env::temp_dir().join(format!("xtask-layers-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, text) in files {
                let path = dir.join("runtime/src").join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            Self(dir)
        }

        /// The check's complaints, one a line (empty when it passes).
        fn complaints(&self) -> String {
            match check(&self.0) {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            }
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const LIB: &str = "pub mod app;\npub mod net;\npub use app::{App, serve as run};\n";

    #[test]
    fn production_code_after_a_test_item_or_module_is_read() {
        let tree = Tree::new(
            "after-tests",
            &[
                ("lib.rs", LIB),
                (
                    "middleware/mod.rs",
                    "use crate::protocol::Event;\n\
                     impl Stack {\n    #[cfg(test)]\n    fn len(&self) -> usize { 0 }\n\n    fn run(&self) { crate::app::go(); }\n}\n\
                     #[cfg(test)]\nmod tests {\n    use crate::testing::TestServer;\n    const OPEN: &str = \"{ }}\";\n    const C: char = '}';\n    fn f<'a>(x: &'a str) -> &'a str { x }\n}\n\
                     fn after() { crate::dispatcher::serve(); }\n",
                ),
            ],
        );
        let err = tree.complaints();
        assert!(
            err.contains("runtime/src/middleware/mod.rs:6: `middleware` uses `app`"),
            "{err}"
        );
        assert!(
            err.contains("runtime/src/middleware/mod.rs:15: `middleware` uses `dispatcher`"),
            "{err}"
        );
        // The test module itself may use what it likes.
        assert!(!err.contains("uses `testing`"), "{err}");
    }

    #[test]
    fn grouped_nested_and_relative_imports_are_read() {
        let tree = Tree::new(
            "groups",
            &[
                ("lib.rs", LIB),
                (
                    "net.rs",
                    "use crate::{\n    protocol::Event,\n    state::{Handlers, store::{Store}},\n};\nuse crate::{App as Builder, error};\n",
                ),
                (
                    "rooms/push.rs",
                    "use super::super::context::EventContext;\nuse super::Room;\n",
                ),
                (
                    "csrf.rs",
                    "fn f() { ::ferrule::socket::x(); let _ = \"crate::app\"; /* crate::app */ }\n\
                     #[ferrule::state]\nimpl Form { fn g(&self) { let _ = r#\"crate::app \"\"#; } }\n",
                ),
            ],
        );
        let err = tree.complaints();
        for found in [
            "runtime/src/net.rs:3: `net` uses `state`",
            "runtime/src/net.rs:5: `net` uses `app`",
            "runtime/src/rooms/push.rs:1: `rooms` uses `context`",
            "runtime/src/csrf.rs:1: `csrf` uses `socket`",
        ] {
            assert!(err.contains(found), "{found} not in: {err}");
        }
        assert!(
            !err.contains("uses `protocol`") && !err.contains("uses `error`"),
            "{err}"
        );
        assert!(
            !err.contains("`csrf` uses `state`"),
            "an attribute macro: {err}"
        );
        assert!(
            !err.contains("`csrf` uses `app`"),
            "strings and comments are not code: {err}"
        );
    }

    #[test]
    fn the_pages_modules_are_held_to_their_layer() {
        let tree = Tree::new(
            "pages",
            &[
                ("lib.rs", LIB),
                (
                    "ui/mod.rs",
                    "use crate::client::Status;\nfn f() { crate::bridge::run(); }\n",
                ),
                (
                    "ssr/mod.rs",
                    "use crate::csrf::CsrfToken;\nuse crate::app::App;\n",
                ),
            ],
        );
        let err = tree.complaints();
        assert!(
            err.contains("runtime/src/ui/mod.rs:2: `ui` uses `bridge`"),
            "{err}"
        );
        assert!(
            err.contains("runtime/src/ssr/mod.rs:2: `ssr` uses `app`"),
            "{err}"
        );
        assert!(
            !err.contains("uses `client`") && !err.contains("uses `csrf`"),
            "{err}"
        );
    }
}
