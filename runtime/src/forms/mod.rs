//! Typed forms checked with [`garde`] on the server and in the browser, and their errors per
//! field ([`FieldErrors`]).
//!
//! A form is a serde struct that derives `garde::Validate`. A handler refuses it with
//! `ferrule::forms::validate(&form)?`: the answer then carries each field's messages
//! (`_invalid` on the wire), which [`ui::Field`](crate::ui::Field) shows under its input. An
//! HTTP form post uses the same struct through [`ValidForm`].
//!
//! ```
//! use ferrule::forms::{self, rules};
//!
//! #[derive(serde::Deserialize, garde::Validate)]
//! struct NewNote {
//!     #[garde(custom(rules::required), custom(rules::max_chars(80)))]
//!     title: String,
//!     #[garde(range(min = 1, max = 5))]
//!     stars: u8,
//! }
//!
//! let errors = forms::validate(&NewNote { title: " ".into(), stars: 9 }).unwrap_err();
//! assert_eq!(errors.first("title"), Some("Required."));
//! assert!(errors.first("stars").is_some());
//! ```

mod dates;
#[cfg(feature = "server")]
mod http;
pub mod rules;

#[cfg(feature = "server")]
pub use dates::{format_datetime, parse_date, parse_datetime};

#[cfg(feature = "server")]
pub use http::{FormRejection, ValidForm};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The messages of a refused form by field path (`title`, `address.city`, `tags[2]`); the
/// empty path holds those about the whole form. On the wire, a JSON object of string arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `message` to `field`'s messages.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// [`FieldErrors::add`] as a builder, for errors a handler finds itself (a name taken).
    pub fn with(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.add(field, message);
        self
    }

    /// `field`'s messages, empty when it is fine.
    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or_default()
    }

    /// `field`'s first message.
    pub fn first(&self, field: &str) -> Option<&str> {
        self.get(field).first().map(String::as_str)
    }

    /// Whether no field has a message.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each field with its messages, by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The same errors with each message passed through `f` (to translate them, say).
    pub fn map_messages(self, f: impl Fn(&str) -> String) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|(field, messages)| (field, messages.iter().map(|m| f(m)).collect()))
                .collect(),
        )
    }
}

impl From<garde::Report> for FieldErrors {
    fn from(report: garde::Report) -> Self {
        let mut errors = Self::new();
        for (path, error) in report.iter() {
            errors.add(path.to_string(), error.message());
        }
        errors
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, messages) in self.iter() {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                if field.is_empty() {
                    write!(f, "{message}")?;
                } else {
                    write!(f, "{field}: {message}")?;
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Checks `form` with its `garde` rules: `Err` holds every field's messages. On the server `?`
/// turns them into [`Error::Invalid`](crate::Error::Invalid), the refusal pages show by field.
pub fn validate<T>(form: &T) -> Result<(), FieldErrors>
where
    T: garde::Validate + ?Sized,
    T::Context: Default,
{
    form.validate().map_err(FieldErrors::from)
}

/// What the answer to a refused form says besides the fields (its error toast).
pub const INVALID_MESSAGE: &str = "Please correct the marked fields.";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(garde::Validate)]
    struct Signup {
        #[garde(custom(rules::required))]
        name: String,
        #[garde(dive)]
        address: Address,
    }

    #[derive(garde::Validate)]
    struct Address {
        #[garde(length(chars, max = 3))]
        city: String,
    }

    #[test]
    fn each_field_keeps_its_own_messages_under_its_path() {
        let form = Signup {
            name: String::new(),
            address: Address {
                city: "Lisbon".into(),
            },
        };
        let errors = validate(&form).unwrap_err();
        assert_eq!(errors.get("name"), ["Required."]);
        assert_eq!(errors.get("address.city").len(), 1);
        assert!(errors.get("address").is_empty());
    }

    #[test]
    fn field_errors_travel_as_an_object_of_message_lists() {
        let errors = FieldErrors::new().with("title", "Required.");
        let json = serde_json::to_value(&errors).unwrap();
        assert_eq!(json, serde_json::json!({"title": ["Required."]}));
        assert_eq!(serde_json::from_value::<FieldErrors>(json).unwrap(), errors);
    }
}
