//! The fields of the account models (users, groups): each made alike, lists of names read and
//! shown, fields refused that are not written, changes kept for the log.

use std::collections::BTreeSet;

use super::{Change, FieldKind, FieldView, Values};
use crate::forms::FieldErrors;

/// A field of an account table.
pub(super) fn field(
    name: &str,
    kind: FieldKind,
    read_only: bool,
    value: Option<String>,
) -> FieldView {
    FieldView {
        name: name.to_owned(),
        kind,
        nullable: matches!(kind, FieldKind::Names | FieldKind::Password) || name == "email",
        read_only,
        value,
    }
}

/// The names of a comma-separated list, trimmed, without blanks or repeats.
pub(super) fn names(text: &str) -> BTreeSet<String> {
    text.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A list of names as a field shows it; `None` when empty.
pub(super) fn joined<'a>(names: impl IntoIterator<Item = &'a String>) -> Option<String> {
    let list: Vec<&str> = names.into_iter().map(String::as_str).collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// Refuses every key of `values` not in `writable`: a field shown but not written, or none.
pub(super) fn only(values: &Values, writable: &[&str], shown: &[&str], errors: &mut FieldErrors) {
    for key in values.keys() {
        if writable.contains(&key.as_str()) {
            continue;
        }
        match shown.contains(&key.as_str()) {
            true => errors.add(key.as_str(), "This field cannot be changed."),
            false => errors.add(key.as_str(), "No such field."),
        }
    }
}

/// A change of `field` to log, when it is one.
pub(super) fn change(
    changes: &mut Vec<Change>,
    field: &str,
    old: Option<String>,
    new: Option<String>,
) {
    if old != new {
        changes.push(Change {
            field: field.to_owned(),
            old,
            new,
        });
    }
}
