//! Mail and the password reset, end to end: the app's real HTTP endpoints, its real job workers
//! on SQLite and PostgreSQL, mail caught in an in-memory outbox, and SMTP spoken to a server
//! on loopback.

mod dbsupport;

use std::time::Duration;

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::auth::recovery::{LINK_INVALID, RESET_ASKED};
use ferrule::jobs::JobState;
use ferrule::mail::{Email, Mailer, Outbox, Transport};
use ferrule::testing::{TestResponse, TestServer};
use ferrule::{App, Settings};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(20);

struct Fixture {
    server: TestServer,
    db: TestDb,
    outbox: Outbox,
}

fn settings() -> Settings {
    Settings {
        jobs_poll_ms: 50,
        languages: vec!["en".to_owned(), "fr".to_owned()],
        ..Settings::default()
    }
}

async fn fixture(backend: Backend, settings: Settings) -> Option<Fixture> {
    let db = TestDb::new(backend).await?;
    let outbox = Outbox::new();
    let app = App::new()
        .settings(settings)
        .database(db.conn.clone())
        .mailer(Mailer::to_outbox(&outbox))
        .route(
            "/me",
            axum::routing::get(|req: ferrule::middleware::Request| async move {
                let user = req.extensions().get::<ferrule::CurrentUser>().cloned();
                user.unwrap_or_default()
                    .username()
                    .unwrap_or("anonymous")
                    .to_owned()
            }),
        );
    let auth = app.auth().expect("the app has a database");
    for (name, language) in [("alice", None), ("amelie", Some("fr"))] {
        let user = auth
            .create_user(NewUser {
                username: name.into(),
                email: Some(format!("{name}@example.com")),
                password: "wonderland1".into(),
                ..NewUser::default()
            })
            .await
            .unwrap();
        auth.set_language(user.id, language).await.unwrap();
    }
    let server = TestServer::start(app).await.unwrap();
    Some(Fixture { server, db, outbox })
}

/// POSTs JSON with a fresh CSRF token, and `cookie` when given.
async fn post(server: &TestServer, path: &str, cookie: Option<&str>, body: Value) -> TestResponse {
    let (token, csrf) = server.csrf().await.unwrap();
    let cookies = match cookie {
        Some(c) => format!("{csrf}; {c}"),
        None => csrf,
    };
    let headers = [
        ("content-type", "application/json"),
        ("x-csrftoken", token.as_str()),
        ("cookie", cookies.as_str()),
    ];
    server
        .http("POST", path, &headers, body.to_string().as_bytes())
        .await
        .unwrap()
}

/// Asks for a reset link for `email`.
async fn ask(server: &TestServer, email: &str) -> TestResponse {
    post(
        server,
        "/_auth/password_reset",
        None,
        json!({"email": email}),
    )
    .await
}

/// Sets `password` with the reset link's `token`.
async fn reset(server: &TestServer, token: &str, password: &str) -> TestResponse {
    let body = json!({"token": token, "password": password});
    post(server, "/_auth/password_reset/confirm", None, body).await
}

async fn who(server: &TestServer, cookie: &str) -> String {
    server
        .http("GET", "/me", &[("cookie", cookie)], b"")
        .await
        .unwrap()
        .text()
}

/// The token of the reset link in `mail`, after checking the link is the app's reset page.
fn token_of(server: &TestServer, mail: &Email) -> String {
    let links = mail.links();
    let link = links.first().expect("the mail has a link");
    let page = server.url("/reset-password?token=");
    assert!(link.starts_with(&page), "{link} is not {page}…");
    let html = mail.html.as_deref().expect("an HTML part");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    link[page.len()..].to_owned()
}

