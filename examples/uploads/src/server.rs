//! The server side: where avatars are kept and the page routes (the handler is in `lib.rs`).

use std::path::PathBuf;

use ferrule::App;
use ferrule::middleware::{self, Next, Request};

use crate::AvatarState;

/// Where accepted avatars are kept. A middleware puts it into every request, so handlers read
/// it from their context instead of a global.
#[derive(Clone, Debug)]
pub struct MediaDir(pub PathBuf);

/// A name no other upload of this process or an earlier one has used.
pub(crate) fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{n}")
}

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
