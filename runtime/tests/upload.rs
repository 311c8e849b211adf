//! `POST /_upload` with a real session: files reach the handler with the user, guards apply,
//! limits answer 413 and leave nothing on disk, and a large upload streams with bounded memory.

mod dbsupport;

use std::path::PathBuf;

use dbsupport::{Backend, TestDb};
use ferrule::auth::NewUser;
use ferrule::testing::{ClientOptions, TestServer};
use ferrule::upload::UploadedFile;
use ferrule::{App, Error, EventContext, Handlers, Settings, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Default, Serialize, Deserialize)]
struct ProfileState {
    uploader: Option<String>,
    files: Vec<String>,
    first_bytes: String,
    total: u64,
}

impl ProfileState {
    async fn avatar(&mut self, ctx: EventContext, files: Vec<UploadedFile>) -> Result<(), Error> {
        self.uploader = ctx.user().username().map(str::to_owned);
        self.files = files
            .iter()
            .map(|f| f.file_name.clone().unwrap_or_default())
            .collect();
        if let Some(f) = files.first() {
            let bytes = tokio::fs::read(&f.path).await?;
            self.first_bytes = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
        }
        self.total = files.iter().map(|f| f.size).sum();
        Ok(())
    }

    async fn bulk(&mut self, _: EventContext, files: Vec<UploadedFile>) {
        self.total = files.iter().map(|f| f.size).sum();
    }
}

impl ferrule::protocol::StateName for ProfileState {}

impl State for ProfileState {
    fn handlers(h: &mut Handlers<Self>) {
        h.upload("avatar", Self::avatar).login_required();
        h.upload("bulk", Self::bulk);
    }
}

/// A tab token of the browser's length.
const TAB_UP: &str = "tab-up-0123456789abcdef";

fn upload_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ferrule-upload-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn leftovers(dir: &PathBuf) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

