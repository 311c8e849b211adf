//! Languages and translations. A request's language ([`language_of`]) is negotiated among the
//! app's `languages` setting: the `language` cookie (set by `POST /_language`), then the
//! logged-in user's saved preference, then `Accept-Language`, then the first configured.
//! Texts come from Fluent catalogues ([`Catalogues`]): Ferrule's own and the app's
//! `locales/<language>/*.ftl` (listed at compile time by `ferrule::locales!()`), and
//! [`t!`](crate::t) translates in handlers, HTTP handlers and components, on the server and in
//! the browser.
//!
//! The browser gets the catalogue of its page's language only (and the default language's, for
//! keys the other lacks), as a small script of its own (`/_i18n/<language>.js?v=<hash>`) that
//! the page loads before the client and the browser caches: the client's wasm carries no
//! translations, so a new language costs it nothing, and the page's HTML holds no texts it
//! does not show.

#[cfg(feature = "server")]
use std::sync::Arc;

mod catalogues;

pub use catalogues::{Arg, Catalogues, Source};

/// The cookie that holds the language a visitor chose.
pub const LANGUAGE_COOKIE: &str = "language";

/// How long a browser keeps the `language` cookie: a year, as Django does.
pub const LANGUAGE_COOKIE_MAX_AGE_SECONDS: u64 = 365 * 24 * 60 * 60;

/// Where the language switcher posts (`language`, `next`, `csrf_token`).
pub const SET_LANGUAGE_PATH: &str = "/_language";

/// Where a language's catalogue script is served: `/_i18n/<language>.js`.
pub const SCRIPT_PREFIX: &str = "/_i18n/";

/// The global the catalogue script sets, which the client reads.
#[cfg_attr(not(any(feature = "server", target_arch = "wasm32")), allow(dead_code))]
const GLOBAL: &str = "__ferruleI18n";

/// The language a logged-in user saved, put in the request's extensions by the auth
/// middleware; negotiation takes it after the `language` cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferredLanguage(pub String);

/// Translates message `key` in the current language: `t!("greeting")`,
/// `t!("cart-added", name = product.name, count = 3)`. In a handler or an HTTP handler the
/// current language is its request's; in a component, the page's. A missing key falls back to
/// the default language, then to the key itself, and is logged once.
#[macro_export]
macro_rules! t {
    ($key:expr $(,)?) => {
        $crate::i18n::translate($key, &[])
    };
    ($key:expr, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::translate(
            $key,
            &[$((::core::stringify!($name), $crate::i18n::Arg::from($value))),+],
        )
    };
}

