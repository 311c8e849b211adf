//! The server side of the shop: its tables, the middleware of reflex-django's guides, what the
//! handlers look up (in `states.rs`), and the demo data.

use ferrule::auth::{Auth, NewUser};
use ferrule::db::sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use ferrule::middleware::{self, Next, Request, Response};
use ferrule::{App, CurrentUser, EventContext};

use crate::{BillingState, CartState, OrderState, ProductView, ProfileState, SearchState};

pub mod tables;

use tables::{product, profile, tenant};

/// reflex-django's `request.tenant_id`: the logged-in user's shop, put into the request by the
/// `tenant` middleware (absent for anonymous requests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Primary key.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// The logged-in user's row of `profiles`, put into the request by the `tenant` middleware.
#[derive(Clone, Debug)]
pub struct Profile(pub profile::Model);

/// The user's shop; a logged-in user without a profile (a superuser, say) has none.
pub(crate) fn tenant_of(ctx: &EventContext) -> Result<Tenant, ferrule::Error> {
    ctx.extension::<Tenant>()
        .cloned()
        .ok_or_else(|| ferrule::Error::permission_denied("Your account belongs to no shop."))
}

pub(crate) fn user_id(ctx: &EventContext) -> Result<i64, ferrule::Error> {
    ctx.user()
        .user()
        .map(|u| u.id)
        .ok_or_else(|| ferrule::Error::Unauthenticated("Please log in first.".into()))
}

// ANCHOR: tenant
/// Middleware (reflex-django's `TenantMiddleware`): looks up the logged-in user's profile and
/// puts it and its [`Tenant`] into the request, for HTTP requests and events alike.
async fn tenant(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
    let user = req
        .extensions()
        .get::<CurrentUser>()
        .and_then(|u| u.user().map(|u| u.id));
    let conn = req.extensions().get::<DatabaseConnection>().cloned();
    if let (Some(user), Some(conn)) = (user, conn)
        && let Some(row) = profile::Entity::find_by_id(user).one(&conn).await?
    {
        if let Some(t) = tenant::Entity::find_by_id(row.tenant_id).one(&conn).await? {
            req.extensions_mut().insert(Tenant {
                id: t.id,
                name: t.name,
            });
        }
        req.extensions_mut().insert(Profile(row));
    }
    next.run(req).await
}
// ANCHOR_END: tenant

// ANCHOR: banned
/// Middleware (reflex-django's `BannedUserMiddleware`): a banned user's requests fail, so on an
/// event the handler does not run and the user sees the toast "Account suspended.".
async fn banned_user(req: Request, next: Next) -> Result<Response, ferrule::Error> {
    if req
        .extensions()
        .get::<Profile>()
        .is_some_and(|p| p.0.banned)
    {
        return Err(ferrule::Error::permission_denied("Account suspended."));
    }
    next.run(req).await
}
// ANCHOR_END: banned

pub(crate) fn view(p: product::Model) -> ProductView {
    ProductView {
        id: p.id,
        name: p.name,
        price_cents: p.price_cents,
    }
}

// ANCHOR: app
/// The shop on database `db` (handlers reach it as `ctx.db()`). The chain: Ferrule's session,
/// CSRF and auth, then `login_required` (public `/login`, `/register`, `/about`), `tenant`,
/// `banned_user`.
pub fn app(db: DatabaseConnection) -> App {
    let options = ferrule::ssr::site_options("shop");
    App::new()
        .database(db)
        .migrations::<tables::Migrator>()
        // locales/<language>/shop.ftl, for the languages of the `languages` setting.
        .locales(ferrule::locales!())
        .state::<CartState>()
        .state::<SearchState>()
        .state::<ProfileState>()
        .state::<BillingState>()
        .state::<OrderState>()
        .middleware(ferrule::auth::guard::login_required_everywhere(
            &["/login", "/register", "/about", "/pkg/"],
            "/login",
        ))
        .middleware(middleware::from_fn("tenant", tenant))
        .middleware(middleware::from_fn("banned_user", banned_user))
        .merge(ferrule::ssr::pages(
            options,
            ferrule::ssr::shell("Shop", crate::Root),
            crate::Root,
        ))
        .command(
            "demo-data",
            "Create the shops acme and globex with their users and products (password: \
             SHOP_DEMO_PASSWORD, default `correct horse battery`)",
            |cx| async move {
                let password = std::env::var("SHOP_DEMO_PASSWORD")
                    .unwrap_or_else(|_| "correct horse battery".to_owned());
                demo_data(&cx.db()?, &password).await?;
                let users: Vec<&str> = DEMO_USERS.iter().map(|u| u.0).collect();
                println!("demo data ready: users {}", users.join(", "));
                Ok(())
            },
        )
        .command(
            "ban",
            "Ban USER: their next request or event is refused",
            |cx| switch_ban(cx, true),
        )
        .command("unban", "Lift USER's ban", |cx| switch_ban(cx, false))
}
// ANCHOR_END: app

