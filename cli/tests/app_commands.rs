//! The app's commands through `ferrule`, before anything is built: what `--help` lists and
//! how a typo is answered. (After a build, `cargo xtask test` checks that the app's own
//! commands are listed too, on the generated app.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::scratch;

/// `ferrule ARGS` in `cwd` with a target directory of its own, which stays empty unless
/// something is built.
fn ferrule(args: &[&str], cwd: &Path, target: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrule"));
    cmd.args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ferrule")
}

/// A new app in a scratch directory (no build) and a target directory for it.
fn new_app(what: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let parent = scratch(what);
    let target = parent.join("target");
    let made = ferrule(&["new", "bakery", "--no-git"], &parent, &target, &[]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (parent.join("bakery"), target)
}

#[test]
fn a_mistyped_command_is_answered_at_once_with_the_one_it_resembles() {
    let (app, target) = new_app("typo");
    let out = ferrule(&["mirgate"], &app, &target, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        stderr.starts_with("error: `mirgate` is not a command of bakery; did you mean `migrate`?"),
        "{stderr}"
    );
    assert!(
        !target.join("debug").exists(),
        "nothing was built before the answer"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "plain text when piped: {stderr:?}"
    );

    let forced = ferrule(&["mirgate"], &app, &target, &[("CLICOLOR_FORCE", "1")]);
    let coloured = String::from_utf8_lossy(&forced.stderr);
    assert!(
        coloured.starts_with("\u{1b}[") && coloured.contains("error:\u{1b}[0m"),
        "coloured where colours are asked for: {coloured:?}"
    );
    std::fs::remove_dir_all(app.parent().unwrap()).unwrap();
}

#[test]
fn help_lists_the_apps_commands_before_its_first_build() {
    let (app, target) = new_app("help");
    let out = ferrule(&["--help"], &app, &target, &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(
        help.contains("Commands of bakery (its own appear here after its first build):"),
        "{help}"
    );
    for line in [
        "migrate ",
        "createsuperuser ",
        "changepassword ",
        "settings ",
        "routes ",
        "serve ",
    ] {
        assert!(help.contains(&format!("\n  {line}")), "{line}: {help}");
    }
    assert!(!target.join("debug").exists(), "help builds nothing");

    // Outside an app, the same list says where it applies.
    let outside = ferrule(&["--help"], app.parent().unwrap(), &target, &[]);
    let help = String::from_utf8_lossy(&outside.stdout);
    assert!(
        help.contains("Commands of an app (in its directory):"),
        "{help}"
    );
    std::fs::remove_dir_all(app.parent().unwrap()).unwrap();
}
