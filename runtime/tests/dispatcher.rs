//! The outer dispatcher: reserved paths, HTTP through the chain, unknown sockets closed.

mod support;

use ferrule::Settings;
use futures_util::StreamExt;
use support::server;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn health_and_ping_answer_without_middleware() {
    let server = server(Settings::default()).await;
    let health = server.get("/_health").await.unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.json().unwrap()["status"], "ok");
    let ping = server.get("/ping").await.unwrap();
    assert_eq!((ping.status, ping.text().as_str()), (200, "pong"));
    // POST /ping is not CSRF-checked: reserved paths skip the chain.
    assert_ne!(
        server.http("POST", "/ping", &[], b"").await.unwrap().status,
        403
    );
}

#[tokio::test]
async fn all_routes_lists_http_routes_states_and_handlers() {
    let server = server(Settings::default()).await;
    let doc = server.get("/_all_routes").await.unwrap().json().unwrap();
    assert_eq!(doc["http"], serde_json::json!(["/trail"]));
    let handlers = doc["states"]["probe_state"].as_array().unwrap();
    assert!(handlers.iter().any(|h| h == "increment"));
    assert!(doc["states"]["cursor_state"].is_array());
    assert!(
        doc["reserved"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "/_event")
    );
    assert_eq!(doc["middleware"][0], "session");
}

#[tokio::test]
async fn upload_is_reserved_and_names_missing_headers() {
    let server = server(Settings::default()).await;
    let resp = server.http("POST", "/_upload", &[], b"x").await.unwrap();
    assert_eq!(resp.status, 400);
    assert!(
        resp.text().contains("ferrule-client-token"),
        "{}",
        resp.text()
    );
    // No middleware ran: the CSRF stand-in would have refused a POST without a token.
    assert_ne!(resp.text(), "CSRF token missing.");
}

#[tokio::test]
async fn unknown_http_paths_are_404_after_the_chain() {
    let server = server(Settings::default()).await;
    assert_eq!(server.get("/nope").await.unwrap().status, 404);
}

#[tokio::test]
async fn websocket_to_another_path_is_closed_with_1011() {
    let server = server(Settings::default()).await;
    let url = format!("ws://{}/chat", server.addr());
    let (mut ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Close(Some(frame)) = msg else {
        panic!("expected a close frame, got {msg:?}")
    };
    assert_eq!(u16::from(frame.code), 1011);
    assert!(frame.reason.contains("/_event/"));
}

#[tokio::test]
async fn routes_on_reserved_paths_are_refused_at_build() {
    let app = ferrule::App::new()
        .settings(Settings::default())
        .route("/_health", axum::routing::get(|| async { "mine" }));
    let Err(err) = app.into_parts() else {
        panic!("a reserved route was accepted")
    };
    assert!(err.to_string().contains("/_health"), "{err}");
}

#[tokio::test]
async fn a_state_that_is_not_a_struct_is_refused_at_build() {
    #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    struct Bare(i64);
    impl ferrule::protocol::StateName for Bare {}
    impl ferrule::State for Bare {
        fn handlers(_: &mut ferrule::Handlers<Self>) {}
    }
    let built = ferrule::App::new()
        .settings(Settings::default())
        .state::<Bare>()
        .into_parts();
    let Err(err) = built else {
        panic!("a tuple struct was accepted as a state")
    };
    assert!(err.to_string().contains("not an object"), "{err}");

    // A test server says so too, rather than starting and resetting the first connection.
    let started = ferrule::testing::TestServer::start(
        ferrule::App::new()
            .settings(Settings::default())
            .state::<Bare>(),
    )
    .await;
    let Err(err) = started else {
        panic!("a test server started an app that does not build")
    };
    assert!(err.to_string().contains("not an object"), "{err}");
}

/// Two states of one type name in two modules.
mod shop {
    #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    pub(crate) struct CartState {
        pub(crate) items: u32,
    }

    #[ferrule::state]
    impl CartState {
        pub(crate) async fn add(&mut self, _ctx: ferrule::EventContext) {
            self.items += 1;
        }
    }
}

mod wishlist {
    #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    pub(crate) struct CartState {
        pub(crate) wished: u32,
    }

    #[ferrule::state]
    impl CartState {
        pub(crate) async fn wish(&mut self, _ctx: ferrule::EventContext) {
            self.wished += 1;
        }
    }
}

#[tokio::test]
async fn two_states_with_one_wire_name_are_refused_at_build_naming_both() {
    let built = ferrule::App::new()
        .settings(Settings::default())
        .state::<shop::CartState>()
        .state::<wishlist::CartState>()
        .into_parts();
    let Err(err) = built else {
        panic!("two states named `cart_state` were accepted")
    };
    let message = err.to_string();
    assert!(
        message.contains("dispatcher::shop::CartState")
            && message.contains("dispatcher::wishlist::CartState")
            && message.contains("`cart_state`"),
        "{message}"
    );
    // Registering one state twice is an error of its own, not a clash.
    let twice = ferrule::App::new()
        .settings(Settings::default())
        .state::<shop::CartState>()
        .state::<shop::CartState>()
        .into_parts();
    let Err(err) = twice else {
        panic!("one state registered twice was accepted")
    };
    assert!(err.to_string().contains("registered twice"), "{err}");
}
