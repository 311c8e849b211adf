//! The server side of the shop: its tables, the middleware of the reference pages, the handlers
//! and the demo data.

use ferrule::auth::{Auth, NewUser};
use ferrule::db::sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use ferrule::middleware::{self, Next, Request, Response};
use ferrule::{App, ClientCommand, CurrentUser, EventContext, Handlers, State};

use crate::{
    AddItem, BillingState, CartLine, CartState, ListOrders, LoadCart, LoadProfile, OrderState,
    OrderView, PerformSearch, ProcessPayment, ProductView, ProfileState, SearchState,
};

pub mod tables;

use tables::{cart_item, order, product, profile, tenant};

/// The database, put into every request: handlers and middleware read it from there.
#[derive(Clone)]
pub struct Db(pub DatabaseConnection);

/// The reference's `request.tenant_id`: the logged-in user's shop, put into the request by the
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

fn db(ctx: &EventContext) -> Result<DatabaseConnection, ferrule::Error> {
    ctx.extension::<Db>()
        .map(|d| d.0.clone())
        .ok_or_else(|| ferrule::Error::internal("no database in the request"))
}

/// The user's shop; a logged-in user without a profile (a superuser, say) has none.
fn tenant_of(ctx: &EventContext) -> Result<Tenant, ferrule::Error> {
    ctx.extension::<Tenant>()
        .cloned()
        .ok_or_else(|| ferrule::Error::permission_denied("Your account belongs to no shop."))
}

fn user_id(ctx: &EventContext) -> Result<i64, ferrule::Error> {
    ctx.user()
        .user()
        .map(|u| u.id)
        .ok_or_else(|| ferrule::Error::Unauthenticated("Please log in first.".into()))
}

// ANCHOR: tenant
/// Middleware (the reference's `TenantMiddleware`): looks up the logged-in user's profile and
/// puts it and its [`Tenant`] into the request, for HTTP requests and events alike.
async fn tenant(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
    let user = req
        .extensions()
        .get::<CurrentUser>()
        .and_then(|u| u.user().map(|u| u.id));
    let conn = req.extensions().get::<Db>().map(|d| d.0.clone());
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
/// Middleware (the reference's `BannedUserMiddleware`): a banned user's requests fail, so on an
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

fn view(p: product::Model) -> ProductView {
    ProductView {
        id: p.id,
        name: p.name,
        price_cents: p.price_cents,
    }
}

impl CartState {
    // ANCHOR: add_item
    /// The reference's `CartState.add_item(product_id)`: the product must be one of the user's
    /// shop; a second add raises the quantity.
    async fn add_item(&mut self, ctx: EventContext, add: AddItem) -> Result<(), ferrule::Error> {
        let conn = db(&ctx)?;
        let shop = tenant_of(&ctx)?;
        let user = user_id(&ctx)?;
        let product = product::Entity::find_by_id(add.product_id)
            .filter(product::Column::TenantId.eq(shop.id))
            .one(&conn)
            .await?
            .ok_or_else(|| ferrule::Error::bad_request("No such product."))?;
        let existing = cart_item::Entity::find()
            .filter(cart_item::Column::UserId.eq(user))
            .filter(cart_item::Column::ProductId.eq(product.id))
            .one(&conn)
            .await?;
        match existing {
            Some(line) => {
                let quantity = line.quantity + 1;
                let mut line: cart_item::ActiveModel = line.into();
                line.quantity = ActiveValue::Set(quantity);
                line.update(&conn).await?;
            }
            None => {
                cart_item::ActiveModel {
                    user_id: ActiveValue::Set(user),
                    product_id: ActiveValue::Set(product.id),
                    quantity: ActiveValue::Set(1),
                    ..Default::default()
                }
                .insert(&conn)
                .await?;
            }
        }
        self.load(ctx).await
    }
    // ANCHOR_END: add_item

    async fn load(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let conn = db(&ctx)?;
        let rows = cart_item::Entity::find()
            .filter(cart_item::Column::UserId.eq(user_id(&ctx)?))
            .order_by_asc(cart_item::Column::Id)
            .find_also_related(product::Entity)
            .all(&conn)
            .await?;
        self.lines = rows
            .into_iter()
            .filter_map(|(line, p)| {
                p.map(|p| CartLine {
                    product: view(p),
                    quantity: line.quantity,
                })
            })
            .collect();
        self.count = self.lines.iter().map(|l| l.quantity).sum();
        Ok(())
    }
}

impl State for CartState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action::<AddItem, _, _>(Self::add_item)
            .login_required()
            .action::<LoadCart, _, _>(Self::load)
            .login_required();
    }
}

impl SearchState {
    // ANCHOR: perform_search
    /// The reference's `SearchState.perform_search`: `q` comes from the request's query string
    /// (the page's, which the event carries), the results from the user's shop only.
    async fn perform_search(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let query = ctx.query("q").unwrap_or_default().trim().to_owned();
        let shop = tenant_of(&ctx)?;
        let rows = product::Entity::find()
            .filter(product::Column::TenantId.eq(shop.id))
            .order_by_asc(product::Column::Name)
            .all(&db(&ctx)?)
            .await?;
        let needle = query.to_lowercase();
        self.results = rows
            .into_iter()
            .filter(|p| p.name.to_lowercase().contains(&needle))
            .map(view)
            .collect();
        self.query = query;
        Ok(())
    }
    // ANCHOR_END: perform_search
}