/// Waits until no job is pending or running.
async fn jobs_settle(db: &TestDb) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts = ferrule::jobs::counts(&db.conn).await.unwrap();
        let busy = counts.get(&JobState::Pending).copied().unwrap_or(0)
            + counts.get(&JobState::Running).copied().unwrap_or(0);
        if busy == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "jobs still busy: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_reset_link_sets_the_password_once_and_ends_every_session(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    let phone = f.server.login("alice", "wonderland1").await.unwrap();
    assert_eq!(who(&f.server, &phone).await, "alice");
    // The address as typed differently still finds the account.
    let asked = ask(&f.server, " Alice@Example.com").await;
    assert_eq!(asked.status, 202, "{}", asked.text());
    let mail = f
        .outbox
        .nth_to("alice@example.com", 0, WAIT)
        .await
        .expect("a reset mail");
    assert!(mail.subject.contains("alice"), "{}", mail.subject);
    let token = token_of(&f.server, &mail);

    let set = reset(&f.server, &token, "looking-glass-42").await;
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(
        who(&f.server, &phone).await,
        "anonymous",
        "other sessions end"
    );
    assert!(
        f.server.login("alice", "wonderland1").await.is_err(),
        "the old password is dead"
    );
    assert!(f.server.login("alice", "looking-glass-42").await.is_ok());

    let again = reset(&f.server, &token, "another-one-99").await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json().unwrap()["error"], LINK_INVALID);
    assert!(
        f.server.login("alice", "looking-glass-42").await.is_ok(),
        "a used link changes nothing"
    );
    f.db.cleanup().await;
}

async fn an_unknown_address_gets_the_same_answer_and_no_mail(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    let unknown = ask(&f.server, "nobody@example.com").await;
    let known = ask(&f.server, "alice@example.com").await;
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.json().unwrap(), known.json().unwrap());
    assert_eq!(unknown.json().unwrap()["message"], RESET_ASKED);
    f.outbox
        .nth_to("alice@example.com", 0, WAIT)
        .await
        .expect("the known address gets its mail");
    jobs_settle(&f.db).await;
    let sent: Vec<String> = f.outbox.sent().into_iter().map(|m| m.to).collect();
    assert_eq!(
        sent,
        ["alice@example.com"],
        "nothing for the unknown address"
    );
    f.db.cleanup().await;
}

async fn dead_links_and_refused_passwords(backend: Backend) {
    let Some(f) = fixture(
        backend,
        Settings {
            // Long enough for the mail job and a refused try on a loaded machine (a second
            // was not, under the whole suite), short enough to wait out.
            account_link_ttl_ms: 3000,
            ..settings()
        },
    )
    .await
    else {
        return;
    };
    let bogus = reset(&f.server, &"0".repeat(64), "looking-glass-42").await;
    assert_eq!(bogus.status, 400);
    assert_eq!(bogus.json().unwrap()["error"], LINK_INVALID);

    // A refused password leaves the link usable.
    ask(&f.server, "alice@example.com").await;
    let token = token_of(
        &f.server,
        &f.outbox.nth_to("alice@example.com", 0, WAIT).await.unwrap(),
    );
    let weak = reset(&f.server, &token, "alice").await;
    assert_eq!(weak.status, 400, "{}", weak.text());
    assert_ne!(weak.json().unwrap()["error"], LINK_INVALID);
    // …until it expires (three seconds, here).
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let late = reset(&f.server, &token, "looking-glass-42").await;
    assert_eq!(late.json().unwrap()["error"], LINK_INVALID);
    assert!(f.server.login("alice", "wonderland1").await.is_ok());
    f.db.cleanup().await;
}

