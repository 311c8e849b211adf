//! The shop's own commands (`App::command`) through its binary, as a user runs them.

use std::process::{Command, Output};

fn shop(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env("FERRULE_LOG", "warn")
        .env("SHOP_DEMO_PASSWORD", "correct horse battery")
        .output()
        .unwrap()
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("shop-cmd-{}-{name}.sqlite3", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_the_apps_own_commands_beside_the_built_in_ones() {
    let db = temp_db("help");
    let out = shop(&db, &["--help"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    for line in ["demo-data", "ban", "unban", "migrate", "serve", "routes"] {
        assert!(
            help.contains(&format!("  {line} ")),
            "`{line}` in --help: {help}"
        );
    }
    assert!(help.contains("Ban USER"), "with its help: {help}");
}

#[test]
fn a_misspelt_command_is_refused_with_a_suggestion() {
    let db = temp_db("typo");
    let out = shop(&db, &["demo-dat"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("demo-data"), "did you mean: {err}");
}

#[test]
fn demo_data_then_ban_and_unban_a_user() {
    let db = temp_db("ban");
    let out = shop(&db, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = shop(&db, &["demo-data"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("demo data ready: users alice"));

    let out = shop(&db, &["ban", "carol"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "carol: banned");
    let out = shop(&db, &["unban", "carol"]);
    assert_eq!(text(&out.stdout).trim(), "carol: unbanned");

    let missing = shop(&db, &["ban"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("error: ban: expected one argument: USER"),
        "{}",
        text(&missing.stderr)
    );
    let nobody = shop(&db, &["ban", "nobody"]);
    assert_eq!(nobody.status.code(), Some(1), "an unknown user is an error");
}

#[test]
fn migrate_status_down_and_fresh() {
    let db = temp_db("migrate");
    let pending = shop(&db, &["migrate", "status"]);
    assert!(pending.status.success(), "{}", text(&pending.stderr));
    let listed = text(&pending.stdout);
    assert!(
        listed.contains("ferrule  pending  m0001_sessions_users_groups_permissions"),
        "{listed}"
    );
    assert!(listed.contains("app      pending  "), "{listed}");
    assert!(!listed.contains("applied"), "{listed}");

    assert!(shop(&db, &["migrate"]).status.success());
    let applied = text(&shop(&db, &["migrate", "status"]).stdout);
    assert!(!applied.contains("pending"), "{applied}");

    // Down rolls back the app's last migration only; migrate applies it again.
    let down = shop(&db, &["migrate", "down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let after_down = text(&shop(&db, &["migrate", "status"]).stdout);
    assert_eq!(after_down.matches("pending").count(), 1, "{after_down}");
    assert!(
        after_down
            .lines()
            .all(|l| !l.contains("pending") || l.starts_with("app")),
        "Ferrule's own stay: {after_down}"
    );
    assert!(shop(&db, &["migrate"]).status.success());
    assert!(shop(&db, &["demo-data"]).status.success());
    assert!(shop(&db, &["ban", "carol"]).status.success());

    // Fresh wants a yes, then starts every table over: the demo users are gone.
    let unconfirmed = shop(&db, &["migrate", "fresh"]);
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(text(&unconfirmed.stderr).contains("--yes"));
    assert!(
        shop(&db, &["ban", "carol"]).status.success(),
        "nothing dropped"
    );
    let fresh = shop(&db, &["migrate", "fresh", "--yes"]);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    let gone = shop(&db, &["ban", "carol"]);
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone.stdout));
    assert!(
        text(&gone.stderr).contains("no user carol"),
        "{}",
        text(&gone.stderr)
    );
    let status = text(&shop(&db, &["migrate", "status"]).stdout);
    assert!(!status.contains("pending"), "{status}");
}
