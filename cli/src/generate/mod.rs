//! `ferrule generate state|page|middleware|scaffold`: new code in an existing app; `ferrule
//! generate deployment`: its Dockerfile and systemd unit.
//!
//! New files come from the templates in `cli/generators/` (Liquid, embedded in the binary); the
//! app's existing files only get the lines each template declares in its header (data, as Loco's
//! generators do), each inserted above a `// ferrule:<place>` marker the app template puts where
//! modules, routes, links, states, middleware and migrations are listed.
//! Everything is checked before anything is written, and a failed write undoes the others, so a
//! refused or failed run leaves the app as it was.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

mod deployment;
mod edit;
mod fields;
mod names;
mod references;

pub use edit::apply;
use edit::*;
use fields::*;
pub use fields::{Field, FieldType};
use names::*;
pub use names::{pascal_case, plural, snake_case};

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
    /// A Dockerfile (multi-stage, non-root, health check), its .dockerignore and a systemd
    /// unit (takes no name).
    Deployment,
}

/// The type names `field:type` accepts, for messages.
pub const FIELD_TYPES: &str =
    "string, text, i32, i64, f64, bool, date, datetime, references:<table>, option<type>";

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

const STATE: &str = include_str!("../../generators/state.rs.liquid");
const STATE_TEST: &str = include_str!("../../generators/state_test.rs.liquid");
const PAGE: &str = include_str!("../../generators/page.rs.liquid");
const PAGE_TEST: &str = include_str!("../../generators/page_test.rs.liquid");
const MIDDLEWARE: &str = include_str!("../../generators/middleware.rs.liquid");
const MIDDLEWARE_TEST: &str = include_str!("../../generators/middleware_test.rs.liquid");
const SCAFFOLD: &str = include_str!("../../generators/scaffold.rs.liquid");
const SCAFFOLD_TEST: &str = include_str!("../../generators/scaffold_test.rs.liquid");

/// [`plan`], or for [`Kind::Deployment`] (which takes no name) its files; a missing or
/// unwanted name is refused with the reason.
pub fn plan_kind(root: &Path, kind: Kind, name: Option<&str>, fields: &[String]) -> Result<Plan> {
    match (kind, name) {
        (Kind::Deployment, None) => deployment::plan(root),
        (Kind::Deployment, Some(name)) => {
            bail!("`ferrule generate deployment` takes no name (got `{name}`)")
        }
        (_, Some(name)) => plan(root, kind, name, fields),
        (_, None) => bail!(
            "`ferrule generate {}` needs a name, e.g. `ferrule generate {} product`",
            kind_name(kind),
            kind_name(kind)
        ),
    }
}

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
    let crate_name = app.crate_name()?;
    let targets = fields
        .iter()
        .map(|f| {
            f.table
                .as_deref()
                .map(|table| references::find(root, table, &f.spec()))
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
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
        "crate": crate_name,
        "command": format!("ferrule generate {} {}", kind_name(kind), std::iter::once(snake.clone()).chain(fields.iter().map(Field::spec)).collect::<Vec<_>>().join(" ")),
    });
    let mut plan = Plan::default();
    let (module, test) = match kind {
        Kind::State => (STATE, STATE_TEST),
        Kind::Page => {
            globals.insert(
                "page_title".into(),
                liquid::model::Value::scalar(title_of(&snake)),
            );
            (PAGE, PAGE_TEST)
        }
        Kind::Middleware => (MIDDLEWARE, MIDDLEWARE_TEST),
        Kind::Deployment => return deployment::plan(root),
        Kind::Scaffold => {
            globals.insert(
                "migration".into(),
                liquid::model::Value::scalar(format!("m{}_create_{plural_snake}", timestamp())),
            );
            globals.insert("fields".into(), field_values(&fields, &targets));
            globals.insert(
                "references".into(),
                liquid::model::Value::scalar(targets.iter().any(Option::is_some)),
            );
            globals.insert(
                "has_checks".into(),
                // A field that can be wrong: any but a bool or an optional text.
                liquid::model::Value::scalar(fields.iter().any(|f| {
                    f.ty != FieldType::Bool
                        && !(f.optional && matches!(f.ty, FieldType::String | FieldType::Text))
                })),
            );
            globals.insert(
                "has_optional".into(),
                liquid::model::Value::scalar(fields.iter().any(|f| f.optional)),
            );
            globals.insert(
                "searchable".into(),
                liquid::model::Value::scalar(
                    fields
                        .iter()
                        .any(|f| matches!(f.ty, FieldType::String | FieldType::Text)),
                ),
            );
            (SCAFFOLD, SCAFFOLD_TEST)
        }
    };
    let (header, module) = split_header(&render(module, globals.clone())?)?;
    // The app's files as the header's lines leave them, each read once, in the order named.
    let mut edits: Vec<Edit> = Vec::new();
    for insertion in &header.insert {
        let at = match edits.iter().position(|e| e.file == insertion.file) {
            Some(at) => at,
            None => {
                edits.push(Edit::of(&app, &insertion.file)?);
                edits.len() - 1
            }
        };
        edits[at].insert(&insertion.at, &insertion.line)?;
    }
    plan.notes = header.notes;
    plan.create.push((module_file.into(), module));
    plan.create.push((test_file.into(), render(test, globals)?));
    for edit in edits {
        if edit.text != app.read(&edit.file)? {
            plan.edit.push((edit.file.into(), edit.text));
        }
    }
    Ok(plan)
}

