//! The runtime's migrations. Apps run them with `migrate` before their own; they are recorded in
//! their own table (`ferrule_migrations`) so an app's migrator never sees them.

use sea_orm::DatabaseConnection;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

/// The runtime's migrator.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> DynIden {
        "ferrule_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Auth),
            Box::new(M0002Expiring),
            Box::new(M0003UsernameKey),
            Box::new(M0004UserLanguage),
            Box::new(M0005Jobs),
            Box::new(M0006AdminLog),
            Box::new(M0007EmailVerified),
        ]
    }
}

/// Applies every pending runtime migration.
///
/// On SQLite they run in one transaction, so on one connection of the pool: a connection that
/// read the schema before a migration altered a table keeps its old column list for a
/// `RETURNING *` it prepares later (the statement is re-prepared by SQLite, but the driver
/// keeps the columns it first saw), and reads of the new column then fail.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        use sea_orm::TransactionTrait;
        let txn = db.begin().await?;
        Migrator::up(&txn, None).await?;
        return txn.commit().await;
    }
    Migrator::up(db, None).await
}

struct M0001Auth;

impl MigrationName for M0001Auth {
    fn name(&self) -> &str {
        "m0001_sessions_users_groups_permissions"
    }
}

fn link(
    table: &'static str,
    a: &'static str,
    a_table: &'static str,
    b: &'static str,
    b_table: &'static str,
) -> TableCreateStatement {
    Table::create()
        .table(table)
        .if_not_exists()
        .col(big_integer(a))
        .col(big_integer(b))
        .primary_key(Index::create().col(a).col(b))
        .foreign_key(
            ForeignKey::create()
                .from(table, a)
                .to(a_table, "id")
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .from(table, b)
                .to(b_table, "id")
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

// async_trait's expansion needs the elided lifetime the 2018 idioms lint dislikes.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0001Auth {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ferrule_sessions")
                .if_not_exists()
                .col(string_len("id", 64).primary_key())
                .col(text("data"))
                .col(big_integer("expiry_date"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ferrule_sessions_expiry")
                .table("ferrule_sessions")
                .col("expiry_date")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ferrule_users")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(string_len_uniq("username", 150))
                .col(string_len_null("email", 254).unique_key())
                .col(string_len("password_hash", 255))
                .col(boolean("is_active").default(true))
                .col(boolean("is_staff").default(false))
                .col(boolean("is_superuser").default(false))
                .col(big_integer("date_joined"))
                .col(big_integer_null("last_login"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ferrule_groups")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(string_len_uniq("name", 150))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ferrule_permissions")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(string_len_uniq("codename", 150))
                .to_owned(),
        )
        .await?;
        m.create_table(link(
            "ferrule_user_groups",
            "user_id",
            "ferrule_users",
            "group_id",
            "ferrule_groups",
        ))
        .await?;
        m.create_table(link(
            "ferrule_user_permissions",
            "user_id",
            "ferrule_users",
            "permission_id",
            "ferrule_permissions",
        ))
        .await?;
        m.create_table(link(
            "ferrule_group_permissions",
            "group_id",
            "ferrule_groups",
            "permission_id",
            "ferrule_permissions",
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "ferrule_group_permissions",
            "ferrule_user_permissions",
            "ferrule_user_groups",
            "ferrule_permissions",
            "ferrule_groups",
            "ferrule_users",
            "ferrule_sessions",
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Counters and tickets shared by every node (see `db::expiring`).
struct M0002Expiring;

impl MigrationName for M0002Expiring {
    fn name(&self) -> &str {
        "m0002_expiring_counters_and_tickets"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0002Expiring {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ferrule_expiring")
                .if_not_exists()
                .col(string_len("name", 255).primary_key())
                .col(big_integer("hits"))
                .col(text_null("value"))
                .col(big_integer("expires"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ferrule_expiring_expires")
                .table("ferrule_expiring")
                .col("expires")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("ferrule_expiring")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Usernames unique whatever their case or Unicode compatibility form: a `username_key`
/// column filled from the names already stored, then a unique index on it. A database that
/// already holds two names differing only in case stops here with the names in the error.
struct M0003UsernameKey;

impl MigrationName for M0003UsernameKey {
    fn name(&self) -> &str {
        "m0003_case_insensitive_usernames"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0003UsernameKey {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("ferrule_users")
                .add_column(text_null("username_key"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(crate::db::stmt(
                backend,
                "SELECT id, username FROM ferrule_users",
                vec![],
            ))
            .await?;
        let mut seen = std::collections::HashMap::new();
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let name: String = row.try_get("", "username")?;
            let key = crate::db::entities::user::key(&name);
            if let Some(other) = seen.insert(key.clone(), name.clone()) {
                return Err(DbErr::Migration(format!(
                    "usernames `{other}` and `{name}` differ only in case or form: rename one \
                     before migrating (usernames are unique case-insensitively)"
                )));
            }
            db.execute_raw(crate::db::stmt(
                backend,
                "UPDATE ferrule_users SET username_key = ? WHERE id = ?",
                vec![key.into(), id.into()],
            ))
            .await?;
        }
        // Not `ferrule_users_username_key`: PostgreSQL already gave that name to the unique
        // constraint on `username`, and `IF NOT EXISTS` would then quietly make nothing.
        m.create_index(
            Index::create()
                .name("ferrule_users_by_username_key")
                .table("ferrule_users")
                .col("username_key")
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ferrule_users_by_username_key")
                .table("ferrule_users")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("ferrule_users")
                .drop_column("username_key")
                .to_owned(),
        )
        .await
    }
}

/// The language a user chose, kept with the account (`Auth::set_language`).
struct M0004UserLanguage;

impl MigrationName for M0004UserLanguage {
    fn name(&self) -> &str {
        "m0004_user_language"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0004UserLanguage {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("ferrule_users")
                .add_column(string_len_null("language", 35))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("ferrule_users")
                .drop_column("language")
                .to_owned(),
        )
        .await
    }
}

/// Durable jobs (see `crate::jobs`): one row per job, its payload as JSON, its state and its
/// lease; and when each recurring job fires next. Times are Unix milliseconds.
struct M0005Jobs;

impl MigrationName for M0005Jobs {
    fn name(&self) -> &str {
        "m0005_jobs"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0005Jobs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ferrule_jobs")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(string_len("name", 255))
                .col(text("payload"))
                .col(string_len("state", 16))
                .col(big_integer("attempts").default(0))
                .col(big_integer("max_attempts"))
                .col(big_integer("run_at"))
                .col(text_null("last_error"))
                .col(string_len_null("unique_key", 255))
                .col(big_integer_null("locked_until"))
                .col(string_len_null("locked_by", 64))
                .col(big_integer("created_at"))
                .col(big_integer_null("finished_at"))
                .to_owned(),
        )
        .await?;
        // What workers look for: the due jobs of a state, oldest first.
        m.create_index(
            Index::create()
                .name("ferrule_jobs_due")
                .table("ferrule_jobs")
                .col("state")
                .col("run_at")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        // Recurring jobs: when each fires next, moved on by the one node that fires it.
        m.create_table(
            Table::create()
                .table("ferrule_job_schedules")
                .if_not_exists()
                .col(string_len("name", 255).primary_key())
                .col(big_integer("next_at"))
                .to_owned(),
        )
        .await?;
        // One waiting or running job per name and key; a partial index, which sea-query does
        // not write, in the SQL both SQLite and PostgreSQL read.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS ferrule_jobs_unique_live \
                 ON ferrule_jobs (name, unique_key) WHERE state IN ('pending', 'running')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["ferrule_job_schedules", "ferrule_jobs"] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The admin's log of what it changed (`ferrule::admin`, feature `admin`). Made whatever the
/// features, so one database serves builds with and without the admin.
struct M0006AdminLog;

impl MigrationName for M0006AdminLog {
    fn name(&self) -> &str {
        "m0006_admin_log"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0006AdminLog {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ferrule_admin_log")
                .if_not_exists()
                .col(big_pk_auto("id"))
                .col(big_integer("at"))
                // No foreign key: the log outlives the accounts it names.
                .col(big_integer_null("user_id"))
                .col(string_len("username", 150))
                .col(string_len("object_table", 255))
                .col(string_len("object_id", 255))
                .col(string_len("action", 16))
                .col(text("changes"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ferrule_admin_log_object")
                .table("ferrule_admin_log")
                .col("object_table")
                .col("object_id")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table("ferrule_admin_log")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}

/// Whether a user followed the link that confirms their e-mail address. Accounts made before
/// it count as confirmed: turning `email_verification = "required"` on must not lock them out.
struct M0007EmailVerified;

impl MigrationName for M0007EmailVerified {
    fn name(&self) -> &str {
        "m0007_email_verified"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for M0007EmailVerified {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("ferrule_users")
                .add_column(boolean("email_verified").default(true))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("ferrule_users")
                .drop_column("email_verified")
                .to_owned(),
        )
        .await
    }
}
