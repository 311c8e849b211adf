//! Where settings come from, each layer over the one before:
//!
//! 1. Ferrule's defaults ([`Settings::default`]);
//! 2. the settings file: the one `FERRULE_CONFIG` names, else `Ferrule.toml` in the working
//!    directory, else `Ferrule.toml` beside the app's binary (a directory shipped whole);
//! 3. the environment's file beside it, `Ferrule.<FERRULE_ENV>.toml`;
//! 4. `.env` beside the settings file, then `.env` in the working directory: never over a real
//!    variable;
//! 5. the environment: `FERRULE_<KEY>`, `DATABASE_URL`, `REDIS_URL`, `APP_<KEY>`.
//!
//! figment merges them and remembers which layer gave each value. Its own TOML and environment
//! providers are not used: the files are read with the `toml` the runtime already has (figment's
//! would bring a second one), and the variables come from a list the caller gives (tests), with
//! `.env`'s among them, and map to two tables, Ferrule's and the app's.

use std::path::{Path, PathBuf};

use figment::value::Value;
use figment::{Figment, Metadata};
use serde::de::DeserializeOwned;

use super::sources::{DOTENV, ENVIRONMENT, GIVEN, Layer, dotenv};
use super::vars::{self, APP, FERRULE};
use super::{Settings, SettingsError};

/// The settings file looked for when `FERRULE_CONFIG` names none.
pub(crate) const FILE_NAME: &str = "Ferrule.toml";

/// Where to look for the layers.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// The working directory: its `Ferrule.toml` first, its `.env` last.
    pub working_dir: PathBuf,
    /// The directory of the app's binary: its `Ferrule.toml` when the working directory has
    /// none.
    pub exe_dir: Option<PathBuf>,
    /// The environment's variables.
    pub vars: Vec<(String, String)>,
}

impl Lookup {
    /// This process's working directory, binary and environment.
    pub fn of_process() -> Self {
        Self {
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(Path::to_owned)),
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }
}

/// The environment the layers were read for (`FERRULE_ENV`), and where its name was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `production`, `development`, `test`, or any other name.
    pub name: String,
    /// `FERRULE_ENV`, or the `.env` file that set it.
    pub set_in: String,
}

/// Ferrule's settings and the app's `[app]` table merged from every layer, each value knowing
/// the layer it came from.
pub struct Layers {
    pub(super) figment: Figment,
    pub(super) environment: Option<Environment>,
    /// The files read, in order.
    pub(super) files: Vec<PathBuf>,
}

/// Where a value came from.
pub(super) enum Origin {
    /// Not set by any layer.
    Default,
    /// A settings file.
    File(PathBuf),
    /// A `.env` file, and the variable in it.
    DotEnv(PathBuf, String),
    /// A variable of the environment.
    Env(String),
    /// The settings the app gave ([`Settings::apply_env`] starts from them).
    Given,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => f.write_str(&name(path).unwrap_or_default()),
            Self::DotEnv(path, var) => write!(f, "{var} in {}", name(path).unwrap_or_default()),
            Self::Env(var) => f.write_str(var),
            Self::Given => f.write_str("given by the app"),
        }
    }
}

/// A `.env` file's variables, and where it is.
type DotEnv = (Vec<(String, String)>, PathBuf);

