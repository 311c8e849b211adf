//! The admin's handlers: [`AdminState`]'s events, each for staff only and checked against the
//! model's `<table>.view/add/change/delete` permission.

use serde::Deserialize;

use sea_orm::TransactionTrait;

use super::log::{self, Action};
use super::{AdminSite, AdminState, ListQuery, ModelEntry, ObjectView, Values};
use crate::auth::guard::FORBIDDEN_MESSAGE;
use crate::{Error, EventContext, Handlers, State};

/// The live handler's name: it runs when any model's table changes.
pub(crate) const RELOAD: &str = "reload";

/// A model's name alone (`new`).
#[derive(Debug, Deserialize)]
struct ModelArgs {
    model: String,
}

/// A list to show (`list`).
#[derive(Debug, Deserialize)]
struct ListArgs {
    model: String,
    #[serde(flatten)]
    query: ListQuery,
}

/// One row (`open`, `delete`, `log`).
#[derive(Debug, Deserialize)]
struct RowArgs {
    model: String,
    id: String,
}

/// A form to save (`save`): no id creates a row.
#[derive(Debug, Deserialize)]
struct SaveArgs {
    model: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    values: Values,
}

/// Rows to delete at once (`delete_many`).
#[derive(Debug, Deserialize)]
struct ManyArgs {
    model: String,
    ids: Vec<String>,
}

/// Whether the user of `ctx` may `action` (`view`, `add`, `change`, `delete`) rows of `table`;
/// `change` lets them view too.
fn may(ctx: &EventContext, table: &str, action: &str) -> bool {
    let user = ctx.user();
    user.has_perm(&format!("{table}.{action}"))
        || (action == "view" && user.has_perm(&format!("{table}.change")))
}

fn site(ctx: &EventContext) -> Result<AdminSite, Error> {
    ctx.extension::<AdminSite>()
        .cloned()
        .ok_or_else(|| Error::internal("the admin state runs without its site"))
}

/// The model `name`, when the user may `action` its rows.
fn model(
    ctx: &EventContext,
    name: &str,
    action: &str,
) -> Result<std::sync::Arc<dyn super::AdminModel>, Error> {
    let model = site(ctx)?.find(name)?;
    if !may(ctx, model.table(), action) {
        return Err(Error::permission_denied(FORBIDDEN_MESSAGE));
    }
    Ok(model)
}

fn staff(ctx: &EventContext) -> Result<crate::User, Error> {
    ctx.user()
        .user()
        .cloned()
        .ok_or_else(|| Error::permission_denied(FORBIDDEN_MESSAGE))
}

impl AdminState {
    /// The models the user may see, and where the admin is.
    async fn index(&mut self, ctx: EventContext) -> Result<(), Error> {
        let site = site(&ctx)?;
        self.path = site.path.clone();
        self.models = site
            .all()
            .iter()
            .map(|m| {
                let t = m.table();
                ModelEntry {
                    model: t.to_owned(),
                    label: m.label().to_owned(),
                    view: may(&ctx, t, "view"),
                    add: may(&ctx, t, "add"),
                    change: may(&ctx, t, "change"),
                    delete: may(&ctx, t, "delete"),
                }
            })
            .filter(|e| e.view || e.add || e.delete)
            .collect();
        Ok(())
    }

    /// One page of a model's rows: searched, filtered, ordered.
    async fn list(&mut self, ctx: EventContext, args: ListArgs) -> Result<(), Error> {
        let model = model(&ctx, &args.model, "view")?;
        self.list = Some(model.list(ctx.db()?, &args.query).await?);
        Ok(())
    }

    /// One row's fields, and its log.
    async fn open(&mut self, ctx: EventContext, args: RowArgs) -> Result<(), Error> {
        let model = model(&ctx, &args.model, "view")?;
        let id = args.id.trim();
        let fields = model.open(ctx.db()?, id).await?;
        self.log = log::of_object(ctx.db()?, model.table(), id).await?;
        self.object = Some(ObjectView {
            model: model.table().to_owned(),
            id: Some(id.to_owned()),
            fields,
        });
        Ok(())
    }

    /// The empty form of a new row (event `new`).
    async fn blank(&mut self, ctx: EventContext, args: ModelArgs) -> Result<(), Error> {
        let model = model(&ctx, &args.model, "add")?;
        self.log.clear();
        self.object = Some(ObjectView {
            model: model.table().to_owned(),
            id: None,
            fields: model.fields(),
        });
        Ok(())
    }

