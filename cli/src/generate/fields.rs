//! A scaffold's fields: their types as the command line names them, and what the templates
//! need to know of each.

use super::*;

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
    /// A calendar day (`2026-12-07`).
    Date,
    /// A day and a time of day, without a time zone (`2026-12-07T09:30`).
    DateTime,
    /// A row of another scaffold's table (`category:references:categories`): a foreign key
    /// column `<name>_id`, chosen from a list of that table's rows.
    Reference,
}

impl FieldType {
    pub(crate) fn parse(ty: &str) -> Option<Self> {
        Some(match ty {
            "string" | "String" => Self::String,
            "text" => Self::Text,
            "i32" => Self::I32,
            "i64" | "int" | "integer" => Self::I64,
            "f64" | "float" => Self::F64,
            "bool" | "boolean" => Self::Bool,
            "date" => Self::Date,
            "datetime" => Self::DateTime,
            _ => return None,
        })
    }

    /// The type pages see (shared with the browser, so dates travel as their text).
    pub(crate) fn rust(self) -> &'static str {
        match self {
            Self::String | Self::Text | Self::Date | Self::DateTime => "String",
            Self::I32 => "i32",
            Self::I64 | Self::Reference => "i64",
            Self::F64 => "f64",
            Self::Bool => "bool",
        }
    }
}

/// One `name:type` (or `name:option<type>`) of `ferrule generate scaffold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Column and Rust field name (snake_case).
    pub name: String,
    /// Its type.
    pub ty: FieldType,
    /// `option<type>`: the column may be empty (NULL), and so may the form's field.
    pub optional: bool,
    /// The table a `references:<table>` field points at.
    pub table: Option<String>,
}

impl Field {
    /// Parses `name:type`, saying what is wrong when it cannot.
    pub fn parse(spec: &str) -> Result<Self> {
        let Some((name, ty)) = spec.split_once(':') else {
            bail!("field `{spec}` has no type: write it as name:type (types: {FIELD_TYPES})");
        };
        let (ty, optional) = match ty
            .strip_prefix("option<")
            .or_else(|| ty.strip_prefix("Option<"))
        {
            Some(inner) => match inner.strip_suffix('>') {
                Some(inner) => (inner, true),
                None => bail!("field `{spec}`: write an optional type as option<type>"),
            },
            None => (ty, false),
        };
        check_ident(name, "field")?;
        if let Some(table) = ty.strip_prefix("references:") {
            check_ident(table, "table")?;
            // The column holds the row's id: `category` becomes `category_id`.
            let base = name.strip_suffix("_id").unwrap_or(name);
            if matches!(base, "id" | "owner") {
                bail!("field `{spec}`: pick another name than `{base}`");
            }
            return Ok(Self {
                name: format!("{base}_id"),
                ty: FieldType::Reference,
                optional,
                table: Some(table.to_owned()),
            });
        }
        let Some(ty) = FieldType::parse(ty) else {
            bail!("unknown field type `{ty}` in `{spec}`: use one of {FIELD_TYPES}");
        };
        if optional && ty == FieldType::Bool {
            bail!("field `{spec}`: a bool is never empty; use bool");
        }
        if matches!(name, "id" | "owner") {
            bail!("field `{name}`: every scaffold has `id` and `owner` already; pick another name");
        }
        Ok(Self {
            name: name.to_owned(),
            ty,
            optional,
            table: None,
        })
    }

    /// The name of a reference without its `_id`: the row's label on the page.
    pub(crate) fn base(&self) -> &str {
        self.name.strip_suffix("_id").unwrap_or(&self.name)
    }

    /// The field as the command line wrote it.
    pub(crate) fn spec(&self) -> String {
        let ty = match &self.table {
            Some(table) => format!("references:{table}"),
            None => type_name(self.ty).to_owned(),
        };
        let name = if self.table.is_some() {
            self.base()
        } else {
            &self.name
        };
        if self.optional {
            format!("{name}:option<{ty}>")
        } else {
            format!("{name}:{ty}")
        }
    }
}

pub(crate) fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Text => "text",
        FieldType::I32 => "i32",
        FieldType::I64 => "i64",
        FieldType::F64 => "f64",
        FieldType::Bool => "bool",
        FieldType::Date => "date",
        FieldType::DateTime => "datetime",
        FieldType::Reference => "references",
    }
}

/// What the scaffold templates need of each field: its names, its kind (`text`, `whole`,
/// `float`, `bool`: what the templates' `case` blocks write code for) and its column. The Rust
/// the templates write for a field lives in the templates, so it reads as Rust.
pub(crate) fn field_values(
    fields: &[Field],
    targets: &[Option<references::Target>],
) -> liquid::model::Value {
    let first_text = fields
        .iter()
        .position(|f| matches!(f.ty, FieldType::String | FieldType::Text));
    let list = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let n = &f.name;
            let rust = if f.optional {
                format!("Option<{}>", f.ty.rust())
            } else {
                f.ty.rust().to_owned()
            };
            let (kind, column, input) = match f.ty {
                FieldType::String => ("text", "string_len(255)", "text"),
                FieldType::Text => ("text", "text()", "textarea"),
                FieldType::I32 => ("whole", "integer()", "number"),
                FieldType::I64 => ("whole", "big_integer()", "number"),
                FieldType::F64 => ("float", "double()", "number"),
                FieldType::Bool => ("bool", "boolean()", "checkbox"),
                FieldType::Date => ("date", "date()", "date"),
                FieldType::DateTime => ("datetime", "date_time()", "datetime-local"),
                FieldType::Reference => ("reference", "big_integer()", "select"),
            };
            // The column's type in the server's model, where it differs from the page's.
            let column_type = match f.ty {
                FieldType::Date => "TimeDate",
                FieldType::DateTime => "TimeDateTime",
                other => other.rust(),
            };
            let model = if f.optional {
                format!("Option<{column_type}>")
            } else {
                column_type.to_owned()
            };
            // The most characters a text field takes: its column's size for a string.
            let max: i64 = if f.ty == FieldType::String {
                255
            } else {
                10_000
            };
            // The tests' sample values: "Item 1", "Item 2" for the first text field.
            let sample_word = if Some(i) == first_text {
                "Item".to_owned()
            } else {
                title_of(n)
            };
            let target = targets.get(i).cloned().flatten();
            let base = f.base();
            liquid::object!({
                "base": base,
                "base_label": title_of(base),
                "base_words": base.replace('_', " "),
                "table": f.table.clone().unwrap_or_default(),
                "entity": target.as_ref().map(|t| t.entity.clone()).unwrap_or_default(),
                "ref_label": target.as_ref().and_then(|t| t.label.clone()).unwrap_or_default(),
                "ref_label_variant": target.as_ref().and_then(|t| t.label.as_deref().map(pascal_case)).unwrap_or_default(),
                "sample_row": target.map(|t| t.sample_row).unwrap_or_default(),
                "name": n,
                "variant": pascal_case(n),
                "label": title_of(n),
                "rust": rust,
                "inner": f.ty.rust(),
                "model": model,
                "optional": f.optional,
                "kind": kind,
                "column": column,
                "max": max,
                "sample_word": sample_word,
                "input": input,
                "searchable": kind == "text",
                // Kept as text on the page (text and dates): cloned, not formatted, to show it.
                "textual": matches!(kind, "text" | "date" | "datetime"),
            })
        })
        .map(liquid::model::Value::Object)
        .collect::<Vec<_>>();
    liquid::model::Value::Array(list)
}
