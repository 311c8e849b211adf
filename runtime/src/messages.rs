//! Flash messages, as Django's `messages`: a short text at a [`ToastLevel`] that the user sees
//! once, on the next page or in the answer to the event that added it.
//!
//! On HTTP, [`messages`] (or the [`Messages`] extractor) keeps them in the session under
//! [`SESSION_KEY`] until a page is rendered, which shows them among its toasts and removes them:
//! a post that redirects says what happened on the page it lands on, and a reload shows nothing.
//! A handler adds them with [`crate::EventContext::messages`]; they arrive as toasts in the
//! answer to its event, with any the session still held, and a failed handler's go with its state.

use std::sync::{Arc, Mutex};

use tower_sessions::Session;

use crate::Error;
pub use crate::protocol::Message;
use crate::protocol::ToastLevel;

/// The session key the pending messages are kept under: a list of [`Message`]s, oldest first.
pub const SESSION_KEY: &str = "_messages";

/// The messages of an HTTP request's session: what a handler adds is shown once, on the next
/// page rendered for this browser (or in the answer to its next event).
///
/// ```
/// async fn saved(messages: ferrule::messages::Messages) -> Result<axum::response::Redirect, ferrule::Error> {
///     messages.success("Saved.").await?;
///     Ok(axum::response::Redirect::to("/notes"))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Messages {
    session: Option<Session>,
}

/// The messages of `req`'s session, as [`Messages`] extracts them.
pub fn messages<B>(req: &http::Request<B>) -> Messages {
    Messages::of(req.extensions().get::<Session>().cloned())
}

impl Messages {
    /// The messages kept in `session`; without one, adding is an error.
    pub fn of(session: Option<Session>) -> Self {
        Self { session }
    }

    /// Keeps `text` at `level` for the next page; an error when the request has no session
    /// (the app has no database) or the session store fails.
    pub async fn add(&self, level: ToastLevel, text: impl Into<String>) -> Result<(), Error> {
        let session = self.session.as_ref().ok_or_else(|| {
            Error::internal("messages are kept in the session: give the app one with App::database")
        })?;
        let mut pending: Vec<Message> = session
            .get(SESSION_KEY)
            .await
            .map_err(Error::internal)?
            .unwrap_or_default();
        pending.push(Message::new(level, text));
        session
            .insert(SESSION_KEY, pending)
            .await
            .map_err(Error::internal)
    }

    /// [`Messages::add`] at [`ToastLevel::Info`].
    pub async fn info(&self, text: impl Into<String>) -> Result<(), Error> {
        self.add(ToastLevel::Info, text).await
    }

    /// [`Messages::add`] at [`ToastLevel::Success`].
    pub async fn success(&self, text: impl Into<String>) -> Result<(), Error> {
        self.add(ToastLevel::Success, text).await
    }

    /// [`Messages::add`] at [`ToastLevel::Warning`].
    pub async fn warning(&self, text: impl Into<String>) -> Result<(), Error> {
        self.add(ToastLevel::Warning, text).await
    }

    /// [`Messages::add`] at [`ToastLevel::Error`].
    pub async fn error(&self, text: impl Into<String>) -> Result<(), Error> {
        self.add(ToastLevel::Error, text).await
    }

    /// Removes and returns the pending messages, oldest first: whoever takes them shows them.
    pub async fn take(&self) -> Result<Vec<Message>, Error> {
        let Some(session) = &self.session else {
            return Ok(Vec::new());
        };
        // Removing an absent key would still mark the session changed, and store it.
        if session
            .get_value(SESSION_KEY)
            .await
            .map_err(Error::internal)?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let taken: Option<Vec<Message>> =
            session.remove(SESSION_KEY).await.map_err(Error::internal)?;
        Ok(taken.unwrap_or_default())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Messages {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts.extensions.get::<Session>().cloned()))
    }
}

/// The messages a handler adds ([`crate::EventContext::messages`]): shown as toasts in the
/// answer to its event once it succeeds; none of them when it fails.
#[derive(Clone, Debug, Default)]
pub struct EventMessages {
    added: Arc<Mutex<Vec<Message>>>,
}

impl EventMessages {
    /// Shows `text` at `level` in the answer to this event.
    pub fn add(&self, level: ToastLevel, text: impl Into<String>) {
        self.added
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Message::new(level, text));
    }

    /// [`EventMessages::add`] at [`ToastLevel::Info`].
    pub fn info(&self, text: impl Into<String>) {
        self.add(ToastLevel::Info, text);
    }

    /// [`EventMessages::add`] at [`ToastLevel::Success`].
    pub fn success(&self, text: impl Into<String>) {
        self.add(ToastLevel::Success, text);
    }

    /// [`EventMessages::add`] at [`ToastLevel::Warning`].
    pub fn warning(&self, text: impl Into<String>) {
        self.add(ToastLevel::Warning, text);
    }

    /// [`EventMessages::add`] at [`ToastLevel::Error`].
    pub fn error(&self, text: impl Into<String>) {
        self.add(ToastLevel::Error, text);
    }

    /// The messages added so far, removed.
    pub(crate) fn take(&self) -> Vec<Message> {
        std::mem::take(&mut *self.added.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The messages a page is rendered with, taken from its session by [`take_for_render`].
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
#[derive(Clone, Debug, Default)]
pub(crate) struct RenderedMessages(pub(crate) Vec<Message>);

/// Axum middleware on page routes: takes the session's pending messages for the page about to
/// render (they are removed as the response stores the session, so a reload shows none).
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub(crate) async fn take_for_render(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match messages(&req).take().await {
        Ok(taken) if !taken.is_empty() => {
            req.extensions_mut().insert(RenderedMessages(taken));
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not read the session's messages; the page renders without them");
        }
    }
    next.run(req).await
}

/// Takes `session`'s pending messages for an event's answer; a failing store leaves them for
/// later.
pub(crate) async fn take_pending(session: Option<&Session>) -> Vec<Message> {
    match Messages::of(session.cloned()).take().await {
        Ok(taken) => taken,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the session's messages; they stay for later");
            Vec::new()
        }
    }
}
