//! Plain HTTP requests to a test server.

use super::*;

/// One HTTP/1.1 request to the server at `addr` (hyper's client), the answer read whole.
/// A `host` among `headers` replaces the default one (the address).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<TestResponse, TestError> {
    let protocol = |e: &dyn std::fmt::Display| TestError::Protocol(format!("HTTP: {e}"));
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| protocol(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "test HTTP connection ended with an error");
        }
    });
    let mut req = ::http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req = req.header(::http::header::HOST, addr.to_string());
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
            body,
        )))
        .map_err(|e| protocol(&e))?;
    let wait = Duration::from_secs(10);
    let resp = tokio::time::timeout(wait, sender.send_request(req))
        .await
        .map_err(|_| TestError::Timeout("an HTTP answer"))?
        .map_err(|e| protocol(&e))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = tokio::time::timeout(wait, http_body_util::BodyExt::collect(resp.into_body()))
        .await
        .map_err(|_| TestError::Timeout("an HTTP body"))?
        .map_err(|e| protocol(&e))?
        .to_bytes()
        .to_vec();
    Ok(TestResponse {
        status,
        headers,
        body,
    })
}

/// An HTTP answer read by [`TestServer::http`].
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of the `Set-Cookie` header for cookie `name`, if the answer sets it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_owned())
            .find(|kv| kv.split_once('=').is_some_and(|(k, _)| k == name))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, TestError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| TestError::Protocol(format!("body is not JSON: {e}")))
    }
}
