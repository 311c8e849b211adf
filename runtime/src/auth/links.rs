//! Account links: the single-use, expiring tokens in the links of account mail (password
//! reset, change of e-mail).
//!
//! A token is 32 random bytes; only its SHA-256 is stored (in `ferrule_expiring`), so the table
//! holds nothing a link could be made of. A token is bound to the fingerprint of the password
//! the account had when it was issued: setting a new password voids every link issued before.
//! Redeeming deletes the row in the statement that reads it, so a link works once, on any node.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{Auth, AuthError};
use crate::db::entities::user;
use crate::db::expiring::Expiring;
use crate::i18n::{Arg, Catalogues};
use crate::jobs::JobContext;
use crate::mail::{Email, compose, send_later};

/// What a link is for; part of the stored key, so a token of one purpose is nothing to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Reset,
    Email,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Self::Reset => "account:reset:",
            Self::Email => "account:email:",
        }
    }
}

/// What a token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Grant {
    /// The account.
    pub(crate) user: i64,
    /// Its password's fingerprint when the link was made.
    pub(crate) fingerprint: String,
    /// The new address, for a change of e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
}

/// The settings and stores account links need; in the app's extensions, for the HTTP
/// endpoints and the jobs that send the mail.
#[derive(Clone)]
pub(crate) struct AccountLinks {
    pub(crate) auth: Auth,
    /// Where the mail jobs go: where the app's workers look.
    pub(crate) queue: crate::jobs::Queue,
    tokens: Expiring,
    ttl: Duration,
    /// The app's page with the new-password form.
    pub(crate) reset_page: String,
    /// The site's address from the settings (else each request's).
    pub(crate) site_url: Option<String>,
    pub(crate) ipv6_prefix_len: u8,
    /// Whether new accounts confirm their address.
    pub(crate) verification: crate::EmailVerification,
}

impl AccountLinks {
    pub(crate) fn new(
        auth: Auth,
        queue: crate::jobs::Queue,
        tokens: Expiring,
        settings: &crate::Settings,
    ) -> Self {
        Self {
            auth,
            queue,
            tokens,
            ttl: Duration::from_millis(settings.account_link_ttl_ms),
            reset_page: settings.password_reset_url.clone(),
            site_url: settings
                .site_url
                .as_ref()
                .map(|s| s.trim_end_matches('/').to_owned()),
            ipv6_prefix_len: settings.ipv6_prefix_len,
            verification: settings.email_verification,
        }
    }

    pub(crate) fn counters(&self) -> &Expiring {
        &self.tokens
    }

    /// A new token for `grant`, good once, for the links' lifetime.
    pub(crate) async fn issue(&self, purpose: Purpose, grant: &Grant) -> Result<String, AuthError> {
        use rand::Rng;
        let bytes: [u8; 32] = rand::rng().random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let value = serde_json::to_string(grant).map_err(|e| AuthError::Invalid(e.to_string()))?;
        // `Expiring` keeps whole seconds: a link lives at least one.
        let ttl = self.ttl.max(Duration::from_secs(1));
        self.tokens.put(&key(purpose, &token), &value, ttl).await?;
        Ok(token)
    }

