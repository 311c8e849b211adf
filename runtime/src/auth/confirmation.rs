//! Confirming an e-mail address: at registration (setting `email_verification`) and for a
//! change of address, which takes effect only once the link mailed to the new address is
//! followed.
//!
//! `POST /_auth/email` (`email`, `password`; logged in) asks to change the address: the password
//! is checked like a login (and throttled like one), and a link goes to the new address.
//! `GET /_auth/email/confirm?token=…` is that link, and the one mailed at registration: it sets
//! the address and marks it confirmed, then sends the browser to `/` with a flash message. With
//! `email_verification = "required"`, an account that has not confirmed is anonymous and its
//! logins are refused, each refusal mailing a fresh link.

use axum::response::IntoResponse;
use http::{HeaderValue, StatusCode, header};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{
    AuthRoutes, check_own_password, fields, form_error, form_redirect, json_response, log_in_first,
    logged_in, next_page, say,
};
use super::links::{AccountLinks, LinkMail, Purpose};
use super::{USERS_TABLE, User};
use crate::db::entities::user;
use crate::jobs::{Job, JobContext, Options};
use crate::middleware::{Request, Response};
use crate::protocol::ToastLevel;

/// Where the confirmation links point.
pub const CONFIRM_PATH: &str = "/_auth/email/confirm";
/// What a request to change the address is told.
pub const CHANGE_ASKED: &str = "A link to confirm the new address is on its way to it.";
/// What a registration that must confirm its address is told.
pub const CONFIRM_FIRST: &str =
    "Check your mail: follow the link in it to confirm your address, then log in.";
/// What a login of an account that has not confirmed its address is told.
pub const NOT_CONFIRMED: &str =
    "Confirm your e-mail address first: a new link is on its way to it.";
/// What a followed confirmation link is told.
pub const CONFIRMED: &str = "Your e-mail address is confirmed.";
/// What a link to an address another account took in the meantime is told.
pub const ADDRESS_TAKEN: &str = "This address is used by another account.";

/// The job that mails a confirmation link for `email` to the account `user`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailConfirmAsked {
    /// The account.
    pub user: i64,
    /// The address to confirm (the account's at registration, the new one for a change).
    pub email: String,
    /// The language of the page it was asked from (the account's own comes first).
    pub language: String,
    /// The site's address the link starts with.
    pub site: String,
}

impl Job for EmailConfirmAsked {
    const NAME: &'static str = "ferrule.confirm_email";

    async fn run(self, ctx: JobContext) -> Result<(), crate::Error> {
        let Some(account) = user::Entity::find_by_id(self.user).one(ctx.db()).await? else {
            return Ok(());
        };
        // Another account has the address: its owner is not told anything by us.
        let taken = user::Entity::find()
            .filter(user::Column::Email.eq(self.email.as_str()))
            .filter(user::Column::Id.ne(account.id))
            .one(ctx.db())
            .await?
            .is_some();
        if taken || !account.is_active {
            return Ok(());
        }
        let mail = LinkMail {
            account: &account,
            purpose: Purpose::Email,
            to: &self.email,
            message: "ferrule-mail-confirm-email",
            page: CONFIRM_PATH,
            site: &self.site,
            language: &self.language,
        };
        AccountLinks::send(&ctx, mail).await
    }
}

/// Enqueues the confirmation mail of `email` for `user` (one waiting per account).
pub(super) async fn ask_confirmation(
    links: &AccountLinks,
    parts: &http::request::Parts,
    user: i64,
    email: &str,
) -> Result<(), crate::Error> {
    let job = EmailConfirmAsked {
        user,
        email: email.to_owned(),
        language: crate::i18n::language_of(parts),
        site: super::recovery::site_of(links, parts),
    };
    let options = Options::default()
        .unique(format!("{user}:{email}"))
        .replace_duplicate();
    crate::jobs::enqueue_with(&links.queue, job, options).await?;
    Ok(())
}

/// `POST /_auth/email`: the logged-in user's password and new address.
pub(super) async fn change(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(user) = logged_in(&parts) else {
        return log_in_first();
    };
    let email = f.get("email").map(|e| e.trim()).unwrap_or_default();
    if email.is_empty() || email.len() > 254 || email.parse::<lettre::Address>().is_err() {
        return form_error(
            &parts,
            StatusCode::BAD_REQUEST,
            "Enter your e-mail address.",
        )
        .await;
    }
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    if let Some(refused) =
        check_own_password(&s, &parts, &user, password, "The password is wrong.").await
    {
        return refused;
    }
    if let Err(e) = ask_confirmation(&s.links, &parts, user.id, email).await {
        return e.into_response();
    }
    if let Some(resp) = form_redirect(&parts, next_page(f.get("next")).as_deref()) {
        say(&parts, ToastLevel::Info, CHANGE_ASKED.to_owned()).await;
        return resp;
    }
    json_response(
        StatusCode::ACCEPTED,
        json!({ "ok": true, "message": CHANGE_ASKED }),
    )
}

/// `GET /_auth/email/confirm?token=…`: the link of a confirmation mail.
pub(super) async fn confirm(s: AuthRoutes, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let token = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let (message, level) = match s.links.redeem(Purpose::Email, &token).await {
        Ok(Some((grant, row))) => match set_address(&s, row, grant.email).await {
            Ok(true) => (CONFIRMED, ToastLevel::Success),
            Ok(false) => (ADDRESS_TAKEN, ToastLevel::Error),
            Err(e) => return crate::Error::from(e).into_response(),
        },
        Ok(None) => (super::recovery::LINK_INVALID, ToastLevel::Error),
        Err(e) => return crate::Error::from(e).into_response(),
    };
    say(&parts, level, message.to_owned()).await;
    http::Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, HeaderValue::from_static("/"))
        .body(axum::body::Body::empty())
        .unwrap_or_default()
}

/// Gives `row` the confirmed address `email`; `false` when another account has it.
async fn set_address(
    s: &AuthRoutes,
    row: user::Model,
    email: Option<String>,
) -> Result<bool, super::AuthError> {
    let id = row.id;
    let mut active: user::ActiveModel = row.into();
    if let Some(email) = email {
        active.email = Set(Some(email));
    }
    active.email_verified = Set(true);
    match active.update(s.auth.db()).await {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    s.auth.users.remove(&id);
    s.auth.told(&[USERS_TABLE]);
    tracing::info!(user = id, "e-mail address confirmed");
    Ok(true)
}

/// A login of `user`, who has not confirmed their address while confirmation is required:
/// refused, and a fresh link mailed.
pub(super) async fn refuse_unconfirmed(
    s: &AuthRoutes,
    parts: &http::request::Parts,
    user: &User,
) -> Response {
    if let Some(email) = &user.email
        && let Err(e) = ask_confirmation(&s.links, parts, user.id, email).await
    {
        tracing::warn!(error = %e, "could not mail a new confirmation link");
    }
    form_error(parts, StatusCode::FORBIDDEN, NOT_CONFIRMED).await
}
