//! The Fluent catalogues of every configured language: Ferrule's own texts and the app's, one
//! bundle per language, and the lookup that falls back to the default language.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// One `.ftl` file: its language, its name (for errors) and its text. `ferrule::locales!()`
/// lists an app's `locales/<language>/*.ftl` as these.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// The language directory it is in (`en`, `fr`, `pt-BR`).
    pub language: &'static str,
    /// The file's name.
    pub name: &'static str,
    /// The Fluent text.
    pub text: &'static str,
}

/// Ferrule's own texts (account forms, toasts, errors), in the languages it ships. A language it
/// does not ship gets the English ones, which the app may override in its own catalogue.
const BUILTIN: &[(&str, &str)] = &[
    ("en", include_str!("../../locales/en/ferrule.ftl")),
    ("fr", include_str!("../../locales/fr/ferrule.ftl")),
];

fn builtin(language: &str) -> &'static str {
    BUILTIN
        .iter()
        .find(|(l, _)| *l == language)
        .or_else(|| BUILTIN.iter().find(|(l, _)| *l == "en"))
        .map_or("", |(_, text)| text)
}

/// Says that `source`, of a language not configured, is not used.
fn left_out(source: &Source) {
    #[cfg(feature = "server")]
    tracing::warn!(
        language = source.language,
        file = source.name,
        "a catalogue of a language not in the `languages` setting is left out"
    );
    #[cfg(not(feature = "server"))]
    let _ = source;
}

/// A value a translation interpolates (`{ $name }`): text or a number.
#[derive(Clone, Debug)]
pub struct Arg(pub(crate) FluentValue<'static>);

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Self(FluentValue::from(s.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Self(FluentValue::from(s))
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Self(FluentValue::from(s.clone()))
    }
}

macro_rules! number_args {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(n: $t) -> Self {
                Self(FluentValue::from(n))
            }
        }
    )*};
}
number_args!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

/// Every configured language's bundle. The first language is the default: a key missing in
/// another language is looked up there (and logged once per language and key).
pub struct Catalogues {
    languages: Vec<LanguageIdentifier>,
    bundles: HashMap<String, FluentBundle<FluentResource>>,
    /// The Fluent texts of each language, Ferrule's then the app's: what a page ships to the
    /// browser for its language.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    texts: HashMap<String, Vec<String>>,
    /// Per language, a hash of what its catalogue script holds: the script's URL changes when
    /// a text does, so browsers may cache it for good.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    versions: HashMap<String, String>,
    missing: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogues")
            .field("languages", &self.languages())
            .finish_non_exhaustive()
    }
}

impl Catalogues {
    /// The catalogues of `languages` (the first is the default) from Ferrule's texts and the
    /// app's `sources`. A language tag that does not parse, or a file that is not valid Fluent,
    /// is an error naming it; a file of a language not configured is left out with a warning.
    pub fn new(languages: &[String], sources: &[Source]) -> Result<Self, String> {
        let mut texts: HashMap<String, Vec<String>> = HashMap::new();
        for language in languages {
            texts.insert(language.clone(), vec![builtin(language).to_owned()]);
        }
        for source in sources {
            if let Err((_, errors)) = FluentResource::try_new(source.text.to_owned()) {
                let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                return Err(format!(
                    "locales/{}/{} is not valid Fluent: {first}",
                    source.language, source.name
                ));
            }
            let Some(list) = texts.get_mut(source.language) else {
                left_out(source);
                continue;
            };
            list.push(source.text.to_owned());
        }
        Self::from_texts(languages, texts)
    }

    /// Catalogues from the Fluent texts of each language (what a page embeds for the browser).
    pub(crate) fn from_texts(
        languages: &[String],
        texts: HashMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        if languages.is_empty() {
            return Err("the `languages` setting lists no language".to_owned());
        }
        let mut ids = Vec::with_capacity(languages.len());
        let mut bundles = HashMap::new();
        for language in languages {
            let id: LanguageIdentifier = language
                .parse()
                .map_err(|e| format!("`{language}` in `languages` is not a language tag: {e}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![id.clone()]);
            // No Unicode isolation marks around arguments: they would show in plain-text
            // places (titles, toasts) and break comparisons in tests.
            bundle.set_use_isolating(false);
            for (i, text) in texts.get(language).into_iter().flatten().enumerate() {
                let resource = FluentResource::try_new(text.clone()).map_err(|(_, errors)| {
                    let first = errors.first().map(|e| e.to_string()).unwrap_or_default();
                    format!(
                        "catalogue {} of `{language}` is not valid Fluent: {first}",
                        i + 1
                    )
                })?;
                // An app's message of the same id as Ferrule's rewords it.
                bundle.add_resource_overriding(resource);
            }
            ids.push(id);
            bundles.insert(language.clone(), bundle);
        }
        let versions = languages
            .iter()
            .map(|language| {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::hash::DefaultHasher::new();
                languages.hash(&mut hasher);
                texts.get(language).hash(&mut hasher);
                texts.get(&languages[0]).hash(&mut hasher);
                (language.clone(), format!("{:016x}", hasher.finish()))
            })
            .collect();
        Ok(Self {
            languages: ids,
            bundles,
            texts,
            versions,
            missing: Mutex::default(),
        })
    }

    /// The configured languages, the default first.
    pub fn languages(&self) -> Vec<String> {
        self.languages.iter().map(ToString::to_string).collect()
    }

    /// The default language (the first configured).
    pub fn default_language(&self) -> String {
        self.languages[0].to_string()
    }

    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn identifiers(&self) -> &[LanguageIdentifier] {
        &self.languages
    }

    /// The version of `language`'s catalogue script (empty for a language not configured).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn version_of(&self, language: &str) -> &str {
        self.versions.get(language).map_or("", String::as_str)
    }

    /// Whether message `key` exists in `language` or in the default language.
    pub fn has(&self, language: &str, key: &str) -> bool {
        [language, self.languages[0].to_string().as_str()]
            .iter()
            .filter_map(|lang| self.bundles.get(*lang))
            .any(|bundle| bundle.has_message(key))
    }

    /// Whether `language` is one of the configured ones, as written there.
    pub fn supports(&self, language: &str) -> bool {
        self.bundles.contains_key(language)
    }

    /// The Fluent texts of `language`, Ferrule's then the app's.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn texts_of(&self, language: &str) -> &[String] {
        self.texts.get(language).map_or(&[], Vec::as_slice)
    }

