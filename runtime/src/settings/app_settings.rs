//! The app's own settings (`[app]`, `APP_*`) as the app's type, shared with every request and
//! event: [`crate::App::app_settings`] makes them at startup.

use std::sync::Arc;

/// The app's settings of type `T`, made once at startup and shared. An HTTP handler takes it as
/// an argument (`AppSettings<Shop>`); an event handler reads `ctx.app_settings::<Shop>()`.
#[derive(Debug)]
pub struct AppSettings<T>(pub Arc<T>);

impl<T> AppSettings<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(Arc::new(value))
    }
}

impl<T> Clone for AppSettings<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for AppSettings<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<S, T> axum::extract::FromRequestParts<S> for AppSettings<T>
where
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = crate::Error;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            crate::Error::internal(format!(
                "no app settings of type {}: register them with App::app_settings",
                std::any::type_name::<T>()
            ))
        })
    }
}