/// The value of variable `name` in `list`.
fn var(list: &[(String, String)], name: &str) -> Option<String> {
    list.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// The settings file: the one `FERRULE_CONFIG` names (in the environment or the working
/// directory's `.env`), else the first `Ferrule.toml` of the working directory and the binary's.
fn settings_file(lookup: &Lookup, cwd_env: &[(String, String)]) -> Option<PathBuf> {
    let cwd = &lookup.working_dir;
    match var(&lookup.vars, "FERRULE_CONFIG").or_else(|| var(cwd_env, "FERRULE_CONFIG")) {
        Some(named) => Some(cwd.join(named)),
        None => [Some(cwd.as_path()), lookup.exe_dir.as_deref()]
            .into_iter()
            .flatten()
            .map(|dir| dir.join(FILE_NAME))
            .find(|path| path.is_file()),
    }
}

/// The `.env` files in the order they apply: beside the settings file (in `dir`), then the
/// working directory's over it.
fn dotenv_files(dir: &Path, cwd: &Path, cwd_env: DotEnv) -> Result<Vec<DotEnv>, SettingsError> {
    let same = match (dir.canonicalize(), cwd.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => dir == cwd,
    };
    let mut files = Vec::new();
    if !same {
        let path = dir.join(DOTENV);
        files.push((dotenv(&path)?, path));
    }
    files.push(cwd_env);
    Ok(files)
}

/// The environment `FERRULE_ENV` names: a real variable, else the nearest `.env`'s. Its name
/// becomes part of a file name, so it may hold letters, digits, `-` and `_` only.
fn environment(lookup: &Lookup, dotenvs: &[DotEnv]) -> Result<Option<Environment>, SettingsError> {
    let environment = match var(&lookup.vars, "FERRULE_ENV") {
        Some(name) => Some(Environment {
            name,
            set_in: "FERRULE_ENV".to_owned(),
        }),
        None => dotenvs.iter().rev().find_map(|(list, path)| {
            Some(Environment {
                name: var(list, "FERRULE_ENV")?,
                set_in: format!("FERRULE_ENV in {}", path.display()),
            })
        }),
    };
    match environment {
        Some(env)
            if env.name.is_empty()
                || !env
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Err(SettingsError::Env {
                message: format!(
                    "`{}` cannot name an environment (letters, digits, `-` and `_`: it names a file)",
                    env.name
                ),
                name: env.set_in,
            })
        }
        other => Ok(other),
    }
}

/// The environment's file beside `file`: `Ferrule.production.toml` for `Ferrule.toml`.
fn environment_file(file: &Path, environment: &Environment) -> Option<PathBuf> {
    let stem = file.file_stem()?.to_string_lossy();
    let path = file.with_file_name(format!("{stem}.{}.toml", environment.name));
    path.is_file().then_some(path)
}

impl Layers {
    /// The layers of this process: its working directory, its binary's directory and its
    /// environment ([`Lookup::of_process`]).
    pub fn load() -> Result<Self, SettingsError> {
        Self::gather(&Lookup::of_process())
    }

    /// The layers `lookup` finds, in the order of this module's list.
    pub fn gather(lookup: &Lookup) -> Result<Self, SettingsError> {
        let cwd = &lookup.working_dir;
        let cwd_env_path = cwd.join(DOTENV);
        let cwd_env = (dotenv(&cwd_env_path)?, cwd_env_path);
        let file = settings_file(lookup, &cwd_env.0);
        let dir = file
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| cwd.clone(), Path::to_owned);
        let dotenvs = dotenv_files(&dir, cwd, cwd_env)?;
        let environment = environment(lookup, &dotenvs)?;
        let env_file = file
            .as_deref()
            .zip(environment.as_ref())
            .and_then(|(file, env)| environment_file(file, env));

