//! The shop's handlers and middleware through a real server and Socket.IO client, on the demo
//! data: each behaviour of reflex-django's worked examples.

use ferrule::RouterData;
use ferrule::testing::{ClientOptions, TestClient, TestDatabase, TestServer};
use serde_json::{Value, json};
use shop::{AddItem, ListOrders, LoadCart, LoadProfile, ProcessPayment};

const PASSWORD: &str = "correct horse battery";

/// The shop on a fresh SQLite database with the demo data.
async fn start() -> (TestServer, TestDatabase) {
    let db = TestDatabase::create("sqlite://shop.sqlite3").await.unwrap();
    let settings = ferrule::Settings {
        languages: vec!["en".into(), "fr".into()],
        ..Default::default()
    };
    let app = shop::app(db.connection()).settings(settings);
    app.migrate().await.unwrap();
    shop::server::demo_data(&db.connection(), PASSWORD)
        .await
        .unwrap();
    (TestServer::start(app).await.unwrap(), db)
}

async fn tab(server: &TestServer, user: &str) -> TestClient {
    let cookie = server.login(user, PASSWORD).await.unwrap();
    server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap()
}

fn page(path: &str, query: &str) -> RouterData {
    RouterData {
        path: path.to_owned(),
        query: query.to_owned(),
    }
}