/// What a generator template declares in its header (TOML between `+++` lines, rendered
/// with the template's values): what to tell the user (`notes`, first, since TOML puts the keys
/// after a `[[insert]]` into that table) and the lines it adds to the app's files.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    /// Lines for existing files, each above a marker.
    #[serde(default)]
    insert: Vec<Insertion>,
    /// Told the user once the files are written.
    #[serde(default)]
    notes: Vec<String>,
}

/// One line for an existing file: `line` goes above the line holding `// ferrule:<at>`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Insertion {
    file: String,
    at: String,
    line: String,
}

/// Splits a rendered template into its header and the file it writes (no header: nothing to
/// insert).
fn split_header(rendered: &str) -> Result<(Header, String)> {
    let Some(rest) = rendered.strip_prefix("+++\n") else {
        return Ok((Header::default(), rendered.to_owned()));
    };
    let Some((header, body)) = rest.split_once("\n+++\n") else {
        bail!("a generator template's header has no closing `+++` line");
    };
    let header: Header =
        toml::from_str(header).context("a generator template's header is not valid")?;
    if let Some(bad) = header
        .insert
        .iter()
        .find(|i| !i.file.starts_with("src/") || i.file.contains(".."))
    {
        bail!(
            "a generator template inserts into {}: only the app's own src/ files",
            bad.file
        );
    }
    Ok((header, body.to_owned()))
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::State => "state",
        Kind::Page => "page",
        Kind::Middleware => "middleware",
        Kind::Scaffold => "scaffold",
        Kind::Deployment => "deployment",
    }
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
                ty: FieldType::I64,
                optional: false,
                table: None,
            }
        );
        let due = Field::parse("due:option<date>").unwrap();
        assert_eq!((due.ty, due.optional), (FieldType::Date, true));
        assert_eq!(Field::parse("at:datetime").unwrap().ty, FieldType::DateTime);
        let note = Field::parse("note:option<text>").unwrap();
        assert_eq!((note.ty, note.optional), (FieldType::Text, true));
        let shelf = Field::parse("shelf:references:shelves").unwrap();
        assert_eq!(
            (shelf.name.as_str(), shelf.ty, shelf.table.as_deref()),
            ("shelf_id", FieldType::Reference, Some("shelves"))
        );
        assert_eq!(shelf.spec(), "shelf:references:shelves");
        let maker = Field::parse("maker_id:option<references:makers>").unwrap();
        assert_eq!((maker.name.as_str(), maker.optional), ("maker_id", true));
        assert_eq!(maker.spec(), "maker:option<references:makers>");
        for (bad, why) in [
            ("price", "has no type"),
            ("price:money", "unknown field type `money`"),
            ("Price:i64", "snake_case"),
            ("id:i64", "already"),
            ("type:string", "keyword"),
            ("note:option<text", "option<type>"),
            ("note:option<money>", "unknown field type `money`"),
            ("shelf:references:Shelves", "snake_case"),
            ("owner:references:users", "another name"),
            ("done:option<bool>", "never empty"),
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
    fn template_headers_say_where_lines_go_and_refuse_what_they_do_not_know() {
        let (header, body) = split_header(
            "+++\nnotes = ['done']\n[[insert]]\nfile = \"src/lib.rs\"\nat = \"modules\"\nline = 'pub mod x;'\n+++\n//! x\n",
        )
        .unwrap();
        assert_eq!(body, "//! x\n");
        assert_eq!(
            (header.insert[0].at.as_str(), header.insert[0].line.as_str()),
            ("modules", "pub mod x;")
        );
        assert_eq!(header.notes, ["done"]);
        let (none, body) = split_header("//! x\n").unwrap();
        assert!(none.insert.is_empty() && body == "//! x\n");
        let unknown = split_header("+++\ninsrt = []\n+++\n").unwrap_err();
        assert!(format!("{unknown:#}").contains("insrt"), "{unknown:#}");
        let outside = "+++\n[[insert]]\nfile = \"../x\"\nat = \"a\"\nline = 'b'\n+++\n";
        assert!(
            split_header(outside)
                .unwrap_err()
                .to_string()
                .contains("src/")
        );
    }

    #[test]
    fn timestamps_sort_and_look_right() {
        let t = timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
