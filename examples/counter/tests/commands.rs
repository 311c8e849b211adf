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
    let db = temp_db("sigterm");
    assert!(
        counter(&db)
            .arg("migrate")
            .output()
            .unwrap()
            .status
            .success()
    );
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
