//! `ferrule generate state|page|middleware|scaffold`: new code in an existing app.
//!
//! New files come from the templates in `cli/generators/` (Liquid, embedded in the binary); the
//! app's existing files only get one line each, inserted above a `// ferrule:<place>` marker the
//! app template puts where modules, routes, links, states, middleware and migrations are listed.
//! Everything is checked before anything is written, and a failed write undoes the others, so a
//! refused or failed run leaves the app as it was.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What `ferrule generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A state with one action, its handler and a test.
    State,
    /// A page at `/NAME` with a link in the header and a test.
    Page,
    /// A middleware function in the app's chain and a test.
    Middleware,
    /// A table (entity and migration), a CRUD state, its page and tests.
    Scaffold,
}

/// The column types a scaffold field may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A short text (up to 255 characters), searchable.
    String,
    /// A long text, searchable.
    Text,
    /// A 32-bit whole number.
    I32,
    /// A 64-bit whole number.
    I64,
    /// A floating-point number.
    F64,
    /// Yes or no.
    Bool,
}

/// The type names `field:type` accepts, for messages.
pub const FIELD_TYPES: &str = "string, text, i32, i64, f64, bool";

impl FieldType {
    fn parse(ty: &str) -> Option<Self> {
        Some(match ty {
            "string" | "String" => Self::String,
            "text" => Self::Text,
            "i32" => Self::I32,
            "i64" | "int" | "integer" => Self::I64,
            "f64" | "float" => Self::F64,
            "bool" | "boolean" => Self::Bool,
            _ => return None,
        })
    }

    fn rust(self) -> &'static str {
        match self {
            Self::String | Self::Text => "String",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::F64 => "f64",
            Self::Bool => "bool",
        }
    }
}

/// One `name:type` of `ferrule generate scaffold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Column and Rust field name (snake_case).
    pub name: String,
    /// Its type.
    pub ty: FieldType,
}

impl Field {
    /// Parses `name:type`, saying what is wrong when it cannot.
    pub fn parse(spec: &str) -> Result<Self> {
        let Some((name, ty)) = spec.split_once(':') else {
            bail!("field `{spec}` has no type: write it as name:type (types: {FIELD_TYPES})");
        };
        let Some(ty) = FieldType::parse(ty) else {
            bail!("unknown field type `{ty}` in `{spec}`: use one of {FIELD_TYPES}");
        };
        check_ident(name, "field")?;
        if matches!(name, "id" | "owner") {
            bail!("field `{name}`: every scaffold has `id` and `owner` already; pick another name");
        }
        Ok(Self {
            name: name.to_owned(),
            ty,
        })
    }
}

/// Rust keywords and names the app template already uses at the top of the crate.
const TAKEN: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "try", "typeof", "unsized", "virtual", "yield", "gen", "std", "core", "alloc", "ferrule",
    "leptos", "serde", "server", "common", "app", "shell", "main", "lib",
];

fn check_ident(name: &str, what: &str) -> Result<()> {
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

/// What one run writes: new files and the new text of edited ones.
#[derive(Debug, Default)]
pub struct Plan {
    /// Files to create (they must not exist), relative to the app.
    pub create: Vec<(PathBuf, String)>,
    /// Files to rewrite (their new text), relative to the app.
    pub edit: Vec<(PathBuf, String)>,
    /// What to tell the user afterwards.
    pub notes: Vec<String>,
}

/// The app being generated into.
struct AppDir<'a> {
    root: &'a Path,
    auth: bool,
}

impl AppDir<'_> {
    fn read(&self, rel: &str) -> Result<String> {
        std::fs::read_to_string(self.root.join(rel)).with_context(|| {
            format!(
                "cannot read {rel} in {}: run `ferrule generate` in an app made by `ferrule new`",
                self.root.display()
            )
        })
    }
}

