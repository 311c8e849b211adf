//! The admin log (`ferrule_admin_log`): every save and delete the admin makes, with who made it,
//! when, to which row, and what each field was before and after.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::{Change, LogEntry};
use crate::Error;

/// The log's rows, for apps that read the log themselves (`ferrule::admin::log_entry`).
pub mod entry {
    use sea_orm::entity::prelude::*;

    /// One change to one row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ferrule_admin_log")]
    pub struct Model {
        /// Primary key; later entries have larger ones.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Unix seconds.
        pub at: i64,
        /// Who: the user's id (no foreign key: the entry outlives the account).
        pub user_id: Option<i64>,
        /// Who: the user's name at the time.
        pub username: String,
        /// The row's model (its table).
        pub object_table: String,
        /// The row's primary key, as text.
        pub object_id: String,
        /// `add`, `change` or `delete`.
        pub action: String,
        /// The changes, a JSON array of `{field, old, new}`.
        pub changes: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What was done to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Add,
    Change,
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Change => "change",
            Self::Delete => "delete",
        }
    }
}

/// Writes one entry: `user` did `action` to row `object_id` of `table`, changing `changes`.
pub(crate) async fn record<C: ConnectionTrait>(
    db: &C,
    user: &crate::User,
    table: &str,
    object_id: &str,
    action: Action,
    changes: &[Change],
) -> Result<(), Error> {
    entry::ActiveModel {
        at: Set(crate::db::now()),
        user_id: Set(Some(user.id)),
        username: Set(user.username.clone()),
        object_table: Set(table.to_owned()),
        object_id: Set(object_id.to_owned()),
        action: Set(action.as_str().to_owned()),
        changes: Set(serde_json::to_string(changes)?),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The log of row `object_id` of `table`, newest first.
pub(crate) async fn of_object<C: ConnectionTrait>(
    db: &C,
    table: &str,
    object_id: &str,
) -> Result<Vec<LogEntry>, Error> {
    let rows = entry::Entity::find()
        .filter(entry::Column::ObjectTable.eq(table))
        .filter(entry::Column::ObjectId.eq(object_id))
        .order_by_desc(entry::Column::Id)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(LogEntry {
                at: r.at,
                user_id: r.user_id,
                username: r.username,
                model: r.object_table,
                object_id: r.object_id,
                action: r.action,
                changes: serde_json::from_str(&r.changes)?,
            })
        })
        .collect()
}