async fn a_password_changed_since_voids_the_link(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    ask(&f.server, "alice@example.com").await;
    let token = token_of(
        &f.server,
        &f.outbox.nth_to("alice@example.com", 0, WAIT).await.unwrap(),
    );
    let laptop = f.server.login("alice", "wonderland1").await.unwrap();
    let changed = post(
        &f.server,
        "/_auth/password",
        Some(&laptop),
        json!({"old_password": "wonderland1", "new_password": "through-the-glass-7"}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    let reset = reset(&f.server, &token, "looking-glass-42").await;
    assert_eq!(reset.json().unwrap()["error"], LINK_INVALID);
    assert!(f.server.login("alice", "through-the-glass-7").await.is_ok());
    f.db.cleanup().await;
}

async fn asking_is_throttled_per_email_and_per_client(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    let ask = |email: String| {
        let server = &f.server;
        async move {
            post(
                server,
                "/_auth/password_reset",
                None,
                json!({"email": email}),
            )
            .await
            .status
        }
    };
    let per_email = ferrule::auth::recovery::ASKS_PER_EMAIL;
    for _ in 0..per_email {
        assert_eq!(ask("alice@example.com".into()).await, 202);
    }
    assert_eq!(
        ask("ALICE@example.com".into()).await,
        429,
        "one past the limit per e-mail"
    );
    // One client address: ASKS_PER_ADDRESS in all, the e-mail ones above included.
    let per_address = ferrule::auth::recovery::ASKS_PER_ADDRESS;
    for i in per_email + 1..per_address {
        assert_eq!(ask(format!("someone{i}@example.com")).await, 202, "ask {i}");
    }
    assert_eq!(
        ask("last@example.com".into()).await,
        429,
        "one past the limit per address"
    );
    jobs_settle(&f.db).await;
    assert_eq!(
        f.outbox.sent_to("alice@example.com").len(),
        per_email as usize
    );
    f.db.cleanup().await;
}

async fn the_mail_is_in_the_accounts_language(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    ask(&f.server, "amelie@example.com").await;
    let mail = f
        .outbox
        .nth_to("amelie@example.com", 0, WAIT)
        .await
        .unwrap();
    assert!(
        mail.subject.starts_with("Nouveau mot de passe"),
        "{}",
        mail.subject
    );
    let html = mail.html.as_deref().unwrap();
    assert!(html.contains("<html lang=\"fr\">"));
    // The text's paragraphs are the HTML's.
    assert_eq!(
        mail.text.matches("\n\n").count() + 1,
        html.matches("<p>").count(),
        "{html}"
    );
    f.db.cleanup().await;
}

async fn a_plain_form_lands_on_its_next_page_with_the_answer(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    let (token, csrf) = f.server.csrf().await.unwrap();
    let body = format!("csrf_token={token}&email=alice%40example.com&next=%2Flogin");
    let resp = f
        .server
        .http(
            "POST",
            "/_auth/password_reset",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", csrf.as_str()),
            ],
            body.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 303, "{}", resp.text());
    assert_eq!(resp.header("location"), Some("/login"));
    f.db.cleanup().await;
}

/// The path and query of the confirmation link in `mail`, after checking it is the app's.
fn confirm_path(server: &TestServer, mail: &Email) -> String {
    let page = server.url(ferrule::auth::confirmation::CONFIRM_PATH);
    let link = mail
        .links()
        .into_iter()
        .find(|l| l.starts_with(&page))
        .unwrap_or_else(|| panic!("no {page} link in {}", mail.text));
    link[server.url("").len()..].to_owned()
}

async fn verified(f: &Fixture, username: &str) -> bool {
    let auth = ferrule::auth::Auth::new(f.db.conn.clone());
    auth.find_by_username(username)
        .await
        .unwrap()
        .unwrap()
        .email_verified
}

async fn registration_mails_a_confirmation_link(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    let made = post(
        &f.server,
        "/_auth/register",
        None,
        json!({"username": "carol", "email": "carol@example.com", "password": "carol-sings-42"}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let cookie = made.cookie("ferrule_session").expect("logged in at once");
    assert_eq!(
        who(&f.server, &cookie).await,
        "carol",
        "optional: the account works"
    );
    assert!(!verified(&f, "carol").await);
    let mail = f.outbox.nth_to("carol@example.com", 0, WAIT).await.unwrap();
    let followed = f.server.get(&confirm_path(&f.server, &mail)).await.unwrap();
    assert_eq!(followed.status, 303);
    assert_eq!(followed.header("location"), Some("/"));
    assert!(verified(&f, "carol").await);
    // Accounts made before confirmation existed, or by the app, count as confirmed.
    assert!(verified(&f, "alice").await);
    f.db.cleanup().await;
}

async fn required_confirmation_holds_logins_until_the_link(backend: Backend) {
    let required = Settings {
        email_verification: ferrule::EmailVerification::Required,
        ..settings()
    };
    let Some(f) = fixture(backend, required).await else {
        return;
    };
    let no_email = post(
        &f.server,
        "/_auth/register",
        None,
        json!({"username": "dave", "password": "dave-dives-42"}),
    )
    .await;
    assert_eq!(no_email.status, 400, "{}", no_email.text());
    let made = post(
        &f.server,
        "/_auth/register",
        None,
        json!({"username": "dave", "email": "dave@example.com", "password": "dave-dives-42"}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json().unwrap()["confirm"], true);
    if let Some(cookie) = made.cookie("ferrule_session") {
        assert_eq!(who(&f.server, &cookie).await, "anonymous");
    }
    let first = f.outbox.nth_to("dave@example.com", 0, WAIT).await.unwrap();
    let login = post(
        &f.server,
        "/_auth/login",
        None,
        json!({"username": "dave", "password": "dave-dives-42"}),
    )
    .await;
    assert_eq!(login.status, 403, "{}", login.text());
    assert_eq!(
        login.json().unwrap()["error"],
        ferrule::auth::confirmation::NOT_CONFIRMED
    );
    // The refused login mailed a fresh link; the first still works too.
    f.outbox
        .nth_to("dave@example.com", 1, WAIT)
        .await
        .expect("a new link");
    assert_eq!(
        f.server
            .get(&confirm_path(&f.server, &first))
            .await
            .unwrap()
            .status,
        303
    );
    let cookie = f.server.login("dave", "dave-dives-42").await.unwrap();
    assert_eq!(who(&f.server, &cookie).await, "dave");
    f.db.cleanup().await;
}

async fn a_new_address_counts_once_confirmed_there(backend: Backend) {
    let Some(f) = fixture(backend, settings()).await else {
        return;
    };
    let cookie = f.server.login("alice", "wonderland1").await.unwrap();
    let change = |email: &'static str, password: &'static str| {
        let (server, cookie) = (&f.server, cookie.clone());
        async move {
            post(
                server,
                "/_auth/email",
                Some(&cookie),
                json!({"email": email, "password": password}),
            )
            .await
        }
    };
    assert_eq!(
        change("alice@new.example", "wrong-password").await.status,
        400
    );
    assert_eq!(change("not-an-address", "wonderland1").await.status, 400);
    // Another account's address: the same answer, and no mail to it.
    let taken = change("amelie@example.com", "wonderland1").await;
    let asked = change("alice@new.example", "wonderland1").await;
    assert_eq!(asked.status, 202, "{}", asked.text());
    assert_eq!(taken.json().unwrap(), asked.json().unwrap());
    let mail = f.outbox.nth_to("alice@new.example", 0, WAIT).await.unwrap();
    let auth = ferrule::auth::Auth::new(f.db.conn.clone());
    let email = |u: Option<ferrule::User>| u.unwrap().email;
    assert_eq!(
        email(auth.find_by_username("alice").await.unwrap()).as_deref(),
        Some("alice@example.com"),
        "unchanged until confirmed"
    );
    let path = confirm_path(&f.server, &mail);
    assert_eq!(f.server.get(&path).await.unwrap().status, 303);
    assert_eq!(
        email(auth.find_by_username("alice").await.unwrap()).as_deref(),
        Some("alice@new.example")
    );
    // Used once: the same link again changes nothing (its flash says it is dead).
    assert_eq!(f.server.get(&path).await.unwrap().status, 303);
    jobs_settle(&f.db).await;
    assert!(f.outbox.sent_to("amelie@example.com").is_empty());
    f.db.cleanup().await;
}

on_both!(
    registration_mails_a_confirmation_link,
    required_confirmation_holds_logins_until_the_link,
    a_new_address_counts_once_confirmed_there,
    a_reset_link_sets_the_password_once_and_ends_every_session,
    an_unknown_address_gets_the_same_answer_and_no_mail,
    dead_links_and_refused_passwords,
    a_password_changed_since_voids_the_link,
    asking_is_throttled_per_email_and_per_client,
    the_mail_is_in_the_accounts_language,
    a_plain_form_lands_on_its_next_page_with_the_answer,
);

/// An SMTP server on loopback that takes every message and hands over its DATA.
async fn smtp_server(listener: tokio::net::TcpListener) -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            tx.send(data.take().unwrap()).await.unwrap();
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 test\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_carries_both_parts_and_a_failed_send_is_retried() {
    // Nothing listens yet: the first attempt fails and the job waits for its retry.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let app = App::new()
        .settings(Settings {
            jobs_poll_ms: 50,
            mail_url: Some(format!("smtp://127.0.0.1:{port}")),
            mail_from: "Shop <noreply@shop.example>".to_owned(),
            ..Settings::default()
        })
        .database(db.conn.clone());
    let server = TestServer::start(app).await.unwrap();
    let email = Email::new("ada@example.com", "Your order", "It ships today.")
        .html("<p>It <b>ships</b> today.</p>");
    let job = ferrule::mail::send_later(&db.conn, email)
        .await
        .unwrap()
        .id();
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        let row = ferrule::jobs::find(&db.conn, job).await.unwrap().unwrap();
        if row.attempts >= 1 && row.state == JobState::Pending {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "{row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(failed.last_error.unwrap().contains("mail server"));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut received = smtp_server(listener).await;
    let data = tokio::time::timeout(WAIT, received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(data.contains("Subject: Your order"), "{data}");
    assert!(data.contains("From: Shop <noreply@shop.example>"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(
        data.contains("text/plain") && data.contains("text/html"),
        "{data}"
    );
    jobs_settle(&db).await;
    let row = ferrule::jobs::find(&db.conn, job).await.unwrap().unwrap();
    assert_eq!(row.state, JobState::Done);
    server.stop().await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn a_bad_address_is_refused_when_enqueued_and_transports_parse() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let bad = ferrule::mail::send_later(&db.conn, Email::new("not an address", "Hi", "Hi")).await;
    assert!(bad.unwrap_err().to_string().contains("not an address"));
    assert!(
        ferrule::jobs::list(&db.conn, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for (url, ok) in [
        ("smtp://mail.example:587?tls=required", true),
        ("smtps://user:secret@mail.example", true),
        ("console", true),
        ("memory", true),
        ("file:/tmp/outbox", true),
        ("file:", false),
        ("pigeon://roof", false),
    ] {
        assert_eq!(Transport::parse(url).is_ok(), ok, "{url}");
    }
    let err = Settings {
        mail_url: Some("pigeon://user:secret@roof".into()),
        ..Settings::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("mail_url") && !err.contains("secret"), "{err}");
    let err = Settings {
        mail_from: "nobody".into(),
        ..Settings::default()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("mail_from"), "{err}");
    db.cleanup().await;
}

#[tokio::test]
async fn the_file_outbox_writes_one_whole_json_file_per_message() {
    let dir = std::env::temp_dir().join(format!("ferrule-outbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mailer = Mailer::new(
        Transport::parse(&format!("file:{}", dir.display())).unwrap(),
        "noreply@shop.example",
    )
    .unwrap();
    for n in 0..3 {
        mailer
            .send(&Email::new("ada@example.com", format!("n{n}"), "body"))
            .await
            .unwrap();
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let subjects: Vec<String> = files
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            assert_eq!(v["from"], "noreply@shop.example");
            v["subject"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut subjects = subjects;
    subjects.sort();
    assert_eq!(subjects, ["n0", "n1", "n2"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A test server whose app chose no mailer sends its mail nowhere: the console mailer would
/// print it and leave its HTML part in `mail/` of the crate's directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_server_without_a_mailer_leaves_no_mail_files() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let files = || std::fs::read_dir("mail").map_or(0, |d| d.count());
    let before = files();
    let server = TestServer::start(App::new().settings(settings()).database(db.conn.clone()))
        .await
        .unwrap();
    let registered = post(
        &server,
        "/_auth/register",
        None,
        json!({"username": "quiet", "email": "quiet@example.com", "password": "wonderland1"}),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    jobs_settle(&db).await;
    let sent = ferrule::jobs::list(&db.conn, Some(JobState::Done), 10)
        .await
        .unwrap();
    assert!(
        sent.iter().any(|j| j.name == "ferrule.send_mail"),
        "the confirmation was sent: {sent:?}"
    );
    assert_eq!(files(), before, "no file in mail/");
    server.stop().await.unwrap();
    db.cleanup().await;
}

/// A web process that runs no jobs enqueues the reset; a worker process (`app jobs work`) mails
/// the link, with the translations, the account links and the mailer a server would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_mails_what_web_processes_enqueue() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let outbox = Outbox::new();
    let web = App::new()
        .settings(Settings {
            jobs_concurrency: 0,
            ..settings()
        })
        .database(db.conn.clone())
        .mailer(Mailer::to_outbox(&outbox));
    web.auth()
        .unwrap()
        .create_user(NewUser {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            password: "wonderland1".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let server = TestServer::start(web).await.unwrap();
    let asked = post(
        &server,
        "/_auth/password_reset",
        None,
        json!({"email": "alice@example.com"}),
    )
    .await;
    assert_eq!(asked.status, 202);
    assert!(
        outbox
            .nth_to("alice@example.com", 0, Duration::from_millis(500))
            .await
            .is_none(),
        "the web process works no job"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = App::new()
        .settings(settings())
        .database(db.conn.clone())
        .mailer(Mailer::to_outbox(&outbox));
    let working = tokio::spawn(worker.work_with_shutdown(async {
        let _ = stopped.await;
    }));
    let mail = outbox
        .nth_to("alice@example.com", 0, WAIT)
        .await
        .expect("the worker mails it");
    token_of(&server, &mail);
    stop.send(()).unwrap();
    working.await.unwrap().unwrap();
    server.stop().await.unwrap();
    db.cleanup().await;
}
