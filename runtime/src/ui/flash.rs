//! The flash messages a page is rendered with (`ferrule::messages`): shown among its toasts by
//! the server and carried to the browser, which hydrates the same toasts.

use crate::protocol::Message;

/// The id of the `<script type="application/json">` that carries them.
pub(super) const ELEMENT_ID: &str = "ferrule-rendered-messages";

/// On the server: the messages taken from the session for this render. In the browser: what
/// the server embedded. Elsewhere: none.
pub(super) fn rendered_messages() -> Vec<Message> {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<http::request::Parts>()
            .and_then(|p| {
                p.extensions
                    .get::<crate::messages::RenderedMessages>()
                    .cloned()
            })
            .map(|m| m.0)
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    {
        super::embedded::read(ELEMENT_ID, "the page's messages").unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", all(feature = "hydrate", target_arch = "wasm32"))))]
    {
        Vec::new()
    }
}

/// `messages` as the text of a `<script>` element: no message can close the element early.
pub(super) fn script_text(messages: &[Message]) -> String {
    super::embedded::script_text(messages, "[]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ToastLevel;

    #[test]
    fn a_message_cannot_close_the_script_element() {
        let messages = vec![Message::new(
            ToastLevel::Error,
            "</script><script>alert(1)</script>",
        )];
        let text = script_text(&messages);
        assert!(!text.contains('<'), "{text}");
        assert_eq!(
            serde_json::from_str::<Vec<Message>>(&text).unwrap(),
            messages
        );
    }
}