/// Inserts `line` above the line holding `// ferrule:<marker>`, with that line's indentation.
fn insert_at(text: &str, file: &str, marker: &str, line: &str) -> Result<String> {
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
struct Edit {
    file: &'static str,
    text: String,
}

impl Edit {
    fn of(app: &AppDir<'_>, file: &'static str) -> Result<Self> {
        Ok(Self {
            file,
            text: app.read(file)?,
        })
    }

    fn insert(&mut self, marker: &str, line: &str) -> Result<()> {
        if self.text.lines().any(|l| l.trim() == line.trim()) {
            bail!("{} already has `{}`", self.file, line.trim());
        }
        self.text = insert_at(&self.text, self.file, marker, line)?;
        Ok(())
    }
}

fn render(template: &str, globals: liquid::Object) -> Result<String> {
    let parser = liquid::ParserBuilder::with_stdlib()
        .build()
        .context("template engine")?;
    let tpl = parser
        .parse(template)
        .context("a generator template does not parse")?;
    tpl.render(&globals)
        .context("a generator template does not render")
}

const STATE: &str = include_str!("../generators/state.rs.liquid");
const STATE_TEST: &str = include_str!("../generators/state_test.rs.liquid");
const PAGE: &str = include_str!("../generators/page.rs.liquid");
const PAGE_TEST: &str = include_str!("../generators/page_test.rs.liquid");
const MIDDLEWARE: &str = include_str!("../generators/middleware.rs.liquid");
const MIDDLEWARE_TEST: &str = include_str!("../generators/middleware_test.rs.liquid");
const SCAFFOLD: &str = include_str!("../generators/scaffold.rs.liquid");
const SCAFFOLD_TEST: &str = include_str!("../generators/scaffold_test.rs.liquid");

/// Works out what `ferrule generate KIND NAME FIELDS…` writes into the app at `root`, without
/// writing anything; fails with the reason when it cannot be done.
pub fn plan(root: &Path, kind: Kind, name: &str, fields: &[String]) -> Result<Plan> {
    let snake = snake_case(name);
    check_ident(&snake, "generated")?;
    if kind != Kind::Scaffold && !fields.is_empty() {
        bail!(
            "only `ferrule generate scaffold` takes fields (got {})",
            fields.join(" ")
        );
    }
    let fields = fields
        .iter()
        .map(|f| Field::parse(f))
        .collect::<Result<Vec<_>>>()?;
    if kind == Kind::Scaffold && fields.is_empty() {
        bail!(
            "a scaffold needs fields: `ferrule generate scaffold {snake} name:string price:i64` (types: {FIELD_TYPES})"
        );
    }
    for (i, f) in fields.iter().enumerate() {
        if fields[..i].iter().any(|g| g.name == f.name) {
            bail!("field `{}` is listed twice", f.name);
        }
    }
    let app = AppDir {
        root,
        auth: root.join("src/auth.rs").is_file(),
    };
    app.read("Cargo.toml")?;
    if !root.join("tests/common/mod.rs").is_file() {
        bail!(
            "{} has no tests/common/mod.rs (the test helpers generated tests use): add it from a fresh `ferrule new` app",
            root.display()
        );
    }

    let pascal = pascal_case(&snake);
    let plural_snake = plural(&snake);
    let plural_pascal = pascal_case(&plural_snake);
    let title = title_of(&plural_snake);
    let module_file = format!("src/{snake}.rs");
    let test_file = match kind {
        Kind::Scaffold => format!("tests/{plural_snake}.rs"),
        _ => format!("tests/{snake}.rs"),
    };
    for f in [&module_file, &test_file] {
        if root.join(f).exists() {
            bail!("{f} already exists: pick another name or remove it first");
        }
    }
    if root.join("src").join(&snake).exists() {
        bail!("src/{snake}/ already exists: pick another name");
    }

    let mut globals = liquid::object!({
        "name": snake,
        "pascal": pascal,
        "plural": plural_snake,
        "plural_pascal": plural_pascal,
        "title": title,
        "auth": app.auth,
        "command": format!("ferrule generate {} {}", kind_name(kind), std::iter::once(snake.clone()).chain(fields.iter().map(|f| format!("{}:{}", f.name, type_name(f.ty)))).collect::<Vec<_>>().join(" ")),
    });
    let mut lib = Edit::of(&app, "src/lib.rs")?;
    let mut server = Edit::of(&app, "src/server.rs")?;
    let mut plan = Plan::default();
    let (module, test) = match kind {
        Kind::State => {
            lib.insert("modules", &format!("pub mod {snake};"))?;
            server.insert(
                "states",
                &format!(".state::<crate::{snake}::{pascal}State>()"),
            )?;
            plan.notes.push(format!(
                "{pascal}State answers `{snake}_state.update`; read it in a page with `ui::use_state::<{snake}::{pascal}State>()`"
            ));
            (STATE, STATE_TEST)
        }
        Kind::Page => {
            lib.insert("modules", &format!("pub mod {snake};"))?;
            lib.insert(
                "routes",
                &format!("<Route path=path!(\"/{snake}\") view={snake}::{pascal}Page/>"),
            )?;
            lib.insert(
                "nav",
                &format!("<a href=\"/{snake}\">\"{}\"</a>", title_of(&snake)),
            )?;
            globals.insert(
                "page_title".into(),
                liquid::model::Value::scalar(title_of(&snake)),
            );
            plan.notes.push(format!("the page is at /{snake}"));
            (PAGE, PAGE_TEST)
        }
        Kind::Middleware => {
            lib.insert(
                "modules",
                &format!("#[cfg(feature = \"ssr\")]\npub mod {snake};"),
            )?;
            server.insert(
                "middleware",
                &format!(".middleware(ferrule::middleware::from_fn(\"{snake}\", crate::{snake}::{snake}))"),
            )?;
            plan.notes.push(format!(
                "`{snake}` runs last in the chain, for every page and every event; move its line in src/server.rs to change that"
            ));
            (MIDDLEWARE, MIDDLEWARE_TEST)
        }
        Kind::Scaffold => {
            lib.insert("modules", &format!("pub mod {snake};"))?;
            lib.insert(
                "routes",
                &format!(
                    "<Route path=path!(\"/{plural_snake}\") view={snake}::{plural_pascal}Page/>"
                ),
            )?;
            lib.insert(
                "nav",
                &format!("<a href=\"/{plural_snake}\">\"{title}\"</a>"),
            )?;
            server.insert(
                "states",
                &format!(".state::<crate::{snake}::{plural_pascal}State>()"),
            )?;
            server.insert(
                "migrations",
                &format!("Box::new(crate::{snake}::server::Create{plural_pascal}),"),
            )?;
            globals.insert(
                "migration".into(),
                liquid::model::Value::scalar(format!("m{}_create_{plural_snake}", timestamp())),
            );
            globals.insert("fields".into(), field_values(&fields));
            globals.insert(
                "has_checks".into(),
                liquid::model::Value::scalar(fields.iter().any(|f| f.ty != FieldType::Bool)),
            );
            globals.insert(
                "searchable".into(),
                liquid::model::Value::scalar(
                    fields
                        .iter()
                        .any(|f| matches!(f.ty, FieldType::String | FieldType::Text)),
                ),
            );
            plan.notes.push(format!(
                "run `ferrule migrate` to create the `{plural_snake}` table; the page is at /{plural_snake}"
            ));
            if !app.auth {
                plan.notes.push(
                    "this app has no account pages, so anyone may change any row (with them, only its owner)".into(),
                );
            }
            (SCAFFOLD, SCAFFOLD_TEST)
        }
    };
    plan.create
        .push((module_file.into(), render(module, globals.clone())?));
    plan.create.push((test_file.into(), render(test, globals)?));
    for edit in [lib, server] {
        if edit.text != app.read(edit.file)? {
            plan.edit.push((edit.file.into(), edit.text));
        }
    }
    Ok(plan)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::State => "state",
        Kind::Page => "page",
        Kind::Middleware => "middleware",
        Kind::Scaffold => "scaffold",
    }
}

fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Text => "text",
        FieldType::I32 => "i32",
        FieldType::I64 => "i64",
        FieldType::F64 => "f64",
        FieldType::Bool => "bool",
    }
}

/// `blog_post` → `Blog post`.
fn title_of(snake: &str) -> String {
    let words = snake.replace('_', " ");
    let mut cs = words.chars();
    cs.next()
        .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
        .unwrap_or_default()
}

/// What the scaffold templates need of each field, worked out here so the templates stay
/// plain Rust with loops.
fn field_values(fields: &[Field]) -> liquid::model::Value {
    let first_text = fields
        .iter()
        .position(|f| matches!(f.ty, FieldType::String | FieldType::Text));
    let list = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let n = &f.name;
            let column = match f.ty {
                FieldType::String => "string_len(255)",
                FieldType::Text => "text()",
                FieldType::I32 => "integer()",
                FieldType::I64 => "big_integer()",
                FieldType::F64 => "double()",
                FieldType::Bool => "boolean()",
            };
            let (check, sample, bad) = match f.ty {
                FieldType::String | FieldType::Text => {
                    let max = if f.ty == FieldType::String {
                        255
                    } else {
                        10_000
                    };
                    let mut c = String::new();
                    let _ = write!(
                        c,
                        "let {n} = form.{n}.trim().to_owned();\n\
                         if {n}.is_empty() {{\n\
                         errors.insert(\"{n}\".into(), \"Required.\".into());\n\
                         }} else if {n}.chars().count() > {max} {{\n\
                         errors.insert(\"{n}\".into(), \"At most {max} characters.\".into());\n\
                         }}"
                    );
                    let word = if Some(i) == first_text {
                        "Item".to_owned()
                    } else {
                        title_of(n)
                    };
                    let sample = format!("json!(format!(\"{word} {{i}}\"))");
                    (c, sample, "json!(\"  \")".to_owned())
                }
                FieldType::I32 | FieldType::I64 => (
                    format!(
                        "let {n} = form.{n}.trim().parse::<{}>().unwrap_or_else(|_| {{\n\
                         errors.insert(\"{n}\".into(), \"Enter a whole number.\".into());\n\
                         0\n\
                         }});",
                        f.ty.rust()
                    ),
                    "json!(i.to_string())".to_owned(),
                    "json!(\"many\")".to_owned(),
                ),
                FieldType::F64 => (
                    format!(
                        "let {n} = match form.{n}.trim().parse::<f64>() {{\n\
                         Ok(v) if v.is_finite() => v,\n\
                         _ => {{\n\
                         errors.insert(\"{n}\".into(), \"Enter a number.\".into());\n\
                         0.0\n\
                         }}\n\
                         }};"
                    ),
                    "json!(format!(\"{i}.5\"))".to_owned(),
                    "json!(\"1,5\")".to_owned(),
                ),
                FieldType::Bool => (
                    format!("let {n} = form.{n};"),
                    "json!(i.is_multiple_of(2))".to_owned(),
                    String::new(),
                ),
            };
            // The value a saved row holds for `sample` of the same `i`.
            let expect = match f.ty {
                FieldType::String | FieldType::Text => sample.clone(),
                FieldType::I32 | FieldType::I64 => "json!(i)".to_owned(),
                FieldType::F64 => "json!(i as f64 + 0.5)".to_owned(),
                FieldType::Bool => "json!(i.is_multiple_of(2))".to_owned(),
            };
            let (form_ty, to_form, cell) = match f.ty {
                FieldType::String | FieldType::Text => (
                    "String",
                    format!("item.{n}.clone()"),
                    format!("item.{n}.clone()"),
                ),
                FieldType::Bool => (
                    "bool",
                    format!("item.{n}"),
                    format!("if item.{n} {{ \"yes\" }} else {{ \"no\" }}"),
                ),
                _ => (
                    "String",
                    format!("item.{n}.to_string()"),
                    format!("item.{n}.to_string()"),
                ),
            };
            let input = match f.ty {
                FieldType::Text => "textarea",
                FieldType::Bool => "checkbox",
                FieldType::I32 | FieldType::I64 | FieldType::F64 => "number",
                FieldType::String => "text",
            };
            liquid::object!({
                "name": n,
                "variant": pascal_case(n),
                "label": title_of(n),
                "rust": f.ty.rust(),
                "form_ty": form_ty,
                "column": column,
                "check": check,
                "sample": sample,
                "expect": expect,
                "bad": bad,
                "to_form": to_form,
                "cell": cell,
                "input": input,
                "searchable": matches!(f.ty, FieldType::String | FieldType::Text),
            })
        })
        .map(liquid::model::Value::Object)
        .collect::<Vec<_>>();
    liquid::model::Value::Array(list)
}

