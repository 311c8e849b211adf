//! Uploads from the browser: the files of an `<input type="file">` posted to `/_upload` with
//! the tab's token, progress as the bytes leave, and the server's refusal as a message.

use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use super::{cookie, token, window};

/// How an upload ended.
pub(crate) enum UploadEnd {
    /// The handler ran; its update reaches the tab over the socket.
    Done,
    /// The server refused it, or the request failed; the message says which.
    Failed(String),
}

/// Posts the files chosen in `input` to `/_upload` for `handler`, reporting progress (0 to 1) as
/// the bytes leave. The handler's state update comes back over the socket, like any push.
pub(crate) fn upload(
    handler: &str,
    input: &web_sys::HtmlInputElement,
    progress: impl Fn(f64) + 'static,
    done: impl FnOnce(UploadEnd) + 'static,
) -> Result<(), String> {
    let token = token().ok_or("not connected yet")?;
    let files = input.files().ok_or("no files chosen")?;
    let form = web_sys::FormData::new().map_err(|_| "FormData is not available")?;
    for i in 0..files.length() {
        if let Some(file) = files.get(i) {
            form.append_with_blob_and_filename(&input.name(), &file, &file.name())
                .map_err(|_| "could not add a file to the form")?;
        }
    }
    let xhr = web_sys::XmlHttpRequest::new().map_err(|_| "XMLHttpRequest is not available")?;
    xhr.open("POST", &super::mounted(crate::protocol::UPLOAD_PATH))
        .map_err(|_| "could not open the upload request")?;
    let path = super::unmounted(
        &window()
            .location()
            .pathname()
            .unwrap_or_else(|_| "/".into()),
    );
    for (name, value) in [
        (crate::protocol::TOKEN_HEADER, token.as_str()),
        ("ferrule-event-handler", handler),
        ("ferrule-path", path.as_str()),
    ] {
        xhr.set_request_header(name, value)
            .map_err(|_| format!("could not set header {name}"))?;
    }
    if let Some(csrf) = cookie(crate::protocol::CSRF_COOKIE) {
        xhr.set_request_header("x-csrftoken", &csrf)
            .map_err(|_| "could not set the CSRF header")?;
    }
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() && e.total() > 0.0 {
                progress(e.loaded() / e.total());
            }
        });
    if let Ok(up) = xhr.upload() {
        up.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    }
    let req = xhr.clone();
    // Runs once and is freed then, together with the progress callback it owns.
    let on_end = Closure::once_into_js(move |_: web_sys::Event| {
        drop(on_progress);
        let status = req.status().unwrap_or(0);
        if (200..300).contains(&status) {
            done(UploadEnd::Done);
        } else {
            let body = req.response_text().ok().flatten().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| {
                    if status == 0 {
                        "the upload did not reach the server".to_owned()
                    } else {
                        format!("the upload failed (HTTP {status})")
                    }
                });
            done(UploadEnd::Failed(message));
        }
    });
    xhr.set_onloadend(Some(on_end.unchecked_ref()));
    xhr.send_with_opt_form_data(Some(&form))
        .map_err(|_| "could not send the upload")?;
    Ok(())
}
