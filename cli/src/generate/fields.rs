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
            _ => return None,
        })
    }

    pub(crate) fn rust(self) -> &'static str {
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

pub(crate) fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "string",
        FieldType::Text => "text",
        FieldType::I32 => "i32",
        FieldType::I64 => "i64",
        FieldType::F64 => "f64",
        FieldType::Bool => "bool",
    }
}

/// What the scaffold templates need of each field, worked out here so the templates stay
/// plain Rust with loops.
pub(crate) fn field_values(fields: &[Field]) -> liquid::model::Value {
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
