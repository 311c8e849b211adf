//! Mail in the app: the mailer of the settings (or the app's own, [`App::mailer`]) in every
//! request's, event's and job's extensions, and the job that sends (see [`crate::mail`]).

use super::*;

impl App {
    /// Sends the app's mail through `mailer` instead of the one the `mail_url` setting names:
    /// a test's [`Outbox`](crate::mail::Outbox), a transport configured in code.
    pub fn mailer(mut self, mailer: crate::mail::Mailer) -> Self {
        self.extensions.insert(mailer);
        self
    }

    /// A test server's mail goes to an outbox nobody reads unless the app or its settings chose
    /// a mailer: the console mailer would print every message and leave its HTML part in the
    /// working directory (the crate's, under `cargo test`).
    #[cfg(feature = "testing")]
    pub(crate) fn quiet_mail_for_tests(mut self) -> Self {
        let chosen = self.extensions.get::<crate::mail::Mailer>().is_some()
            || self.resolved_settings().is_ok_and(|s| s.mail_url.is_some());
        if chosen {
            return self;
        }
        self.mailer(crate::mail::Mailer::to_outbox(&crate::mail::Outbox::new()))
    }

    /// With a database: the mailer in the extensions and its job registered.
    pub(super) fn install_mail(&mut self, settings: &Settings) -> Result<(), BuildError> {
        if self.db.is_none() {
            return Ok(());
        }
        if self.extensions.get::<crate::mail::Mailer>().is_none() {
            let mailer = crate::mail::Mailer::from_settings(settings).map_err(BuildError::Mail)?;
            if settings.is_production() && settings.mail_url.is_none() {
                tracing::warn!(
                    "mail_url is unset: the app's mail (password resets, confirmations) is \
                     printed on standard output, not sent"
                );
            }
            self.extensions.insert(mailer);
        }
        self.add_builtin_job::<crate::mail::SendMail>();
        Ok(())
    }

    /// The account links (password reset, address confirmation) in the extensions, and the
    /// jobs that mail them: in a server and in a worker process alike.
    pub(super) fn install_account_mail(
        &mut self,
        settings: &Settings,
        auth: &Auth,
        tokens: crate::db::expiring::Expiring,
    ) -> crate::auth::AccountLinks {
        let queue = self
            .job_queue()
            .unwrap_or_else(|| crate::jobs::Queue::database(auth.db().clone()));
        let links = crate::auth::AccountLinks::new(auth.clone(), queue, tokens, settings);
        self.extensions.insert(links.clone());
        auth.set_confirmation_required(
            settings.email_verification == crate::EmailVerification::Required,
        );
        self.add_builtin_job::<crate::auth::recovery::PasswordResetAsked>();
        self.add_builtin_job::<crate::auth::confirmation::EmailConfirmAsked>();
        links
    }

    /// What a worker process needs of the server's build to run Ferrule's own jobs: the
    /// mailer and the account links.
    pub(super) fn install_worker_mail(&mut self, settings: &Settings) -> Result<(), BuildError> {
        let Some(db) = self.db.clone() else {
            return Ok(());
        };
        self.install_mail(settings)?;
        let auth = self.auth.clone().unwrap_or_else(|| Auth::new(db.clone()));
        self.install_account_mail(settings, &auth, crate::db::expiring::Expiring::new(db));
        Ok(())
    }

    /// Registers one of Ferrule's own jobs unless the app registered it already.
    pub(super) fn add_builtin_job<J: crate::jobs::Job>(&mut self) {
        if !self.jobs.kinds.contains_key(J::NAME)
            && let Err(e) = self.jobs.add::<J>()
        {
            self.jobs_error.get_or_insert(e);
        }
    }
}
