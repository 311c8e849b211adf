//! The shop's states and their handlers, shared by the server and the browser: the page sends
//! the actions `#[ferrule::state]` writes (`AddItem { product_id }`, `LoadCart`, …), and the
//! server build alone compiles the handlers' bodies, with the database and the tables.

use serde::{Deserialize, Serialize};

// What only the handlers' bodies use: the server build alone has it.
#[cfg(feature = "ssr")]
use crate::server::tables::{cart_item, order, product};
#[cfg(feature = "ssr")]
use crate::server::{Tenant, tenant_of, user_id, view};
#[cfg(feature = "ssr")]
use ferrule::db::sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
#[cfg(feature = "ssr")]
use ferrule::{ClientCommand, EventContext};

/// A product as pages show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductView {
    /// Primary key.
    pub id: i64,
    /// What it is called.
    pub name: String,
    /// Its price in cents.
    pub price_cents: i64,
}

/// One line of the cart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// The product.
    pub product: ProductView,
    /// How many.
    pub quantity: i64,
}

/// The logged-in user's cart, one for every tab of the session (`scope = "session"`): a change
/// in one tab shows in the others, and the header's count is right in the server's first
/// response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartState {
    /// How many items, all lines together.
    pub count: i64,
    /// What is in it.
    pub lines: Vec<CartLine>,
}

/// The catalogue search of the home page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchState {
    /// What was searched for (`q` of the page's query string).
    pub query: String,
    /// The user's shop's products whose name contains it.
    pub results: Vec<ProductView>,
}

/// Who is logged in, for the profile page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileState {
    /// The username, or "Guest".
    pub username: String,
    /// The user's shop.
    pub tenant: String,
    /// What the last payment left in the session.
    pub last_payment_status: String,
    /// The language the pages are in.
    pub language: String,
}

/// The checkout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingState {
    /// The last payment's status.
    pub status: String,
    /// The order it made.
    pub last_order: Option<i64>,
}

/// An order as pages show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Primary key.
    pub id: i64,
    /// Who ordered.
    pub buyer: String,
    /// The total in cents.
    pub total_cents: i64,
}

/// The orders of the user's shop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// Newest first.
    pub orders: Vec<OrderView>,
}

#[ferrule::state(scope = "session")]
impl CartState {
    // ANCHOR: add_item
    /// reflex-django's `CartState.add_item(product_id)`: the product must be one of the user's
    /// shop; a second add raises the quantity; a success message says what was added and its
    /// price, in the language of the event (`ctx.language()`, the reference's `LANGUAGE_CODE`).
    #[login_required]
    pub async fn add_item(
        &mut self,
        ctx: EventContext,
        product_id: i64,
    ) -> Result<(), ferrule::Error> {
        let conn = ctx.db()?;
        let shop = tenant_of(&ctx)?;
        let user = user_id(&ctx)?;
        let product = product::Entity::find_by_id(product_id)
            .filter(product::Column::TenantId.eq(shop.id))
            .one(conn)
            .await?
            .ok_or_else(|| ferrule::Error::bad_request("No such product."))?;
        let existing = cart_item::Entity::find()
            .filter(cart_item::Column::UserId.eq(user))
            .filter(cart_item::Column::ProductId.eq(product.id))
            .one(conn)
            .await?;
        match existing {
            Some(line) => {
                let quantity = line.quantity + 1;
                let mut line: cart_item::ActiveModel = line.into();
                line.quantity = ActiveValue::Set(quantity);
                line.update(conn).await?;
            }
            None => {
                cart_item::ActiveModel {
                    user_id: ActiveValue::Set(user),
                    product_id: ActiveValue::Set(product.id),
                    quantity: ActiveValue::Set(1),
                    ..Default::default()
                }
                .insert(conn)
                .await?;
            }
        }
        self.load(ctx.clone()).await?;
        // The price as the visitor's language writes it, in the message of their language.
        let price = crate::money_in(product.price_cents, &ctx.language());
        ctx.messages().success(ferrule::t!(
            "cart-added",
            name = product.name.as_str(),
            price = price
        ));
        Ok(())
    }
    // ANCHOR_END: add_item

    /// Reads the cart.
    #[login_required]
    #[action(LoadCart)]
    pub async fn load(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let conn = ctx.db()?;
        let rows = cart_item::Entity::find()
            .filter(cart_item::Column::UserId.eq(user_id(&ctx)?))
            .order_by_asc(cart_item::Column::Id)
            .find_also_related(product::Entity)
            .all(conn)
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

#[ferrule::state]
impl SearchState {
    // ANCHOR: perform_search
    /// reflex-django's `SearchState.perform_search`: `q` comes from the request's query string
    /// (the page's, which the event carries), the results from the user's shop only. It loads
    /// the catalogue's page, so its first HTML lists the results (JavaScript or not).
    #[on_load("/")]
    pub async fn perform_search(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let query = ctx.query("q").unwrap_or_default().trim().to_owned();
        let shop = tenant_of(&ctx)?;
        let rows = product::Entity::find()
            .filter(product::Column::TenantId.eq(shop.id))
            .order_by_asc(product::Column::Name)
            .all(ctx.db()?)
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

#[ferrule::state]
impl ProfileState {
    // ANCHOR: load_profile
    /// reflex-django's `ProfileState.load_profile`, with the functional helpers: the current
    /// user and session come from the event being handled, without a parameter.
    #[on_load("/profile")]
    pub async fn load_profile(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
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
        self.language = ctx.language();
        Ok(())
    }
    // ANCHOR_END: load_profile

    /// The profile's language choice: kept for the account and the browser, and the page
    /// reloads in it (a bad request, for a language the shop does not have).
    pub async fn choose_language(
        &mut self,
        ctx: EventContext,
        language: String,
    ) -> Result<(), ferrule::Error> {
        ctx.set_language(&language).await?;
        self.language = language;
        Ok(())
    }
}

#[ferrule::state]
impl BillingState {
    // ANCHOR: process_payment
    /// reflex-django's `BillingState.process_payment`: the cart becomes an order of the user's
    /// shop, and the payment's status goes into the session (where the profile page reads it).
    pub async fn process_payment(
        &mut self,
        ctx: EventContext,
    ) -> Result<Option<ClientCommand>, ferrule::Error> {
        if !ctx.user().is_authenticated() {
            return Ok(Some(ClientCommand::redirect("/login")));
        }
        let conn = ctx.db()?;
        let shop = tenant_of(&ctx)?;
        let user = user_id(&ctx)?;
        let lines = cart_item::Entity::find()
            .filter(cart_item::Column::UserId.eq(user))
            .find_also_related(product::Entity)
            .all(conn)
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
        .insert(conn)
        .await?;
        cart_item::Entity::delete_many()
            .filter(cart_item::Column::UserId.eq(user))
            .exec(conn)
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

#[ferrule::state]
impl OrderState {
    // ANCHOR: list_orders
    /// reflex-django's `OrderState.list_orders`: scoped by the tenant the middleware found, so
    /// one shop never sees another's orders.
    #[on_load("/orders")]
    pub async fn list_orders(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let shop = tenant_of(&ctx)?;
        let rows = order::Entity::find()
            .filter(order::Column::TenantId.eq(shop.id))
            .order_by_desc(order::Column::Id)
            .all(ctx.db()?)
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
