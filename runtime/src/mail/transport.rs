//! Where mail goes ([`Transport`], from the `mail_url` setting) and what sends it ([`Mailer`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Email, Outbox};

/// How long an SMTP exchange may take before the send fails (and its job is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address does not parse (`to`, `reply_to`, the `mail_from` setting).
    #[error("invalid {field} address `{address}`: {reason}")]
    Address {
        /// Which address.
        field: &'static str,
        /// As written.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The message could not be built.
    #[error("the message could not be built: {0}")]
    Build(String),
    /// The mail server refused it or could not be reached.
    #[error("the mail server did not take the message: {0}")]
    Smtp(String),
    /// The file outbox could not be written.
    #[error("the mail file could not be written: {0}")]
    File(#[from] std::io::Error),
}

/// `address` as a mailbox, or an error naming `field`.
pub(super) fn mailbox(field: &'static str, address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address {
            field,
            address: address.to_owned(),
            reason: e.to_string(),
        })
}

/// Where the mailer sends, read from the `mail_url` setting.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server (`smtp://`, `smtps://`), as lettre reads the URL: `smtps://` is TLS from
    /// the start, `?tls=required` STARTTLS, neither a plain connection.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Printed to standard output, the HTML part written beside the app's data with a link to
    /// it (development).
    Console,
    /// One JSON file per message in a directory, written whole (tests outside the process).
    Directory(PathBuf),
    /// Kept in an [`Outbox`] (tests in the process).
    Memory(Outbox),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(_) => f.write_str("Smtp"),
            Self::Console => f.write_str("Console"),
            Self::Directory(dir) => f.debug_tuple("Directory").field(dir).finish(),
            Self::Memory(_) => f.write_str("Memory"),
        }
    }
}

impl Transport {
    /// The transport `url` names: `smtp://…`, `smtps://…`, `console`, `file:DIR`, `memory`.
    pub fn parse(url: &str) -> Result<Self, String> {
        match url {
            "console" => return Ok(Self::Console),
            "memory" => return Ok(Self::Memory(Outbox::default())),
            _ => {}
        }
        if let Some(dir) = url.strip_prefix("file:") {
            let dir = dir.strip_prefix("//").unwrap_or(dir);
            if dir.is_empty() {
                return Err("`file:` needs a directory: file:/tmp/outbox".to_owned());
            }
            return Ok(Self::Directory(PathBuf::from(dir)));
        }
        if url.starts_with("smtp://") || url.starts_with("smtps://") {
            let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| format!("not an SMTP URL lettre can use: {e}"))?;
            return Ok(Self::Smtp(builder.timeout(Some(SMTP_TIMEOUT)).build()));
        }
        Err(format!(
            "`{}` is not a mail transport: expected smtp://…, smtps://…, console, file:DIR or memory",
            crate::db::redact(url)
        ))
    }
}

/// The app's mailer: a [`Transport`] and the sender (`mail_from`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    /// A mailer sending from `from` (an address, `Name <address>` allowed) through `transport`.
    pub fn new(transport: Transport, from: &str) -> Result<Self, MailError> {
        Ok(Self {
            transport,
            from: mailbox("mail_from", from)?,
        })
    }

    /// A mailer that keeps what it sends in `outbox`, for tests.
    pub fn to_outbox(outbox: &Outbox) -> Self {
        Self {
            transport: Transport::Memory(outbox.clone()),
            from: "webmaster@localhost"
                .parse()
                .expect("a literal address parses"),
        }
    }

    /// The mailer of `settings`: `mail_url` (unset: the console) and `mail_from`.
    pub fn from_settings(settings: &crate::Settings) -> Result<Self, String> {
        let transport = match &settings.mail_url {
            Some(url) => Transport::parse(url)?,
            None => Transport::Console,
        };
        Self::new(transport, &settings.mail_from).map_err(|e| e.to_string())
    }

    /// Where it sends.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends `email` now. Handlers use [`super::send_later`] instead, which retries.
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = self.message(email)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Smtp(e.to_string())),
            Transport::Console => self.print(email).await,
            Transport::Directory(dir) => self.write(dir, email).await,
            Transport::Memory(outbox) => {
                outbox.keep(email.clone());
                Ok(())
            }
        }
    }

    /// The lettre message of `email`: plain text alone, or text and HTML as alternatives.
    fn message(&self, email: &Email) -> Result<Message, MailError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(mailbox("to", &email.to)?)
            .subject(email.subject.clone());
        if let Some(reply_to) = &email.reply_to {
            builder = builder.reply_to(mailbox("reply_to", reply_to)?);
        }
        let built = match &email.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(email.text.clone()))
                    .singlepart(SinglePart::html(html.clone())),
            ),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.clone()),
        };
        built.map_err(|e| MailError::Build(e.to_string()))
    }

    /// Development: the message on standard output, and its HTML part in a file it links to.
    async fn print(&self, email: &Email) -> Result<(), MailError> {
        let mut out = format!(
            "──── mail from {} to {} ────\nSubject: {}\n\n{}\n",
            self.from, email.to, email.subject, email.text
        );
        if let Some(html) = &email.html {
            let dir = absolute(crate::settings::data_dir().join("mail"));
            let path = dir.join(format!("{}.html", file_stem()));
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(&path, html).await?;
            out.push_str(&format!("(HTML part: file://{})\n", path.display()));
        }
        out.push_str("────\n");
        println!("{out}");
        Ok(())
    }

    /// Tests outside the process: `DIR/<time>-<n>.json`, renamed into place once written.
    async fn write(&self, dir: &std::path::Path, email: &Email) -> Result<(), MailError> {
        tokio::fs::create_dir_all(dir).await?;
        let stem = file_stem();
        let body = serde_json::json!({
            "from": self.from.to_string(),
            "to": email.to,
            "subject": email.subject,
            "text": email.text,
            "html": email.html,
            "reply_to": email.reply_to,
        });
        let partial = dir.join(format!(".{stem}.part"));
        tokio::fs::write(&partial, body.to_string()).await?;
        tokio::fs::rename(&partial, dir.join(format!("{stem}.json"))).await?;
        Ok(())
    }
}

/// A file name no other message of this process takes, in the order they were sent.
fn file_stem() -> String {
    static SENT: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = SENT.fetch_add(1, Ordering::Relaxed);
    format!("{millis}-{}-{n}", std::process::id())
}

fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}
