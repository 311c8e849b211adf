//! The error type of handlers and middleware, and what each kind shows a user.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// A boxed error from anywhere, kept as the source of an internal error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error a handler or middleware returns.
///
/// Every kind but [`Error::Internal`] carries a message meant for the user: it becomes the text
/// of the error toast on events and the body of the HTTP response. Internal errors are logged
/// with their source and shown only as a generic message, so internals never reach a browser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user may not do this (HTTP 403).
    #[error("{0}")]
    PermissionDenied(String),
    /// The user must log in first (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The input is wrong (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Too many attempts (HTTP 429).
    #[error("{0}")]
    TooManyRequests(String),
    /// A bug or an outage; the source is logged, the user sees a generic message (HTTP 500).
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

/// What users see in place of an internal error's details.
pub(crate) const GENERIC_MESSAGE: &str = "Something went wrong. Please try again.";

impl Error {
    /// A permission error with a message for the user, like Django's `PermissionDenied`.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }

    /// A bad-request error with a message for the user.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// An internal error; `source` is logged, never shown.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal(source.into())
    }

    /// The text a user may see.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => GENERIC_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Turns any boxed error into ours, keeping ours as it was.
    pub(crate) fn from_boxed(err: BoxError) -> Self {
        match err.downcast::<Self>() {
            Ok(ours) => *ours,
            Err(other) => Self::Internal(other),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Self::Internal(source) = &self {
            tracing::error!(error = %source, "internal error answering an HTTP request");
        }
        (self.status(), self.public_message()).into_response()
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_source() {
        let e = Error::internal(std::io::Error::other("db password is hunter2"));
        assert_eq!(e.public_message(), GENERIC_MESSAGE);
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn user_facing_errors_keep_their_message() {
        let e = Error::permission_denied("Account suspended.");
        assert_eq!(e.public_message(), "Account suspended.");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn boxed_ferrule_errors_come_back_unchanged() {
        let boxed: BoxError = Box::new(Error::bad_request("nope"));
        assert!(matches!(Error::from_boxed(boxed), Error::BadRequest(m) if m == "nope"));
    }
}
