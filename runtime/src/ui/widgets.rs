//! Ferrule's own widgets: the page's toasts, the connection badge and the file upload.

use leptos::prelude::*;

use super::{Toast, use_connection, use_ferrule};
use crate::client::Status;
#[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
use crate::protocol::ToastLevel;

/// The toasts of the page, newest last; put it once in the root component. Each toast has the
/// classes `ferrule-toast ferrule-toast-<level>` and a close button.
#[component]
pub fn Toasts() -> impl IntoView {
    let ferrule = use_ferrule();
    view! {
        <div class="ferrule-toasts" role="status" aria-live="polite">
            <For
                each=move || ferrule.toasts.get()
                key=|t| t.id
                children=move |t: Toast| {
                    let level = t.level.as_str();
                    let id = t.id;
                    view! {
                        <div class=format!("ferrule-toast ferrule-toast-{level}") data-level=level>
                            <span class="ferrule-toast-message">{t.message}</span>
                            <button class="ferrule-toast-close" aria-label=crate::t!("ferrule-dismiss")
                                on:click=move |_| ferrule.dismiss(id)>"×"</button>
                        </div>
                    }
                }
            />
        </div>
    }
}

/// A small badge showing the connection: `data-status` is `connecting`, `connected` or
/// `reconnecting`, for styling and tests.
#[component]
pub fn ConnectionIndicator() -> impl IntoView {
    let status = use_connection();
    let key = move || match status.get() {
        Status::Connecting => "connecting",
        Status::Connected => "connected",
        Status::Reconnecting { .. } => "reconnecting",
    };
    let label = move || match status.get() {
        Status::Connecting => crate::t!("ferrule-connecting"),
        Status::Connected => crate::t!("ferrule-live"),
        Status::Reconnecting { attempt } => crate::t!("ferrule-reconnecting", attempt = attempt),
    };
    view! { <span class="ferrule-connection" data-status=key>{label}</span> }
}

/// A file input that uploads what the user picks to an upload handler (`Handlers::upload`), with
/// a progress bar. The handler's state update arrives over the socket like any other; a refusal
/// (too large, not allowed) shows as an error toast. `data-state` on the wrapper is `idle`,
/// `uploading`, `done` or `failed`.
#[component]
pub fn FileUpload(
    /// The upload handler's wire name, e.g. `SetAvatar::event_name()`.
    #[prop(into)]
    handler: String,
    /// Form field the files are sent under (default `file`).
    #[prop(optional, into)]
    name: Option<String>,
    /// The input's `accept` filter, e.g. `image/*`.
    #[prop(optional, into)]
    accept: Option<String>,
    /// Allow several files at once.
    #[prop(optional)]
    multiple: bool,
) -> impl IntoView {
    let ferrule = use_ferrule();
    let progress = RwSignal::new(0.0_f64);
    let state = RwSignal::new("idle");
    let on_change = move |ev: leptos::ev::Event| {
        #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
        {
            use crate::client::browser::{UploadEnd, upload};
            use wasm_bindgen::JsCast;
            let Some(input) = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            progress.set(0.0);
            state.set("uploading");
            let picked = input.clone();
            let result = upload(
                &handler,
                &input,
                move |p| progress.set(p),
                move |end| {
                    match end {
                        UploadEnd::Done => {
                            progress.set(1.0);
                            state.set("done");
                        }
                        UploadEnd::Failed(message) => {
                            state.set("failed");
                            ferrule.toast(ToastLevel::Error, message);
                        }
                    }
                    // So that picking the same file again uploads it again.
                    picked.set_value("");
                },
            );
            if let Err(e) = result {
                state.set("failed");
                ferrule.toast(ToastLevel::Error, e);
            }
        }
        #[cfg(not(all(feature = "hydrate", target_arch = "wasm32")))]
        let _ = (ev, &handler, ferrule);
    };
    view! {
        <span class="ferrule-upload" data-state=move || state.get()>
            <input
                type="file"
                name=name.unwrap_or_else(|| "file".to_owned())
                accept=accept
                multiple=multiple
                on:change=on_change
            />
            <progress
                class="ferrule-upload-progress"
                max="1"
                value=move || progress.get()
                hidden=move || state.get() == "idle"
            ></progress>
        </span>
    }
}
