//! Password reset by e-mail: `POST /_auth/password_reset` (`email`) asks for a link,
//! `POST /_auth/password_reset/confirm` (`token`, `password`) sets the new password.
//!
//! Asking answers the same whether or not the address has an account, and does the same work
//! either way: it only enqueues a [`PasswordResetAsked`] job, whose worker looks the address up
//! and, for an active account, mails a link ([`super::links`]) through [`crate::mail`]. Asking
//! is throttled per client address and per e-mail address. The new password goes through the
//! password policy; setting it voids every other session of the account and every other link.

use axum::response::IntoResponse;
use http::StatusCode;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{
    AuthRoutes, client_ip, fields, form_error, form_redirect, json_response, next_page, refusal,
    say,
};
use super::links::{AccountLinks, LinkMail, Purpose};
use crate::db::entities::user;
use crate::jobs::{Job, JobContext};
use crate::middleware::{Request, Response};
use crate::protocol::ToastLevel;

/// Requests for links from one client address per [`ASK_WINDOW`].
pub const ASKS_PER_ADDRESS: i64 = 10;
/// Requests for links to one e-mail address per [`ASK_WINDOW`].
pub const ASKS_PER_EMAIL: i64 = 3;
/// How long the counts of requests for links last.
pub const ASK_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// What every request for a reset link is told.
pub const RESET_ASKED: &str =
    "If an account has this address, a link to set a new password is on its way.";
/// What a dead, used or foreign link is told.
pub const LINK_INVALID: &str = "This link is invalid or has expired. Ask for a new one.";
/// What a reset answers once the password is set.
pub const RESET_DONE: &str = "Your new password is set: log in with it.";
/// What a request past the throttle is told.
const TOO_MANY: &str = "Too many requests. Please wait a moment.";

/// The job of one request for a reset link: mails a link to each active account with the
/// address (there is at most one, e-mails being unique).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordResetAsked {
    /// The address as typed.
    pub email: String,
    /// The language of the page it was asked from (the account's own comes first).
    pub language: String,
    /// The site's address the link starts with (`https://shop.example`, with the mount prefix).
    pub site: String,
}

impl Job for PasswordResetAsked {
    const NAME: &'static str = "ferrule.password_reset";

    async fn run(self, ctx: JobContext) -> Result<(), crate::Error> {
        let links = ctx
            .extension::<AccountLinks>()
            .ok_or_else(|| crate::Error::internal("account links are not installed"))?;
        let address = self.email.trim().to_lowercase();
        let accounts = user::Entity::find()
            .filter(ExprTrait::eq(
                Expr::expr(Func::lower(Expr::col(user::Column::Email))),
                address,
            ))
            .filter(user::Column::IsActive.eq(true))
            .all(ctx.db())
            .await?;
        for account in &accounts {
            let Some(to) = &account.email else {
                continue;
            };
            let mail = LinkMail {
                account,
                purpose: Purpose::Reset,
                to,
                message: "ferrule-mail-password-reset",
                page: &links.reset_page,
                site: &self.site,
                language: &self.language,
            };
            AccountLinks::send(&ctx, mail).await?;
        }
        Ok(())
    }
}

/// The address the links of mail asked for by `parts` start with: the `site_url` setting, or
/// the scheme and host the request came to, and the app's mount prefix.
pub(super) fn site_of(links: &AccountLinks, parts: &http::request::Parts) -> String {
    let prefix = crate::mount::MountPath::of(parts);
    if let Some(site) = &links.site_url {
        return format!("{site}{prefix}");
    }
    let https = parts
        .extensions
        .get::<crate::net::ClientAddr>()
        .is_some_and(|c| c.https);
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{host}{prefix}")
}

/// `POST /_auth/password_reset`: one job enqueued, one answer whoever the address belongs to.
pub(super) async fn ask(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let email = f.get("email").map(|e| e.trim()).unwrap_or_default();
    if email.is_empty() || !email.contains('@') || email.len() > 254 {
        return form_error(
            &parts,
            StatusCode::BAD_REQUEST,
            "Enter your e-mail address.",
        )
        .await;
    }
    let links = &s.links;
    let ip = crate::net::address_key(client_ip(&parts), links.ipv6_prefix_len);
    let counters = [
        format!("reset:addr:{ip}"),
        format!("reset:mail:{}", email.to_lowercase()),
    ];
    let names: Vec<&str> = counters.iter().map(String::as_str).collect();
    match links.counters().bump_all(&names, ASK_WINDOW).await {
        Ok(counts) if counts[0] > ASKS_PER_ADDRESS || counts[1] > ASKS_PER_EMAIL => {
            return form_error(&parts, StatusCode::TOO_MANY_REQUESTS, TOO_MANY).await;
        }
        Ok(_) => {}
        Err(e) => return crate::Error::from(e).into_response(),
    }
    let job = PasswordResetAsked {
        email: email.to_owned(),
        language: crate::i18n::language_of(&parts),
        site: site_of(links, &parts),
    };
    if let Err(e) = crate::jobs::enqueue(&links.queue, job).await {
        return e.into_response();
    }
    if let Some(resp) = form_redirect(&parts, next_page(f.get("next")).as_deref()) {
        say(&parts, ToastLevel::Info, RESET_ASKED.to_owned()).await;
        return resp;
    }
    json_response(
        StatusCode::ACCEPTED,
        json!({ "ok": true, "message": RESET_ASKED }),
    )
}

/// `POST /_auth/password_reset/confirm`: the link's token and the new password.
pub(super) async fn confirm(s: AuthRoutes, req: Request) -> Response {
    let (parts, f) = match fields(req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let token = f.get("token").map(String::as_str).unwrap_or_default();
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    let links = &s.links;
    // Checked first, so a refused password leaves the link usable.
    let row = match links.check(Purpose::Reset, token).await {
        Ok(Some((_, row))) => row,
        Ok(None) => return form_error(&parts, StatusCode::BAD_REQUEST, LINK_INVALID).await,
        Err(e) => return refusal(&parts, e).await,
    };
    if let Err(e) = super::users::validate_password(password, &row.username, row.email.as_deref()) {
        return refusal(&parts, e).await;
    }
    match links.redeem(Purpose::Reset, token).await {
        Ok(Some(_)) => {}
        Ok(None) => return form_error(&parts, StatusCode::BAD_REQUEST, LINK_INVALID).await,
        Err(e) => return refusal(&parts, e).await,
    }
    if let Err(e) = links.auth.set_password(&row.username, password).await {
        return refusal(&parts, e).await;
    }
    tracing::info!(user = row.id, "password reset by e-mail link");
    if let Some(resp) = form_redirect(&parts, next_page(f.get("next")).as_deref()) {
        say(&parts, ToastLevel::Success, RESET_DONE.to_owned()).await;
        return resp;
    }
    json_response(StatusCode::OK, json!({ "ok": true }))
}
