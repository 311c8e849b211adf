//! Cheap floods against a real server on a real SQLite file: what one attacker can make the
//! server hold. Alone in its own test binary, so the process's resident memory is the server's.

mod dbsupport;

use std::time::Duration;

use dbsupport::{Backend, TestDb};
use ferrule::auth::{Auth, NewUser};
use ferrule::testing::TestServer;
use ferrule::{App, Settings};
use serde_json::json;

/// The process's resident memory in bytes (Linux).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// A JSON post with a CSRF token, from client address `ip` (the test server is a trusted proxy).
async fn post(server: &TestServer, ip: &str, path: &str, body: serde_json::Value) -> (u16, bool) {
    let (token, cookie) = server.csrf().await.unwrap();
    let resp = server
        .http(
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("x-csrftoken", token.as_str()),
                ("cookie", cookie.as_str()),
                ("x-forwarded-for", ip),
            ],
            body.to_string().as_bytes(),
        )
        .await
        .unwrap();
    (resp.status, resp.header("retry-after").is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_registrations_and_logins_leaves_memory_bounded() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    Auth::new(db.conn.clone())
        .create_user(NewUser {
            username: "alice".into(),
            password: "wonderland-42".into(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let settings = Settings {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..Settings::default()
    };
    let app = App::new().settings(settings).database(db.conn.clone());
    let server = std::sync::Arc::new(TestServer::start(app).await.unwrap());
    // The idle server, after one login has started the hashing pool.
    let (status, _) = post(
        &server,
        "10.0.0.1",
        "/_auth/login",
        json!({"username": "alice", "password": "wonderland-42"}),
    )
    .await;
    assert_eq!(status, 200);
    let idle = resident_bytes();

    // 1,000 requests, 200 at a time: registrations of a taken name and wrong logins, each from
    // its own address so that no throttle turns them away before the hash.
    let mut all = tokio::task::JoinSet::new();
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    let mut busy_without_retry_after = 0;
    for i in 0..1000u32 {
        let server = server.clone();
        all.spawn(async move {
            let ip = format!("10.{}.{}.{}", 1 + i / 60000, (i / 250) % 250, i % 250 + 1);
            if i % 2 == 0 {
                let body = json!({"username": "alice", "password": format!("taken-name-{i}-pw")});
                post(&server, &ip, "/_auth/register", body).await
            } else {
                let body = json!({"username": "alice", "password": format!("guess-{i}")});
                post(&server, &ip, "/_auth/login", body).await
            }
        });
        while all.len() >= 200 {
            let (status, retry) = all.join_next().await.unwrap().unwrap();
            *answers.entry(status).or_default() += 1;
            busy_without_retry_after += usize::from(status == 503 && !retry);
        }
    }
    while let Some(done) = all.join_next().await {
        let (status, retry) = done.unwrap();
        *answers.entry(status).or_default() += 1;
        busy_without_retry_after += usize::from(status == 503 && !retry);
    }
    let after = resident_bytes();
    let grown = after.saturating_sub(idle);
    eprintln!(
        "answers {answers:?}; resident {} MiB idle, {} MiB after",
        idle >> 20,
        after >> 20
    );
    assert!(
        grown < 200 << 20,
        "the flood grew the server by {} MiB (idle {} MiB)",
        grown >> 20,
        idle >> 20
    );
    // Every request got a real answer: refused as taken or wrong, or busy with a Retry-After.
    let expected: usize = [400, 401, 503]
        .iter()
        .map(|s| answers.get(s).copied().unwrap_or(0))
        .sum();
    assert_eq!(expected, 1000, "{answers:?}");
    assert_eq!(busy_without_retry_after, 0);
    assert!(
        answers.get(&400).copied().unwrap_or(0) > 0 && answers.get(&401).copied().unwrap_or(0) > 0,
        "registrations and logins both reached the password check: {answers:?}"
    );
    // And the owner still logs in once the flood is over.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = post(
        &server,
        "10.200.0.1",
        "/_auth/login",
        json!({"username": "alice", "password": "wonderland-42"}),
    )
    .await;
    assert_eq!(status, 200);
    drop(server);
    db.cleanup().await;
}
