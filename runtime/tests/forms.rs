//! Forms with field errors, as a page sees them: a handler that refuses a form answers with each
//! field's messages over the socket and changes nothing; the same form struct posted over HTTP
//! is refused with its messages too, or re-rendered by the app with them.

mod dbsupport;

use axum::response::Html;
use axum::routing::post;
use dbsupport::{Backend, TestDb};
use ferrule::forms::{self, FormRejection, ValidForm, rules};
use ferrule::testing::TestServer;
use ferrule::{App, ClientCommand, Error, EventContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The note form, as the page and a plain HTML form send it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, garde::Validate)]
pub struct NoteForm {
    #[garde(custom(rules::required), custom(rules::max_chars(20)))]
    title: String,
    #[garde(custom(rules::whole_number))]
    stars: String,
}

/// The notes saved so far.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct NotesState {
    titles: Vec<String>,
}

#[ferrule::state]
impl NotesState {
    async fn add(&mut self, _ctx: EventContext, form: NoteForm) -> Result<(), Error> {
        forms::validate(&form)?;
        self.titles.push(form.title);
        Ok(())
    }
}

/// Rows that others point at, through a foreign key.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ShelvesState {
    removed: u32,
}

#[ferrule::state]
impl ShelvesState {
    async fn remove(&mut self, ctx: EventContext, id: i64) -> Result<(), Error> {
        use ferrule::db::sea_orm::ConnectionTrait;
        ctx.db()?
            .execute_unprepared(&format!("DELETE FROM shelves WHERE id = {id}"))
            .await?;
        self.removed += 1;
        Ok(())
    }
}

/// A plain HTML form's endpoint that shows the form again with its errors.
async fn create_note(form: Result<ValidForm<NoteForm>, FormRejection<NoteForm>>) -> Html<String> {
    match form {
        Ok(ValidForm(note)) => Html(format!("<p>saved {}</p>", note.title)),
        Err(rejection) => {
            let errors = rejection.errors();
            Html(format!(
                "<p id=\"title-error\">{}</p>",
                errors.first("title").unwrap_or_default()
            ))
        }
    }
}

/// An endpoint for scripts: a refusal answers 422 on its own.
async fn create_note_api(ValidForm(note): ValidForm<NoteForm>) -> String {
    format!("saved {}", note.title)
}

async fn server(db: &TestDb) -> TestServer {
    let app = App::new()
        .database(db.conn.clone())
        .state::<NotesState>()
        .route("/notes", post(create_note))
        .route("/api/notes", post(create_note_api));
    TestServer::start(app).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_form_answers_with_each_fields_messages_and_changes_nothing() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = server(&db).await;
    let mut tab = server.client().await.unwrap();

    let answer = tab
        .call(
            "notes_state.add",
            json!({"form": {"title": "  ", "stars": "five"}}),
        )
        .await
        .unwrap();
    let invalid: Vec<_> = answer.events_named(ClientCommand::INVALID).collect();
    assert_eq!(invalid.len(), 1, "{answer:?}");
    assert_eq!(
        invalid[0].payload,
        json!({"fields": {"title": ["Required."], "stars": ["Enter a whole number."]}})
    );
    // Clients that know nothing of fields still show that it failed.
    let toast = answer.events_named(ClientCommand::TOAST).next().unwrap();
    assert_eq!(toast.message(), Some(forms::INVALID_MESSAGE));
    assert!(answer.delta.is_empty(), "nothing changed: {answer:?}");

    let answer = tab
        .call(
            "notes_state.add",
            json!({"form": {"title": "Groceries", "stars": "4"}}),
        )
        .await
        .unwrap();
    assert_eq!(answer.events_named(ClientCommand::INVALID).count(), 0);
    assert_eq!(answer.delta["notes_state"]["titles"], json!(["Groceries"]));
    db.cleanup().await;
}

