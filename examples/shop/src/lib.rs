//! The shop: the worked examples of reflex-django's middleware guides, in Rust, as one app.
//!
//! - `CartState.add_item(product_id)` for the logged-in user (the event pipeline's step 9);
//! - `SearchState.perform_search` reading `q` from the page's query string through the request;
//! - `ProfileState.load_profile` with the functional helpers `current_user()` and
//!   `current_session()`;
//! - `BillingState.process_payment` writing to the session;
//! - `OrderState.list_orders` scoped by the tenant the `tenant` middleware put into the request;
//! - middleware `login_required` (public `/login`, `/register`, `/about`) and `banned_user`
//!   (a banned user's events are refused with the toast "Account suspended.").
//!
//! The shared part: the states with their handlers (`states.rs`) and the pages (this file). The
//! server part (`server.rs`): the tables, the middleware and the app. `shop demo-data` fills the
//! tables.

use ferrule::ui::{self, ConnectionIndicator, Toasts};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub use server::app;

mod states;
pub use states::*;

/// `1250` → `$12.50`.
pub fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// `cents` as `language` writes an amount of dollars: `$4.50` in English, `4,50 $` in French.
pub fn money_in(cents: i64, language: &str) -> String {
    if language.starts_with("fr") {
        format!("{},{:02} $", cents / 100, cents % 100)
    } else {
        money(cents)
    }
}

/// The app's root component: the router and the Ferrule runtime.
#[component]
pub fn Root() -> impl IntoView {
    view! {
        <ui::FerruleRouter>
            <Layout/>
        </ui::FerruleRouter>
    }
}

#[component]
fn Layout() -> impl IntoView {
    let auth = ui::use_auth();
    let logged_in = auth.field(|a| a.is_authenticated);
    let cart = ui::use_state::<CartState>();
    let count = cart.field(|c| c.count);
    let emit = ui::use_emit();
    Effect::new(move |_| {
        if logged_in.get() {
            emit.send(LoadCart);
        }
    });
    view! {
        <header>
            <a href="/">"Shop"</a>
            <a href="/orders">"Orders"</a>
            <a href="/profile">"Profile"</a>
            <a href="/about">"About"</a>
            <span>"Cart: " <output id="cart-count">{move || count.get()}</output></span>
            <ui::AccountMenu after_logout="/login"/>
            <ConnectionIndicator/>
        </header>
        <main>
            <Routes fallback=|| view! { <h1>"Not found"</h1> }>
                <Route path=path!("") view=Catalogue/>
                <Route path=path!("/orders") view=Orders/>
                <Route path=path!("/profile") view=Profile/>
                <Route path=path!("/about") view=About/>
                <Route path=path!("/login") view=Login/>
                <Route path=path!("/register") view=Register/>
            </Routes>
        </main>
        <Toasts/>
    }
}

// ANCHOR: catalogue
/// The catalogue: `?q=` searches it (a plain GET form), each product can go into the cart.
#[component]
fn Catalogue() -> impl IntoView {
    let search = ui::use_state::<SearchState>();
    let results = search.field(|s| s.results.clone());
    let billing = ui::use_state::<BillingState>();
    let status = billing.field(|b| b.status.clone());
    let emit = ui::use_emit();
    let query = leptos_router::hooks::use_query_map();
    let q = move || query.with(|q| q.get("q").unwrap_or_default());
    // No search sent from here: `perform_search` loads this page (`#[on_load("/")]`), before
    // its first render and again when `?q=` changes, reading `q` from the page's query.
    view! {
        <h1>"Catalogue"</h1>
        <form method="get" action="/">
            <input name="q" type="search" placeholder="Search" value=q/>
            <button type="submit">"Search"</button>
        </form>
        <ul id="products">
            <For each=move || results.get() key=|p| p.id let:product>
                <li>
                    <span class="name">{product.name.clone()}</span> " " {money(product.price_cents)} " "
                    <button class="add" data-name=product.name.clone()
                        on:click=move |_| { emit.send(AddItem { product_id: product.id }); }>
                        "Add to cart"
                    </button>
                </li>
            </For>
        </ul>
        <button id="pay" on:click=move |_| {
            emit.send(ProcessPayment);
            emit.send(LoadCart);
        }>"Pay for the cart"</button>
        <p>"Payment: " <span id="payment">{move || status.get()}</span></p>
    }
}
// ANCHOR_END: catalogue

/// The orders of the user's shop: every user of one tenant sees the same list, and nobody sees
/// another tenant's.
#[component]
fn Orders() -> impl IntoView {
    let state = ui::use_state::<OrderState>();
    let orders = state.field(|s| s.orders.clone());
    view! {
        <h1>"Orders"</h1>
        <ul id="orders">
            <For each=move || orders.get() key=|o| o.id let:order>
                <li>"#" {order.id} " " {order.buyer} " " {money(order.total_cents)}</li>
            </For>
        </ul>
    }
}

#[component]
fn Profile() -> impl IntoView {
    let state = ui::use_state::<ProfileState>();
    let name = state.field(|s| s.username.clone());
    let tenant = state.field(|s| s.tenant.clone());
    let payment = state.field(|s| s.last_payment_status.clone());
    let language = state.field(|s| s.language.clone());
    let emit = ui::use_emit();
    let languages = ferrule::i18n::page_languages()
        .into_iter()
        .map(|(tag, name)| {
            let chosen = tag.clone();
            view! { <option value=tag.clone() lang=tag selected=move || language.get() == chosen>{name}</option> }
        })
        .collect_view();
    view! {
        <h1>"Profile"</h1>
        <p>"User: " <span id="profile-user">{move || name.get()}</span></p>
        <p>"Shop: " <span id="profile-tenant">{move || tenant.get()}</span></p>
        <p>"Last payment: " <span id="profile-payment">{move || payment.get()}</span></p>
        <p>
            <label>
                "Language: "
                <select id="profile-language" on:change=move |ev| {
                    emit.send(ChooseLanguage { language: event_target_value(&ev) });
                }>{languages}</select>
            </label>
        </p>
    }
}

/// Public: anonymous visitors may read it.
#[component]
fn About() -> impl IntoView {
    view! {
        <h1>"About"</h1>
        <p>"A shop for several tenants, built with Ferrule."</p>
    }
}

/// Public: Ferrule's log-in form (a failed post comes back with its reason).
#[component]
fn Login() -> impl IntoView {
    view! {
        <h1>"Log in"</h1>
        <ui::LoginForm/>
    }
}

/// Public: a new account. It belongs to no shop until someone adds it to one (the demo data
/// does for its users), so its catalogue stays empty and says why.
#[component]
fn Register() -> impl IntoView {
    view! {
        <h1>"Register"</h1>
        <ui::RegisterForm/>
    }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(Root);
}
