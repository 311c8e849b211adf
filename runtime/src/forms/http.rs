//! The same form structs for plain HTML form posts: an axum extractor that reads and checks them.

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::FieldErrors;
use crate::Error;

/// A form post (`application/x-www-form-urlencoded`, or the query of a GET) read into `T` and
/// checked with its `garde` rules. Take `Result<ValidForm<T>, FormRejection<T>>` to re-render
/// the page with the errors; take `ValidForm<T>` alone to answer a refusal with 422 and its
/// messages (400 for a body that is not the form at all).
#[derive(Debug, Clone)]
pub struct ValidForm<T>(pub T);

/// Why a [`ValidForm`] was refused.
#[derive(Debug)]
pub enum FormRejection<T> {
    /// The body is not this form (a missing or mistyped field): the message says what.
    Malformed(String),
    /// The form was read but its rules refused it: what was sent, to fill the form in again,
    /// and the messages per field.
    Invalid {
        /// The values as they were posted.
        form: T,
        /// The messages per field.
        errors: FieldErrors,
    },
}

impl<T> FormRejection<T> {
    /// The messages per field (a malformed body's under the empty path, the whole form's).
    pub fn errors(&self) -> FieldErrors {
        match self {
            Self::Malformed(message) => FieldErrors::new().with("", message.clone()),
            Self::Invalid { errors, .. } => errors.clone(),
        }
    }
}

impl<T> From<FormRejection<T>> for Error {
    fn from(rejection: FormRejection<T>) -> Self {
        match rejection {
            FormRejection::Malformed(message) => Self::bad_request(message),
            FormRejection::Invalid { errors, .. } => Self::Invalid(errors),
        }
    }
}

impl<T> IntoResponse for FormRejection<T> {
    fn into_response(self) -> Response {
        Error::from(self).into_response()
    }
}

impl<T, S> FromRequest<S> for ValidForm<T>
where
    T: DeserializeOwned + garde::Validate + Send,
    T::Context: Default,
    S: Send + Sync,
{
    type Rejection = FormRejection<T>;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Form(form) = axum::Form::<T>::from_request(req, state)
            .await
            .map_err(|e| FormRejection::Malformed(e.body_text()))?;
        match super::validate(&form) {
            Ok(()) => Ok(Self(form)),
            Err(errors) => Err(FormRejection::Invalid { form, errors }),
        }
    }
}
