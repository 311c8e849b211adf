//! Chat: rooms, who is in them, a background task that posts, and broadcasts that cross server
//! processes when Redis is configured.
//!
//! A tab joins a room under a name (`chat_state.join`); what anyone says there reaches every tab
//! in the room as the client event `chat.message`, and every change of who is there as
//! `chat.presence`. Tabs say they are still there every 20 s (`chat_state.here`); a task drops
//! the ones that went quiet and tells their rooms. Another task, the bot, posts in `lobby`.
//!
//! The shared part: the state and the page (this file) and its handlers (`handlers.rs`). The
//! server part (`server.rs`): the tables, what the handlers look up, and the tasks.

use std::time::Duration;

use ferrule::ui::{self, ConnectionIndicator, Toasts};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

mod handlers;
pub use handlers::*;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub use server::{ChatOptions, app};

/// The client event of a message said in the tab's room: `{"author", "text"}`.
pub const MESSAGE: &str = "chat.message";
/// The client event of a change of who is in the tab's room: `{"room", "members"}`.
pub const PRESENCE: &str = "chat.presence";

/// One message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it (`bot` for the background poster).
    pub author: String,
    /// What was said.
    pub text: String,
}

/// A tab's place in the chat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatState {
    /// The room it is in (empty: none yet).
    pub room: String,
    /// The name it speaks under.
    pub name: String,
    /// The room's last messages when the tab joined; later ones arrive as `chat.message`.
    pub history: Vec<Message>,
    /// Who was in the room when the tab joined; changes arrive as `chat.presence`.
    pub members: Vec<String>,
}

/// The app's root component: the router and the Ferrule runtime.
#[component]
pub fn Root() -> impl IntoView {
    view! {
        <ui::FerruleRouter>
            <Layout/>
        </ui::FerruleRouter>
    }
}

#[component]
fn Layout() -> impl IntoView {
    view! {
        <header>
            <a href="/">"Chat"</a>
            <ConnectionIndicator/>
        </header>
        <main>
            <Routes fallback=|| view! { <h1>"Not found"</h1> }>
                <Route path=path!("") view=ChatPage/>
            </Routes>
        </main>
        <Toasts/>
    }
}

#[component]
fn ChatPage() -> impl IntoView {
    let ferrule = ui::use_ferrule();
    let state = ui::use_state::<ChatState>();
    let room = state.field(|s| s.room.clone());
    let emit = ui::use_emit();
    // What this tab has seen: the history it joined with, then every `chat.message`.
    let messages = RwSignal::new(Vec::<Message>::new());
    let members = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        messages.set(state.with(|s| s.history.clone()));
        members.set(state.with(|s| s.members.clone()));
    });
    // ANCHOR: on_event
    ferrule.on_event(MESSAGE, move |payload| {
        if let Ok(m) = serde_json::from_value::<Message>(payload.clone()) {
            messages.update(|all| all.push(m));
        }
    });
    // ANCHOR_END: on_event
    ferrule.on_event(PRESENCE, move |payload| {
        if let Some(list) = payload.get("members").and_then(|m| m.as_array()) {
            members.set(
                list.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect(),
            );
        }
    });
    Effect::new(move |_| {
        set_interval(
            move || {
                if !room.get_untracked().is_empty() {
                    emit.send(Here);
                }
            },
            Duration::from_secs(20),
        );
    });
    let room_input = RwSignal::new("lobby".to_owned());
    let name_input = RwSignal::new(String::new());
    let draft = RwSignal::new(String::new());
    view! {
        <h1>"Chat"</h1>
        <form id="join" on:submit=move |ev| {
            ev.prevent_default();
            emit.send(Join { room: room_input.get(), name: name_input.get() });
        }>
            <input name="room" prop:value=move || room_input.get()
                on:input=move |ev| room_input.set(event_target_value(&ev))/>
            <input name="name" placeholder="Your name" prop:value=move || name_input.get()
                on:input=move |ev| name_input.set(event_target_value(&ev))/>
            <button type="submit">"Join"</button>
        </form>
        <p>"Room: " <strong id="room">{move || room.get()}</strong>
            " — here: " <span id="members">{move || members.get().join(", ")}</span></p>
        <ul id="messages">
            <For each=move || messages.get().into_iter().enumerate() key=|(i, _)| *i let:item>
                <li><span class="author">{item.1.author}</span>{item.1.text}</li>
            </For>
        </ul>
        <form id="say" on:submit=move |ev| {
            ev.prevent_default();
            emit.send(Say { text: draft.get() });
            draft.set(String::new());
        }>
            <input name="text" maxlength="500" prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))/>
            <button type="submit">"Send"</button>
        </form>
    }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(Root);
}
