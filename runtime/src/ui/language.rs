//! The language switcher: a plain HTML form (it works before the client loads) posting to
//! `/_language`, which sets the `language` cookie, saves the choice for a logged-in user, and
//! reloads the page it came from in the new language.

use leptos::prelude::*;

use super::csrf_token;
use crate::i18n::{SET_LANGUAGE_PATH, current_language, page_languages};

/// A `<select id="language">` of the app's languages, each named in itself, and a button.
/// Renders nothing when the app has one language.
#[component]
pub fn LanguageSwitcher() -> impl IntoView {
    let languages = page_languages();
    let current = current_language();
    let location = leptos_router::hooks::use_location();
    let here = move || {
        // The app's own path: the server's redirect adds the prefix back.
        let path = super::unmounted(&location.pathname.get());
        let search = location.search.get();
        if search.is_empty() {
            path
        } else {
            format!("{path}?{search}")
        }
    };
    (languages.len() > 1).then(|| {
        let options = languages
            .into_iter()
            .map(|(tag, name)| {
                let selected = tag == current;
                view! { <option value=tag.clone() selected=selected lang=tag>{name}</option> }
            })
            .collect_view();
        view! {
            <form class="ferrule-language" method="post" action=super::mounted(SET_LANGUAGE_PATH)>
                <input type="hidden" name="csrf_token" value=csrf_token()/>
                <input type="hidden" name="next" value=here/>
                <label>
                    {crate::t!("ferrule-language")} " "
                    <select id="language" name="language">{options}</select>
                </label>
                " "
                <button type="submit" id="change-language">{crate::t!("ferrule-change-language")}</button>
            </form>
        }
    })
}
