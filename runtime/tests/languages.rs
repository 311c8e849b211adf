//! Languages end to end on a real SQLite file: negotiated from the `language` cookie, the
//! user's saved preference and `Accept-Language`; chosen with `POST /_language`; used by `t!`
//! in handlers and pages, by Ferrule's own texts, and shipped to the browser one language at a
//! time.

use ferrule::testing::{ClientOptions, TestDatabase, TestServer};
use ferrule::{App, Error, EventContext, ToastLevel};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

/// What a handler says, in the event's language.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct GreeterState {
    language: String,
}

#[ferrule::state]
impl GreeterState {
    async fn greet(&mut self, ctx: EventContext) -> ferrule::ClientCommand {
        self.language = ctx.language();
        ferrule::ClientCommand::toast(ToastLevel::Info, ferrule::t!("greeting", name = "Ada"))
    }

    async fn fail(&mut self, _ctx: EventContext) -> Result<(), Error> {
        Err(Error::internal("a bug"))
    }

    async fn choose(&mut self, ctx: EventContext, language: String) -> Result<(), Error> {
        ctx.set_language(&language).await
    }

    async fn sign(&mut self, _ctx: EventContext, form: Signature) -> Result<(), Error> {
        ferrule::forms::validate(&form)?;
        Ok(())
    }
}

/// A form whose refusal Ferrule words.
#[derive(Clone, Debug, Default, Serialize, Deserialize, garde::Validate)]
pub struct Signature {
    #[garde(custom(ferrule::forms::rules::required))]
    name: String,
    #[garde(custom(ferrule::forms::rules::whole_number))]
    age: String,
}

#[component]
fn Greeting() -> impl IntoView {
    view! { <p id="greeting">{ferrule::t!("greeting", name = "Ada")}</p> }
}

#[component]
fn Root() -> impl IntoView {
    view! {
        <ferrule::ui::FerruleRouter>
            <ferrule::ui::LanguageSwitcher/>
            <Routes fallback=|| "Not found">
                <Route path=path!("/login") view=ferrule::ui::LoginForm/>
                <Route path=path!("") view=Greeting/>
            </Routes>
        </ferrule::ui::FerruleRouter>
    }
}

async fn server() -> TestServer {
    let db = TestDatabase::create("sqlite://languages.sqlite3")
        .await
        .unwrap();
    let server = TestServer::start_on(db, |db| {
        let settings = ferrule::Settings {
            languages: vec!["en".into(), "fr".into(), "de".into()],
            ..Default::default()
        };
        App::new()
            .database(db)
            .settings(settings)
            .locales(ferrule::locales!("tests/locales"))
            .state::<GreeterState>()
            .merge(ferrule::ssr::pages(
                ferrule::ssr::site_options("languages-test"),
                ferrule::ssr::shell("Languages", Root),
                Root,
            ))
    })
    .await
    .unwrap();
    server
        .create_user("ada", "analytical engine")
        .await
        .unwrap();
    server
}

