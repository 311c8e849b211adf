//! The avatar upload through HTTP with a real tab: the update reaches the tab's socket, bad files
//! are refused with a message, and the size limit answers 413.

use ferrule::protocol::Action;
use ferrule::testing::{TestClient, TestDatabase, TestServer};
use serde_json::json;
use uploads::{AVATAR_MAX_BYTES, SetAvatar};

const BOUNDARY: &str = "uploadsboundary7";

fn multipart(name: &str, content_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn temp_dir(what: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("uploads-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn server(media: &std::path::Path, max_file: u64) -> TestServer {
    let settings = ferrule::Settings {
        upload_max_file_bytes: max_file,
        ..ferrule::Settings::default()
    };
    let db = TestDatabase::create("sqlite://uploads.sqlite3")
        .await
        .unwrap();
    let media = media.to_path_buf();
    TestServer::start_on(db, |db| {
        uploads::app_with_media(db, media).settings(settings)
    })
    .await
    .expect("the uploads app starts")
}

/// Uploads `body` as an avatar from `tab`, as the browser does (its token and cookies).
async fn post(tab: &TestClient, body: &[u8]) -> ferrule::testing::TestResponse {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    tab.upload(&SetAvatar::event_name(), &ct, body)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_avatar_is_stored_and_the_tab_sees_it() {
    let media = temp_dir("media");
    let server = server(&media, 1 << 20).await;
    let mut tab = server.client().await.unwrap();
    tab.hydrate().await.unwrap();
    let png = b"\x89PNG\r\n\x1a\nnot really an image but typed as one";
    let resp = post(&tab, &multipart("me.png", "image/png", png)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let pushed = tab.next_update().await.unwrap();
    assert_eq!(pushed.id, None, "a push, not an answer to an event");
    let delta = &pushed.delta["avatar_state"];
    assert_eq!(delta["file_name"], "me.png");
    assert_eq!(delta["size"], png.len());
    assert_eq!(delta["uploads"], 1);
    assert_eq!(pushed.events[0].message(), Some("Avatar updated."));
    let stored = delta["stored_as"].as_str().unwrap();
    assert!(stored.starts_with(media.to_str().unwrap()), "{stored}");
    assert_eq!(std::fs::read(stored).unwrap(), png, "the bytes are kept");
}

#[tokio::test]
async fn a_file_that_is_not_an_image_is_refused_and_changes_nothing() {
    let media = temp_dir("media");
    let server = server(&media, 1 << 20).await;
    let mut tab = server.client().await.unwrap();
    let resp = post(&tab, &multipart("notes.txt", "text/plain", b"hi")).await;
    let update: ferrule::StateUpdate = serde_json::from_value(resp.json().unwrap()).unwrap();
    assert!(update.delta.is_empty(), "{update:?}");
    let messages: Vec<_> = update.events.iter().filter_map(|e| e.message()).collect();
    assert!(
        messages.contains(&"An avatar must be an image."),
        "{messages:?}"
    );
    let full = tab.call("_hydrate", json!(null)).await.unwrap();
    assert_eq!(full.delta["avatar_state"]["uploads"], 0);
    assert_eq!(std::fs::read_dir(&media).unwrap().count(), 0);
}

#[tokio::test]
async fn a_file_over_the_limit_gets_413_naming_the_limit() {
    let media = temp_dir("media");
    let server = server(&media, 1024).await;
    let tab = server.client().await.unwrap();
    let big = vec![7u8; 4096];
    let resp = post(&tab, &multipart("big.png", "image/png", &big)).await;
    assert_eq!(resp.status, 413);
    assert!(resp.text().contains("1024"), "{}", resp.text());
    assert_eq!(std::fs::read_dir(&media).unwrap().count(), 0);
}

#[tokio::test]
async fn the_handlers_own_limit_applies_below_the_settings() {
    let media = temp_dir("media");
    let server = server(&media, 1 << 30).await;
    let mut tab = server.client().await.unwrap();
    let at_limit = vec![7u8; AVATAR_MAX_BYTES as usize];
    let resp = post(&tab, &multipart("big.png", "image/png", &at_limit)).await;
    assert_eq!(resp.status, 200, "at the limit: {}", resp.text());
    tab.next_update().await.unwrap();

    let one_past = vec![7u8; AVATAR_MAX_BYTES as usize + 1];
    let resp = post(&tab, &multipart("bigger.png", "image/png", &one_past)).await;
    assert_eq!(resp.status, 413, "one past: {}", resp.text());
    assert!(
        resp.text().contains(&AVATAR_MAX_BYTES.to_string()),
        "{}",
        resp.text()
    );
    tab.hydrate().await.unwrap();
    assert_eq!(
        tab.state::<uploads::AvatarState>().unwrap().uploads,
        1,
        "the refused upload changed nothing"
    );
    assert_eq!(std::fs::read_dir(&media).unwrap().count(), 1);
}