/// `shop ban USER` / `shop unban USER`.
async fn switch_ban(cx: ferrule::CommandContext, banned: bool) -> Result<(), ferrule::Error> {
    let username = cx.one_arg("USER")?;
    set_banned(&cx.db()?, username, banned).await?;
    println!("{username}: {}", if banned { "banned" } else { "unbanned" });
    Ok(())
}

/// Who `demo-data` creates: (username, shop, banned).
pub const DEMO_USERS: &[(&str, &str, bool)] = &[
    ("alice", "acme", false),
    ("carol", "acme", false),
    ("mallory", "acme", true),
    ("bob", "globex", false),
];

/// What each demo shop sells: (shop, product, price in cents).
pub const DEMO_PRODUCTS: &[(&str, &str, i64)] = &[
    ("acme", "Green tea", 800),
    ("acme", "Tea kettle", 2500),
    ("acme", "Teapot", 3200),
    ("globex", "Coffee grinder", 4500),
    ("globex", "Espresso beans", 1200),
];

/// `shop demo-data`: two shops with their users and products, every user with `password`.
/// Run it again and nothing is duplicated.
pub async fn demo_data(db: &DatabaseConnection, password: &str) -> Result<(), ferrule::Error> {
    let auth = Auth::new(db.clone());
    let mut shops = Vec::new();
    for name in ["acme", "globex"] {
        let row = match tenant::Entity::find()
            .filter(tenant::Column::Name.eq(name))
            .one(db)
            .await?
        {
            Some(t) => t,
            None => {
                tenant::ActiveModel {
                    name: ActiveValue::Set(name.to_owned()),
                    ..Default::default()
                }
                .insert(db)
                .await?
            }
        };
        shops.push(row);
    }
    let shop_id = |name: &str| shops.iter().find(|t| t.name == name).map(|t| t.id);
    for (shop, name, price) in DEMO_PRODUCTS {
        let tenant_id = shop_id(shop).unwrap_or_default();
        let exists = product::Entity::find()
            .filter(product::Column::TenantId.eq(tenant_id))
            .filter(product::Column::Name.eq(*name))
            .one(db)
            .await?
            .is_some();
        if !exists {
            product::ActiveModel {
                tenant_id: ActiveValue::Set(tenant_id),
                name: ActiveValue::Set((*name).to_owned()),
                price_cents: ActiveValue::Set(*price),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    for (username, shop, banned) in DEMO_USERS {
        let user = match auth.find_by_username(username).await? {
            Some(u) => u,
            None => {
                auth.create_user(NewUser {
                    username: (*username).to_owned(),
                    password: password.to_owned(),
                    ..NewUser::default()
                })
                .await?
            }
        };
        if profile::Entity::find_by_id(user.id)
            .one(db)
            .await?
            .is_none()
        {
            profile::ActiveModel {
                user_id: ActiveValue::Set(user.id),
                tenant_id: ActiveValue::Set(shop_id(shop).unwrap_or_default()),
                banned: ActiveValue::Set(*banned),
            }
            .insert(db)
            .await?;
        }
    }
    Ok(())
}

/// `shop ban NAME` / `shop unban NAME`: from the user's next request or event on, the
/// `banned_user` middleware refuses everything with "Account suspended.".
pub async fn set_banned(
    db: &DatabaseConnection,
    username: &str,
    banned: bool,
) -> Result<(), ferrule::Error> {
    let user = Auth::new(db.clone())
        .find_by_username(username)
        .await?
        .ok_or_else(|| ferrule::Error::bad_request(format!("no user {username}")))?;
    let row = profile::Entity::find_by_id(user.id)
        .one(db)
        .await?
        .ok_or_else(|| ferrule::Error::bad_request(format!("{username} belongs to no shop")))?;
    let mut row: profile::ActiveModel = row.into();
    row.banned = ActiveValue::Set(banned);
    row.update(db).await?;
    Ok(())
}
