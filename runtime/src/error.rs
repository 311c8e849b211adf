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
    /// A form's fields are wrong (HTTP 422): on events the answer carries the messages per
    /// field (`_invalid`) beside an error toast; `?` on [`crate::forms::validate`] makes one.
    #[error("invalid form: {0}")]
    Invalid(crate::forms::FieldErrors),
    /// The thing asked for does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// Too many attempts (HTTP 429).
    #[error("{0}")]
    TooManyRequests(String),
    /// A service the app needs (the database, Redis) is unreachable; the cause is logged and
    /// the user is asked to retry (HTTP 503). Nothing was changed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug; the source is logged, the user sees a generic message (HTTP 500).
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

/// What users see in place of an internal error's details.
pub(crate) const GENERIC_MESSAGE: &str = "Something went wrong. Please try again.";

/// What users see while a service the app needs is down.
pub const UNAVAILABLE_MESSAGE: &str = "The service is temporarily unavailable, please retry.";

impl Error {
    /// A permission error with a message for the user, like Django's `PermissionDenied`.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }

    /// A bad-request error with a message for the user.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// The field errors of a refused form, if this is one.
    pub fn field_errors(&self) -> Option<&crate::forms::FieldErrors> {
        match self {
            Self::Invalid(errors) => Some(errors),
            _ => None,
        }
    }

    /// An internal error; `source` is logged, never shown.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Self::Internal(source.into())
    }

    /// An outage of a service the app needs; `cause` is logged, never shown.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self::Unavailable(cause.to_string())
    }

    /// Whether this is an outage (the client may retry later) rather than a refusal or a bug.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The text a user may see.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => GENERIC_MESSAGE.to_owned(),
            Self::Unavailable(_) => UNAVAILABLE_MESSAGE.to_owned(),
            Self::Invalid(_) => crate::forms::INVALID_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        match &self {
            Self::Internal(source) => {
                tracing::error!(error = %source, "internal error answering an HTTP request")
            }
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "a service is down; answering 503")
            }
            _ => {}
        }
        let words = ErrorWords {
            message: self.public_message(),
            fields: match &self {
                Self::Invalid(errors) => Some(errors.clone()),
                _ => None,
            },
        };
        let mut resp = (self.status(), words.body()).into_response();
        // The app's language layer says it again in the request's language.
        resp.extensions_mut().insert(words);
        if self.is_unavailable() {
            // Outages pass: say when to come back rather than have clients hammer at once.
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(2u32));
        }
        resp
    }
}

/// What an error's response says, kept in its extensions beside the body: this layer writes
/// English, and the app's language layer, above it, writes the body again in the request's
/// language.
#[derive(Clone, Debug)]
pub(crate) struct ErrorWords {
    /// The public message.
    pub(crate) message: String,
    /// A refused form's messages per field.
    pub(crate) fields: Option<crate::forms::FieldErrors>,
}

impl ErrorWords {
    /// The body: the message, then for a refused form its fields, one per line, for clients
    /// without a page.
    pub(crate) fn body(&self) -> String {
        let mut text = self.message.clone();
        for (field, messages) in self.fields.iter().flat_map(|f| f.iter()) {
            for message in messages {
                text.push_str(&format!("\n{field}: {message}"));
            }
        }
        text
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}

/// What a user is told when a foreign key refuses a write.
const IN_USE: &str = "This is still in use elsewhere: change or delete what points at it first.";

impl From<sea_orm::DbErr> for Error {
    /// Lost or refused database connections are outages; a row still referenced by another
    /// (a foreign key refusing a delete or a change) is the user's to resolve; anything else is a
    /// bug.
    fn from(e: sea_orm::DbErr) -> Self {
        if is_db_outage(&e) {
            Self::unavailable(format!("database: {e}"))
        } else if let Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(cause)) = e.sql_err() {
            tracing::info!(%cause, "a foreign key refused a write");
            Self::bad_request(IN_USE)
        } else {
            Self::Internal(Box::new(e))
        }
    }
}

/// Whether `e` says the database could not be reached (as opposed to a bad query).
pub(crate) fn is_db_outage(e: &sea_orm::DbErr) -> bool {
    use sea_orm::DbErr;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(inner) | DbErr::Query(inner) => {
            let text = inner.to_string().to_ascii_lowercase();
            [
                "connection",
                "io error",
                "broken pipe",
                "pool timed out",
                "pool closed",
                "timed out",
                "end of file",
            ]
            .iter()
            .any(|needle| text.contains(needle))
        }
        _ => false,
    }
}

impl From<crate::forms::FieldErrors> for Error {
    fn from(errors: crate::forms::FieldErrors) -> Self {
        Self::Invalid(errors)
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
    fn outages_ask_to_retry_and_hide_their_cause() {
        let e = Error::unavailable("redis: connection refused (10.0.0.7:6379)");
        assert_eq!(e.public_message(), UNAVAILABLE_MESSAGE);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let lost = sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout);
        assert!(Error::from(lost).is_unavailable());
        let bug = sea_orm::DbErr::Custom("no such column".into());
        assert!(!Error::from(bug).is_unavailable());
    }

    #[test]
    fn boxed_ferrule_errors_come_back_unchanged() {
        let boxed: BoxError = Box::new(Error::bad_request("nope"));
        assert!(matches!(Error::from_boxed(boxed), Error::BadRequest(m) if m == "nope"));
    }
}