    /// Message `key` in `language` with `args`; from the default language when `language`
    /// lacks it, and `key` itself when no language has it (both logged once).
    pub fn translate(&self, language: &str, key: &str, args: &[(&str, Arg)]) -> String {
        let default = self.languages[0].to_string();
        let chain = [language, default.as_str()];
        for (i, lang) in chain.iter().enumerate() {
            let Some(bundle) = self.bundles.get(*lang) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
                continue;
            };
            if i > 0 {
                self.note_missing(language, key);
            }
            let mut fluent_args = FluentArgs::new();
            for (name, value) in args {
                fluent_args.set(*name, value.0.clone());
            }
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if let Some(e) = errors.first() {
                self.note(language, key, &format!("formatting failed: {e}"));
            }
            return text.into_owned();
        }
        self.note_missing(language, key);
        key.to_owned()
    }

    fn note_missing(&self, language: &str, key: &str) {
        self.note(
            language,
            key,
            "no translation; the default language's is used",
        );
    }

    /// Logs a problem with `key` in `language` the first time only.
    fn note(&self, language: &str, key: &str, what: &str) {
        let first = self
            .missing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((language.to_owned(), key.to_owned()));
        if !first {
            return;
        }
        #[cfg(feature = "server")]
        tracing::warn!(language, key, "{what}");
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        web_sys::console::warn_1(&format!("ferrule: `{key}` in `{language}`: {what}").into());
        #[cfg(not(any(feature = "server", all(feature = "hydrate", target_arch = "wasm32"))))]
        let _ = what;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_EN: Source = Source {
        language: "en",
        name: "app.ftl",
        text: "greeting = Hello, { $name }!\nonly-english = Only in English\nlog-in = Sign in\n",
    };
    const APP_FR: Source = Source {
        language: "fr",
        name: "app.ftl",
        text: "greeting = Bonjour, { $name } !\n",
    };

    fn catalogues() -> Catalogues {
        Catalogues::new(&["en".to_owned(), "fr".to_owned()], &[APP_EN, APP_FR]).unwrap()
    }

    #[test]
    fn a_message_is_in_the_asked_language_with_its_arguments() {
        let c = catalogues();
        let args = [("name", Arg::from("Ada"))];
        assert_eq!(c.translate("fr", "greeting", &args), "Bonjour, Ada !");
        assert_eq!(c.translate("en", "greeting", &args), "Hello, Ada!");
    }

    #[test]
    fn a_missing_message_falls_back_to_the_default_language_then_to_its_key() {
        let c = catalogues();
        assert_eq!(c.translate("fr", "only-english", &[]), "Only in English");
        assert_eq!(c.translate("fr", "nowhere", &[]), "nowhere");
        assert_eq!(c.missing.lock().unwrap().len(), 2);
        // Logged once: a second lookup adds nothing.
        c.translate("fr", "only-english", &[]);
        assert_eq!(c.missing.lock().unwrap().len(), 2);
    }

    #[test]
    fn ferrules_texts_come_translated_and_an_app_may_reword_them() {
        let c = catalogues();
        assert_eq!(c.translate("fr", "ferrule-log-in", &[]), "Se connecter");
        let reworded = Source {
            language: "en",
            name: "app.ftl",
            text: "ferrule-log-in = Sign in\n",
        };
        let c = Catalogues::new(&["en".to_owned()], &[reworded]).unwrap();
        assert_eq!(c.translate("en", "ferrule-log-in", &[]), "Sign in");
    }

    #[test]
    fn a_bad_tag_or_bad_fluent_is_refused_with_its_name() {
        let err = Catalogues::new(&["en".to_owned(), "not a tag".to_owned()], &[]).unwrap_err();
        assert!(err.contains("`not a tag`"), "{err}");
        let broken = Source {
            language: "en",
            name: "app.ftl",
            text: "= no id\n",
        };
        let err = Catalogues::new(&["en".to_owned()], &[broken]).unwrap_err();
        assert!(err.contains("not valid Fluent"), "{err}");
    }
}
