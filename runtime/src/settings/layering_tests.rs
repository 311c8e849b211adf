//! The layers in real directories: which file and variable wins, what an error names, what
//! `app settings` shows.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Layers, Lookup, SettingsError};

/// A fresh directory of this test's own, with `files` in it.
fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrule-settings-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn lookup(cwd: &Path, vars: &[(&str, &str)]) -> Lookup {
    Lookup {
        working_dir: cwd.to_owned(),
        exe_dir: None,
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn source_of(layers: &Layers, key: &str) -> String {
    let entries = layers.entries().unwrap();
    entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no {key} in {entries:?}"))
        .source
        .clone()
}

#[test]
fn each_layer_wins_over_the_one_before() {
    let cwd = dir(
        "order",
        &[
            (
                "Ferrule.toml",
                "login_url = \"/file\"\nsession_cookie = \"file\"\nreferrer_policy = \"file\"\nmax_event_bytes = 1",
            ),
            (
                "Ferrule.production.toml",
                "session_cookie = \"production\"\nreferrer_policy = \"production\"\nmax_event_bytes = 2",
            ),
            (
                ".env",
                "FERRULE_REFERRER_POLICY=dotenv\nFERRULE_MAX_EVENT_BYTES=3\n",
            ),
        ],
    );
    let layers = Layers::gather(&lookup(
        &cwd,
        &[
            ("FERRULE_ENV", "production"),
            ("FERRULE_MAX_EVENT_BYTES", "4"),
        ],
    ))
    .unwrap();
    let s = layers.settings().unwrap();
    assert_eq!(s.login_url, "/file");
    assert_eq!(s.session_cookie, "production");
    assert_eq!(s.referrer_policy, "dotenv");
    assert_eq!(s.max_event_bytes, 4);
    assert_eq!(s.hsts_seconds, 365 * 24 * 3600, "untouched: the default");

    assert_eq!(source_of(&layers, "login_url"), "Ferrule.toml");
    assert_eq!(
        source_of(&layers, "session_cookie"),
        "Ferrule.production.toml"
    );
    assert_eq!(
        source_of(&layers, "referrer_policy"),
        "FERRULE_REFERRER_POLICY in .env"
    );
    assert_eq!(
        source_of(&layers, "max_event_bytes"),
        "FERRULE_MAX_EVENT_BYTES"
    );
    assert_eq!(source_of(&layers, "hsts_seconds"), "default");
    assert_eq!(
        layers.files(),
        [
            cwd.join("Ferrule.toml"),
            cwd.join("Ferrule.production.toml"),
            cwd.join(".env")
        ]
    );
}

#[test]
fn without_ferrule_env_no_environment_file_is_read() {
    let cwd = dir(
        "no-env",
        &[
            ("Ferrule.toml", "login_url = \"/file\""),
            ("Ferrule.production.toml", "login_url = \"/production\""),
        ],
    );
    let layers = Layers::gather(&lookup(&cwd, &[])).unwrap();
    assert_eq!(layers.settings().unwrap().login_url, "/file");
    assert!(layers.environment().is_none());
}

#[test]
fn ferrule_env_may_come_from_dotenv() {
    let cwd = dir(
        "env-in-dotenv",
        &[
            ("Ferrule.toml", "login_url = \"/file\""),
            ("Ferrule.staging.toml", "login_url = \"/staging\""),
            (".env", "FERRULE_ENV=staging\n"),
        ],
    );
    let layers = Layers::gather(&lookup(&cwd, &[])).unwrap();
    assert_eq!(layers.settings().unwrap().login_url, "/staging");
    assert_eq!(layers.environment().unwrap().name, "staging");
}

#[test]
fn a_real_variable_beats_dotenv() {
    let cwd = dir(
        "real-wins",
        &[(".env", "FERRULE_LOGIN_URL=/dotenv\nAPP_NAME=dotenv\n")],
    );
    let layers = Layers::gather(&lookup(
        &cwd,
        &[("FERRULE_LOGIN_URL", "/real"), ("APP_NAME", "real")],
    ))
    .unwrap();
    assert_eq!(layers.settings().unwrap().login_url, "/real");
    assert_eq!(source_of(&layers, "login_url"), "FERRULE_LOGIN_URL");
    assert_eq!(source_of(&layers, "app.name"), "APP_NAME");
}

#[test]
fn production_follows_the_environment_unless_a_layer_sets_it() {
    let cwd = dir("production", &[]);
    let with = |vars: &[(&str, &str)]| {
        let layers = Layers::gather(&lookup(&cwd, vars)).unwrap();
        (layers.settings().unwrap().production, layers)
    };
    let (production, layers) = with(&[("FERRULE_ENV", "production")]);
    assert_eq!(production, Some(true));
    assert_eq!(source_of(&layers, "production"), "FERRULE_ENV=production");
    assert_eq!(with(&[("FERRULE_ENV", "development")]).0, Some(false));
    assert_eq!(with(&[("FERRULE_ENV", "test")]).0, Some(false));
    assert_eq!(
        with(&[("FERRULE_ENV", "staging")]).0,
        None,
        "the build decides"
    );
    assert_eq!(with(&[]).0, None);
    let (production, _) = with(&[("FERRULE_ENV", "production"), ("FERRULE_PRODUCTION", "no")]);
    assert_eq!(production, Some(false), "a layer that says so wins");

    let cwd = dir(
        "production-file",
        &[("Ferrule.production.toml", "production = false")],
    );
    std::fs::write(cwd.join("Ferrule.toml"), "").unwrap();
    let layers = Layers::gather(&lookup(&cwd, &[("FERRULE_ENV", "production")])).unwrap();
    assert_eq!(layers.settings().unwrap().production, Some(false));
}

#[test]
fn the_file_beside_the_binary_is_read_when_the_working_directory_has_none() {
    let dist = dir(
        "dist",
        &[
            ("Ferrule.toml", "login_url = \"/dist\""),
            ("Ferrule.production.toml", "session_cookie = \"dist\""),
            (
                ".env",
                "FERRULE_REFERRER_POLICY=dist\nFERRULE_ENV=production\n",
            ),
        ],
    );
    let elsewhere = dir("elsewhere", &[]);
    let mut from = lookup(&elsewhere, &[]);
    from.exe_dir = Some(dist);
    let s = Layers::gather(&from).unwrap().settings().unwrap();
    assert_eq!(s.login_url, "/dist");
    assert_eq!(
        s.session_cookie, "dist",
        "its environment file and .env come along"
    );
    assert_eq!(s.referrer_policy, "dist");

    std::fs::write(elsewhere.join(".env"), "FERRULE_REFERRER_POLICY=here\n").unwrap();
    let s = Layers::gather(&from).unwrap().settings().unwrap();
    assert_eq!(
        s.referrer_policy, "here",
        "the working directory's .env wins"
    );

    std::fs::write(elsewhere.join("Ferrule.toml"), "login_url = \"/here\"").unwrap();
    let s = Layers::gather(&from).unwrap().settings().unwrap();
    assert_eq!(
        s.login_url, "/here",
        "the working directory's file comes first"
    );
}

#[test]
fn an_unknown_key_is_named_with_the_layer_that_wrote_it() {
    let cwd = dir(
        "unknown",
        &[
            ("Ferrule.toml", ""),
            ("Ferrule.production.toml", "run_midleware_chain = false"),
        ],
    );
    let err = Layers::gather(&lookup(&cwd, &[("FERRULE_ENV", "production")]))
        .unwrap()
        .settings()
        .unwrap_err();
    let SettingsError::File { path, message } = &err else {
        panic!("{err}")
    };
    assert_eq!(path, &cwd.join("Ferrule.production.toml"));
    assert!(
        message.starts_with("`run_midleware_chain`: not a Ferrule setting"),
        "{message}"
    );
    assert!(
        message.contains("run_middleware_chain"),
        "the known keys: {message}"
    );

    let cwd = dir("unknown-dotenv", &[(".env", "FERRULE_RUN_CHAIN=1\n")]);
    let err = Layers::gather(&lookup(&cwd, &[]))
        .unwrap()
        .settings()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(".env") && text.contains("FERRULE_RUN_CHAIN"),
        "{text}"
    );

    let cwd = dir("unknown-env", &[]);
    let err = Layers::gather(&lookup(
        &cwd,
        &[("FERRULE_LOGIN_URL", "/x"), ("FERRULE_PORT", "1")],
    ))
    .unwrap()
    .settings()
    .unwrap_err()
    .to_string();
    assert!(err.contains("environment variable FERRULE_PORT"), "{err}");

    let err = Layers::gather(&lookup(&cwd, &[("FERRULE_SECURE_COOKIES", "maybe")]))
        .unwrap()
        .settings()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("FERRULE_SECURE_COOKIES") && err.contains("maybe"),
        "{err}"
    );
}