async fn page(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> String {
    let resp = server.http("GET", path, headers, b"").await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_in_the_language_the_cookie_then_the_browser_asks_for() {
    let server = server().await;

    let default = page(&server, "/", &[]).await;
    assert!(default.contains(r#"<html lang="en""#), "{default}");
    assert!(default.contains("Hello, Ada!"), "{default}");

    let asked = [("accept-language", "fr-CH, fr;q=0.9, en;q=0.5")];
    let french = page(&server, "/", &asked).await;
    assert!(french.contains(r#"<html lang="fr""#), "{french}");
    assert!(french.contains("Bonjour, Ada !"), "{french}");

    // The cookie wins over the browser's list; one naming no configured language is ignored.
    let chosen = page(&server, "/", &[asked[0], ("cookie", "language=de")]).await;
    assert!(chosen.contains("Hallo, Ada!"), "{chosen}");
    let unknown = page(&server, "/", &[asked[0], ("cookie", "language=xx")]).await;
    assert!(unknown.contains("Bonjour, Ada !"), "{unknown}");

    // A key the language lacks comes from the default one.
    let login = page(&server, "/login", &[("cookie", "language=fr")]).await;
    assert!(
        login.contains("Mot de passe"),
        "Ferrule's own texts: {login}"
    );
    assert!(login.contains("Se connecter"), "{login}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_loads_its_own_languages_texts_and_the_defaults_only() {
    let server = server().await;
    let french = page(&server, "/", &[("cookie", "language=fr")]).await;
    // The texts are not in the page itself: a toast's text is on the page only when shown.
    assert!(!french.contains("Mot de passe"), "{french}");
    let src = french
        .split(r#"<script src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads its catalogue")
        .replace("&amp;", "&");
    assert!(src.starts_with("/_i18n/fr.js?v="), "{src}");
    let script = server.http("GET", &src, &[], b"").await.unwrap();
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let text = script.text();
    let json = text
        .strip_prefix("window.__ferruleI18n=")
        .and_then(|t| t.trim().strip_suffix(';'))
        .expect("one assignment");
    let shipped: serde_json::Value =
        serde_json::from_str(&serde_json::from_str::<String>(json).unwrap()).unwrap();
    assert_eq!(shipped["language"], "fr");
    let texts = shipped["texts"].as_object().unwrap();
    assert_eq!(
        texts.keys().collect::<Vec<_>>(),
        ["en", "fr"],
        "not German: {shipped}"
    );
    assert!(
        shipped["texts"]["fr"][1]
            .as_str()
            .unwrap()
            .contains("Bonjour")
    );
    assert_eq!(
        shipped["languages"],
        serde_json::json!([["en", "English"], ["fr", "Français"], ["de", "Deutsch"]])
    );
    // Another language's script has another version; one not configured is not served.
    let german = page(&server, "/", &[("cookie", "language=de")]).await;
    assert!(german.contains("/_i18n/de.js?v="), "{german}");
    let missing = server.http("GET", "/_i18n/xx.js", &[], b"").await.unwrap();
    assert_eq!(missing.status, 404);
    // The switcher lists them, the page's selected.
    assert!(
        french.contains(r#"<option value="fr" selected lang="fr">Français</option>"#),
        "{french}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choosing_a_language_sets_the_cookie_and_the_users_preference() {
    let server = server().await;
    let (csrf, csrf_cookie) = server.csrf().await.unwrap();
    let session = server.login("ada", "analytical engine").await.unwrap();
    let cookies = format!("{session}; {csrf_cookie}");
    let post = |body: String| {
        let cookies = cookies.clone();
        let server = &server;
        async move {
            server
                .http(
                    "POST",
                    "/_language",
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("cookie", cookies.as_str()),
                    ],
                    body.as_bytes(),
                )
                .await
                .unwrap()
        }
    };

    let unknown = post(format!("language=xx&next=%2F&csrf_token={csrf}")).await;
    assert_eq!(unknown.status, 400, "{}", unknown.text());

    let chosen = post(format!("language=fr&next=%2F%3Fq%3D1&csrf_token={csrf}")).await;
    assert_eq!(chosen.status, 303, "{}", chosen.text());
    assert_eq!(chosen.header("location"), Some("/?q=1"));
    assert_eq!(chosen.cookie("language").as_deref(), Some("language=fr"));

    // Another site is not a place to go back to.
    let away = post(format!(
        "language=fr&next=%2F%2Fevil.example&csrf_token={csrf}"
    ))
    .await;
    assert_eq!(away.header("location"), Some("/"));

    // Without the cookie (another browser), the user's saved choice still applies, over the
    // browser's own list.
    let elsewhere = server.login("ada", "analytical engine").await.unwrap();
    let home = page(
        &server,
        "/",
        &[("cookie", elsewhere.as_str()), ("accept-language", "de")],
    )
    .await;
    assert!(home.contains("Bonjour, Ada !"), "{home}");

    // And a post without the CSRF token changes nothing.
    let forged = server
        .http(
            "POST",
            "/_language",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", session.as_str()),
            ],
            b"language=de&next=%2F",
        )
        .await
        .unwrap();
    assert_eq!(forged.status, 403, "{}", forged.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_switches_the_tabs_language_for_its_next_events_and_the_user() {
    let server = server().await;
    let session = server.login("ada", "analytical engine").await.unwrap();
    let cookies = format!("{session}; language=en; theme=dark");
    let mut tab = server
        .client_with(ClientOptions::default().header("cookie", cookies.as_str()))
        .await
        .unwrap();

    let refused = tab
        .send(Choose {
            language: "xx".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        refused.events_named("_toast").next().unwrap().message(),
        Some("This site is not available in that language.")
    );
    assert_eq!(refused.events_named("_language").count(), 0);
    let greeted = tab.send(Greet).await.unwrap();
    assert_eq!(
        greeted.events_named("_toast").next().unwrap().message(),
        Some("Hello, Ada!")
    );

    let chosen = tab
        .send(Choose {
            language: "fr".into(),
        })
        .await
        .unwrap();
    let keep: Vec<_> = chosen.events_named("_language").collect();
    assert_eq!(keep.len(), 1, "{:?}", chosen.events);
    assert_eq!(keep[0].payload, serde_json::json!({"language": "fr"}));

    // The socket's next events are French though its handshake's cookie says English: a
    // handler's texts and the bridge's own.
    let greeted = tab.send(Greet).await.unwrap();
    assert_eq!(
        greeted.events_named("_toast").next().unwrap().message(),
        Some("Bonjour, Ada !")
    );
    assert_eq!(tab.state::<GreeterState>().unwrap().language, "fr");
    let failed = tab.send(Fail).await.unwrap();
    assert_eq!(
        failed.events_named("_toast").next().unwrap().message(),
        Some("Une erreur s'est produite. Veuillez réessayer.")
    );
    // The session still holds: the other cookies were kept.
    assert!(
        tab.state::<ferrule::protocol::AuthState>()
            .unwrap()
            .is_authenticated
    );

    // Another browser without the cookie gets the user's saved choice.
    let elsewhere = server.login("ada", "analytical engine").await.unwrap();
    let home = page(&server, "/", &[("cookie", elsewhere.as_str())]).await;
    assert!(home.contains("Bonjour, Ada !"), "{home}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_and_ferrules_own_errors_speak_the_sockets_language() {
    let server = server().await;
    let mut tab = server
        .client_with(ClientOptions::default().header("cookie", "language=fr"))
        .await
        .unwrap();
    let greeted = tab.send(Greet).await.unwrap();
    let toast = greeted.events_named("_toast").next().unwrap();
    assert_eq!(toast.message(), Some("Bonjour, Ada !"));
    assert_eq!(tab.state::<GreeterState>().unwrap().language, "fr");

    let failed = tab.send(Fail).await.unwrap();
    let toast = failed.events_named("_toast").next().unwrap();
    assert_eq!(
        toast.message(),
        Some("Une erreur s'est produite. Veuillez réessayer.")
    );

    // A refused form: the toast and each field's message.
    let form = Signature {
        name: " ".into(),
        age: "ten".into(),
    };
    let refused = tab.send(Sign { form }).await.unwrap();
    assert_eq!(
        refused.events_named("_toast").next().unwrap().message(),
        Some("Corrigez les champs signalés.")
    );
    let invalid = refused
        .events_named(ferrule::ClientCommand::INVALID)
        .next()
        .unwrap();
    assert_eq!(
        invalid.payload["fields"],
        serde_json::json!({"name": ["Obligatoire."], "age": ["Saisissez un nombre entier."]})
    );

    let mut english = server.client().await.unwrap();
    let failed = english.send(Fail).await.unwrap();
    assert_eq!(
        failed.events_named("_toast").next().unwrap().message(),
        Some("Something went wrong. Please try again.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_texts_load_on_pages_that_need_a_login_too() {
    // An app where every page but the login page needs a logged-in user: the login page's
    // texts are served to an anonymous visitor all the same.
    let app = App::new()
        .settings(ferrule::Settings {
            languages: vec!["en".into(), "fr".into()],
            ..Default::default()
        })
        .middleware(ferrule::auth::guard::login_required_everywhere(
            &["/login"],
            "/login",
        ));
    let server = TestServer::start(app).await.unwrap();
    let script = server.http("GET", "/_i18n/fr.js", &[], b"").await.unwrap();
    assert_eq!(script.status, 200, "{}", script.text());
    assert!(script.text().contains("Mot de passe"));
}

#[test]
fn a_language_the_settings_cannot_use_is_refused_at_startup() {
    let settings = ferrule::Settings {
        languages: vec!["en".into(), "not a tag".into()],
        ..Default::default()
    };
    let err = App::new()
        .settings(settings)
        .into_parts()
        .expect_err("refused");
    assert!(err.to_string().contains("`not a tag`"), "{err}");
}
