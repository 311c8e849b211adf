//! The server side: migrations, middleware and the page routes (handlers live with their
//! states).

use ferrule::App;
use ferrule::db::sea_orm_migration_prelude::{MigrationTrait, MigratorTrait, async_trait};
use ferrule::middleware::{self, Next, Request, Response};

use crate::CounterState;
use crate::notes::NotesState;

/// Where the data lives when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE: &str = {% if database == "postgres" %}"postgres://postgres@127.0.0.1:5432/{{crate_name}}"{% else %}"sqlite://{{crate_name}}.sqlite3?mode=rwc"{% endif %};

/// The app's migrations, in the order they run; `migrate` runs them after Ferrule's own.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(crate::notes::server::CreateNotes),
            // ferrule:migrations (`ferrule generate` adds migrations above this line)
        ]
    }
}

/// The tenant of a request, from its `X-Tenant` header (`public` without one). A real app would
/// look the host name or the user up; handlers and pages read it from the request either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant(pub String);

/// The longest tenant name a request may carry: the counter's state keeps it, and a state
/// is no place for whatever a header holds.
pub const MAX_TENANT_LEN: usize = 63;

/// Middleware: puts the [`Tenant`] into every request, HTTP and socket events alike; a name
/// that is not short letters, digits, `-` and `_` is refused (400, or a toast for an event).
async fn tenant(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
    let name = match req.headers().get("x-tenant").map(|v| v.to_str()) {
        None => "public".to_owned(),
        Some(Ok(name))
            if (1..=MAX_TENANT_LEN).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            name.to_owned()
        }
        Some(_) => {
            return Err(ferrule::Error::bad_request(format!(
                "X-Tenant must be 1 to {MAX_TENANT_LEN} letters, digits, `-` or `_`"
            )));
        }
    };
    req.extensions_mut().insert(Tenant(name));
    next.run(req).await
}

/// The app on database `db` (sessions and users live there).
pub fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> App {
    let options = ferrule::ssr::site_options("{{crate_name}}");
    App::new()
        .database(db)
        .migrations::<Migrator>()
        // The texts of locales/<language>/*.ftl, for `t!`.
        .locales(ferrule::locales!())
        // `app seed`: a first note, for a fresh database.
        .seed(|cx| async move {
            let wrote = crate::notes::server::seed(&cx.db()?).await?;
            println!(
                "{}",
                if wrote {
                    "seeded a first note"
                } else {
                    "there are notes already: nothing seeded"
                }
            );
            Ok(())
        })
        .state::<CounterState>()
        .state::<NotesState>()
{% if auth %}        // The admin at /admin, for staff: the notes, and the accounts (users, groups,
        // permissions); `ferrule generate scaffold` adds its tables.
        .admin_with::<crate::notes::server::note::Entity>(
            ferrule::admin::ModelAdmin::new()
                .list_columns(["body", "author"])
                .search_fields(["body", "author"]),
        )
{% endif %}        // ferrule:states (`ferrule generate` adds states above this line)
        .middleware(middleware::from_fn("tenant", tenant))
{% if auth %}        // Pages under /private need a logged-in user: the same chain runs for the server
        // render, so the page is protected before it renders, not just its events.
        .middleware(ferrule::auth::guard::login_required_under(
            "private_pages",
            &["/private"],
            "/login",
        ))
{% endif %}        // ferrule:middleware (`ferrule generate` adds middleware above this line)
        .merge(ferrule::ssr::pages(
            options,
            ferrule::ssr::shell("{{project-name}}", crate::Root),
            crate::Root,
        ))
}