/// What [`t!`](crate::t) calls: `key` with `args` in the current language.
pub fn translate(key: &str, args: &[(&str, Arg)]) -> String {
    #[cfg(feature = "server")]
    if let Some(text) = on_request(|parts| translate_in(parts, key, args)) {
        return text;
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    if let Some(text) = browser::translate(key, args) {
        return text;
    }
    fallback().translate("en", key, args)
}

/// `f` of the request being served: a handler's or an HTTP handler's (scoped by
/// [`with_request`]), else the page being rendered (Leptos' context). `None` outside both.
#[cfg(feature = "server")]
fn on_request<R>(f: impl Fn(&http::request::Parts) -> Option<R>) -> Option<R> {
    if let Ok(Some(found)) = REQUEST.try_with(|parts| f(parts)) {
        return Some(found);
    }
    #[cfg(feature = "ssr")]
    if let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() {
        return f(&parts);
    }
    None
}

/// `key` in the language of the request `parts`, if the app's catalogues are in it.
#[cfg(feature = "server")]
pub fn translate_in(
    parts: &http::request::Parts,
    key: &str,
    args: &[(&str, Arg)],
) -> Option<String> {
    let catalogues = parts.extensions.get::<Arc<Catalogues>>()?;
    Some(catalogues.translate(&negotiate(catalogues, parts), key, args))
}

/// `text` in the current language when it is one of Ferrule's own English messages (an
/// error's public message, a refusal, a form rule's "At most 255 characters."), else `text` as
/// it is. Ferrule's lower layers write their messages in English; the edges that show them
/// (toasts, flash messages, field errors, error bodies) pass them through this.
pub fn localize(text: &str) -> String {
    if let Some(key) = english().plain.get(text) {
        return translate(key, &[]);
    }
    for (key, pieces) in &english().templates {
        if let Some(args) = fill(pieces, text) {
            return translate(key, &args);
        }
    }
    text.to_owned()
}

/// A piece of an English text: as it is, or a variable's place.
enum Piece {
    Text(&'static str),
    Variable(&'static str),
}

/// Ferrule's English messages, by text: those without arguments as they are, the others as
/// templates their texts are matched against.
struct English {
    plain: std::collections::HashMap<&'static str, &'static str>,
    templates: Vec<(&'static str, Vec<Piece>)>,
}

fn english() -> &'static English {
    static ENGLISH: std::sync::OnceLock<English> = std::sync::OnceLock::new();
    ENGLISH.get_or_init(|| {
        let mut english = English {
            plain: Default::default(),
            templates: Vec::new(),
        };
        let messages = include_str!("../../locales/en/ferrule.ftl")
            .lines()
            .filter_map(|line| line.split_once(" = "))
            .filter(|(key, _)| key.starts_with("ferrule-"));
        for (key, text) in messages {
            match pieces(text) {
                Some(pieces) => english.templates.push((key, pieces)),
                None => {
                    english.plain.insert(text, key);
                }
            }
        }
        english
    })
}

/// `text`'s pieces when it has variables (`{ $max }`), `None` when it has none.
fn pieces(mut text: &'static str) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    while let Some(start) = text.find('{') {
        let end = start + text[start..].find('}')?;
        let name = text[start + 1..end].trim().strip_prefix('$')?;
        if start > 0 {
            pieces.push(Piece::Text(&text[..start]));
        }
        pieces.push(Piece::Variable(name));
        text = &text[end + 1..];
    }
    // Only texts with words of their own: a bare `{ $x }` would match any text at all.
    if !pieces.iter().any(|p| matches!(p, Piece::Text(_))) {
        return None;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Some(pieces)
}

/// The variables' values when `text` is `pieces` filled in; numbers stay numbers, so the
/// translation formats them.
fn fill(pieces: &[Piece], mut text: &str) -> Option<Vec<(&'static str, Arg)>> {
    let mut args = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(expected) => text = text.strip_prefix(expected)?,
            Piece::Variable(name) => {
                let end = match pieces.get(i + 1) {
                    Some(Piece::Text(next)) => text.find(next)?,
                    _ => text.len(),
                };
                let value = &text[..end];
                if value.is_empty() {
                    return None;
                }
                let arg = match value.parse::<i64>() {
                    Ok(n) => Arg::from(n),
                    Err(_) => Arg::from(value),
                };
                args.push((*name, arg));
                text = &text[end..];
            }
        }
    }
    text.is_empty().then_some(args)
}

/// Ferrule's English texts, for code that runs outside any request and page.
fn fallback() -> &'static Catalogues {
    static FALLBACK: std::sync::OnceLock<Catalogues> = std::sync::OnceLock::new();
    FALLBACK.get_or_init(|| {
        Catalogues::new(&["en".to_owned()], &[]).expect("Ferrule's own catalogue is valid Fluent")
    })
}

#[cfg(feature = "server")]
tokio::task_local! {
    static REQUEST: Arc<http::request::Parts>;
}

/// Runs `fut` with `parts` as the request [`t!`](crate::t) translates for.
///
/// Not an `async fn`: its future would hold `fut` twice (the argument and the scope), and every
/// event's future goes through here.
#[cfg(feature = "server")]
pub(crate) fn with_request<F: Future>(
    parts: Arc<http::request::Parts>,
    fut: F,
) -> impl Future<Output = F::Output> {
    REQUEST.scope(parts, fut)
}

/// The language of the request `parts`: its `language` cookie, the user's saved preference,
/// its `Accept-Language`, or the default, whichever first names a configured language. The
/// default language when the app's catalogues are not in the request.
#[cfg(feature = "server")]
pub fn language_of(parts: &http::request::Parts) -> String {
    match parts.extensions.get::<Arc<Catalogues>>() {
        Some(catalogues) => negotiate(catalogues, parts),
        None => "en".to_owned(),
    }
}

#[cfg(feature = "server")]
fn negotiate(catalogues: &Catalogues, parts: &http::request::Parts) -> String {
    use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
    use unic_langid::LanguageIdentifier;
    let available = catalogues.identifiers();
    let pick = |wanted: &[LanguageIdentifier], strategy| {
        negotiate_languages(wanted, available, None, strategy)
            .first()
            .map(|l| l.to_string())
    };
    let chosen = crate::net::cookie_in(&parts.headers, LANGUAGE_COOKIE)
        .into_iter()
        .chain(
            parts
                .extensions
                .get::<PreferredLanguage>()
                .map(|p| p.0.clone()),
        )
        .filter_map(|tag| tag.parse::<LanguageIdentifier>().ok())
        .find_map(|id| pick(&[id], NegotiationStrategy::Lookup));
    if let Some(language) = chosen {
        return language;
    }
    let accepted = parts
        .headers
        .get_all(http::header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(accepted_languages::parse)
        .collect::<Vec<_>>();
    pick(&accepted, NegotiationStrategy::Lookup).unwrap_or_else(|| catalogues.default_language())
}

/// The catalogue script of `language`: it sets [`GLOBAL`] to the JSON of the language, the
/// configured languages with their names, and the Fluent texts of the language and the default.
#[cfg(feature = "server")]
pub(crate) fn script(catalogues: &Catalogues, language: &str) -> String {
    let default = catalogues.default_language();
    let mut texts = serde_json::Map::new();
    for lang in [language, default.as_str()] {
        texts.insert(
            lang.to_owned(),
            serde_json::json!(catalogues.texts_of(lang)),
        );
    }
    let page = serde_json::json!({
        "language": language,
        "languages": names(catalogues),
        "texts": texts,
    });
    // A JSON string inside the script, parsed by the client.
    let text = serde_json::to_string(&page.to_string()).unwrap_or_else(|_| "\"{}\"".to_owned());
    format!("window.{GLOBAL}={text};\n")
}

/// Where the page of the request `parts` loads its catalogue from, with a version that changes
/// with the catalogue (so browsers may keep it for good).
#[cfg(feature = "server")]
pub fn script_url(parts: &http::request::Parts) -> Option<String> {
    let catalogues = parts.extensions.get::<Arc<Catalogues>>()?;
    let language = negotiate(catalogues, parts);
    let version = catalogues.version_of(&language);
    Some(format!("{SCRIPT_PREFIX}{language}.js?v={version}"))
}

/// Each configured language with its name in itself (`ferrule-language-name`), the default first.
#[cfg(feature = "server")]
fn names(catalogues: &Catalogues) -> Vec<(String, String)> {
    catalogues
        .languages()
        .into_iter()
        .map(|l| {
            let name = catalogues.translate(&l, "ferrule-language-name", &[]);
            (l, name)
        })
        .collect()
}

/// The page's languages with their names, the default first, for a language switcher.
pub fn page_languages() -> Vec<(String, String)> {
    #[cfg(feature = "server")]
    if let Some(languages) =
        on_request(|parts| parts.extensions.get::<Arc<Catalogues>>().map(|c| names(c)))
    {
        return languages;
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    if let Some(languages) = browser::languages() {
        return languages;
    }
    Vec::new()
}

#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
mod browser {
    use std::cell::OnceCell;
    use std::collections::HashMap;

    use super::{Arg, Catalogues, GLOBAL};

    thread_local! {
        static PAGE: OnceCell<Option<Page>> = const { OnceCell::new() };
    }

    struct Page {
        catalogues: Catalogues,
        language: String,
        languages: Vec<(String, String)>,
    }

    /// The page's catalogue, from the global its catalogue script set, once.
    fn load() -> Option<Page> {
        let window = web_sys::window()?;
        let raw = js_sys::Reflect::get(&window, &GLOBAL.into())
            .ok()?
            .as_string()?;
        let page: serde_json::Value = serde_json::from_str(&raw).ok()?;
        let language = page["language"].as_str()?.to_owned();
        let languages: Vec<(String, String)> =
            serde_json::from_value(page["languages"].clone()).ok()?;
        let texts: HashMap<String, Vec<String>> =
            serde_json::from_value(page["texts"].clone()).ok()?;
        // The default first (it is the fallback), then the page's.
        let mut shipped = vec![languages.first()?.0.clone()];
        if language != shipped[0] {
            shipped.push(language.clone());
        }
        match Catalogues::from_texts(&shipped, texts) {
            Ok(catalogues) => Some(Page {
                catalogues,
                language,
                languages,
            }),
            Err(e) => {
                web_sys::console::error_1(&format!("ferrule: the page's catalogue: {e}").into());
                None
            }
        }
    }

    fn with_page<R>(f: impl FnOnce(&Page) -> R) -> Option<R> {
        PAGE.with(|page| page.get_or_init(load).as_ref().map(f))
    }

    pub(super) fn translate(key: &str, args: &[(&str, Arg)]) -> Option<String> {
        with_page(|p| p.catalogues.translate(&p.language, key, args))
    }

    /// The page's language, as the server negotiated it.
    pub(super) fn language() -> Option<String> {
        with_page(|p| p.language.clone())
    }

    pub(super) fn languages() -> Option<Vec<(String, String)>> {
        with_page(|p| p.languages.clone())
    }
}

/// The current page's language: the request's on the server, the one the server rendered the
/// page in, in the browser. The default language elsewhere.
pub fn current_language() -> String {
    #[cfg(feature = "server")]
    if let Some(language) = on_request(|parts| Some(language_of(parts))) {
        return language;
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    if let Some(language) = browser::language() {
        return language;
    }
    "en".to_owned()
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    async fn in_french(text: &str) -> String {
        let mut parts = http::Request::new(()).into_parts().0;
        parts.headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("language=fr"),
        );
        let catalogues = Catalogues::new(&["en".to_owned(), "fr".to_owned()], &[]).unwrap();
        parts.extensions.insert(Arc::new(catalogues));
        let text = text.to_owned();
        with_request(Arc::new(parts), async move { localize(&text) }).await
    }

    #[tokio::test]
    async fn ferrules_messages_with_and_without_arguments_are_translated() {
        assert_eq!(in_french("Required.").await, "Obligatoire.");
        assert_eq!(
            in_french("At most 255 characters.").await,
            "255 caractères au plus."
        );
        assert_eq!(
            in_french("You are logged in as ada lovelace.").await,
            "Vous êtes connecté en tant que ada lovelace."
        );
        // Texts that only look alike stay as they are.
        assert_eq!(
            in_french("At most characters.").await,
            "At most characters."
        );
        assert_eq!(
            in_french("At most 255 characters. Really.").await,
            "At most 255 characters. Really."
        );
        assert_eq!(in_french("Bought 3 apples.").await, "Bought 3 apples.");
    }
}
