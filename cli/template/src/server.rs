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

/// The database, put into every request by the app: handlers read it with
/// `ctx.extension::<Db>()`.
#[derive(Clone)]
pub struct Db(pub ferrule::db::sea_orm::DatabaseConnection);

/// The tenant of a request, from its `X-Tenant` header (`public` without one). A real app would
/// look the host name or the user up; handlers and pages read it from the request either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant(pub String);

/// Middleware: puts the [`Tenant`] into every request, HTTP and socket events alike.
async fn tenant(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
    let name = req
        .headers()
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("public")
        .to_owned();
    req.extensions_mut().insert(Tenant(name));
    next.run(req).await
}

/// The app on database `db` (sessions and users live there).
pub fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> App {
    let options = ferrule::ssr::site_options("{{crate_name}}");
    let handle = Db(db.clone());
    App::new()
        .database(db)
        .migrations::<Migrator>()
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
        // ferrule:states (`ferrule generate` adds states above this line)
        .middleware(middleware::from_fn(
            "db",
            move |mut req: Request, next: Next| {
                req.extensions_mut().insert(handle.clone());
                next.run(req)
            },
        ))
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