        let mut figment = Figment::from(Layer::base());
        let mut files = Vec::new();
        for path in file.into_iter().chain(env_file) {
            figment = figment.merge(Layer::file(&path)?);
            files.push(path);
        }
        for (list, path) in dotenvs.into_iter().filter(|(_, path)| path.is_file()) {
            figment = figment.merge(Layer::vars(DOTENV, Some(&path), &list)?);
            files.push(path);
        }
        figment = figment.merge(Layer::vars(ENVIRONMENT, None, &lookup.vars)?);
        Ok(Self {
            figment,
            environment,
            files,
        })
    }

    /// One settings file alone (no environment, no `.env`).
    pub fn of_file(path: &Path) -> Result<Self, SettingsError> {
        Ok(Self {
            figment: Figment::from(Layer::base()).merge(Layer::file(path)?),
            environment: None,
            files: vec![path.to_owned()],
        })
    }

    /// TOML text alone, as if it were `Ferrule.toml`.
    pub fn of_toml(text: &str) -> Result<Self, SettingsError> {
        Ok(Self {
            figment: Figment::from(Layer::base()).merge(Layer::toml(text, Path::new(FILE_NAME))?),
            environment: None,
            files: Vec::new(),
        })
    }

    /// `settings` with the variables `vars` over them.
    pub(super) fn over(
        settings: &Settings,
        vars: Vec<(String, String)>,
    ) -> Result<Self, SettingsError> {
        let given = Value::serialize(settings).map_err(|e| SettingsError::Invalid {
            key: FERRULE.to_owned(),
            message: e.to_string(),
        })?;
        let mut dict = Layer::base().dict;
        dict.insert(FERRULE.to_owned(), given);
        Ok(Self {
            figment: Figment::from(Layer {
                metadata: Metadata::named(GIVEN),
                dict,
            })
            .merge(Layer::vars(ENVIRONMENT, None, &vars)?),
            environment: None,
            files: Vec::new(),
        })
    }

    /// The environment these layers were read for, when `FERRULE_ENV` named one.
    pub fn environment(&self) -> Option<&Environment> {
        self.environment.as_ref()
    }

    /// The files read, in the order they apply.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Ferrule's settings, checked ([`Settings::validate`]). Unset `production` follows the
    /// environment: on in `production`, off in `development` and `test`.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let ferrule = self.figment.focus(FERRULE);
        let mut settings: Settings = ferrule
            .extract_lossy()
            .map_err(|e| self.explain(FERRULE, e))?;
        if settings.production.is_none() {
            settings.production = self.production_of_environment();
        }
        settings.validate().map_err(|e| match e {
            SettingsError::Invalid { key, message } => {
                let message = match self.origin(&[FERRULE, &key]) {
                    Origin::Default => message,
                    from => format!("{message} (set by {from})"),
                };
                SettingsError::Invalid { key, message }
            }
            other => other,
        })?;
        Ok(settings)
    }

    /// What the environment says of `production` when no layer sets it.
    pub(super) fn production_of_environment(&self) -> Option<bool> {
        match self.environment.as_ref()?.name.as_str() {
            "production" => Some(true),
            "development" | "test" => Some(false),
            _ => None,
        }
    }

    /// The app's own settings: the `[app]` tables and `APP_*` variables as a `T`; a key `T`
    /// refuses or a value it cannot take is an error naming the key and where it was set.
    pub fn app<T: DeserializeOwned>(&self) -> Result<T, SettingsError> {
        self.figment
            .focus(APP)
            .extract_lossy()
            .map_err(|e| self.explain(APP, e))
    }

    /// Where the value at `path` (`["ferrule", "addr"]`) came from.
    pub(super) fn origin(&self, path: &[&str]) -> Origin {
        let Some(meta) = self.figment.find_metadata(&path.join(".")) else {
            return Origin::Default;
        };
        let file = meta.source.as_ref().and_then(|s| s.file_path());
        match (meta.name.as_ref(), file) {
            (DOTENV, Some(file)) => Origin::DotEnv(file.to_owned(), vars::variable(path)),
            (ENVIRONMENT, _) => Origin::Env(vars::variable(path)),
            (GIVEN, _) => Origin::Given,
            (_, Some(file)) => Origin::File(file.to_owned()),
            _ => Origin::Default,
        }
    }

    /// A figment error as a [`SettingsError`] that names the key and the layer that set it.
    fn explain(&self, section: &str, e: figment::Error) -> SettingsError {
        use figment::error::Kind;
        let mut path: Vec<String> = e.path.clone();
        // figment names the field in the path of some errors and not of others.
        let mut end_with = |field: &str| {
            if path.last().map(String::as_str) != Some(field) {
                path.push(field.to_owned());
            }
        };
        let unknown = matches!(e.kind, Kind::UnknownField(..));
        let message = match &e.kind {
            Kind::UnknownField(field, known) => {
                end_with(field);
                let what = if section == FERRULE {
                    "not a Ferrule setting"
                } else {
                    "not a key of the app's settings"
                };
                format!("{what} (known: {})", known.join(", "))
            }
            Kind::MissingField(field) => {
                end_with(field);
                let full: Vec<&str> = std::iter::once(section)
                    .chain(path.iter().map(String::as_str))
                    .collect();
                return SettingsError::Invalid {
                    key: full.join("."),
                    message: format!(
                        "missing: set it in [app] of {FILE_NAME} or as {}",
                        vars::variable(&full)
                    ),
                };
            }
            other => other.to_string(),
        };
        let full: Vec<&str> = std::iter::once(section)
            .chain(path.iter().map(String::as_str))
            .collect();
        let message = match self.figment.find_value(&full.join(".")) {
            Ok(Value::String(_, got)) if !unknown && !message.contains(got.as_str()) => {
                format!("{message} (got `{got}`)")
            }
            _ => message,
        };
        let key = if section == FERRULE {
            full[1..].join(".")
        } else {
            full.join(".")
        };
        match self.origin(&full) {
            Origin::Env(name) => SettingsError::Env { name, message },
            Origin::DotEnv(path, name) => SettingsError::File {
                path,
                message: format!("{name}: {message}"),
            },
            Origin::File(path) => SettingsError::File {
                path,
                message: format!("`{key}`: {message}"),
            },
            Origin::Default | Origin::Given => SettingsError::Invalid { key, message },
        }
    }
}