async fn server(db: &TestDb, settings: Settings) -> TestServer {
    let app = App::new()
        .settings(settings)
        .database(db.conn.clone())
        .state::<ProfileState>();
    app.auth()
        .unwrap()
        .create_user(NewUser {
            username: "ada".into(),
            password: "analytical engine".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    TestServer::start(app).await.unwrap()
}

/// A fresh database, upload directory `name` and server spooling uploads there; `None` when the
/// database cannot be made outside CI.
async fn fixture(name: &str, settings: Settings) -> Option<(TestDb, PathBuf, TestServer)> {
    let db = TestDb::new(Backend::Sqlite).await?;
    let dir = upload_dir(name);
    let settings = Settings {
        upload_dir: Some(dir.clone()),
        ..settings
    };
    let server = server(&db, settings).await;
    Some((db, dir, server))
}

async fn login(server: &TestServer) -> String {
    server.login("ada", "analytical engine").await.unwrap()
}

const BOUNDARY: &str = "ferruleboundary42";

fn multipart(files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The session cookie of an anonymous browser: its page's socket made it (an upload without a
/// session is refused).
async fn anonymous(server: &TestServer) -> String {
    server.client().await.unwrap().cookies().unwrap()
}

/// Posts an upload as a browser would, from an anonymous one when `cookie` is `None`.
async fn post_upload(
    server: &TestServer,
    token: &str,
    handler: &str,
    cookie: Option<&str>,
    body: &[u8],
) -> ferrule::testing::TestResponse {
    let anonymous = match cookie {
        Some(_) => None,
        None => Some(anonymous(server).await),
    };
    let cookie = cookie.or(anonymous.as_deref());
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let mut headers = vec![
        ("content-type", ct.as_str()),
        ("ferrule-client-token", token),
        ("ferrule-event-handler", handler),
        ("ferrule-path", "/profile"),
    ];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    server
        .http("POST", "/_upload", &headers, body)
        .await
        .unwrap()
}

#[tokio::test]
async fn authenticated_upload_reaches_the_handler_and_the_tab() {
    let Some((db, dir, server)) = fixture("auth", Settings::default()).await else {
        return;
    };
    let cookie = login(&server).await;
    let mut tab = server
        .client_with(
            ClientOptions::default()
                .token(TAB_UP)
                .header("cookie", cookie.clone()),
        )
        .await
        .unwrap();
    let body = multipart(&[
        ("avatar", "me.png", b"PNG-BYTES-HERE"),
        ("avatar", "b.txt", b"hello"),
    ]);
    let resp = post_upload(
        &server,
        TAB_UP,
        "profile_state.avatar",
        Some(&cookie),
        &body,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let update: ferrule::StateUpdate = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(update.id, None);
    let delta = &update.delta["profile_state"];
    assert_eq!(delta["uploader"], "ada");
    assert_eq!(delta["files"], json!(["me.png", "b.txt"]));
    assert_eq!(delta["first_bytes"], "PNG-BYTES-HERE");
    assert_eq!(delta["total"], 19);
    let pushed = tab.next_update().await.unwrap();
    assert_eq!(pushed.id, None, "pushed to the tab");
    assert_eq!(pushed.delta["profile_state"]["uploader"], "ada");
    assert_eq!(
        leftovers(&dir),
        0,
        "temporary files are deleted after the handler"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn anonymous_upload_to_a_protected_handler_is_redirected() {
    let Some((db, dir, server)) = fixture("anon", Settings::default()).await else {
        return;
    };
    let resp = post_upload(
        &server,
        "tab-anon-0123456789abcdef",
        "profile_state.avatar",
        None,
        &multipart(&[("f", "a", b"x")]),
    )
    .await;
    assert_eq!(resp.status, 200);
    let update: ferrule::StateUpdate = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(update.events[0].path(), Some("/login?next=%2Fprofile"));
    assert!(update.delta.is_empty());
    assert_eq!(leftovers(&dir), 0);
    db.cleanup().await;
}

#[tokio::test]
async fn oversize_uploads_get_413_and_leave_nothing() {
    let settings = Settings {
        upload_max_file_bytes: 1000,
        upload_max_request_bytes: 1500,
        ..Settings::default()
    };
    let Some((db, dir, server)) = fixture("big", settings).await else {
        return;
    };
    let big = vec![b'x'; 1001];
    let resp = post_upload(
        &server,
        "tab-big-0123456789abcdef",
        "profile_state.bulk",
        None,
        &multipart(&[("f", "big.bin", &big)]),
    )
    .await;
    assert_eq!(resp.status, 413);
    assert!(
        resp.text()
            .contains("`big.bin` is larger than the limit of 1000 bytes"),
        "{}",
        resp.text()
    );
    let two = vec![b'y'; 800];
    let resp = post_upload(
        &server,
        "tab-big-0123456789abcdef",
        "profile_state.bulk",
        None,
        &multipart(&[("f", "a", &two), ("f", "b", &two)]),
    )
    .await;
    assert_eq!(resp.status, 413);
    assert!(
        resp.text().contains("1500 bytes per request"),
        "{}",
        resp.text()
    );
    assert_eq!(leftovers(&dir), 0, "no temporary file left behind");
    let ok = post_upload(
        &server,
        "tab-big-0123456789abcdef",
        "profile_state.bulk",
        None,
        &multipart(&[("f", "a", &two)]),
    )
    .await;
    assert_eq!(ok.status, 200, "the server keeps working");
    db.cleanup().await;
}

#[tokio::test]
async fn an_upload_may_have_as_many_files_as_the_setting_and_not_one_more() {
    let settings = Settings {
        upload_max_files: 3,
        ..Settings::default()
    };
    let Some((db, dir, server)) = fixture("parts", settings).await else {
        return;
    };
    let part: &[u8] = b"1234";
    let three = [("f", "a", part), ("f", "b", part), ("f", "c", part)];
    let ok = post_upload(
        &server,
        "tab-parts-0123456789abcdef",
        "profile_state.bulk",
        None,
        &multipart(&three),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let four = [
        ("f", "a", part),
        ("f", "b", part),
        ("f", "c", part),
        ("f", "d", part),
    ];
    let refused = post_upload(
        &server,
        "tab-parts-0123456789abcdef",
        "profile_state.bulk",
        None,
        &multipart(&four),
    )
    .await;
    assert_eq!(refused.status, 413);
    assert!(
        refused.text().contains("more than 3 files"),
        "{}",
        refused.text()
    );
    assert_eq!(leftovers(&dir), 0, "no temporary file left behind");
    db.cleanup().await;
}

#[tokio::test]
async fn missing_or_bad_headers_are_named() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = server(&db, Settings::default()).await;
    let body = multipart(&[("f", "a", b"x")]);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let cookie = anonymous(&server).await;
    let no_token = server
        .http(
            "POST",
            "/_upload",
            &[
                ("content-type", &ct),
                ("ferrule-event-handler", "profile_state.bulk"),
                ("cookie", &cookie),
            ],
            &body,
        )
        .await
        .unwrap();
    assert_eq!(no_token.status, 400);
    assert!(
        no_token
            .text()
            .contains("missing header ferrule-client-token")
    );
    let not_upload = post_upload(
        &server,
        "tab-h-0123456789abcdef",
        "profile_state.nope",
        None,
        &body,
    )
    .await;
    assert_eq!(not_upload.status, 400);
    assert!(
        not_upload.text().contains("ferrule-event-handler"),
        "{}",
        not_upload.text()
    );
    let bad_token = post_upload(&server, "bad token!", "profile_state.bulk", None, &body).await;
    assert!(
        bad_token
            .text()
            .contains("invalid header ferrule-client-token")
    );
    // And upload handlers cannot be reached as socket events with forged file paths.
    let mut c = server.client().await.unwrap();
    let u = c
        .call("profile_state.bulk", json!([{"field": "f", "file_name": null, "content_type": null, "size": 1, "path": "/etc/passwd"}]))
        .await
        .unwrap();
    assert!(
        u.events[0]
            .message()
            .unwrap()
            .contains("POST them to /_upload")
    );
    db.cleanup().await;
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_100_mb_upload_streams_with_bounded_memory() {
    let settings = Settings {
        upload_max_file_bytes: 200 << 20,
        upload_max_request_bytes: 200 << 20,
        ..Settings::default()
    };
    let Some((db, dir, server)) = fixture("huge", settings).await else {
        return;
    };
    const SIZE: usize = 100 << 20;
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"huge.bin\"\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let len = head.len() + SIZE + tail.len();
    let cookie = anonymous(&server).await;
    let before = peak_rss_kib();
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let req = format!(
        "POST /_upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\nFerrule-Client-Token: tab-huge-0123456789abcdef\r\nFerrule-Event-Handler: profile_state.bulk\r\nCookie: {cookie}\r\n\r\n{head}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let chunk = vec![b'z'; 64 << 10];
    for _ in 0..SIZE / chunk.len() {
        s.write_all(&chunk).await.unwrap();
    }
    s.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(answer.contains(&format!("\"total\":{SIZE}")));
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("100 MiB upload: peak RSS of the test process grew by {grown_mib} MiB");
    assert!(
        grown_mib < 64,
        "the upload was buffered in memory: +{grown_mib} MiB"
    );
    assert_eq!(leftovers(&dir), 0);
    db.cleanup().await;
}