/// `YYYYMMDD_HHMMSS` in UTC, for migration names that sort in creation order.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
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
        for p in &created {
            let _ = std::fs::remove_file(p);
        }
        for (p, old) in &restored {
            let _ = std::fs::write(p, old);
        }
        return Err(e.context("nothing was changed"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_between_cases() {
        assert_eq!(snake_case("BlogPost"), "blog_post");
        assert_eq!(snake_case("blog-post"), "blog_post");
        assert_eq!(snake_case("product"), "product");
        assert_eq!(pascal_case("blog_post"), "BlogPost");
        assert_eq!(plural("product"), "products");
        assert_eq!(plural("category"), "categories");
        assert_eq!(plural("day"), "days");
        assert_eq!(plural("box"), "boxes");
        assert_eq!(plural("match"), "matches");
    }

    #[test]
    fn fields_are_checked_with_a_reason() {
        assert_eq!(
            Field::parse("price:i64").unwrap(),
            Field {
                name: "price".into(),
                ty: FieldType::I64
            }
        );
        for (bad, why) in [
            ("price", "has no type"),
            ("price:money", "unknown field type `money`"),
            ("Price:i64", "snake_case"),
            ("id:i64", "already"),
            ("type:string", "keyword"),
        ] {
            let err = Field::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn lines_go_above_their_marker_with_its_indentation() {
        let text = "a\n    // ferrule:states (here)\nb\n";
        let out = insert_at(text, "f.rs", "states", ".state::<X>()").unwrap();
        assert_eq!(
            out,
            "a\n    .state::<X>()\n    // ferrule:states (here)\nb\n"
        );
        let err = insert_at("a\n", "f.rs", "states", "x").unwrap_err();
        assert!(
            err.to_string().contains("no `// ferrule:states` line"),
            "{err}"
        );
    }

    #[test]
    fn timestamps_sort_and_look_right() {
        let t = timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
