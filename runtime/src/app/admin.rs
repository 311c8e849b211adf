//! Registering models with the admin (feature `admin`): the first one turns the admin's state on.

use std::sync::Arc;

use sea_orm::{EntityTrait, IntoActiveModel};

use super::App;
use crate::admin::{AdminSite, AdminState, EntityAdmin, ModelAdmin};
use crate::state::StateEntry;

impl App {
    /// Shows entity `E` in the admin with the default options: every column listed, newest
    /// first, 25 rows a page ([`ModelAdmin::new`]).
    pub fn admin<E>(self) -> Self
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: Send + Sync,
    {
        self.admin_with::<E>(ModelAdmin::new())
    }

    /// Shows entity `E` in the admin with `options` (columns, search, filters, ordering,
    /// read-only fields, page size). Panics, naming it, when an option names a column `E`
    /// lacks or `E`'s primary key is not one column.
    pub fn admin_with<E>(mut self, options: ModelAdmin) -> Self
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: Send + Sync,
    {
        let model = Arc::new(EntityAdmin::<E>::new(options));
        self.admin_site().register(model);
        self
    }

    /// Turns the admin on without models of the app's: users, groups and permissions alone
    /// (with [`App::database`]). [`App::admin`] does it too.
    pub fn admin_accounts(mut self) -> Self {
        self.admin_site();
        self
    }

    /// The admin's site, made (with its state) on first use.
    fn admin_site(&mut self) -> &mut AdminSite {
        if self.extensions.get::<AdminSite>().is_none() {
            self.extensions.insert(AdminSite::default());
            self.states.push(StateEntry::of::<AdminState>());
        }
        self.extensions
            .get_mut::<AdminSite>()
            .expect("inserted above")
    }
}
