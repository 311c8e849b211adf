//! The admin (feature `admin`): staff browse, search, filter, create, edit and delete the rows of
//! the models an app registers, and every change is logged.
//!
//! ```no_run
//! # mod note { use ferrule::db::sea_orm::{self, entity::prelude::*};
//! #   #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
//! #   #[sea_orm(table_name = "notes")]
//! #   pub struct Model { #[sea_orm(primary_key)] pub id: i64, pub title: String, pub stars: i32 }
//! #   #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)] pub enum Relation {}
//! #   impl ActiveModelBehavior for ActiveModel {} }
//! use ferrule::admin::ModelAdmin;
//!
//! let app = ferrule::App::new().admin_with::<note::Entity>(
//!     ModelAdmin::new().search_fields(["title"]).filters(["stars"]).ordering("-id"),
//! );
//! ```
//!
//! It is one state, [`AdminState`] (`ferrule_admin` on the wire), whose handlers all need a
//! staff user, and per model the permission `<table>.view`, `.add`, `.change` or `.delete`
//! (superusers hold them all; `change` lets a user view too). With a database, Ferrule's own
//! users, groups and permissions are models too, changed through [`Auth`](crate::auth::Auth):
//! passwords are hashed and checked by the password policy, hashes never shown. Every save and
//! delete is written to the admin log (`ferrule_admin_log`): who, when, which row, and each
//! field's value before and after.
//!
//! Values travel as text, each parsed by its column's type; one that does not parse comes back
//! as that field's message ([`Error::Invalid`](crate::Error::Invalid)) and nothing is written.

// Leptos' `#[component]` writes a hidden inner function with the component's own visibility,
// which the lint cannot see re-exported below.
#[cfg(feature = "ui")]
#[allow(unreachable_pub)]
mod form;
#[cfg(feature = "ui")]
#[allow(unreachable_pub)]
mod page;
mod view;

#[cfg(feature = "ui")]
pub use page::{AdminPage, AdminPageProps};
pub use view::{
    AdminState, Change, FieldKind, FieldView, ListPage, ListQuery, LogEntry, ModelEntry,
    ObjectView, RowView,
};

#[cfg(feature = "server")]
mod accounts;
#[cfg(feature = "server")]
mod fields;
#[cfg(feature = "server")]
mod groups;
#[cfg(feature = "server")]
mod log;
#[cfg(feature = "server")]
mod model;
#[cfg(feature = "server")]
mod options;
#[cfg(feature = "server")]
mod state;
#[cfg(feature = "server")]
mod values;

#[cfg(feature = "server")]
pub use log::entry as log_entry;
#[cfg(feature = "server")]
pub(crate) use model::EntityAdmin;
#[cfg(feature = "server")]
pub use options::{DEFAULT_PAGE_SIZE, ModelAdmin};
#[cfg(feature = "server")]
pub(crate) use site::{AdminModel, AdminSite, Saved, Values};

/// The registered models and where the admin is, in every event's extensions.
#[cfg(feature = "server")]
mod site {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use sea_orm::{DatabaseConnection, DatabaseTransaction};

    use super::{Change, FieldView, ListPage, ListQuery};
    use crate::Error;

    /// Field → value as text, as a form sends them.
    pub(crate) type Values = BTreeMap<String, String>;

    /// What a save did: the row's id and what changed.
    pub(crate) struct Saved {
        /// The row's primary key, as text.
        pub(crate) id: String,
        /// The fields that changed (empty: nothing did, nothing was written).
        pub(crate) changes: Vec<Change>,
        /// Whether the row is new.
        pub(crate) created: bool,
    }

    /// One model of the admin, its type erased: an entity ([`super::EntityAdmin`]) or one of
    /// Ferrule's own account tables.
    #[async_trait::async_trait]
    pub(crate) trait AdminModel: Send + Sync + 'static {
        /// The model's name in events and permissions: its table.
        fn table(&self) -> &str;
        /// Its name on the page.
        fn label(&self) -> &str;
        /// Its fields without values, in the table's order (a new row's form).
        fn fields(&self) -> Vec<FieldView>;
        /// One page of the rows `query` asks for.
        async fn list(&self, db: &DatabaseConnection, query: &ListQuery)
        -> Result<ListPage, Error>;
        /// The fields of the row `id`, with values.
        async fn open(&self, db: &DatabaseConnection, id: &str) -> Result<Vec<FieldView>, Error>;
        /// Creates a row (`id` none) or changes row `id` to `values` (only the fields given).
        async fn save(
            &self,
            tx: &DatabaseTransaction,
            id: Option<&str>,
            values: &Values,
        ) -> Result<Saved, Error>;
        /// Deletes row `id`: its key as stored, and what it held, field by field.
        async fn delete(
            &self,
            tx: &DatabaseTransaction,
            id: &str,
        ) -> Result<(String, Vec<Change>), Error>;
    }

    /// The admin's models and path, in every event's extensions once a model is registered.
    #[derive(Clone, Default)]
    pub(crate) struct AdminSite {
        pub(crate) models: Arc<Vec<Arc<dyn AdminModel>>>,
        /// The `admin_path` setting, set at assembly.
        pub(crate) path: String,
    }

    impl AdminSite {
        /// Adds `model`; one registered before under its table is replaced.
        pub(crate) fn register(&mut self, model: Arc<dyn AdminModel>) {
            let models = Arc::make_mut(&mut self.models);
            models.retain(|m| m.table() != model.table());
            models.push(model);
        }

        /// Adds Ferrule's account tables, changed through `auth`, after the app's models
        /// (unless the app registered one of those tables itself); done at assembly.
        pub(crate) fn add_accounts(&mut self, auth: &crate::auth::Auth) {
            for model in super::accounts::models(auth) {
                if !self.models.iter().any(|m| m.table() == model.table()) {
                    Arc::make_mut(&mut self.models).push(model);
                }
            }
        }

        /// Makes the admin's state (`entry`) reload its list whenever one of the models'
        /// tables changes ([`crate::Registered::on_change`]); done at assembly, once every
        /// model is known.
        pub(crate) fn watch(&self, entry: &mut crate::state::StateEntry) {
            for model in self.models.iter() {
                let watch = (model.table().to_owned(), super::state::RELOAD.to_owned());
                if !entry.watches.contains(&watch) {
                    entry.watches.push(watch);
                }
            }
        }

        /// Every model, in the order registered, the account tables last.
        pub(crate) fn all(&self) -> &[Arc<dyn AdminModel>] {
            &self.models
        }

        /// The model named `name`, or a not-found error.
        pub(crate) fn find(&self, name: &str) -> Result<Arc<dyn AdminModel>, Error> {
            self.models
                .iter()
                .find(|m| m.table() == name)
                .cloned()
                .ok_or_else(|| Error::NotFound(format!("The admin has no model `{name}`.")))
        }
    }
}
