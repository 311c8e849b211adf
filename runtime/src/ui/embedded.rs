//! JSON the server embeds in a page for the browser's hydration (`<script type="application/json">`):
//! written so no value can close the element early, read back once in the browser.

use serde::Serialize;
#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
use serde::de::DeserializeOwned;

/// `value` as the text of a `<script>` element: JSON with every `<` escaped. `fallback` when it
/// does not serialize.
pub(super) fn script_text<T: Serialize + ?Sized>(value: &T, fallback: &str) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| fallback.to_owned())
        .replace('<', "\\u003c")
}

/// In the browser: the JSON of element `id`, `None` when the page has none; a text that does
/// not parse is reported as `what` and read as `None`.
#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
pub(super) fn read<T: DeserializeOwned>(id: &str, what: &str) -> Option<T> {
    let text = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.text_content())?;
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(e) => {
            super::report_error(&format!("{what} do not parse: {e}"));
            None
        }
    }
}
