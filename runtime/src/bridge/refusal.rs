//! What a middleware's refusal of an event tells the user: its redirect, its short text, or a
//! message for its status.

use http::{StatusCode, header};
use http_body_util::BodyExt;

use crate::middleware::Response;
use crate::protocol::ClientCommand;

/// The redirect a middleware answered with, as the client's command.
pub(super) fn redirect_of(resp: &Response) -> Vec<ClientCommand> {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|loc| vec![ClientCommand::redirect(loc)])
        .unwrap_or_default()
}

/// What the user is told when the chain refused the event with `status` and no text.
pub(super) fn refusal_message(status: StatusCode) -> String {
    crate::i18n::localize(&english_refusal(status))
}

fn english_refusal(status: StatusCode) -> String {
    match status {
        StatusCode::FORBIDDEN => "You do not have permission to do this.".to_owned(),
        StatusCode::UNAUTHORIZED => "Please log in first.".to_owned(),
        StatusCode::TOO_MANY_REQUESTS => "Too many requests. Please wait a moment.".to_owned(),
        s if s.is_client_error() => format!(
            "The request was refused ({} {}).",
            s.as_u16(),
            s.canonical_reason().unwrap_or("")
        ),
        _ => crate::error::GENERIC_MESSAGE.to_owned(),
    }
}

/// The body of a 4xx answer when it is short plain text, for the toast.
pub(super) async fn short_text_body(resp: Response) -> Option<String> {
    if !resp.status().is_client_error() {
        return None;
    }
    if !crate::net::has_content_type(resp.headers(), "text/plain") {
        return None;
    }
    let body = http_body_util::Limited::new(resp.into_body(), 512)
        .collect()
        .await
        .ok()?;
    let text = String::from_utf8(body.to_bytes().to_vec()).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
