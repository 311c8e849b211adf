//! The server side: the upload handler and the page routes.

use std::path::PathBuf;

use ferrule::middleware::{self, Next, Request};
use ferrule::upload::UploadedFile;
use ferrule::{App, ClientCommand, EventContext, Handlers, State, ToastLevel};

use crate::{AvatarState, SetAvatar};

/// Where accepted avatars are kept. A middleware puts it into every request, so handlers read
/// it from their context instead of a global.
#[derive(Clone, Debug)]
pub struct MediaDir(pub PathBuf);

// ANCHOR: handler
impl AvatarState {
    /// Keeps the first file: the runtime deletes its temporary file after this returns, so it
    /// is copied under `media/` first.
    async fn set_avatar(
        &mut self,
        ctx: EventContext,
        files: Vec<UploadedFile>,
    ) -> Result<ClientCommand, ferrule::Error> {
        let media = ctx
            .extension::<MediaDir>()
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
        let stored = media.join(format!("avatar-{}", unique()));
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

/// A name no other upload of this process or an earlier one has used.
fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{n}")
}

impl State for AvatarState {
    fn handlers(h: &mut Handlers<Self>) {
        h.upload(
            <SetAvatar as ferrule::protocol::Action>::HANDLER,
            Self::set_avatar,
        );
    }
}
// ANCHOR_END: handler

/// The uploads app on database `db`, keeping avatars in `media/` of the working directory.
pub fn app(db: ferrule::db::sea_orm::DatabaseConnection) -> App {
    app_with_media(db, PathBuf::from("media"))
}

/// The uploads app keeping avatars in `media` (tests use a temporary directory).
pub fn app_with_media(db: ferrule::db::sea_orm::DatabaseConnection, media: PathBuf) -> App {
    let options = ferrule::ssr::site_options("uploads");
    let dir = MediaDir(media);
    App::new()
        .database(db)
        .state::<AvatarState>()
        .middleware(middleware::from_fn(
            "media_dir",
            move |mut req: Request, next: Next| {
                req.extensions_mut().insert(dir.clone());
                next.run(req)
            },
        ))
        .merge(ferrule::ssr::pages(
            options,
            ferrule::ssr::shell("Ferrule uploads", crate::Root),
            crate::Root,
        ))
}