impl State for SearchState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action::<PerformSearch, _, _>(Self::perform_search);
    }
}

impl ProfileState {
    // ANCHOR: load_profile
    /// The reference's `ProfileState.load_profile`, with the functional helpers: the current
    /// user and session come from the event being handled, without a parameter.
    async fn load_profile(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let user = ferrule::current_user();
        self.username = user.username().unwrap_or("Guest").to_owned();
        self.tenant = ctx
            .extension::<Tenant>()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        if let Some(session) = ferrule::current_session() {
            self.last_payment_status = session
                .get::<String>("last_payment_status")
                .await
                .map_err(ferrule::Error::internal)?
                .unwrap_or_default();
        }
        Ok(())
    }
    // ANCHOR_END: load_profile
}

impl State for ProfileState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action::<LoadProfile, _, _>(Self::load_profile);
    }
}

impl BillingState {
    // ANCHOR: process_payment
    /// The reference's `BillingState.process_payment`: the cart becomes an order of the user's
    /// shop, and the payment's status goes into the session (where the profile page reads it).
    async fn process_payment(
        &mut self,
        ctx: EventContext,
    ) -> Result<Option<ClientCommand>, ferrule::Error> {
        if !ctx.user().is_authenticated() {
            return Ok(Some(ClientCommand::redirect("/login")));
        }
        let conn = db(&ctx)?;
        let shop = tenant_of(&ctx)?;
        let user = user_id(&ctx)?;
        let lines = cart_item::Entity::find()
            .filter(cart_item::Column::UserId.eq(user))
            .find_also_related(product::Entity)
            .all(&conn)
            .await?;
        let total: i64 = lines
            .iter()
            .filter_map(|(line, p)| p.as_ref().map(|p| p.price_cents * line.quantity))
            .sum();
        if lines.is_empty() {
            return Err(ferrule::Error::bad_request("Your cart is empty."));
        }
        let placed = order::ActiveModel {
            tenant_id: ActiveValue::Set(shop.id),
            user_id: ActiveValue::Set(user),
            buyer: ActiveValue::Set(ctx.user().username().unwrap_or_default().to_owned()),
            total_cents: ActiveValue::Set(total),
            ..Default::default()
        }
        .insert(&conn)
        .await?;
        cart_item::Entity::delete_many()
            .filter(cart_item::Column::UserId.eq(user))
            .exec(&conn)
            .await?;
        let session = ctx
            .session()
            .ok_or_else(|| ferrule::Error::internal("no session"))?;
        session
            .insert("last_payment_status", "pending")
            .await
            .map_err(ferrule::Error::internal)?;
        if let Some(addr) = ctx.client_addr() {
            tracing::info!(order = placed.id, ip = %addr.ip, "payment started");
        }
        self.status = "pending".to_owned();
        self.last_order = Some(placed.id);
        Ok(None)
    }
    // ANCHOR_END: process_payment
}

impl State for BillingState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action::<ProcessPayment, _, _>(Self::process_payment);
    }
}

impl OrderState {
    // ANCHOR: list_orders
    /// The reference's `OrderState.list_orders`: scoped by the tenant the middleware found, so
    /// one shop never sees another's orders.
    async fn list_orders(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let shop = tenant_of(&ctx)?;
        let rows = order::Entity::find()
            .filter(order::Column::TenantId.eq(shop.id))
            .order_by_desc(order::Column::Id)
            .all(&db(&ctx)?)
            .await?;
        self.orders = rows
            .into_iter()
            .map(|o| OrderView {
                id: o.id,
                buyer: o.buyer,
                total_cents: o.total_cents,
            })
            .collect();
        Ok(())
    }
    // ANCHOR_END: list_orders
}

impl State for OrderState {
    fn handlers(h: &mut Handlers<Self>) {
        h.action::<ListOrders, _, _>(Self::list_orders);
    }
}

// ANCHOR: app
/// The shop on database `db`. The chain: Ferrule's session, CSRF and auth, then the database
/// handle, `login_required` (public `/login`, `/register`, `/about`), `tenant`, `banned_user`.
pub fn app(db: DatabaseConnection) -> App {
    let options = ferrule::ssr::site_options("shop");
    let handle = Db(db.clone());
    App::new()
        .database(db)
        .migrations::<tables::Migrator>()
        .state::<CartState>()
        .state::<SearchState>()
        .state::<ProfileState>()
        .state::<BillingState>()
        .state::<OrderState>()
        .middleware(middleware::from_fn(
            "db",
            move |mut req: Request, next: Next| {
                req.extensions_mut().insert(handle.clone());
                next.run(req)
            },
        ))
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
}
// ANCHOR_END: app

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