#[test]
fn a_broken_file_is_named_with_its_line() {
    let cwd = dir(
        "broken",
        &[("Ferrule.toml", "addr = \"127.0.0.1:1\"\nlogin_url = \n")],
    );
    let err = match Layers::gather(&lookup(&cwd, &[])) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a broken file loads"),
    };
    assert!(
        err.contains("Ferrule.toml") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn a_check_after_parsing_names_the_layer_too() {
    let cwd = dir(
        "validate",
        &[("Ferrule.toml", "languages = [\"en\", \"not a tag\"]")],
    );
    let err = Layers::gather(&lookup(&cwd, &[]))
        .unwrap()
        .settings()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("languages") && err.contains("not a tag") && err.contains("Ferrule.toml"),
        "{err}"
    );
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Shop {
    currency: String,
    #[serde(default)]
    free_shipping_over: Option<u32>,
    mail: Mail,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Mail {
    host: String,
    #[serde(default)]
    password: String,
}

#[test]
fn the_apps_table_and_variables_make_its_type() {
    let cwd = dir(
        "app",
        &[
            (
                "Ferrule.toml",
                "login_url = \"/in\"\n[app]\ncurrency = \"EUR\"\n[app.mail]\nhost = \"smtp\"\n",
            ),
            (".env", "APP_MAIL__PASSWORD=hunter2\n"),
        ],
    );
    let layers = Layers::gather(&lookup(&cwd, &[("APP_FREE_SHIPPING_OVER", "50")])).unwrap();
    assert_eq!(
        layers.app::<Shop>().unwrap(),
        Shop {
            currency: "EUR".into(),
            free_shipping_over: Some(50),
            mail: Mail {
                host: "smtp".into(),
                password: "hunter2".into()
            },
        }
    );
    assert_eq!(
        layers.settings().unwrap().login_url,
        "/in",
        "[app] is not Ferrule's"
    );

    let report = layers.report().unwrap();
    assert!(report.contains("app.mail.password"), "{report}");
    assert!(!report.contains("hunter2"), "secrets are masked: {report}");
    assert!(report.contains("APP_FREE_SHIPPING_OVER"), "{report}");

    let err = Layers::gather(&lookup(&cwd, &[("APP_CURENCY", "USD")]))
        .unwrap()
        .app::<Shop>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("APP_CURENCY") && err.contains("currency"),
        "{err}"
    );
    let err = Layers::gather(&lookup(&cwd, &[("APP_FREE_SHIPPING_OVER", "lots")]))
        .unwrap()
        .app::<Shop>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("APP_FREE_SHIPPING_OVER") && err.contains("lots"),
        "{err}"
    );

    let bare = dir("app-missing", &[]);
    let err = Layers::gather(&lookup(&bare, &[]))
        .unwrap()
        .app::<Shop>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("app.currency") && err.contains("APP_CURRENCY"),
        "{err}"
    );
}

