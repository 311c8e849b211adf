//! {{project-name}}'s states and pages, through a real server and a real Socket.IO client.

mod common;

use ferrule::testing::ClientOptions;
use serde_json::{Value, json};

use {{crate_name}}::notes::{AddNote, LoadNotes, NewNote, NotesState};
use {{crate_name}}::{CounterState, Increment};

/// The page's note form, filled in with `body`.
fn note(body: &str) -> AddNote {
    AddNote {
        note: NewNote { body: body.into() },
    }
}

/// The messages per field a refused form's answer carries (`_invalid`), `null` without any.
fn refused_fields(answer: &ferrule::StateUpdate) -> Value {
    answer
        .events_named(ferrule::ClientCommand::INVALID)
        .next()
        .map(|c| c.payload["fields"].clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn increment_counts_and_records_the_tenant() {
    let app = common::start().await;
    let mut client = app
        .client_with(ClientOptions::default().header("x-tenant", "acme"))
        .await
        .unwrap();
    // The action `#[ferrule::state]` wrote for the handler, sent as the page sends it.
    let update = client.send(Increment).await.unwrap();
    assert_eq!(
        update.delta["counter_state"]["count"], 1,
        "the documented wire update"
    );
    assert_eq!(
        client.state::<CounterState>().unwrap(),
        CounterState {
            count: 1,
            tenant: "acme".into()
        }
    );
}

#[tokio::test]
async fn a_tenant_name_is_kept_at_its_limit_and_refused_past_it() {
    let app = common::start().await;
    let longest = "t".repeat({{crate_name}}::MAX_TENANT_LEN);
    let mut client = app
        .client_with(ClientOptions::default().header("x-tenant", longest.clone()))
        .await
        .unwrap();
    client.send(Increment).await.unwrap();
    assert_eq!(client.state::<CounterState>().unwrap().tenant, longest);

    let mut past = app
        .client_with(ClientOptions::default().header("x-tenant", format!("{longest}t")))
        .await
        .unwrap();
    let update = past.send(Increment).await.unwrap();
    assert!(update.delta.is_empty(), "nothing kept: {:?}", update.delta);
    let said: Vec<_> = update.events.iter().filter_map(|e| e.message()).collect();
    assert!(said.iter().any(|m| m.contains("X-Tenant")), "{said:?}");
    let page = app
        .http("GET", "/", &[("x-tenant", "a tenant with spaces")], b"")
        .await
        .unwrap();
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn the_home_page_is_rendered_on_the_server() {
    let app = common::start().await;
    let resp = app.get("/").await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains(r#"<output id="count">0</output>"#));
}

#[tokio::test]
async fn the_home_page_speaks_the_visitors_language() {
    let app = common::start().await;
    let headers = [("accept-language", "fr-CA, fr;q=0.9")];
    let french = app.http("GET", "/", &headers, b"").await.unwrap().text();
    assert!(french.contains(r#"<html lang="fr""#), "{french}");
    assert!(french.contains("Bienvenue dans {{project-name}}"), "{french}");
    let english = app.get("/").await.unwrap().text();
    assert!(english.contains("Welcome to {{project-name}}"), "{english}");
}

#[tokio::test]
async fn seed_writes_a_first_note_once() {
    let app = common::start().await;
    let db = app.db.connection();
    assert!({{crate_name}}::notes::server::seed(&db).await.unwrap());
    assert!(
        !{{crate_name}}::notes::server::seed(&db).await.unwrap(),
        "only on a database without notes"
    );
    let mut reader = app.client().await.unwrap();
    reader.send(LoadNotes).await.unwrap();
    let notes = reader.state::<NotesState>().unwrap().notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].body.starts_with("Welcome!"));
}
{% if auth %}
#[tokio::test]
async fn register_then_the_private_page_renders() {
    let app = common::start().await;
    let anonymous = app.get("/private").await.unwrap();
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), Some("/login?next=%2Fprivate"));

    // The register form as the browser posts it: a 303 back to `next`, logged in.
    let (csrf, csrf_cookie) = app.csrf().await.unwrap();
    let form = format!("username=ada&password=correct+horse+battery&next=%2F&csrf_token={csrf}");
    let registered = app
        .http(
            "POST",
            "/_auth/register",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf_cookie.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(registered.status, 303, "{}", registered.text());
    assert_eq!(registered.header("location"), Some("/"));
    let session = registered.cookie("ferrule_session").expect("logged in");
    let cookies = format!("{csrf_cookie}; {session}");
    let private = app
        .http("GET", "/private", &[("cookie", cookies.as_str())], b"")
        .await
        .unwrap();
    assert_eq!(private.status, 200);
    assert!(private.text().contains("Only logged-in users"));

    // The header of the first response already says who is logged in; anonymous visitors get
    // the account links instead.
    let home = app
        .http("GET", "/", &[("cookie", cookies.as_str())], b"")
        .await
        .unwrap();
    let html = home.text();
    assert!(html.contains(r#"<span id="user">ada"#), "{html}");
    assert!(!html.contains(r#"href="/login""#), "{html}");
    let anonymous_home = app.get("/").await.unwrap().text();
    assert!(
        anonymous_home.contains(r#"href="/login""#),
        "{anonymous_home}"
    );
    assert!(!anonymous_home.contains(r#"id="user""#), "{anonymous_home}");
}

#[tokio::test]
async fn a_wrong_password_comes_back_to_the_login_page_with_a_message_shown_once() {
    let app = common::start().await;
    app.register("ada", "correct horse battery").await.unwrap();
    let (csrf, csrf_cookie) = app.csrf().await.unwrap();
    let form = format!("username=ada&password=wrong&next=%2Fprivate&csrf_token={csrf}");
    let referer = app.url("/login?next=%2Fprivate");
    let refused = app
        .http(
            "POST",
            "/_auth/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf_cookie.as_str()),
                ("referer", referer.as_str()),
            ],
            form.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 303, "{}", refused.text());
    let back = refused.header("location").unwrap().to_owned();
    assert_eq!(back, "/login?next=%2Fprivate", "no text rides the URL");
    // The session that holds the message, not a logged-in one.
    let session = refused
        .cookie("ferrule_session")
        .expect("the message's session");
    let page = |cookie: String| {
        let (app, back) = (&app, back.clone());
        async move {
            let headers = [("cookie", cookie.as_str())];
            app.http("GET", &back, &headers, b"").await.unwrap().text()
        }
    };
    // The texts of the page's toasts (a text may also be in the page's catalogue).
    let toasts = |html: &str| -> Vec<String> {
        html.split(r#"class="ferrule-toast-message">"#)
            .skip(1)
            .map(|rest| rest.split('<').next().unwrap_or_default().to_owned())
            .collect()
    };
    let login = page(session.clone()).await;
    assert_eq!(toasts(&login), ["Wrong username or password."], "{login}");
    assert!(!login.contains(r#"id="user""#), "not logged in: {login}");
    let again = page(session).await;
    assert_eq!(toasts(&again), Vec::<String>::new(), "once: {again}");
}

#[tokio::test]
async fn notes_are_stored_listed_and_guarded() {
    let app = common::start().await;
    let mut anonymous = app.client().await.unwrap();
    let refused = anonymous.send(note("hello")).await.unwrap();
    assert!(
        refused.events_named("_redirect").next().is_some(),
        "anonymous users are sent to log in: {refused:?}"
    );

    let session = app.register("ada", "correct horse battery").await.unwrap();
    let mut ada = app
        .client_with(ClientOptions::default().header("cookie", session))
        .await
        .unwrap();
    let empty = ada.send(note("   ")).await.unwrap();
    assert!(!empty.delta.contains_key("notes_state"), "nothing written");
    assert_eq!(refused_fields(&empty), json!({"body": ["Required."]}));
    for body in ["first", "second"] {
        ada.send(note(body)).await.unwrap();
    }
    anonymous.send(LoadNotes).await.unwrap();
    let notes = anonymous.state::<NotesState>().unwrap().notes;
    assert_eq!(notes[0].body, "second", "newest first: {notes:?}");
    assert_eq!(notes[1].body, "first");
    assert_eq!(notes[0].author, "ada");
}
{% else %}
#[tokio::test]
async fn there_are_no_account_pages() {
    let app = common::start().await;
    for page in ["/login", "/register", "/private"] {
        let resp = app.get(page).await.unwrap();
        assert_eq!(resp.status, 404, "{page}: {}", resp.text());
    }
}

#[tokio::test]
async fn notes_are_stored_and_listed() {
    let app = common::start().await;
    let mut writer = app.client().await.unwrap();
    let empty = writer.send(note("   ")).await.unwrap();
    assert!(!empty.delta.contains_key("notes_state"), "nothing written");
    assert_eq!(refused_fields(&empty), json!({"body": ["Required."]}));
    for body in ["first", "second"] {
        writer.send(note(body)).await.unwrap();
    }
    let mut reader = app.client().await.unwrap();
    reader.send(LoadNotes).await.unwrap();
    let notes = reader.state::<NotesState>().unwrap().notes;
    assert_eq!(notes[0].body, "second", "newest first: {notes:?}");
    assert_eq!(notes[1].body, "first");
    assert_eq!(notes[0].author, "anonymous");
}
{% endif %}
#[tokio::test]
async fn a_note_added_in_one_tab_shows_in_every_tab_on_the_notes_page() {
    let app = common::start().await;
    let mut reader = app.client().await.unwrap();
    reader.hydrate_at("/notes").await.unwrap();
{% if auth %}    let session = app.register("ada", "correct horse battery").await.unwrap();
    let mut writer = app
        .client_with(ClientOptions::default().header("cookie", session))
        .await
        .unwrap();
{% else %}    let mut writer = app.client().await.unwrap();
{% endif %}    writer.send(note("seen live")).await.unwrap();
    // The server tells the reader's tab; the browser then asks for the notes again (`_live`).
    let told = reader.next_change(std::time::Duration::from_secs(5)).await;
    assert_eq!(told, Some(vec!["notes".to_owned()]));
    reader.reload_live(&["notes"]).await.unwrap();
    let notes = reader.state::<NotesState>().unwrap().notes;
    assert_eq!(notes[0].body, "seen live", "{notes:?}");
}
