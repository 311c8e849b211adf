//! The app binary's commands, run as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

fn counter(db: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_counter"));
    cmd.env(
        "DATABASE_URL",
        format!("sqlite://{}?mode=rwc", db.display()),
    )
    .env_remove("FERRULE_SUPERUSER_PASSWORD")
    .env("FERRULE_ADDR", "127.0.0.1:0")
    .env("FERRULE_LOG", "warn");
    cmd
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("counter-cmd-{}-{name}.sqlite3", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A fresh database file with the app's tables.
fn migrated_db(name: &str) -> std::path::PathBuf {
    let db = temp_db(name);
    let out = counter(&db).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

#[test]
fn serve_refuses_to_start_before_migrate() {
    let db = temp_db("unmigrated");
    let out = counter(&db).arg("serve").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run the `migrate` command first"), "{err}");
}

#[test]
fn migrate_then_createsuperuser_from_stdin_or_env() {
    let db = temp_db("admin");
    let out = counter(&db).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = counter(&db).arg("migrate").output().unwrap();
    assert!(again.status.success(), "migrate is idempotent");

    let mut child = counter(&db)
        .args([
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("superuser `root` created"));

    let dup = counter(&db)
        .args(["createsuperuser", "--username", "root"])
        .env("FERRULE_SUPERUSER_PASSWORD", "another password")
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));

    let changed = counter(&db)
        .args(["changepassword", "root"])
        .env("FERRULE_SUPERUSER_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!changed.status.success(), "the password rules apply");
    assert!(String::from_utf8_lossy(&changed.stderr).contains("at least 8"));
}

#[test]
fn routes_lists_states_and_auth_endpoints() {
    let db = temp_db("routes");
    let out = counter(&db).arg("routes").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("counter_state  increment, add, reset")
            || table.contains("counter_state  add, increment, reset"),
        "a line per state with its handlers: {table}"
    );
    assert!(table.contains("  timing\n"), "{table}");
    let out = counter(&db).args(["routes", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["states"]["counter_state"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "reset")
    );
}

#[test]
fn sigterm_stops_serve_cleanly_with_exit_code_zero() {
    use std::io::BufRead;
    let db = migrated_db("sigterm");
    let mut child = counter(&db)
        .arg("serve")
        .env("FERRULE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let listening = rx
        .iter()
        .find(|l| l.contains("listening on http://"))
        .expect("the server says where it listens");
    assert!(listening.contains("127.0.0.1:"), "{listening}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = rx.iter().collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

/// Runs `createsuperuser --username <user>` in a pseudo-terminal (util-linux `script`), typing
/// each answer once its prompt shows; returns whether it succeeded and what the terminal showed.
fn createsuperuser_at_a_terminal(
    db: &std::path::Path,
    user: &str,
    answers: &[&str],
) -> (bool, String) {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let command = format!(
        "{} createsuperuser --username {user}",
        env!("CARGO_BIN_EXE_counter")
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env_remove("FERRULE_SUPERUSER_PASSWORD")
        .env("FERRULE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    for (typed, answer) in answers.iter().enumerate() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while shown.lock().unwrap().matches("Password").count() <= typed {
            assert!(
                std::time::Instant::now() < deadline,
                "no prompt {}: {}",
                typed + 1,
                shown.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The prompt is written just before echo goes off: give it that moment.
        std::thread::sleep(std::time::Duration::from_millis(200));
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let shown = shown.lock().unwrap().clone();
    (status.success(), shown)
}

#[test]
fn at_a_terminal_the_password_is_asked_twice_without_echo() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not here to make a terminal");
        return;
    }
    let db = migrated_db("tty");

    let secret = "tty-secret-pass-1";
    let (ok, shown) = createsuperuser_at_a_terminal(&db, "ttyroot", &[secret, secret]);
    assert!(ok, "{shown}");
    assert!(shown.contains("Password (again)"), "{shown}");
    assert!(!shown.contains(secret), "the password was echoed: {shown}");
    assert!(shown.contains("superuser `ttyroot` created"), "{shown}");

    let typos = ["first-try-pass-1", "first-try-pass-2"];
    let (ok, shown) = createsuperuser_at_a_terminal(&db, "ttyother", &[typos; 3].concat());
    assert!(!ok, "three mismatches must fail: {shown}");
    assert!(shown.contains("differ"), "{shown}");
    assert!(shown.contains("no matching password in 3 tries"), "{shown}");
}

#[test]
fn a_database_that_cannot_be_opened_is_named_without_its_password() {
    let out = Command::new(env!("CARGO_BIN_EXE_counter"))
        .arg("migrate")
        .env("DATABASE_URL", "postgres://ada:hunter2@127.0.0.1:1/shop")
        .env("FERRULE_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the database postgres://ada:***@127.0.0.1:1/shop"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// A fresh directory to run the binary in, with `files` in it.
fn workdir(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("counter-cmd-{}-{name}-dir", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

#[test]
fn settings_lists_every_value_with_its_layer_and_hides_secrets() {
    let dir = workdir(
        "settings",
        &[
            (
                "Ferrule.toml",
                "login_url = \"/signin\"\n[app]\napi_key = \"sk_live_42\"\n",
            ),
            ("Ferrule.production.toml", "session_cookie = \"prod\"\n"),
            (
                ".env",
                "FERRULE_REFERRER_POLICY=no-referrer\nREDIS_URL=redis://:hunter2@cache:6379\n",
            ),
        ],
    );
    let db = temp_db("settings");
    let out = counter(&db)
        .arg("settings")
        .current_dir(&dir)
        .env("FERRULE_ENV", "production")
        .env("FERRULE_MAX_EVENT_BYTES", "2048")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no line for {key}: {text}"))
            .to_owned()
    };
    assert!(
        text.starts_with("environment: production (FERRULE_ENV)"),
        "{text}"
    );
    assert!(line("login_url").ends_with("Ferrule.toml"), "{text}");
    assert!(
        line("session_cookie").ends_with("Ferrule.production.toml"),
        "{text}"
    );
    assert!(
        line("referrer_policy").ends_with("FERRULE_REFERRER_POLICY in .env"),
        "{text}"
    );
    assert!(line("max_event_bytes").contains("2048"), "{text}");
    assert!(
        line("max_event_bytes").ends_with("FERRULE_MAX_EVENT_BYTES"),
        "{text}"
    );
    assert!(line("hsts_seconds").ends_with("default"), "{text}");
    assert!(
        line("production").ends_with("FERRULE_ENV=production"),
        "{text}"
    );
    assert!(line("database_url").ends_with("DATABASE_URL"), "{text}");
    assert!(line("app.api_key").contains("***"), "{text}");
    assert!(
        line("redis_url").contains("redis://:***@cache:6379"),
        "{text}"
    );
    assert!(
        !text.contains("sk_live_42") && !text.contains("hunter2"),
        "secrets are masked: {text}"
    );

    let out = counter(&db)
        .args(["settings", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let login = doc["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "login_url")
        .unwrap();
    assert_eq!(login["value"], "\"/signin\"");
    assert_eq!(login["source"], "Ferrule.toml");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_typo_in_the_settings_stops_every_command_naming_the_key_and_the_file() {
    let dir = workdir("typo", &[("Ferrule.toml", "login_ulr = \"/signin\"\n")]);
    let out = counter(&temp_db("typo"))
        .arg("settings")
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Ferrule.toml") && err.contains("`login_ulr`: not a Ferrule setting"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_database_url_may_live_in_the_settings_file() {
    let db = temp_db("from-file");
    let dir = workdir(
        "db-in-file",
        &[(
            "Ferrule.toml",
            &format!("database_url = \"sqlite://{}?mode=rwc\"\n", db.display()),
        )],
    );
    let out = counter(&db)
        .env_remove("DATABASE_URL")
        .arg("migrate")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists(), "migrate made the file the settings name");
    assert!(
        !dir.join("ferrule.sqlite3").exists(),
        "not the default file in the working directory"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