    /// The grant of `token` if it is live and its account's password has not changed since,
    /// with the account's row; the token stays usable.
    pub(crate) async fn check(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<Option<(Grant, user::Model)>, AuthError> {
        let Some(value) = self.tokens.peek(&key(purpose, token)).await? else {
            return Ok(None);
        };
        self.current(&value).await
    }

    /// Uses `token` up: its grant when it was live and still matches its account (two
    /// redemptions at once: one gets it).
    pub(crate) async fn redeem(
        &self,
        purpose: Purpose,
        token: &str,
    ) -> Result<Option<(Grant, user::Model)>, AuthError> {
        let Some(value) = self.tokens.take(&key(purpose, token)).await? else {
            return Ok(None);
        };
        self.current(&value).await
    }

    /// The grant stored as `value` when its account is active and has the same password.
    async fn current(&self, value: &str) -> Result<Option<(Grant, user::Model)>, AuthError> {
        let Ok(grant) = serde_json::from_str::<Grant>(value) else {
            return Ok(None);
        };
        let Some(row) = user::Entity::find_by_id(grant.user)
            .one(&self.auth.db)
            .await?
        else {
            return Ok(None);
        };
        let same_password = super::users::auth_hash(&row.password_hash) == grant.fingerprint;
        Ok((row.is_active && same_password).then_some((grant, row)))
    }
}

/// One account link to mail, from a job.
pub(crate) struct LinkMail<'a> {
    /// The account the link acts on.
    pub(crate) account: &'a user::Model,
    /// What the link does.
    pub(crate) purpose: Purpose,
    /// Where the mail goes: the account's address, or the new one for a change.
    pub(crate) to: &'a str,
    /// Which of Ferrule's messages says it ([`crate::mail::compose`]).
    pub(crate) message: &'static str,
    /// The page the link opens (its path), the token put after it as `?token=`.
    pub(crate) page: &'a str,
    /// The site's address the link starts with (with the mount prefix).
    pub(crate) site: &'a str,
    /// The language of the page it was asked from, when the account chose none.
    pub(crate) language: &'a str,
}

impl AccountLinks {
    /// Issues the link of `mail` and enqueues the message that carries it, in the account's
    /// language; the running job's extensions give the links and the translations.
    pub(crate) async fn send(ctx: &JobContext, mail: LinkMail<'_>) -> Result<(), crate::Error> {
        let links = ctx
            .extension::<Self>()
            .ok_or_else(|| crate::Error::internal("account links are not installed"))?;
        let catalogues = ctx
            .extension::<Arc<Catalogues>>()
            .ok_or_else(|| crate::Error::internal("no catalogues"))?;
        let grant = Grant {
            user: mail.account.id,
            fingerprint: super::users::auth_hash(&mail.account.password_hash),
            email: (mail.purpose == Purpose::Email).then(|| mail.to.to_owned()),
        };
        let token = links.issue(mail.purpose, &grant).await?;
        let link = format!("{}{}?token={token}", mail.site, mail.page);
        let language = mail
            .account
            .language
            .clone()
            .filter(|l| catalogues.supports(l))
            .unwrap_or_else(|| mail.language.to_owned());
        let host = mail
            .site
            .split_once("://")
            .map_or(mail.site, |(_, rest)| rest);
        let composed = compose(
            &catalogues,
            &language,
            mail.message,
            &[
                ("username", Arg::from(mail.account.username.as_str())),
                ("email", Arg::from(mail.to)),
                ("link", Arg::from(link)),
                ("host", Arg::from(host.split('/').next().unwrap_or(host))),
                ("hours", Arg::from(links.ttl.as_secs().div_ceil(3600))),
            ],
        );
        send_later(ctx.queue(), Email::composed(mail.to, composed)).await?;
        Ok(())
    }
}

/// The stored key of `token`: its purpose and its SHA-256, never the token itself. Anything
/// that is not a token of ours (wrong length, not hex) gets a key no token has.
fn key(purpose: Purpose, token: &str) -> String {
    let digest = sha2::Sha256::digest(token.trim().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", purpose.prefix())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_a_hash_of_the_token_and_its_purpose() {
        let token = "ab".repeat(32);
        let reset = key(Purpose::Reset, &token);
        assert!(reset.starts_with("account:reset:"));
        assert!(!reset.contains(&token));
        assert_ne!(
            reset.trim_start_matches("account:reset:"),
            key(Purpose::Email, &"ab".repeat(31)).trim_start_matches("account:email:")
        );
        assert_eq!(
            reset.trim_start_matches("account:reset:"),
            key(Purpose::Email, &token).trim_start_matches("account:email:")
        );
    }
}
