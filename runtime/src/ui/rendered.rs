//! The states a page is rendered with, carried from the server's render to the browser's
//! hydration: who is logged in, the session's shared states and what the page's loaders
//! ([`crate::Registered::on_load`]) loaded show in the first response, and
//! the browser starts from the same values, so the page does not jump when the socket's first
//! resync arrives.

use crate::protocol::Delta;

/// The id of the `<script type="application/json">` that carries them.
pub(super) const ELEMENT_ID: &str = "ferrule-rendered-states";

/// On the server: `auth_state` of the request being rendered (anonymous outside a render, or
/// in an app without accounts) and its session's shared states. In the browser: what the server
/// embedded. Elsewhere: nothing.
pub(super) fn rendered_states() -> Delta {
    #[cfg(feature = "ssr")]
    {
        let parts = leptos::prelude::use_context::<http::request::Parts>();
        let mut states = parts
            .as_ref()
            .and_then(|p| p.extensions.get::<crate::state::RenderedShared>().cloned())
            .map(|shared| shared.0)
            .unwrap_or_default();
        // What the page's loaders left, over the session's shared states they started from.
        if let Some(loaded) = parts
            .as_ref()
            .and_then(|p| p.extensions.get::<crate::state::RenderedLoaded>())
        {
            for (name, fields) in &loaded.0 {
                states.insert(name.clone(), fields.clone());
            }
        }
        let auth = crate::auth::AuthState::of(&crate::ssr::rendered_user());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(auth) {
            states.insert(
                <crate::protocol::AuthState as crate::protocol::StateName>::state_name(),
                fields,
            );
        }
        states
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    {
        super::embedded::read(ELEMENT_ID, "the page's rendered states").unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", all(feature = "hydrate", target_arch = "wasm32"))))]
    {
        Delta::new()
    }
}

/// `states` as the text of a `<script>` element: no value can close the element early.
pub(super) fn script_text(states: &Delta) -> String {
    super::embedded::script_text(states, "{}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_cannot_close_the_script_element() {
        let states: Delta = serde_json::from_value(
            json!({"auth_state": {"username": "</script><script>alert(1)</script>"}}),
        )
        .unwrap();
        let text = script_text(&states);
        assert!(!text.contains('<'), "{text}");
        assert_eq!(serde_json::from_str::<Delta>(&text).unwrap(), states);
    }
}