    /// Creates a row (no id) or changes one; the change is logged with it, in one transaction.
    async fn save(&mut self, ctx: EventContext, args: SaveArgs) -> Result<(), Error> {
        let action = if args.id.is_some() { "change" } else { "add" };
        let model = model(&ctx, &args.model, action)?;
        let user = staff(&ctx)?;
        let tx = ctx.db()?.begin().await?;
        let saved = model.save(&tx, args.id.as_deref(), &args.values).await?;
        if !saved.changes.is_empty() {
            let action = if saved.created {
                Action::Add
            } else {
                Action::Change
            };
            log::record(&tx, &user, model.table(), &saved.id, action, &saved.changes).await?;
        }
        tx.commit().await?;
        if !saved.changes.is_empty() {
            // Tabs that show the table live reload it (the account models' `Auth` tells too).
            ctx.changed(model.table());
        }
        self.done += 1;
        self.refresh_list(&ctx).await?;
        let db = ctx.db()?;
        self.log = log::of_object(db, model.table(), &saved.id).await?;
        self.object = Some(ObjectView {
            model: model.table().to_owned(),
            fields: model.open(db, &saved.id).await?,
            id: Some(saved.id),
        });
        Ok(())
    }

    /// Deletes one row, logged.
    async fn delete(&mut self, ctx: EventContext, args: RowArgs) -> Result<(), Error> {
        self.delete_many(
            ctx,
            ManyArgs {
                model: args.model,
                ids: vec![args.id],
            },
        )
        .await
    }

    /// Deletes rows, each logged, all or none.
    async fn delete_many(&mut self, ctx: EventContext, args: ManyArgs) -> Result<(), Error> {
        let model = model(&ctx, &args.model, "delete")?;
        let user = staff(&ctx)?;
        let tx = ctx.db()?.begin().await?;
        let mut deleted = Vec::with_capacity(args.ids.len());
        for id in &args.ids {
            deleted.push(model.delete(&tx, id).await?);
        }
        // Logged once every row is gone: the account models write through `Auth`'s own
        // connection, which must not wait on this transaction's lock on SQLite.
        for (id, held) in deleted {
            log::record(&tx, &user, model.table(), &id, Action::Delete, &held).await?;
        }
        tx.commit().await?;
        ctx.changed(model.table());
        self.done += 1;
        self.refresh_list(&ctx).await?;
        let open = self.object.as_ref().and_then(|o| {
            o.id.clone()
                .filter(|id| o.model == args.model && args.ids.contains(id))
        });
        if let Some(id) = open {
            // The row shown is gone: its form with it, and its log says so.
            self.object = None;
            self.log = log::of_object(ctx.db()?, model.table(), id.trim()).await?;
        }
        Ok(())
    }

    /// Lists again what the list shows: the live handler of every model's table, so a list
    /// follows what other tabs, the app's handlers and `Auth` change.
    async fn reload(&mut self, ctx: EventContext) -> Result<(), Error> {
        self.refresh_list(&ctx).await
    }

    /// Lists again what the list shows, after a change.
    async fn refresh_list(&mut self, ctx: &EventContext) -> Result<(), Error> {
        let Some(list) = &self.list else {
            return Ok(());
        };
        if let Ok(model) = model(ctx, &list.model, "view") {
            self.list = Some(model.list(ctx.db()?, &list.query).await?);
        }
        Ok(())
    }

    /// The log of one row, newest first (a deleted row's too).
    async fn log(&mut self, ctx: EventContext, args: RowArgs) -> Result<(), Error> {
        let model = model(&ctx, &args.model, "view")?;
        self.log = log::of_object(ctx.db()?, model.table(), args.id.trim()).await?;
        Ok(())
    }
}

impl State for AdminState {
    fn handlers(h: &mut Handlers<Self>) {
        h.on("index", Self::index).staff_required();
        h.on("list", Self::list).staff_required();
        h.on("open", Self::open).staff_required();
        h.on("new", Self::blank).staff_required();
        h.on("save", Self::save).staff_required();
        h.on("delete", Self::delete).staff_required();
        h.on("delete_many", Self::delete_many).staff_required();
        h.on("log", Self::log).staff_required();
        // Its tables are the models registered, known once the app is assembled
        // (`AdminSite::watch`).
        h.on(RELOAD, Self::reload).staff_required();
    }
}
