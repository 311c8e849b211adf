//! The app's own settings (`[app]`, `APP_*`) made at startup and read by event and HTTP
//! handlers, over a real socket.

use std::path::PathBuf;

use ferrule::settings::{Layers, Lookup};
use ferrule::testing::TestServer;
use ferrule::{App, AppSettings, EventContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The shop's settings, as an app declares them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shop {
    currency: String,
    #[serde(default)]
    free_shipping_over: u32,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct PriceState {
    label: String,
}

impl PriceState {
    async fn show(&mut self, ctx: EventContext) -> Result<(), ferrule::Error> {
        let shop = ctx.app_settings::<Shop>()?;
        self.label = format!("{} over {}", shop.currency, shop.free_shipping_over);
        Ok(())
    }
}

impl ferrule::State for PriceState {
    fn handlers(h: &mut ferrule::Handlers<Self>) {
        h.on("show", Self::show);
    }
}

impl ferrule::protocol::StateName for PriceState {}

/// A directory with `Ferrule.toml` holding `text`, and the layers found there with `vars`.
fn layers(name: &str, text: &str, vars: &[(&str, &str)]) -> Layers {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "ferrule-app-settings-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Ferrule.toml"), text).unwrap();
    Layers::gather(&Lookup {
        working_dir: dir,
        exe_dir: None,
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .unwrap()
}

fn shop_app(layers: Layers) -> App {
    App::new()
        .layers(layers)
        .app_settings::<Shop>()
        .state::<PriceState>()
        .route(
            "/currency",
            axum::routing::get(|shop: AppSettings<Shop>| async move { shop.currency.clone() }),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_read_the_apps_settings_from_the_file_and_the_environment() {
    let layers = layers(
        "read",
        "login_url = \"/in\"\n[app]\ncurrency = \"EUR\"\n",
        &[("APP_FREE_SHIPPING_OVER", "50")],
    );
    let server = TestServer::start(shop_app(layers)).await.unwrap();
    let mut c = server.client().await.unwrap();
    let u = c.call("price_state.show", json!(null)).await.unwrap();
    assert_eq!(u.delta["price_state"]["label"], "EUR over 50", "{u:?}");
    let page = server.get("/currency").await.unwrap();
    assert_eq!((page.status, page.text()), (200, "EUR".to_owned()));
    server.stop().await.unwrap();
}

#[test]
fn an_unknown_or_bad_app_key_stops_the_start_naming_it() {
    let mut app = shop_app(layers(
        "unknown",
        "[app]\ncurrency = \"EUR\"\ncurency = \"USD\"\n",
        &[],
    ));
    let err = app.resolved_settings().err().unwrap().to_string();
    assert!(
        err.contains("Ferrule.toml") && err.contains("app.curency"),
        "{err}"
    );
    let mut app = shop_app(layers(
        "bad",
        "[app]\ncurrency = \"EUR\"\n",
        &[("APP_FREE_SHIPPING_OVER", "lots")],
    ));
    let err = app.resolved_settings().err().unwrap().to_string();
    assert!(
        err.contains("APP_FREE_SHIPPING_OVER") && err.contains("lots"),
        "{err}"
    );
}

#[test]
fn without_app_settings_an_app_table_is_left_alone() {
    let mut app = App::new().layers(layers(
        "ignored",
        "[app]\nanything = 1\n",
        &[("APP_X", "y")],
    ));
    assert!(app.resolved_settings().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_those_settings_answers_a_generic_failure() {
    let server = TestServer::start(App::new().state::<PriceState>().route(
        "/currency",
        axum::routing::get(|shop: AppSettings<Shop>| async move { shop.currency.clone() }),
    ))
    .await
    .unwrap();
    let page = server.get("/currency").await.unwrap();
    assert_eq!(page.status, 500);
    let mut c = server.client().await.unwrap();
    let u = c.call("price_state.show", json!(null)).await.unwrap();
    assert!(u.delta.is_empty(), "{u:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_may_give_the_apps_settings() {
    let app = App::new()
        .with_app_settings(Shop {
            currency: "JPY".into(),
            free_shipping_over: 0,
        })
        .state::<PriceState>();
    let server = TestServer::start(app).await.unwrap();
    let mut c = server.client().await.unwrap();
    let u = c.call("price_state.show", json!(null)).await.unwrap();
    assert_eq!(u.delta["price_state"]["label"], "JPY over 0", "{u:?}");
    server.stop().await.unwrap();
}
