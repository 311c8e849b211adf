//! How one model shows in the admin: [`ModelAdmin`], given to `App::admin_with`.

/// Rows per page when a model does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 25;

/// The options of one model in the admin, column names as the table has them:
///
/// ```
/// let options = ferrule::admin::ModelAdmin::new()
///     .list_columns(["id", "title", "stars"])
///     .search_fields(["title"])
///     .filters(["stars"])
///     .ordering("-id")
///     .read_only(["owner"])
///     .page_size(25);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelAdmin {
    pub(crate) list_columns: Vec<String>,
    pub(crate) search_fields: Vec<String>,
    pub(crate) filters: Vec<String>,
    pub(crate) ordering: Option<String>,
    pub(crate) read_only: Vec<String>,
    pub(crate) page_size: u64,
    pub(crate) label: Option<String>,
}

impl Default for ModelAdmin {
    fn default() -> Self {
        Self::new()
    }
}

fn owned<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl ModelAdmin {
    /// Every column listed, nothing searched or filtered, newest (highest key) first, 25 a page.
    pub fn new() -> Self {
        Self {
            list_columns: Vec::new(),
            search_fields: Vec::new(),
            filters: Vec::new(),
            ordering: None,
            read_only: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
            label: None,
        }
    }

    /// The columns the list shows, in order (default: all).
    pub fn list_columns<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.list_columns = owned(columns);
        self
    }

    /// The text columns the list's search looks in (contains, any case).
    pub fn search_fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.search_fields = owned(fields);
        self
    }

    /// The columns the list may be filtered on (equal to a value).
    pub fn filters<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.filters = owned(fields);
        self
    }

    /// The list's order when the user picks none: a column, `-` in front for descending.
    pub fn ordering(mut self, ordering: impl Into<String>) -> Self {
        self.ordering = Some(ordering.into());
        self
    }

    /// Columns shown but never written by the admin.
    pub fn read_only<I: IntoIterator<Item = S>, S: Into<String>>(mut self, fields: I) -> Self {
        self.read_only = owned(fields);
        self
    }

    /// Rows per page (at least 1).
    pub fn page_size(mut self, rows: u64) -> Self {
        self.page_size = rows.max(1);
        self
    }

    /// The model's name in the admin (default: its table's).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}
