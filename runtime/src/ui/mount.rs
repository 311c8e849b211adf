//! The app's mount path in components: the prefix a host app nested it under (`""` at the
//! root), from the request on the server and from the page's `<meta name="ferrule-base">` in
//! the browser, so both render the same addresses.

/// The prefix the app is mounted under, without a trailing `/` (`""` at the root).
pub fn mount_path() -> String {
    #[cfg(feature = "ssr")]
    if let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() {
        return crate::mount::MountPath::of(&parts).to_owned();
    }
    #[cfg(all(feature = "hydrate", target_arch = "wasm32"))]
    return crate::client::browser::base();
    #[allow(unreachable_code)]
    String::new()
}

/// `path`, one of the app's own (`/_auth/login`), as the browser must ask for it (for a plain
/// `<a>` or `<form action>`; Leptos's `<A>` and navigation add the prefix themselves).
pub fn mounted(path: &str) -> String {
    crate::protocol::mounted_path(&mount_path(), path)
}

/// `path` as the browser shows it (`/app/notes`) without the prefix: the app's own (`/notes`).
pub fn unmounted(path: &str) -> String {
    crate::protocol::app_path(&mount_path(), path)
}
