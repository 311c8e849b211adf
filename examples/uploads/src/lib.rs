//! Avatar upload with progress and a size limit.
//!
//! The upload goes to `POST /_upload` with the tab's token and the handler's name; the runtime
//! streams it to a temporary file, runs it through the middleware chain with the tab's session and
//! user, and the handler's state update reaches the tab over its socket.

use ferrule::protocol::Action;
// Server-only names, for the handler's body, which only the server build compiles.
use ferrule::ui::{self, ConnectionIndicator, FileUpload, Toasts};
#[cfg(feature = "ssr")]
use ferrule::upload::UploadedFile;
#[cfg(feature = "ssr")]
use ferrule::{ClientCommand, EventContext, ToastLevel};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
mod server;
#[cfg(feature = "ssr")]
pub use server::{MediaDir, app, app_with_media};

/// The tab's avatar, as the server last accepted it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AvatarState {
    /// The file name the browser sent, if an avatar was uploaded.
    pub file_name: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Where the server keeps it (under `media/`).
    pub stored_as: Option<String>,
    /// How many avatars this tab uploaded.
    pub uploads: u32,
}

/// The most an avatar upload may carry; one byte more is answered 413.
pub const AVATAR_MAX_BYTES: u64 = 1 << 20;

// ANCHOR: handler
#[ferrule::state]
impl AvatarState {
    /// The upload handler (`SetAvatar` names it for the page); its payload is the uploaded
    /// files, at most 1 MiB in all. Keeps the first file: the runtime deletes its temporary
    /// file after this returns, so it is copied under `media/` first.
    #[upload(max_bytes = AVATAR_MAX_BYTES)]
    pub async fn set_avatar(
        &mut self,
        ctx: EventContext,
        files: Vec<UploadedFile>,
    ) -> Result<ClientCommand, ferrule::Error> {
        let media = ctx
            .extension::<server::MediaDir>()
            .map(|m| m.0.clone())
            .ok_or_else(|| ferrule::Error::internal("the media_dir middleware did not run"))?;
        let file = files
            .into_iter()
            .next()
            .ok_or_else(|| ferrule::Error::bad_request("Pick a file to upload."))?;
        if !file
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("image/"))
        {
            return Err(ferrule::Error::bad_request("An avatar must be an image."));
        }
        tokio::fs::create_dir_all(&media).await.map_err(|e| {
            ferrule::Error::internal(format!("cannot create {}: {e}", media.display()))
        })?;
        // Never trust the browser's file name as a path: store under a name of our own.
        let stored = media.join(format!("avatar-{}", server::unique()));
        tokio::fs::copy(&file.path, &stored)
            .await
            .map_err(|e| ferrule::Error::internal(format!("cannot store the avatar: {e}")))?;
        self.file_name = file.file_name;
        self.size = file.size;
        self.stored_as = Some(stored.display().to_string());
        self.uploads += 1;
        Ok(ClientCommand::toast(ToastLevel::Success, "Avatar updated."))
    }
}
// ANCHOR_END: handler

/// The app's root component.
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
        <header><ConnectionIndicator/></header>
        <main>
            <Routes fallback=|| view! { <h1>"Not found"</h1> }>
                <Route path=path!("") view=Home/>
            </Routes>
        </main>
        <Toasts/>
    }
}

#[component]
fn Home() -> impl IntoView {
    let avatar = ui::use_state::<AvatarState>();
    let name = avatar.field(|a| a.file_name.clone());
    let size = avatar.field(|a| a.size);
    let uploads = avatar.field(|a| a.uploads);
    view! {
            <h1>"Your avatar"</h1>
            <p>"Pick an image of at most 1 MiB."</p>
    // ANCHOR: component
            <FileUpload handler=SetAvatar::event_name() accept="image/*"/>
    // ANCHOR_END: component
            <dl>
                <dt>"File"</dt>
                <dd id="avatar-name">{move || name.get().unwrap_or_else(|| "none yet".to_owned())}</dd>
                <dt>"Size"</dt>
                <dd id="avatar-size">{move || size.get()}</dd>
                <dt>"Uploads"</dt>
                <dd id="uploads">{move || uploads.get()}</dd>
            </dl>
        }
}

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(Root);
}
