//! Notes: the app's own table (a sea-orm entity and its migration, on the server) and the state
//! that lists and adds them (shared with the browser).

use ferrule::forms::rules;
use serde::{Deserialize, Serialize};

// The handlers' bodies are compiled in the server build only, and so are their imports.
#[cfg(feature = "ssr")]
use ferrule::EventContext;
#[cfg(feature = "ssr")]
use ferrule::db::sea_orm::{ActiveModelTrait, ActiveValue, EntityTrait, QueryOrder, QuerySelect};
#[cfg(feature = "ssr")]
use server::note;

/// One note as pages show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoteView {
    /// Primary key.
    pub id: i64,
    /// The text.
    pub body: String,
    /// Who wrote it.
    pub author: String,
}

/// A new note, as the page's form sends it: its rules run in the browser before sending and
/// again in the handler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, garde::Validate)]
pub struct NewNote {
    /// The text: 1 to [`MAX_LEN`] characters, spaces around it trimmed.
    #[garde(custom(rules::required), custom(rules::max_chars(MAX_LEN)))]
    pub body: String,
}

/// The latest notes, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NotesState {
    /// Up to [`PAGE`] notes.
    pub notes: Vec<NoteView>,
}

/// How many notes the page lists.
pub const PAGE: u64 = 20;

/// The longest note, in characters.
pub const MAX_LEN: usize = 500;

#[ferrule::state]
impl NotesState {
    /// Reads the latest notes: before the notes page's first render (so its HTML lists them),
    /// whenever a tab on it (re)connects, and in every tab showing them whenever a note is added
    /// (here or in another tab, on any server).
    #[action(LoadNotes)]
    #[on_load("/notes")]
    #[on_change("notes")]
    pub async fn load(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let rows = note::Entity::find()
            .order_by_desc(note::Column::Id)
            .limit(PAGE)
            .all(ctx.db()?)
            .await?;
        self.notes = rows
            .into_iter()
            .map(|n| NoteView {
                id: n.id,
                body: n.body,
                author: n.author,
            })
            .collect();
        Ok(())
    }

    /// Writes a note{% if auth %} (logged-in users only){% endif %}; a refused one answers with its field's message.
    #[action(AddNote)]{% if auth %}
    #[login_required]{% endif %}
    pub async fn add(&mut self, ctx: EventContext, note: NewNote) -> Result<(), ferrule::Error> {
        ferrule::forms::validate(&note)?;
        let body = note.body.trim().to_owned();
        let author = ctx.user().username().unwrap_or("anonymous").to_owned();
        note::ActiveModel {
            body: ActiveValue::Set(body),
            author: ActiveValue::Set(author),
            ..Default::default()
        }
        .insert(ctx.db()?)
        .await?;
        // Every tab showing the notes reloads them.
        ctx.changed("notes");
        self.load(ctx).await
    }
}

/// The table on the server: entity and migration.
#[cfg(feature = "ssr")]
pub mod server {
    use ferrule::db::sea_orm::DatabaseConnection;
    use ferrule::db::sea_orm_migration_prelude::*;

    /// The `notes` table.
    pub mod note {
        use sea_orm::entity::prelude::*;

        /// One row.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "notes")]
        pub struct Model {
            /// Primary key.
            #[sea_orm(primary_key)]
            pub id: i64,
            /// The text.
            pub body: String,
            /// The author's username.
            pub author: String,
        }

        /// No relations.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// Creates the `notes` table.
    pub struct CreateNotes;

    impl MigrationName for CreateNotes {
        fn name(&self) -> &str {
            "m0001_create_notes"
        }
    }

    // sea-orm-migration's trait names the schema manager's lifetime implicitly.
    #[allow(elided_lifetimes_in_paths)]
    #[async_trait::async_trait]
    impl MigrationTrait for CreateNotes {
        async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.create_table(
                Table::create()
                    .table("notes")
                    .if_not_exists()
                    .col(
                        ColumnDef::new("id")
                            .big_integer()
                            .primary_key()
                            .auto_increment(),
                    )
                    .col(ColumnDef::new("body").text().not_null())
                    .col(ColumnDef::new("author").string().not_null())
                    .to_owned(),
            )
            .await
        }

        async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
            m.drop_table(Table::drop().table("notes").to_owned()).await
        }
    }

    /// The app's seed data (`app seed`): a first note saying where to start, written only
    /// when there are no notes yet. Returns whether it wrote it.
    pub async fn seed(db: &DatabaseConnection) -> Result<bool, ferrule::Error> {
        use ferrule::db::sea_orm::{ActiveModelTrait, ActiveValue, EntityTrait, PaginatorTrait};
        if note::Entity::find().count(db).await? > 0 {
            return Ok(false);
        }
        note::ActiveModel {
            body: ActiveValue::Set(
                "Welcome! Notes live in src/notes.rs, the counter in src/counter.rs.".to_owned(),
            ),
            author: ActiveValue::Set("{{project-name}}".to_owned()),
            ..Default::default()
        }
        .insert(db)
        .await?;
        Ok(true)
    }
}
