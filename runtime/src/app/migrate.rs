//! The database's migrations: the runtime's (its own table, `ferrule_migrations`) and the app's,
//! applied, listed, rolled back and started afresh, for the `migrate` command and its
//! `status`, `down` and `fresh`.

use sea_orm_migration::MigrationStatus;

use super::*;

type UpFn = fn(&DatabaseConnection) -> BoxFuture<'_, Result<(), DbErr>>;
type UpInFn = fn(&sea_orm::DatabaseTransaction) -> BoxFuture<'_, Result<(), DbErr>>;
type DownFn = fn(&DatabaseConnection, Option<u32>) -> BoxFuture<'_, Result<(), DbErr>>;
type StatusFn = fn(&DatabaseConnection) -> BoxFuture<'_, Result<Vec<MigrationRow>, DbErr>>;

/// The app's own migrator, kept without its type.
#[derive(Clone, Copy)]
pub(super) struct AppMigrator {
    up: UpFn,
    /// The same, in a transaction (SQLite: see [`crate::db::migrations::migrate`]).
    up_in: UpInFn,
    down: DownFn,
    status: StatusFn,
}

/// One migration as `migrate status` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRow {
    /// `ferrule` for the runtime's own, `app` for the app's.
    pub owner: &'static str,
    /// The migration's name.
    pub name: String,
    /// Whether it has been applied to this database.
    pub applied: bool,
}

fn rows(owner: &'static str) -> impl Fn(Vec<sea_orm_migration::Migration>) -> Vec<MigrationRow> {
    move |migrations| {
        migrations
            .iter()
            .map(|m| MigrationRow {
                owner,
                name: m.name().to_owned(),
                applied: m.status() == MigrationStatus::Applied,
            })
            .collect()
    }
}

impl App {
    /// The app's own sea-orm migrator, run by `migrate` after the runtime's.
    pub fn migrations<M: MigratorTrait + 'static>(mut self) -> Self {
        self.app_migrations = Some(AppMigrator {
            up: |db| Box::pin(M::up(db, None)),
            up_in: |txn| Box::pin(M::up(txn, None)),
            down: |db, steps| Box::pin(M::down(db, steps)),
            status: |db| {
                Box::pin(async move { M::get_migration_with_status(db).await.map(rows("app")) })
            },
        });
        self
    }

    fn migration_db(&self) -> Result<&DatabaseConnection, DbErr> {
        self.db
            .as_ref()
            .ok_or_else(|| DbErr::Custom("no database: call App::database first".into()))
    }

    /// Runs the runtime's migrations, then the app's.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        let db = self.migration_db()?;
        // On SQLite all of them on one connection, as the runtime's alone are: a connection of
        // the pool that read a table before a migration altered it would keep its old columns.
        if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            use sea_orm::TransactionTrait;
            let txn = db.begin().await?;
            crate::db::migrations::Migrator::up(&txn, None).await?;
            if let Some(app) = self.app_migrations {
                (app.up_in)(&txn).await?;
            }
            return txn.commit().await;
        }
        crate::db::migrations::migrate(db).await?;
        if let Some(app) = self.app_migrations {
            (app.up)(db).await?;
        }
        Ok(())
    }

    /// Every migration, the runtime's then the app's, in order, applied or pending.
    pub async fn migration_status(&self) -> Result<Vec<MigrationRow>, DbErr> {
        use crate::db::migrations::Migrator;
        let db = self.migration_db()?;
        let mut all = Migrator::get_migration_with_status(db)
            .await
            .map(rows("ferrule"))?;
        if let Some(app) = self.app_migrations {
            all.extend((app.status)(db).await?);
        }
        Ok(all)
    }

    /// Rolls back the app's last `steps` migrations. The runtime's own tables (sessions,
    /// users) are left alone: `migrate fresh` starts everything over.
    pub async fn migrate_down(&self, steps: u32) -> Result<(), DbErr> {
        let db = self.migration_db()?;
        let Some(app) = self.app_migrations else {
            return Err(DbErr::Custom(
                "this app has no migrations of its own (App::migrations)".into(),
            ));
        };
        (app.down)(db, Some(steps)).await
    }

    /// Rolls every migration back, the app's then the runtime's (whose tables the app's may
    /// refer to), then applies them all again: every table starts empty, all data is lost.
    pub async fn migrate_fresh(&self) -> Result<(), DbErr> {
        let db = self.migration_db()?;
        if let Some(app) = self.app_migrations {
            (app.down)(db, None).await?;
        }
        crate::db::migrations::Migrator::down(db, None).await?;
        self.migrate().await
    }
}

/// `migrate status` as a person reads it: one line per migration.
pub(super) fn status_table(rows: &[MigrationRow]) -> String {
    let width = rows.iter().map(|r| r.owner.len()).max().unwrap_or(0);
    rows.iter()
        .map(|r| {
            let state = if r.applied { "applied" } else { "pending" };
            format!("{:width$}  {state}  {}\n", r.owner, r.name)
        })
        .collect()
}
