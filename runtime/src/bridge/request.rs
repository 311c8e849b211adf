//! Step 2 of an event: the synthetic `http::Request` built from the socket's handshake and
//! the event's `router_data`.

use super::*;

impl EventBridge {
    /// Step 3: the synthetic request.
    /// The request of `event` on `socket`, for the states under `key`.
    pub(super) fn build_request(
        &self,
        socket: &SocketInfo,
        event: &Event,
        key: &str,
    ) -> Result<Request, String> {
        let rd = &event.router_data;
        if !rd.path.starts_with('/') {
            return Err(format!(
                "router_data.path must start with `/`, got `{}`",
                rd.path
            ));
        }
        let uri = if rd.query.is_empty() {
            rd.path.clone()
        } else {
            format!("{}?{}", rd.path, rd.query)
        };
        let uri: http::Uri = uri
            .parse()
            .map_err(|e| format!("router_data does not make a valid URI: {e}"))?;
        let (method, body, form) = if self.settings.event_post_from_payload {
            let pairs = form_pairs(&event.payload);
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            (Method::POST, Bytes::from(encoded), Some(Form(pairs)))
        } else {
            (Method::GET, Bytes::new(), None)
        };
        let mut req = Request::new(Body::from(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = socket.headers.clone();
        if let Some(form) = form {
            req.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            req.extensions_mut().insert(form);
        }
        let ext = req.extensions_mut();
        // The app's own first: what Ferrule puts below is never shadowed by them.
        ext.extend(self.extensions.clone());
        ext.insert(EventInfo {
            id: Some(event.id),
            name: event.name.clone(),
            token: key.to_owned(),
        });
        ext.insert(socket.client);
        ext.insert(BridgeRef(self.me.clone()));
        if let Some(peer) = socket.peer {
            ext.insert(axum::extract::ConnectInfo(peer));
        }
        Ok(req)
    }
}

/// Top-level payload fields as form pairs: strings as they are, other values as JSON.
fn form_pairs(payload: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = payload else {
        return Vec::new();
    };
    map.iter()
        .flat_map(|(k, v)| match v {
            Value::String(s) => vec![(k.clone(), s.clone())],
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    (
                        k.clone(),
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string()),
                    )
                })
                .collect(),
            Value::Null => Vec::new(),
            other => vec![(k.clone(), other.to_string())],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_becomes_form_pairs() {
        let pairs =
            form_pairs(&serde_json::json!({"q": "rust", "n": 3, "tag": ["a", "b"], "none": null}));
        assert_eq!(
            pairs,
            vec![
                ("n".to_owned(), "3".to_owned()),
                ("q".to_owned(), "rust".to_owned()),
                ("tag".to_owned(), "a".to_owned()),
                ("tag".to_owned(), "b".to_owned()),
            ]
        );
    }
}
