//! Column values as the admin's pages carry them: text, parsed back by the column's type, with
//! a message for the person filling the form in when it does not parse.

use sea_orm::sea_query::{ArrayType, Value};

use super::view::FieldKind;

/// The kind of input a column of value type `t` takes.
pub(crate) fn kind_of(t: &ArrayType) -> FieldKind {
    match t {
        ArrayType::TinyInt
        | ArrayType::SmallInt
        | ArrayType::Int
        | ArrayType::BigInt
        | ArrayType::TinyUnsigned
        | ArrayType::SmallUnsigned
        | ArrayType::Unsigned
        | ArrayType::BigUnsigned => FieldKind::Integer,
        ArrayType::Float | ArrayType::Double => FieldKind::Float,
        ArrayType::Bool => FieldKind::Bool,
        ArrayType::String | ArrayType::Char => FieldKind::Text,
        ArrayType::TimeDate => FieldKind::Date,
        ArrayType::TimeDateTime => FieldKind::DateTime,
        _ => FieldKind::Other,
    }
}

const WHOLE: &str = "Enter a whole number.";
const NUMBER: &str = "Enter a number.";
const BOOL: &str = "Enter true or false.";
const DATE: &str = "Enter a date as YYYY-MM-DD.";
const DATETIME: &str = "Enter a date and time as YYYY-MM-DD HH:MM.";
/// What an empty value of a column that takes no NULL is told.
pub(crate) const REQUIRED: &str = "Required.";

fn whole<N: std::str::FromStr>(s: &str) -> Result<Option<N>, String> {
    s.parse().map(Some).map_err(|_| WHOLE.to_owned())
}

/// `true` for `true`, `on`, `yes`, `1`; `false` for their opposites.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(BOOL.to_owned()),
    }
}

/// The value of type `t` that `text` says: empty is NULL when the column takes it, else
/// [`REQUIRED`] (text columns too: an empty name is rarely meant); the error is the field's
/// message.
pub(crate) fn parse(t: &ArrayType, nullable: bool, text: &str) -> Result<Value, String> {
    let s = text.trim();
    if s.is_empty() && !nullable {
        return Err(REQUIRED.to_owned());
    }
    let given = !s.is_empty();
    let number = |s: &str| -> Result<f64, String> {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| NUMBER.to_owned())
    };
    Ok(match t {
        ArrayType::Bool => Value::Bool(given.then(|| parse_bool(s)).transpose()?),
        ArrayType::TinyInt => Value::TinyInt(if given { whole(s)? } else { None }),
        ArrayType::SmallInt => Value::SmallInt(if given { whole(s)? } else { None }),
        ArrayType::Int => Value::Int(if given { whole(s)? } else { None }),
        ArrayType::BigInt => Value::BigInt(if given { whole(s)? } else { None }),
        ArrayType::TinyUnsigned => Value::TinyUnsigned(if given { whole(s)? } else { None }),
        ArrayType::SmallUnsigned => Value::SmallUnsigned(if given { whole(s)? } else { None }),
        ArrayType::Unsigned => Value::Unsigned(if given { whole(s)? } else { None }),
        ArrayType::BigUnsigned => Value::BigUnsigned(if given { whole(s)? } else { None }),
        ArrayType::Float => Value::Float(given.then(|| number(s).map(|v| v as f32)).transpose()?),
        ArrayType::Double => Value::Double(given.then(|| number(s)).transpose()?),
        // Text is kept as typed; only an empty one (blanks alone) is NULL.
        ArrayType::String => Value::String(given.then(|| text.to_owned())),
        ArrayType::Char => Value::Char(match given {
            true => Some(
                s.chars()
                    .next()
                    .filter(|_| s.chars().count() == 1)
                    .ok_or_else(|| "Enter one character.".to_owned())?,
            ),
            false => None,
        }),
        ArrayType::TimeDate => Value::TimeDate(
            given
                .then(|| crate::forms::parse_date(s).ok_or_else(|| DATE.to_owned()))
                .transpose()?,
        ),
        ArrayType::TimeDateTime => Value::TimeDateTime(
            given
                .then(|| crate::forms::parse_datetime(s).ok_or_else(|| DATETIME.to_owned()))
                .transpose()?,
        ),
        _ => return Err("This field cannot be edited here.".to_owned()),
    })
}

/// The text of `v` as a form shows it; `None` for NULL.
pub(crate) fn show(v: &Value) -> Option<String> {
    fn text<T: ToString>(v: &Option<T>) -> Option<String> {
        v.as_ref().map(ToString::to_string)
    }
    match v {
        Value::Bool(b) => text(b),
        Value::TinyInt(n) => text(n),
        Value::SmallInt(n) => text(n),
        Value::Int(n) => text(n),
        Value::BigInt(n) => text(n),
        Value::TinyUnsigned(n) => text(n),
        Value::SmallUnsigned(n) => text(n),
        Value::Unsigned(n) => text(n),
        Value::BigUnsigned(n) => text(n),
        Value::Float(n) => text(n),
        Value::Double(n) => text(n),
        Value::String(s) => s.clone(),
        Value::Char(c) => text(c),
        Value::TimeDate(d) => text(d),
        Value::TimeDateTime(at) => at.map(|at| {
            let shown = crate::forms::format_datetime(at);
            match at.second() {
                0 => shown,
                s => format!("{shown}:{s:02}"),
            }
        }),
        Value::TimeDateTimeWithTimeZone(at) => text(at),
        Value::Json(j) => j.as_ref().map(|j| j.to_string()),
        Value::Bytes(b) => b.as_ref().map(|b| format!("({} bytes)", b.len())),
        other => Some(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_parses_what_its_input_sends_and_shows_it_back() {
        let round = |t: ArrayType, s: &str| show(&parse(&t, true, s).unwrap());
        assert_eq!(round(ArrayType::BigInt, " 42 "), Some("42".into()));
        assert_eq!(round(ArrayType::Int, ""), None, "empty is NULL");
        assert_eq!(round(ArrayType::Double, "2.5"), Some("2.5".into()));
        assert_eq!(round(ArrayType::Bool, "on"), Some("true".into()));
        assert_eq!(round(ArrayType::String, " a b "), Some(" a b ".into()));
        assert_eq!(
            round(ArrayType::TimeDate, "2024-02-29"),
            Some("2024-02-29".into())
        );
        assert_eq!(
            round(ArrayType::TimeDateTime, "2026-12-07T09:30"),
            Some("2026-12-07T09:30".into())
        );
        assert_eq!(
            round(ArrayType::TimeDateTime, "2026-12-07 09:30:15"),
            Some("2026-12-07T09:30:15".into())
        );
    }

    #[test]
    fn what_does_not_parse_is_the_fields_message() {
        let err = |t: ArrayType, s: &str| parse(&t, false, s).unwrap_err();
        assert_eq!(err(ArrayType::BigInt, "12x"), WHOLE);
        assert_eq!(err(ArrayType::Int, "3000000000"), WHOLE, "out of range");
        assert_eq!(err(ArrayType::Double, "inf"), NUMBER);
        assert_eq!(err(ArrayType::Bool, "maybe"), BOOL);
        assert_eq!(err(ArrayType::TimeDate, "2023-02-29"), DATE);
        assert_eq!(err(ArrayType::TimeDateTime, "2026-12-07"), DATETIME);
        assert_eq!(err(ArrayType::String, "  "), REQUIRED);
        assert_eq!(err(ArrayType::BigInt, ""), REQUIRED);
    }
}