#[test]
fn the_database_and_redis_urls_are_settings_in_every_layer() {
    let cwd = dir(
        "urls",
        &[
            ("Ferrule.toml", "database_url = \"sqlite://file.sqlite3\"\n"),
            (".env", "REDIS_URL=redis://dotenv\n"),
        ],
    );
    let layers = Layers::gather(&lookup(&cwd, &[])).unwrap();
    let s = layers.settings().unwrap();
    assert_eq!(s.database_url.as_deref(), Some("sqlite://file.sqlite3"));
    assert_eq!(s.redis_url.as_deref(), Some("redis://dotenv"));
    assert_eq!(source_of(&layers, "redis_url"), "REDIS_URL in .env");

    let layers = Layers::gather(&lookup(
        &cwd,
        &[("DATABASE_URL", "postgres://shop:hunter2@db/shop")],
    ))
    .unwrap();
    assert_eq!(
        layers.settings().unwrap().database_url.as_deref(),
        Some("postgres://shop:hunter2@db/shop")
    );
    let report = layers.report().unwrap();
    assert!(report.contains("postgres://shop:***@db/shop"), "{report}");
    assert!(!report.contains("hunter2"), "{report}");

    let err = Layers::gather(&lookup(&cwd, &[("FERRULE_DATABASE_URL", "sqlite://x")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("FERRULE_DATABASE_URL") && err.contains("`DATABASE_URL`"),
        "{err}"
    );
}

#[test]
fn ferrule_config_names_the_file_and_its_environment_file_sits_beside_it() {
    let cwd = dir(
        "config",
        &[
            ("shop.toml", "login_url = \"/shop\""),
            ("shop.production.toml", "session_cookie = \"shop\""),
        ],
    );
    let s = Layers::gather(&lookup(
        &cwd,
        &[
            ("FERRULE_CONFIG", "shop.toml"),
            ("FERRULE_ENV", "production"),
        ],
    ))
    .unwrap()
    .settings()
    .unwrap();
    assert_eq!(
        (s.login_url.as_str(), s.session_cookie.as_str()),
        ("/shop", "shop")
    );
    let missing = Layers::gather(&lookup(&cwd, &[("FERRULE_CONFIG", "nope.toml")]));
    assert!(matches!(missing, Err(SettingsError::Read { .. })));
}

#[test]
fn an_environment_name_that_is_no_file_name_is_refused() {
    let cwd = dir("bad-env", &[("Ferrule.toml", "")]);
    let err = Layers::gather(&lookup(&cwd, &[("FERRULE_ENV", "../etc/passwd")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("FERRULE_ENV") && err.contains("../etc/passwd"),
        "{err}"
    );
}

#[test]
fn an_app_table_alone_is_no_error_for_ferrules_settings() {
    let s = super::Settings::from_toml("login_url = \"/in\"\n[app]\nanything = 1\n").unwrap();
    assert_eq!(s.login_url, "/in");
    let err = super::Settings::from_toml("app = 1").unwrap_err();
    assert!(err.contains("`app` must be a table"), "{err}");
}