/// `perform_search` on `/?q=<q>`: the products it finds, by name.
async fn search(client: &mut TestClient, q: &str) -> Vec<(String, i64)> {
    let update = client
        .call_from(
            "search_state.perform_search",
            json!({}),
            page("/", &format!("q={q}")),
        )
        .await
        .unwrap();
    assert!(update.events.is_empty(), "{update:?}");
    update.delta["search_state"]
        .get("results")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        p["id"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_log_in_except_on_public_pages() {
    let (server, _db) = start().await;
    let home = server.get("/").await.unwrap();
    assert_eq!(home.status, 303);
    assert!(home.header("location").unwrap().starts_with("/login"));
    for public in ["/about", "/login", "/register"] {
        assert_eq!(server.get(public).await.unwrap().status, 200, "{public}");
    }
    let mut anonymous = server.client().await.unwrap();
    let refused = anonymous
        .call_from("order_state.list_orders", json!({}), page("/orders", ""))
        .await
        .unwrap();
    let to = refused
        .events_named("_redirect")
        .next()
        .expect("sent to log in");
    assert!(to.path().unwrap().starts_with("/login"), "{refused:?}");
    assert!(refused.delta.is_empty(), "the handler did not run");
}

#[tokio::test]
async fn add_item_fills_the_logged_in_users_cart_from_their_shop_only() {
    let (server, _db) = start().await;
    let mut alice = tab(&server, "alice").await;
    let mut bob = tab(&server, "bob").await;
    let teas = search(&mut alice, "tea").await;
    let green = teas.iter().find(|(n, _)| n == "Green tea").unwrap().1;
    let teapot = teas.iter().find(|(n, _)| n == "Teapot").unwrap().1;
    for id in [green, green, teapot] {
        alice.send(AddItem { product_id: id }).await.unwrap();
    }
    let again = alice.send(AddItem { product_id: green }).await.unwrap();
    let said: Vec<_> = again
        .events_named("_toast")
        .map(|t| (t.level(), t.message()))
        .collect();
    assert_eq!(
        said,
        [(
            Some(ferrule::ToastLevel::Success),
            Some("Added Green tea ($8.00) to your cart.")
        )],
        "the reference's success message, once: {again:?}"
    );
    let cart = alice.send(LoadCart).await.unwrap();
    assert!(cart.delta.is_empty(), "already up to date: {cart:?}");
    let fresh = tab(&server, "alice").await.send(LoadCart).await.unwrap();
    assert_eq!(fresh.delta["cart_state"]["count"], 4);
    let lines = &fresh.delta["cart_state"]["lines"];
    assert_eq!(lines[0]["product"]["name"], "Green tea");
    assert_eq!(lines[0]["quantity"], 3);

    // Another shop's product is not for sale here.
    let grinder = search(&mut bob, "grinder").await[0].1;
    let refused = alice
        .send(AddItem {
            product_id: grinder,
        })
        .await
        .unwrap();
    assert_eq!(refused.events[0].message(), Some("No such product."));
    assert!(refused.delta.is_empty());
}

#[tokio::test]
async fn the_cart_is_the_sessions_in_every_tab_and_in_the_first_response() {
    let (server, _db) = start().await;
    let cookie = server.login("alice", PASSWORD).await.unwrap();
    let browser = || ClientOptions::default().header("cookie", cookie.clone());
    let mut one = server.client_with(browser()).await.unwrap();
    let mut two = server.client_with(browser()).await.unwrap();
    let teapot = search(&mut one, "teapot").await[0].1;
    let added = one.send(AddItem { product_id: teapot }).await.unwrap();
    assert_eq!(added.delta["cart_state"]["count"], 1);
    let pushed = two.next_update().await.unwrap();
    assert_eq!(
        pushed.delta["cart_state"]["count"], 1,
        "the other tab sees it"
    );

    // A reload renders the count on the server, before any script runs.
    let home = server
        .http(
            "GET",
            "/",
            &[("cookie", cookie.as_str()), ("accept", "text/html")],
            b"",
        )
        .await
        .unwrap();
    let html = home.text();
    assert_eq!(home.status, 200, "{html}");
    assert!(html.contains(r#"id="cart-count">1<"#), "{html}");
    assert!(
        html.contains(r#""cart_state":{"count":1"#),
        "the browser hydrates from the same value: {html}"
    );
    // Another browser of the same user has a cart state of its own until it loads the table.
    let other = server.login("alice", PASSWORD).await.unwrap();
    let elsewhere = server
        .http(
            "GET",
            "/",
            &[("cookie", other.as_str()), ("accept", "text/html")],
            b"",
        )
        .await
        .unwrap();
    assert!(
        elsewhere.text().contains(r#"id="cart-count">0<"#),
        "{}",
        elsewhere.text()
    );
}

#[tokio::test]
async fn perform_search_reads_q_from_the_pages_query_string() {
    let (server, _db) = start().await;
    let mut alice = tab(&server, "alice").await;
    let names = |found: Vec<(String, i64)>| found.into_iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(
        names(search(&mut alice, "TEA").await),
        ["Green tea", "Tea kettle", "Teapot"]
    );
    assert!(
        names(search(&mut alice, "grinder").await).is_empty(),
        "globex's grinder is not in acme's catalogue"
    );
    let mut bob = tab(&server, "bob").await;
    assert_eq!(names(search(&mut bob, "grinder").await), ["Coffee grinder"]);
}

#[tokio::test]
async fn add_item_says_what_it_added_in_the_tabs_language_with_its_price() {
    let (server, _db) = start().await;
    let cookie = server.login("alice", PASSWORD).await.unwrap();
    let mut french = server
        .client_with(ClientOptions::default().header("cookie", format!("{cookie}; language=fr")))
        .await
        .unwrap();
    let teapot = search(&mut french, "teapot").await[0].1;
    let added = french.send(AddItem { product_id: teapot }).await.unwrap();
    assert_eq!(
        added
            .events_named("_toast")
            .next()
            .and_then(|t| t.message()),
        Some("Teapot (32,00 $) ajouté à votre panier."),
        "{added:?}"
    );
}

#[tokio::test]
async fn the_catalogues_first_html_lists_what_its_query_finds() {
    let (server, _db) = start().await;
    let cookie = server.login("alice", PASSWORD).await.unwrap();
    let page = server
        .http(
            "GET",
            "/?q=tea",
            &[("cookie", cookie.as_str()), ("accept", "text/html")],
            b"",
        )
        .await
        .unwrap()
        .text();
    for name in ["Green tea", "Tea kettle", "Teapot"] {
        assert!(
            page.contains(&format!(r#"<span class="name">{name}</span>"#)),
            "{name} is in the first HTML: {page}"
        );
    }
    assert!(!page.contains("Coffee grinder"), "another shop's product");

    // A tab moving to another search without a page load gets it from the page's loader.
    let mut alice = tab(&server, "alice").await;
    let moved = alice.navigate("/?q=kettle").await.unwrap();
    assert_eq!(
        moved.delta["search_state"]["results"][0]["name"], "Tea kettle",
        "{moved:?}"
    );
}

#[tokio::test]
async fn process_payment_places_the_order_and_writes_the_session() {
    let (server, _db) = start().await;
    let cookie = server.login("alice", PASSWORD).await.unwrap();
    let options = || ClientOptions::default().header("cookie", cookie.clone());
    let mut alice = server.client_with(options()).await.unwrap();
    let empty = alice.send(ProcessPayment).await.unwrap();
    assert_eq!(empty.events[0].message(), Some("Your cart is empty."));

    let kettle = search(&mut alice, "kettle").await[0].1;
    alice.send(AddItem { product_id: kettle }).await.unwrap();
    let paid = alice.send(ProcessPayment).await.unwrap();
    assert_eq!(paid.delta["billing_state"]["status"], "pending");
    assert!(paid.delta["billing_state"]["last_order"].is_i64());
    let cart = alice.send(LoadCart).await.unwrap();
    assert_eq!(
        cart.delta["cart_state"]["count"], 0,
        "the cart became the order"
    );

    // Another tab of the same browser: the session (in the database) has the payment.
    let mut other = server.client_with(options()).await.unwrap();
    let profile = other.send(LoadProfile).await.unwrap();
    assert_eq!(profile.delta["profile_state"]["username"], "alice");
    assert_eq!(profile.delta["profile_state"]["tenant"], "acme");
    assert_eq!(
        profile.delta["profile_state"]["last_payment_status"],
        "pending"
    );
}

#[tokio::test]
async fn list_orders_shows_the_users_shop_and_never_another() {
    let (server, _db) = start().await;
    for (user, q) in [("alice", "teapot"), ("bob", "beans")] {
        let mut client = tab(&server, user).await;
        let id = search(&mut client, q).await[0].1;
        client.send(AddItem { product_id: id }).await.unwrap();
        client.send(ProcessPayment).await.unwrap();
    }
    let buyers = |update: ferrule::StateUpdate| -> Vec<String> {
        update.delta["order_state"]["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["buyer"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut carol = tab(&server, "carol").await;
    let acme = carol.send(ListOrders).await.unwrap();
    assert_eq!(
        buyers(acme),
        ["alice"],
        "acme's orders, whoever placed them"
    );
    let mut bob = tab(&server, "bob").await;
    let globex = bob.send(ListOrders).await.unwrap();
    assert_eq!(buyers(globex), ["bob"]);
}

// ANCHOR: banned_test
#[tokio::test]
async fn a_banned_user_sees_account_suspended_and_no_handler_runs() {
    let (server, _db) = start().await;
    let mut mallory = tab(&server, "mallory").await;
    for event in [
        "profile_state.load_profile",
        "order_state.list_orders",
        "search_state.perform_search",
    ] {
        let refused = mallory.call(event, json!({})).await.unwrap();
        assert_eq!(
            refused.events[0].message(),
            Some("Account suspended."),
            "{event}"
        );
        assert!(refused.delta.is_empty(), "{event} did not run: {refused:?}");
    }
    let cookie = server.login("mallory", PASSWORD).await.unwrap();
    let page = server
        .http("GET", "/orders", &[("cookie", cookie.as_str())], b"")
        .await
        .unwrap();
    assert_eq!(page.status, 403, "HTTP too: {}", page.text());
}
// ANCHOR_END: banned_test

#[tokio::test]
async fn a_new_account_belongs_to_no_shop_and_is_told_so() {
    let (server, _db) = start().await;
    let cookie = server.register("newcomer", PASSWORD).await.unwrap();
    let mut tab = server
        .client_with(ClientOptions::default().header("cookie", cookie))
        .await
        .unwrap();
    let refused = tab
        .call_from("search_state.perform_search", json!({}), page("/", ""))
        .await
        .unwrap();
    assert_eq!(
        refused.events[0].message(),
        Some("Your account belongs to no shop.")
    );
    let profile = tab.send(LoadProfile).await.unwrap();
    assert_eq!(profile.delta["profile_state"]["username"], "newcomer");
}

#[tokio::test]
async fn demo_data_can_run_twice_without_duplicates() {
    let (server, db) = start().await;
    shop::server::demo_data(&db.connection(), PASSWORD)
        .await
        .unwrap();
    let mut alice = tab(&server, "alice").await;
    assert_eq!(
        search(&mut alice, "").await.len(),
        3,
        "acme's three products, once"
    );
}
