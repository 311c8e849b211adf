//! `POST /_upload`: files for an upload handler, bridged like an event.
//!
//! The request names the tab and the handler in headers (`Ferrule-Client-Token`,
//! `Ferrule-Event-Handler`, optionally `Ferrule-Path` for the page). Files are streamed to
//! temporary files as they arrive (never held in memory), with a per-file and a per-request
//! limit (413 with the limit named, nothing left on disk). Then the upload runs through the
//! same pipeline as an event, with the same session, user, middleware and guards, and the
//! handler gets the files as [`UploadedFile`]s. The update goes back to every socket of the tab
//! (`id: null`) and is also the HTTP answer. Temporary files are deleted after the handler:
//! move or copy what you keep.
//!
//! Upload handlers are registered with `Handlers::upload` and cannot be called as socket
//! events (their payload names files on the server). The custom headers also protect the
//! endpoint from cross-site form posts, which cannot set them.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bridge::{EventBridge, SocketInfo};
use crate::middleware::Request;
use crate::net::{resolve_client, strip_upgrade_headers, valid_token};
use crate::settings::IpNet;
use crate::tab_binding::{TabBinding, storage_key};

pub use crate::protocol::TOKEN_HEADER;
/// Header naming the handler, `"<state>.<handler>"`.
pub const HANDLER_HEADER: &str = "ferrule-event-handler";
/// Optional header with the page path the upload came from.
pub const PATH_HEADER: &str = "ferrule-path";

/// One uploaded file, on disk until the handler returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// The form field's name.
    pub field: String,
    /// The file name the browser gave, if any (never trust it as a path).
    pub file_name: Option<String>,
    /// The content type the browser gave, if any.
    pub content_type: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Where the bytes are; deleted after the handler returns.
    pub path: PathBuf,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

fn too_large(message: String) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

/// Deletes the files when dropped, whatever happened.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Answers one upload request.
pub(crate) async fn handle(bridge: &EventBridge, trusted: &[IpNet], req: Request) -> Response {
    let Some(token) = header(&req, TOKEN_HEADER).map(str::to_owned) else {
        return bad_request(format!("missing header {TOKEN_HEADER}"));
    };
    if !valid_token(&token) {
        return bad_request(format!(
            "invalid header {TOKEN_HEADER}: expected {}",
            crate::net::TOKEN_RULE
        ));
    }
    let Some(name) = header(&req, HANDLER_HEADER).map(str::to_owned) else {
        return bad_request(format!("missing header {HANDLER_HEADER}"));
    };
    let limits = match bridge.upload_target_limits(&name) {
        Ok(limits) => limits,
        Err(why) => return bad_request(format!("invalid header {HANDLER_HEADER}: {why}")),
    };
    let path = header(&req, PATH_HEADER).unwrap_or("/").to_owned();
    if !path.starts_with('/') {
        return bad_request(format!("invalid header {PATH_HEADER}: must start with `/`"));
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let mut headers = req.headers().clone();
    strip_upgrade_headers(&mut headers);
    headers.remove(http::header::CONTENT_TYPE);
    headers.remove(http::header::CONTENT_LENGTH);
    let binding = req.extensions().get::<TabBinding>().cloned();
    let mut info = SocketInfo {
        client: resolve_client(peer.map(|p| p.ip()), &headers, trusted),
        token: storage_key(&token, binding.as_ref()),
        client_token: token,
        binding,
        browser_sessions: Vec::new(),
        epoch: None,
        left_rooms: None,
        language: None,
        headers,
        peer,
    };

    let mut files = TempFiles(Vec::new());
    let mut described = Vec::new();
    let mut multipart = match Multipart::from_request(req.map(Body::new), &()).await {
        Ok(m) => m,
        Err(e) => return bad_request(format!("not a multipart/form-data body: {e}")),
    };
    let mut total: u64 = 0;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad_request(format!("broken multipart body: {e}")),
        };
        let max_files = bridge.settings().upload_max_files;
        if described.len() >= max_files {
            return too_large(format!(
                "more than {max_files} files in one upload (upload_max_files setting)"
            ));
        }
        let field_name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let tmp = bridge
            .upload_dir()
            .join(format!("ferrule-upload-{}", random_name()));
        files.0.push(tmp.clone());
        let mut out = match tokio::fs::File::create(&tmp).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot create a temporary file for an upload");
                return crate::Error::internal(e).into_response();
            }
        };
        let mut size: u64 = 0;
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return bad_request(format!("broken multipart body: {e}")),
            };
            size += chunk.len() as u64;
            total += chunk.len() as u64;
            if size > limits.0 {
                return too_large(format!(
                    "file `{}` is larger than the limit of {} bytes per file",
                    file_name.as_deref().unwrap_or(&field_name),
                    limits.0
                ));
            }
            if total > limits.1 {
                return too_large(format!(
                    "the upload is larger than the limit of {} bytes per request",
                    limits.1
                ));
            }
            if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut out, &chunk).await {
                return crate::Error::internal(e).into_response();
            }
        }
        if let Err(e) = tokio::io::AsyncWriteExt::flush(&mut out).await {
            return crate::Error::internal(e).into_response();
        }
        described.push(UploadedFile {
            field: field_name,
            file_name,
            content_type,
            size,
            path: tmp,
        });
    }
    let raw = json!({
        "id": 0,
        "name": name,
        "payload": described,
        "router_data": {"path": path, "query": ""},
    });
    let mut update = bridge.handle_upload(&mut info, raw).await;
    update.id = None;
    drop(files);
    // The other sockets of the tab (of its session) see the upload's change too.
    let key = bridge.key_of(&info, &name);
    bridge.push_to_tab(&key, &update).await;
    (StatusCode::OK, axum::Json(update)).into_response()
}

fn random_name() -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
