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
            Self::I64 => "i64",
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
        let Some(ty) = FieldType::parse(ty) else {
            bail!("unknown field type `{ty}` in `{spec}`: use one of {FIELD_TYPES}");
        };
        if optional && ty == FieldType::Bool {
            bail!("field `{spec}`: a bool is never empty; use bool");
        }
        check_ident(name, "field")?;
        if matches!(name, "id" | "owner") {
            bail!("field `{name}`: every scaffold has `id` and `owner` already; pick another name");
        }
        Ok(Self {
            name: name.to_owned(),
            ty,
            optional,
        })
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
    }
}

/// What the scaffold templates need of each field: its names, its kind (`text`, `whole`,
/// `float`, `bool`: what the templates' `case` blocks write code for) and its column. The Rust
/// the templates write for a field lives in the templates, so it reads as Rust.
pub(crate) fn field_values(fields: &[Field]) -> liquid::model::Value {
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
            liquid::object!({
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
