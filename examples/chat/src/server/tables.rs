//! The chat's tables (sea-orm entities) and the migration that creates them. Presence and
//! history live here, so every server process of the app sees the same.

use ferrule::db::sea_orm_migration_prelude::*;

/// `chat_members`: which room each open tab is in, under which name, last heard from when.
pub mod member {
    use sea_orm::entity::prelude::*;

    /// One tab in a room.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_members")]
    pub struct Model {
        /// The tab's token.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token: String,
        /// The room.
        pub room: String,
        /// The name it speaks under.
        pub name: String,
        /// When it was last heard from (Unix milliseconds).
        pub seen_ms: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `chat_messages`: everything said, per room.
pub mod message {
    use sea_orm::entity::prelude::*;

    /// One message.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "chat_messages")]
    pub struct Model {
        /// Primary key.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The room.
        pub room: String,
        /// Who said it.
        pub author: String,
        /// What was said.
        pub text: String,
        /// When (Unix milliseconds).
        pub at_ms: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The chat's migrations; `migrate` runs them after Ferrule's own.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateChat)]
    }
}

struct CreateChat;

impl MigrationName for CreateChat {
    fn name(&self) -> &str {
        "m0001_create_chat"
    }
}

// sea-orm-migration's trait names the schema manager's lifetime implicitly.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for CreateChat {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("chat_members")
                .col(ColumnDef::new("token").string().not_null().primary_key())
                .col(ColumnDef::new("room").string().not_null())
                .col(ColumnDef::new("name").string().not_null())
                .col(ColumnDef::new("seen_ms").big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("chat_messages")
                .col(
                    ColumnDef::new("id")
                        .big_integer()
                        .primary_key()
                        .auto_increment(),
                )
                .col(ColumnDef::new("room").string().not_null())
                .col(ColumnDef::new("author").string().not_null())
                .col(ColumnDef::new("text").text().not_null())
                .col(ColumnDef::new("at_ms").big_integer().not_null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["chat_messages", "chat_members"] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
