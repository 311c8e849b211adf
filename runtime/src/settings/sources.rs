//! The layers' raw material: a settings file or a `.env` file read into the two tables
//! (Ferrule's keys, the app's `[app]`), and figment's view of one such table.

use std::path::Path;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::SettingsError;
use super::vars::{self, APP, FERRULE};

/// What a layer's metadata is named, so an origin can be told from it: a `.env` file,
pub(super) const DOTENV: &str = ".env";
/// the process's (or a test's) variables,
pub(super) const ENVIRONMENT: &str = "environment";
/// the settings an app gave ([`super::Settings::apply_env`] starts from them).
pub(super) const GIVEN: &str = "given";

/// One layer: a table made in advance, and what to call where it came from.
pub(super) struct Layer {
    pub(super) metadata: Metadata,
    pub(super) dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

impl Layer {
    /// The empty tables, so the app's settings extract even with no `[app]` anywhere.
    pub(super) fn base() -> Self {
        let mut dict = Dict::new();
        dict.insert(FERRULE.to_owned(), Value::from(Dict::new()));
        dict.insert(APP.to_owned(), Value::from(Dict::new()));
        Self {
            metadata: Metadata::named("default"),
            dict,
        }
    }

    /// The settings file at `path`.
    pub(super) fn file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::toml(&text, path)
    }

    /// TOML `text`, said to come from `path`.
    pub(super) fn toml(text: &str, path: &Path) -> Result<Self, SettingsError> {
        let dict = toml_tables(text).map_err(|message| SettingsError::File {
            path: path.to_owned(),
            message,
        })?;
        Ok(Self {
            metadata: Metadata::from("file", path),
            dict,
        })
    }

    /// Variables as a layer called `name` (a `.env` file's are from `source`); a name that
    /// cannot be a setting (`FERRULE_DATABASE_URL`) is refused, with its file.
    pub(super) fn vars(
        name: &'static str,
        source: Option<&Path>,
        list: &[(String, String)],
    ) -> Result<Self, SettingsError> {
        let dict = vars::layer(list).map_err(|(var, message)| match source {
            None => SettingsError::Env { name: var, message },
            Some(path) => SettingsError::File {
                path: path.to_owned(),
                message: format!("{var}: {message}"),
            },
        })?;
        let mut metadata =
            Metadata::named(name).interpolater(|_: &Profile, keys: &[&str]| vars::variable(keys));
        if let Some(path) = source {
            metadata = metadata.source(path);
        }
        Ok(Self { metadata, dict })
    }
}

/// A TOML text as the two tables: its `[app]` table apart, every other key Ferrule's. The
/// error names the line.
fn toml_tables(text: &str) -> Result<Dict, String> {
    let mut ferrule: Dict = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let message = e.message().trim().to_owned();
        match line {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        }
    })?;
    let mut dict = Dict::new();
    if let Some(app) = ferrule.remove(APP) {
        if !matches!(app, Value::Dict(..)) {
            return Err("`app` must be a table, `[app]`: the app's own settings".to_owned());
        }
        dict.insert(APP.to_owned(), app);
    }
    dict.insert(FERRULE.to_owned(), Value::from(ferrule));
    Ok(dict)
}

/// The variables of a `.env` file, or none when there is no such file.
pub(super) fn dotenv(path: &Path) -> Result<Vec<(String, String)>, SettingsError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bad = |e: dotenvy::Error| SettingsError::File {
        path: path.to_owned(),
        message: e.to_string(),
    };
    dotenvy::from_path_iter(path)
        .map_err(bad)?
        .map(|item| item.map_err(bad))
        .collect()
}
