//! Forms in components: [`FormHandle`] sends a form's action and keeps the messages per field of
//! its answer; [`Field`] is one labelled input with its message under it.

use leptos::attr::{aria_describedby, aria_invalid};
use leptos::prelude::*;
use leptos::tachys::view::add_attr::AddAnyAttr;

use crate::forms::FieldErrors;
use crate::protocol::{Action, ClientCommand, StateUpdate};

/// One form of a page: sends its action ([`FormHandle::send`]) and shows the messages per field
/// its handler refused it with, until the next answer to it. `Copy`, for event handlers.
#[derive(Clone, Copy)]
pub struct FormHandle {
    errors: RwSignal<FieldErrors>,
    ferrule: super::Ferrule,
}

/// A new form handle for this page's [`Field`]s.
pub fn use_form() -> FormHandle {
    FormHandle {
        errors: RwSignal::new(FieldErrors::new()),
        ferrule: super::use_ferrule(),
    }
}

impl FormHandle {
    /// Emits `action`; its answer's field messages replace the form's (none when it is accepted).
    pub fn send<A: Action>(&self, action: A) -> Option<u64> {
        let id = super::Emitter {
            _ferrule: self.ferrule,
        }
        .send(action)?;
        let errors = self.errors;
        self.ferrule.on_answer(id, move |answer| {
            errors.try_set(field_errors_of(answer));
        });
        Some(id)
    }

    /// Checks `form` with its `garde` rules here, before any round trip: `false` (and the
    /// messages shown) when it is refused.
    pub fn check<T>(&self, form: &T) -> bool
    where
        T: garde::Validate + ?Sized,
        T::Context: Default,
    {
        let result = crate::forms::validate(form);
        let ok = result.is_ok();
        // The rules' messages in the page's language, as the server's answer would have them.
        let errors = result.err().unwrap_or_default();
        self.errors.set(errors.map_messages(crate::i18n::localize));
        ok
    }

    /// The messages per field, reactive.
    pub fn errors(&self) -> Signal<FieldErrors> {
        self.errors.into()
    }

    /// Forgets the messages (a form reset).
    pub fn clear(&self) {
        self.errors.set(FieldErrors::new());
    }
}

/// The messages per field a final answer carries (`_invalid`), empty when it has none.
pub(crate) fn field_errors_of(answer: &StateUpdate) -> FieldErrors {
    answer
        .events_named(ClientCommand::INVALID)
        .filter_map(|c| c.payload.get("fields").cloned())
        .find_map(|fields| serde_json::from_value(fields).ok())
        .unwrap_or_default()
}

/// A form field: its `<label>`, the input given as its child, and the field's messages under it.
/// The input gets its `id`, and while there are messages `aria-invalid="true"` and
/// `aria-describedby` naming them, so screen readers read them with the field.
#[component]
pub fn Field(
    /// The label's text.
    #[prop(into)]
    label: String,
    /// The field's path in the form's errors (`title`, `address.city`).
    #[prop(into)]
    name: String,
    /// The form whose messages it shows (none: a field that cannot be refused).
    #[prop(optional)]
    form: Option<FormHandle>,
    /// The input's id (default `field-<name>`); give one when a page has two forms with a field
    /// of the same name.
    #[prop(optional, into)]
    id: Option<String>,
    /// The one input, `<select>` or `<textarea>`.
    children: Children,
) -> impl IntoView {
    let input_id = id.unwrap_or_else(|| {
        let slug: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("field-{slug}")
    });
    let error_id = format!("{input_id}-error");
    let message = Memo::new(move |_| {
        form.map(|f| f.errors.with(|e| e.get(&name).join(" ")))
            .unwrap_or_default()
    });
    let invalid = move || !message.with(String::is_empty);
    let described = error_id.clone();
    let input = children().add_any_attr((
        leptos::attr::id(input_id.clone()),
        aria_invalid(move || invalid().then_some("true")),
        aria_describedby(move || invalid().then(|| described.clone())),
    ));
    view! {
        <div class="ferrule-field" class:ferrule-field-invalid=invalid>
            <label for=input_id>{label}</label>
            {input}
            <p class="ferrule-field-error" id=error_id aria-live="polite">{move || message.get()}</p>
        </div>
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[derive(garde::Validate)]
    struct Note {
        #[garde(custom(crate::forms::rules::required))]
        title: String,
    }

    fn render(title: &str) -> String {
        Owner::new().with(|| {
            super::super::provide();
            let form = use_form();
            form.check(&Note {
                title: title.to_owned(),
            });
            view! {
                <Field label="Title" name="title" form=form><input name="title"/></Field>
            }
            .to_html()
        })
    }

    #[test]
    fn a_refused_field_shows_its_message_under_it_and_points_its_input_there() {
        let html = render("");
        assert!(
            html.contains(r#"<label for="field-title">Title</label>"#),
            "{html}"
        );
        assert!(html.contains(r#"id="field-title""#), "{html}");
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(
            html.contains(r#"aria-describedby="field-title-error""#),
            "{html}"
        );
        let under = html
            .split(r#"id="field-title-error""#)
            .nth(1)
            .unwrap_or_default();
        assert!(under.contains(">Required.</p>"), "{html}");
    }

    #[test]
    fn an_accepted_field_is_not_marked_invalid() {
        let html = render("Groceries");
        assert!(html.contains(r#"id="field-title""#), "{html}");
        assert!(!html.contains("aria-invalid"), "{html}");
        assert!(!html.contains("aria-describedby"), "{html}");
    }
}
