//! The admin's form of one row (feature `ui`): an input per column kind, each field's messages
//! from the save's answer, and a delete asked twice.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::json;

use super::page::send;
use super::{FieldKind, FieldView, ObjectView};
use crate::forms::FieldErrors;
use crate::ui::field::field_errors_of;
use crate::ui::{use_emit, use_ferrule};

/// The input of one field: its kind's `<input>`, disabled when read-only; what the user types
/// goes into `values`.
fn input(field: &FieldView, values: RwSignal<BTreeMap<String, String>>) -> AnyView {
    let name = field.name.clone();
    let value = field.value.clone().unwrap_or_default();
    let disabled = field.read_only;
    let set = move |text: String| values.update(|v| drop(v.insert(name.clone(), text)));
    match field.kind {
        FieldKind::Bool => view! {
            // The attribute for the server's HTML, the property for a form shown in place of
            // another (an attribute no longer moves a box the user has ticked).
            <input type="checkbox" disabled=disabled checked=value == "true"
                prop:checked=value == "true"
                on:change=move |ev| set(event_target_checked(&ev).to_string())/>
        }
        .into_any(),
        kind => {
            let kind = match kind {
                FieldKind::Integer | FieldKind::Float => "number",
                FieldKind::Date => "date",
                FieldKind::DateTime => "datetime-local",
                FieldKind::Password => "password",
                _ => "text",
            };
            view! {
                // As the checkbox: the property too, or a row opened after another keeps
                // what the user typed into the other.
                <input type=kind disabled=disabled value=value.clone() prop:value=value step="any"
                    on:input=move |ev| set(event_target_value(&ev))/>
            }
            .into_any()
        }
    }
}

/// A row's form (or a new row's), with each field's messages and a confirmed delete.
#[component]
pub(super) fn AdminForm(object: ObjectView) -> impl IntoView {
    let emit = use_emit();
    let ferrule = use_ferrule();
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let errors = RwSignal::new(FieldErrors::new());
    let confirming = RwSignal::new(false);
    let model = StoredValue::new(object.model.clone());
    let id = StoredValue::new(object.id.clone());
    let fields = object
        .fields
        .iter()
        .map(|f| {
            let name = f.name.clone();
            view! {
                <div class="ferrule-field">
                    // The input inside its label: named for screen readers without an id.
                    <label>{f.name.clone()} {input(f, values)}</label>
                    <p class="ferrule-field-error" aria-live="polite">
                        {move || errors.with(|e| e.get(&name).join(" "))}
                    </p>
                </div>
            }
        })
        .collect_view();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let payload = json!({"model": model.get_value(), "id": id.get_value(),
                             "values": values.get_untracked()});
        if let Some(sent) = send(emit, "save", payload) {
            ferrule.on_answer(sent, move |answer| {
                errors.try_set(field_errors_of(answer));
            });
        }
    };
    view! {
        <form class="ferrule-admin-form" on:submit=save>
            <h2>{match &object.id {
                Some(id) => format!("{} {id}", object.model),
                None => format!("New row of {}", object.model),
            }}</h2>
            {fields}
            <button type="submit">"Save"</button>
            {object.id.is_some().then(|| view! {
                <Show
                    when=move || confirming.get()
                    fallback=move || view! {
                        <button type="button" on:click=move |_| confirming.set(true)>"Delete"</button>
                    }
                >
                    <span class="ferrule-admin-confirm">
                        "Delete this row for good? "
                        <button type="button" on:click=move |_| {
                            send(emit, "delete", json!({"model": model.get_value(), "id": id.get_value()}));
                            confirming.set(false);
                        }>"Delete"</button>
                        <button type="button" on:click=move |_| confirming.set(false)>"Keep it"</button>
                    </span>
                </Show>
            })}
        </form>
    }
    .into_any()
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::admin::page::tests::render;

    fn field(name: &str, kind: FieldKind, read_only: bool, value: Option<&str>) -> FieldView {
        FieldView {
            name: name.into(),
            kind,
            nullable: false,
            read_only,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn a_form_gives_each_kind_its_input_and_never_a_password() {
        let object = ObjectView {
            model: "books".into(),
            id: Some("1".into()),
            fields: vec![
                field("id", FieldKind::Integer, true, Some("1")),
                field("pages", FieldKind::Integer, false, Some("412")),
                field("in_print", FieldKind::Bool, false, Some("true")),
                field("published", FieldKind::Date, false, Some("1965-08-01")),
                field("password", FieldKind::Password, false, None),
            ],
        };
        let html = render(|| view! { <AdminForm object=object/> }.into_any());
        assert!(
            html.contains(r#"type="number""#) && html.contains(r#"value="412""#),
            "{html}"
        );
        assert!(
            html.contains(r#"type="checkbox""#) && html.contains("checked"),
            "{html}"
        );
        assert!(html.contains(r#"type="date""#), "{html}");
        assert!(html.contains(r#"type="password""#), "{html}");
        assert!(html.contains("disabled"), "the read-only id: {html}");
        assert!(html.contains(">Delete</button>"), "{html}");
    }
}