/// POSTs `body` as a plain HTML form would, with its CSRF token.
async fn post_form(server: &TestServer, path: &str, body: &str) -> ferrule::testing::TestResponse {
    let (token, cookie) = server.csrf().await.unwrap();
    let body = format!("csrf_token={token}&{body}");
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie.as_str()),
    ];
    server
        .http("POST", path, &headers, body.as_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_form_post_with_bad_fields_is_refused_with_its_messages() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = server(&db).await;

    let shown = post_form(&server, "/notes", "title=&stars=3").await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert!(
        shown.text().contains("<p id=\"title-error\">Required.</p>"),
        "{}",
        shown.text()
    );
    let saved = post_form(&server, "/notes", "title=Groceries&stars=3").await;
    assert_eq!(saved.text(), "<p>saved Groceries</p>");

    let refused = post_form(&server, "/api/notes", "title=x&stars=many").await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.text().contains("stars: Enter a whole number."),
        "{}",
        refused.text()
    );
    let malformed = post_form(&server, "/api/notes", "title=x").await;
    assert_eq!(
        malformed.status,
        400,
        "a missing field: {}",
        malformed.text()
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_over_http_is_worded_in_the_requests_language() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = App::new()
        .database(db.conn.clone())
        .settings(ferrule::Settings {
            languages: vec!["en".into(), "fr".into()],
            ..Default::default()
        })
        .route("/api/notes", post(create_note_api));
    let server = TestServer::start(app).await.unwrap();
    let (token, cookie) = server.csrf().await.unwrap();
    let post = |language: &'static str| {
        let cookie = format!("{cookie}; language={language}");
        let body = format!("csrf_token={token}&title=A+title+far+too+long+to+keep&stars=many");
        let server = &server;
        async move {
            let headers = [
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", cookie.as_str()),
            ];
            server
                .http("POST", "/api/notes", &headers, body.as_bytes())
                .await
                .unwrap()
        }
    };

    let french = post("fr").await;
    assert_eq!(french.status, 422);
    assert_eq!(
        french.text(),
        "Corrigez les champs signalés.\n\
         stars: Saisissez un nombre entier.\n\
         title: 20 caractères au plus."
    );
    let english = post("en").await;
    assert_eq!(
        english.text(),
        "Please correct the marked fields.\n\
         stars: Enter a whole number.\n\
         title: At most 20 characters."
    );
    db.cleanup().await;
}

async fn a_row_still_pointed_at_is_refused_with_a_reason_on(backend: Backend) {
    use ferrule::db::sea_orm::ConnectionTrait;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    for sql in [
        "CREATE TABLE shelves (id BIGINT PRIMARY KEY)",
        "CREATE TABLE books (id BIGINT PRIMARY KEY, shelf_id BIGINT NOT NULL REFERENCES shelves (id))",
        "INSERT INTO shelves (id) VALUES (1), (2)",
        "INSERT INTO books (id, shelf_id) VALUES (1, 1)",
    ] {
        db.conn.execute_unprepared(sql).await.unwrap();
    }
    let app = App::new().database(db.conn.clone()).state::<ShelvesState>();
    let server = TestServer::start(app).await.unwrap();
    let mut tab = server.client().await.unwrap();

    let refused = tab.send(Remove { id: 1 }).await.unwrap();
    assert_eq!(
        refused
            .events_named("_toast")
            .next()
            .and_then(|t| t.message()),
        Some("This is still in use elsewhere: change or delete what points at it first."),
        "{refused:?}"
    );
    let removed = tab.send(Remove { id: 2 }).await.unwrap();
    assert_eq!(removed.events_named("_toast").count(), 0, "{removed:?}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_still_pointed_at_is_refused_with_a_reason_sqlite() {
    a_row_still_pointed_at_is_refused_with_a_reason_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_still_pointed_at_is_refused_with_a_reason_postgres() {
    a_row_still_pointed_at_is_refused_with_a_reason_on(Backend::Postgres).await;
}
