//! `app settings`: every merged value with the layer it came from, secrets masked.

use serde::Serialize;
use serde_json::Value as Json;

use super::layers::Layers;
use super::vars::{APP, FERRULE};
use super::{Settings, SettingsError};

/// One value of the merged settings, as `app settings` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The key: `addr` for Ferrule's, `app.mail.host` for the app's.
    pub key: String,
    /// The value as JSON, or `***` for a secret ([`mask`]).
    pub value: String,
    /// Where it came from: `default`, a file's name, a variable (`FERRULE_ADDR`,
    /// `APP_GREETING in .env`).
    pub source: String,
}

/// `value` as it may be shown for `key`: `***` when the key names a secret (it contains
/// `secret`, `password`, `key` or `token`), and a URL's password hidden.
pub(super) fn mask(key: &str, value: &Json) -> String {
    let key = key.to_ascii_lowercase();
    let secret = ["secret", "password", "key", "token"]
        .iter()
        .any(|word| key.contains(word));
    match value {
        Json::Null => "(unset)".to_owned(),
        _ if secret => "***".to_owned(),
        Json::String(s) if s.contains("://") => Json::String(crate::db::redact(s)).to_string(),
        other => other.to_string(),
    }
}

impl Layers {
    /// Every value of Ferrule's settings (all of them, defaults too), then every key of the
    /// app's, each with its source and secrets masked.
    pub fn entries(&self) -> Result<Vec<Entry>, SettingsError> {
        let settings = self.settings()?;
        let mut entries = Vec::new();
        let ferrule = serde_json::to_value(&settings).map_err(|e| SettingsError::Invalid {
            key: FERRULE.to_owned(),
            message: e.to_string(),
        })?;
        for (key, value) in ferrule.as_object().into_iter().flatten() {
            let mut source = self.origin(&[FERRULE, key]).to_string();
            if key == "production"
                && source == "default"
                && let (Some(_), Some(env)) = (self.production_of_environment(), self.environment())
            {
                // `FERRULE_ENV=production`, or `FERRULE_ENV=production in /srv/shop/.env`.
                let rest = env.set_in.strip_prefix("FERRULE_ENV").unwrap_or_default();
                source = format!("FERRULE_ENV={}{rest}", env.name);
            }
            entries.push(Entry {
                key: key.clone(),
                value: mask(key, value),
                source,
            });
        }
        let app = self.figment.find_value(APP).ok();
        let app = app.as_ref().map(serde_json::to_value).and_then(Result::ok);
        self.app_entries(&[APP], app.as_ref(), &mut entries);
        Ok(entries)
    }

    fn app_entries(&self, path: &[&str], value: Option<&Json>, out: &mut Vec<Entry>) {
        match value {
            Some(Json::Object(table)) => {
                for (key, inner) in table {
                    let mut deeper = path.to_vec();
                    deeper.push(key);
                    self.app_entries(&deeper, Some(inner), out);
                }
            }
            Some(value) => out.push(Entry {
                key: path.join("."),
                value: mask(&path.join("."), value),
                source: self.origin(path).to_string(),
            }),
            None => {}
        }
    }

    /// What `app settings` prints: the environment, the files read, then one line per value.
    pub fn report(&self) -> Result<String, SettingsError> {
        let entries = self.entries()?;
        let mut out = String::new();
        match self.environment() {
            Some(env) => out.push_str(&format!("environment: {} ({})\n", env.name, env.set_in)),
            None => out.push_str("environment: none (FERRULE_ENV is unset)\n"),
        }
        if self.files().is_empty() {
            out.push_str("files read: none (defaults and the environment only)\n");
        } else {
            out.push_str("files read, later over earlier:\n");
            for file in self.files() {
                out.push_str(&format!("  {}\n", file.display()));
            }
        }
        let key_width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
        let value_width = entries
            .iter()
            .map(|e| e.value.chars().count().min(40))
            .max()
            .unwrap_or(0);
        out.push_str(
            "\nkey, value, source (later layers win: default, files, .env, environment)\n",
        );
        for e in &entries {
            out.push_str(&format!(
                "  {:key_width$}  {:value_width$}  {}\n",
                e.key, e.value, e.source
            ));
        }
        if !entries.iter().any(|e| e.key.starts_with("app.")) {
            out.push_str("  (no [app] keys and no APP_* variables)\n");
        }
        Ok(out)
    }
}

impl Settings {
    /// These settings as `app settings` lists them when the app gave them itself
    /// ([`crate::App::settings`]): every value from the app.
    pub fn entries(&self) -> Vec<Entry> {
        let json = serde_json::to_value(self).unwrap_or_default();
        json.as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| Entry {
                key: key.clone(),
                value: mask(key, value),
                source: "given by the app (App::settings)".to_owned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_url_passwords_are_masked() {
        assert_eq!(mask("app.stripe_secret", &json!("sk_live_1")), "***");
        assert_eq!(mask("app.api_key", &json!("k")), "***");
        assert_eq!(mask("app.mail.password", &json!("hunter2")), "***");
        assert_eq!(mask("app.github_token", &json!(42)), "***");
        assert_eq!(
            mask("database_url", &json!("postgres://shop:hunter2@db/shop")),
            "\"postgres://shop:***@db/shop\""
        );
        assert_eq!(mask("addr", &json!("127.0.0.1:3000")), "\"127.0.0.1:3000\"");
        assert_eq!(mask("redis_url", &Json::Null), "(unset)");
    }
}
