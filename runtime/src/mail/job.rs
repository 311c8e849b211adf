//! The job that sends one message: what [`super::send_later`] enqueues.

use serde::{Deserialize, Serialize};

use super::{Email, Mailer};
use crate::jobs::{Job, JobContext};

/// Sends its message through the app's [`Mailer`]; a failed send is retried with the jobs'
/// backoff, 8 attempts in all (about four minutes), then left `dead` with the server's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMail(pub Email);

impl Job for SendMail {
    const NAME: &'static str = "ferrule.send_mail";
    const MAX_ATTEMPTS: u32 = 8;

    async fn run(self, ctx: JobContext) -> Result<(), crate::Error> {
        let mailer = ctx.extension::<Mailer>().ok_or_else(|| {
            crate::Error::internal("no mailer: the app was built without a database")
        })?;
        mailer.send(&self.0).await.map_err(crate::Error::internal)?;
        tracing::info!(subject = %self.0.subject, transport = ?mailer.transport(), "mail sent");
        Ok(())
    }
}
