//! Environment variables, real or from a `.env` file, as a settings layer: `FERRULE_<KEY>` sets
//! Ferrule's `key`, `APP_<KEY>` the app's (`__` for a nested table: `APP_MAIL__HOST` is
//! `[app.mail] host`), and `DATABASE_URL` / `REDIS_URL` set `database_url` / `redis_url` under
//! the names every database tool reads.

use figment::value::{Dict, Value};

/// The table Ferrule's own keys are kept under in the merged layers.
pub(super) const FERRULE: &str = "ferrule";
/// The table of the app's own keys (`[app]`).
pub(super) const APP: &str = "app";

/// `FERRULE_*` variables that are not settings: they choose the layers, or are read elsewhere.
pub(super) const OTHER_ENV: &[&str] = &[
    "FERRULE_CONFIG",
    "FERRULE_ENV",
    "FERRULE_LIVE_RELOAD",
    "FERRULE_LOG",
    "FERRULE_SITE_ROOT",
    "FERRULE_SUPERUSER_PASSWORD",
    "FERRULE_TEST_POSTGRES",
    "FERRULE_TEST_REDIS",
    "FERRULE_TEST_SKIPS",
    "FERRULE_WASM_MODE",
];

/// Ferrule's keys that are set by a variable without the `FERRULE_` prefix.
const PLAIN: &[(&str, &str)] = &[("DATABASE_URL", "database_url"), ("REDIS_URL", "redis_url")];

/// A variable that cannot be a setting: its name and why.
pub(super) type Refused = (String, String);

/// The layer `vars` make: `{ferrule: {..}, app: {..}}`, every value a string (the settings'
/// types parse them). Variables of no concern to settings are left out.
pub(super) fn layer(vars: &[(String, String)]) -> Result<Dict, Refused> {
    let mut dict = Dict::new();
    for (name, value) in vars {
        if let Some(&(_, key)) = PLAIN.iter().find(|(plain, _)| plain == name) {
            // An empty URL is as good as none, as it always was.
            if !value.trim().is_empty() {
                insert(&mut dict, &[FERRULE, key], value);
            }
        } else if let Some(key) = name.strip_prefix("FERRULE_") {
            if OTHER_ENV.contains(&name.as_str()) {
                continue;
            }
            if let Some((plain, _)) = PLAIN.iter().find(|(plain, _)| plain == &key) {
                return Err((
                    name.clone(),
                    format!("this setting's variable is `{plain}`, without FERRULE_"),
                ));
            }
            insert(&mut dict, &[FERRULE, &key.to_ascii_lowercase()], value);
        } else if let Some(key) = name.strip_prefix("APP_") {
            let lower = key.to_ascii_lowercase();
            let mut path = vec![APP];
            path.extend(lower.split("__"));
            if path.iter().any(|k| k.is_empty()) {
                return Err((name.clone(), "an empty key in the name".to_owned()));
            }
            insert(&mut dict, &path, value);
        }
    }
    Ok(dict)
}

/// The variable that sets the key at `path` (`["ferrule", "addr"]` → `FERRULE_ADDR`): the
/// inverse of [`layer`], for messages and `ferrule settings`.
pub(super) fn variable(path: &[&str]) -> String {
    match path {
        [FERRULE, key] => PLAIN
            .iter()
            .find(|(_, k)| k == key)
            .map(|(plain, _)| (*plain).to_owned())
            .unwrap_or_else(|| format!("FERRULE_{}", key.to_ascii_uppercase())),
        [FERRULE, rest @ ..] => format!("FERRULE_{}", rest.join("__").to_ascii_uppercase()),
        [APP, rest @ ..] => format!("APP_{}", rest.join("__").to_ascii_uppercase()),
        other => other.join("_").to_ascii_uppercase(),
    }
}

/// Puts `value` at `path` in `dict`, making the tables on the way.
fn insert(dict: &mut Dict, path: &[&str], value: &str) {
    let [first, rest @ ..] = path else { return };
    if rest.is_empty() {
        dict.insert((*first).to_owned(), Value::from(value.to_owned()));
        return;
    }
    let entry = dict
        .entry((*first).to_owned())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        // `APP_MAIL=x` and `APP_MAIL__HOST=y` both set: the table wins.
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn each_kind_of_variable_lands_under_its_key_and_the_name_comes_back() {
        let dict = layer(&vars(&[
            ("FERRULE_ADDR", "127.0.0.1:1"),
            ("DATABASE_URL", "sqlite://x"),
            ("APP_MAIL__HOST", "smtp"),
            ("FERRULE_LOG", "debug"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        let json = serde_json::to_value(&dict).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ferrule": {"addr": "127.0.0.1:1", "database_url": "sqlite://x"},
                "app": {"mail": {"host": "smtp"}}
            })
        );
        assert_eq!(variable(&["ferrule", "addr"]), "FERRULE_ADDR");
        assert_eq!(variable(&["ferrule", "database_url"]), "DATABASE_URL");
        assert_eq!(variable(&["app", "mail", "host"]), "APP_MAIL__HOST");
    }

    #[test]
    fn the_database_url_has_one_name() {
        let (name, why) = layer(&vars(&[("FERRULE_DATABASE_URL", "sqlite://x")])).unwrap_err();
        assert_eq!(name, "FERRULE_DATABASE_URL");
        assert!(why.contains("`DATABASE_URL`"), "{why}");
        let empty = layer(&vars(&[("DATABASE_URL", " ")])).unwrap();
        assert!(empty.is_empty(), "an empty URL is no URL: {empty:?}");
    }
}
