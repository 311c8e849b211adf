//! Mail: an [`Email`] with a plain-text part and an HTML part, sent by the app's [`Mailer`].
//!
//! The mailer comes from the `mail_url` setting ([`Transport`]): SMTP through `lettre` in
//! production, the console in development, a directory of JSON files or an in-memory
//! [`Outbox`] in tests. Handlers do not talk to the mail server: [`send_later`] enqueues a
//! durable job ([`crate::jobs`]) that sends the message, so a slow server never slows a
//! request, and a failed send is retried with backoff and, at the end, left `dead` with its
//! error for `app jobs list --state dead`.
//!
//! Messages are written as Fluent texts ([`compose`]), so they go out in the reader's language:
//! `<name>-subject`, `<name>-text` and, optionally, `<name>-html`.

mod compose;
mod job;
mod outbox;
mod transport;

use serde::{Deserialize, Serialize};

pub use compose::{Composed, compose};
pub use job::SendMail;
pub use outbox::Outbox;
pub use transport::{MailError, Mailer, Transport};

/// One message: who it goes to, its subject, its plain text and, when it has one, its HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// The recipient: `ada@example.com` or `Ada <ada@example.com>`.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text part, which every reader can show.
    pub text: String,
    /// The HTML part, shown instead of the text by readers that can.
    pub html: Option<String>,
    /// Where replies go, when not to the sender.
    pub reply_to: Option<String>,
}

impl Email {
    /// A plain-text message to `to`.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
            html: None,
            reply_to: None,
        }
    }

    /// The message composed from the app's texts ([`compose`]), to `to`.
    pub fn composed(to: impl Into<String>, composed: Composed) -> Self {
        Self {
            to: to.into(),
            subject: composed.subject,
            text: composed.text,
            html: Some(composed.html),
            reply_to: None,
        }
    }

    /// Adds an HTML part.
    pub fn html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// Sets where replies go.
    pub fn reply_to(mut self, address: impl Into<String>) -> Self {
        self.reply_to = Some(address.into());
        self
    }

    /// Checks the addresses, so a message that could never be sent is refused when it is
    /// enqueued, not retried until it is dead.
    pub fn validate(&self) -> Result<(), MailError> {
        transport::mailbox("to", &self.to)?;
        if let Some(reply_to) = &self.reply_to {
            transport::mailbox("reply_to", reply_to)?;
        }
        Ok(())
    }
}

/// Enqueues `email` for the app's mailer ([`SendMail`]), on `db` or inside a transaction of
/// it: the message leaves only if the transaction commits. A bad address is refused here.
///
/// ```no_run
/// # async fn f(db: &ferrule::db::sea_orm::DatabaseConnection) -> Result<(), ferrule::Error> {
/// use ferrule::mail::{Email, send_later};
/// send_later(db, Email::new("ada@example.com", "Your order", "It ships today.")).await?;
/// # Ok(()) }
/// ```
pub async fn send_later(
    store: &impl crate::jobs::JobStore,
    email: Email,
) -> Result<crate::jobs::Enqueued, crate::Error> {
    email
        .validate()
        .map_err(|e| crate::Error::bad_request(e.to_string()))?;
    crate::jobs::enqueue(store, SendMail(email)).await
}
