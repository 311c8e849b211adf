//! What the admin's state carries to its pages: the models a user may see, one page of a list,
//! one row's fields, a row's log. Plain serde types, so the browser's page reads them as the
//! server writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What input a field takes, from its column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A whole number.
    Integer,
    /// A number with a fraction.
    Float,
    /// `true` or `false`.
    Bool,
    /// Text.
    Text,
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM-DDTHH:MM[:SS]`.
    DateTime,
    /// A password: written, never shown.
    Password,
    /// A list of names, comma-separated (groups, permissions).
    Names,
    /// Anything else: shown, not edited.
    Other,
}

/// A model the user may see in the admin, and what they may do with its rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The model's name in events: its table.
    pub model: String,
    /// Its name on the page.
    pub label: String,
    /// May list and open rows.
    pub view: bool,
    /// May create rows.
    pub add: bool,
    /// May change rows.
    pub change: bool,
    /// May delete rows.
    pub delete: bool,
}

/// One field of a row, or of the form for a new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldView {
    /// The column's name.
    pub name: String,
    /// What input it takes.
    pub kind: FieldKind,
    /// Whether it may be empty (NULL).
    pub nullable: bool,
    /// Shown, never written by the admin.
    pub read_only: bool,
    /// Its value as text; `None` for NULL (and for a new row or a password).
    pub value: Option<String>,
}

/// One row of a list: its id and the listed columns' values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowView {
    /// The row's primary key, as text.
    pub id: String,
    /// The values of [`ListPage::columns`], in order; `None` for NULL.
    pub cells: Vec<Option<String>>,
}

/// What a list asks for: a search, filters, an order and a page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    /// Text the search fields contain (any case); empty: every row.
    pub search: String,
    /// Filter field → the value it must equal (empty: NULL).
    pub filters: BTreeMap<String, String>,
    /// A column, `-` in front for descending; empty: the model's ordering.
    pub ordering: String,
    /// The page, from 1 (0 counts as 1).
    pub page: u64,
}

/// One page of a model's rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// The model listed.
    pub model: String,
    /// The columns shown.
    pub columns: Vec<String>,
    /// The fields the search looks in (none: no search box).
    pub search_fields: Vec<String>,
    /// The fields the list may be filtered on.
    pub filter_fields: Vec<String>,
    /// This page's rows.
    pub rows: Vec<RowView>,
    /// How many rows match, on every page.
    pub total: u64,
    /// This page, from 1.
    pub page: u64,
    /// How many pages there are (at least 1).
    pub pages: u64,
    /// Rows per page.
    pub page_size: u64,
    /// What was asked, the ordering as applied.
    pub query: ListQuery,
}

/// One row opened for editing, or the empty form of a new one (`id` none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectView {
    /// The row's model.
    pub model: String,
    /// Its primary key; `None` for a new row.
    pub id: Option<String>,
    /// Its fields, in the table's order.
    pub fields: Vec<FieldView>,
}

/// One field a save or delete changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The field.
    pub field: String,
    /// Its value before (`None`: NULL, or no row yet).
    pub old: Option<String>,
    /// Its value after (`None`: NULL, or the row deleted).
    pub new: Option<String>,
}

/// One entry of the admin log: who did what to a row, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Unix seconds.
    pub at: i64,
    /// The user's id (kept after the account is deleted).
    pub user_id: Option<i64>,
    /// The user's name at the time.
    pub username: String,
    /// The row's model.
    pub model: String,
    /// The row's primary key.
    pub object_id: String,
    /// `add`, `change` or `delete`.
    pub action: String,
    /// What changed, field by field.
    pub changes: Vec<Change>,
}

/// The admin's state in a tab: what its pages show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminState {
    /// Where the admin's pages are (the `admin_path` setting).
    pub path: String,
    /// The models the user may see, after `index`.
    pub models: Vec<ModelEntry>,
    /// The list last asked for.
    pub list: Option<ListPage>,
    /// The row (or new-row form) last opened.
    pub object: Option<ObjectView>,
    /// The log of the row last asked about, newest first.
    pub log: Vec<LogEntry>,
    /// Counts successful saves and deletes, so a page can tell one happened.
    pub done: u64,
}

/// Named `ferrule_admin` on the wire, so an app's own `AdminState` does not clash with it.
impl crate::protocol::StateName for AdminState {
    const NAME: Option<&'static str> = Some("ferrule_admin");
}
