//! A native Socket.IO client speaking Ferrule's wire protocol.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::protocol::{Action, Delta, StateName};

/// How a [`TestClient`] connects.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The tab token; a fresh one when `None`.
    pub token: Option<String>,
    /// Extra handshake headers (`Cookie`, `Origin`, `X-Forwarded-For`, ...).
    pub headers: Vec<(String, String)>,
    /// Auth object to send instead of `{"token": .., "epoch": ..}` (for testing refusals).
    pub raw_auth: Option<Value>,
    /// The page load this client stands for; a fresh one when `None`. Two clients with one
    /// token and one epoch are one page reconnecting: ids they both send are applied once.
    pub epoch: Option<String>,
    /// The prefix a host app mounted the server under (`/app`; `""` at the root): the socket
    /// and uploads go below it.
    pub mount: String,
}

impl ClientOptions {
    /// Connect with this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Connect as page load `epoch` (to resend, as a reconnecting browser does).
    pub fn epoch(mut self, epoch: impl Into<String>) -> Self {
        self.epoch = Some(epoch.into());
        self
    }

    /// Connect to a server a host app mounted under `prefix` (`/app`).
    pub fn mounted_at(mut self, prefix: impl Into<String>) -> Self {
        self.mount = prefix.into();
        self
    }

    /// Add a handshake header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Connect as the same browser tab as `client` (a reload or a reconnect): its token and
    /// the cookies it has now, the session cookie its handshake was given included.
    pub fn tab_of(mut self, client: &TestClient) -> Self {
        self.token = Some(client.token.clone());
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("cookie"));
        if let Some(cookies) = client.cookies() {
            self.headers.push(("cookie".into(), cookies));
        }
        self
    }
}

/// A fresh tab token as the browser makes one (128 random bits), marked as a test's.
pub fn fresh_token() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!(
        "test-{}-{}-{bits:032x}",
        std::process::id(),
        NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
    )
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The `name=value` pairs of `Cookie` headers.
fn cookie_pairs<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// A native Socket.IO client speaking Ferrule's wire protocol.
pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    addr: SocketAddr,
    /// The prefix the server is mounted under (`""` at the root).
    mount: String,
    token: String,
    /// The `Cookie` header of the handshake, with what its answer set.
    cookies: Vec<(String, String)>,
    epoch: String,
    next_id: u64,
    backlog: VecDeque<StateUpdate>,
    /// The states as this client has seen them, every update merged in arrival order.
    seen: crate::client::StateStore,
    timeout: Duration,
    /// The page the tab shows: where it last hydrated or navigated (`/` at first).
    page: RouterData,
}

impl TestClient {
    /// Opens `ws://addr/_event/?EIO=4&transport=websocket` and joins namespace `/`.
    pub async fn connect(addr: SocketAddr, options: ClientOptions) -> Result<Self, TestError> {
        let token = options.token.clone().unwrap_or_else(fresh_token);
        let epoch = options.epoch.clone().unwrap_or_else(|| {
            format!(
                "epoch-{}-{}",
                std::process::id(),
                NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
            )
        });
        let url = format!(
            "ws://{addr}{}/_event/?EIO=4&transport=websocket",
            options.mount
        );
        let mut request = url.into_client_request()?;
        for (name, value) in &options.headers {
            let name = ::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| TestError::Protocol(e.to_string()))?;
            let value = ::http::HeaderValue::from_str(value)
                .map_err(|e| TestError::Protocol(e.to_string()))?;
            request.headers_mut().append(name, value);
        }
        let (ws, answer) =
            match tokio_tungstenite::connect_async_with_config(request, None, true).await {
                Ok(connected) => connected,
                // Refused before the upgrade (too many transports from this address): the
                // server's reason is the body.
                Err(tokio_tungstenite::tungstenite::Error::Http(resp))
                    if resp.status().is_client_error() =>
                {
                    let body = resp.body().as_deref().unwrap_or_default();
                    return Err(TestError::Refused(Value::String(
                        String::from_utf8_lossy(body).into_owned(),
                    )));
                }
                Err(e) => return Err(e.into()),
            };
        let mut cookies = cookie_pairs(
            options
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                .map(|(_, v)| v.as_str()),
        );
        for set in answer.headers().get_all(::http::header::SET_COOKIE) {
            let Some((name, value)) = set
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|kv| kv.trim().split_once('='))
            else {
                continue;
            };
            cookies.retain(|(n, _)| n != name);
            cookies.push((name.to_owned(), value.to_owned()));
        }
        let mut client = Self {
            ws,
            addr,
            mount: options.mount.clone(),
            token: token.clone(),
            cookies,
            epoch: epoch.clone(),
            next_id: 1,
            page: RouterData::default(),
            backlog: VecDeque::new(),
            seen: Default::default(),
            timeout: Duration::from_secs(10),
        };
        match client.next_engine_packet().await? {
            EnginePacket::Open(_) => {}
            other => return Err(TestError::Protocol(format!("expected open, got {other:?}"))),
        }
        let auth = options
            .raw_auth
            .unwrap_or_else(|| json!({ "token": token, "epoch": epoch }));
        client.send_socket(&SocketPacket::connect(auth)).await?;
        match client.next_socket_packet().await? {
            SocketPacket::Connect { .. } => Ok(client),
            SocketPacket::ConnectError { data, .. } => Err(TestError::Refused(data)),
            other => Err(TestError::Protocol(format!(
                "expected connect, got {other:?}"
            ))),
        }
    }

    /// The tab token this client connected with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Does what the browser client does with the `_session` event of `update` (a login or
    /// logout in a handler): trades its code at `/_auth/session` with the tab's token, its
    /// cookies and a CSRF token, and keeps the session cookie it gets. Returns the answer.
    pub async fn follow_session(
        &mut self,
        update: &StateUpdate,
    ) -> Result<TestResponse, TestError> {
        self.follow_session_at(self.addr, update).await
    }

    /// [`TestClient::follow_session`] against the server at `addr` (another node).
    pub async fn follow_session_at(
        &mut self,
        addr: SocketAddr,
        update: &StateUpdate,
    ) -> Result<TestResponse, TestError> {
        let code = update
            .events
            .iter()
            .find(|e| e.name == "_session")
            .and_then(|e| e.payload.get("code"))
            .and_then(Value::as_str)
            .ok_or_else(|| TestError::Protocol("the update has no _session code".into()))?
            .to_owned();
        let (csrf, csrf_cookie) = csrf_at(addr).await?;
        let cookies = match self.cookies() {
            Some(c) => format!("{c}; {csrf_cookie}"),
            None => csrf_cookie,
        };
        let body = json!({ "code": code }).to_string();
        let headers = [
            ("content-type", "application/json"),
            ("x-csrftoken", csrf.as_str()),
            ("cookie", cookies.as_str()),
            (crate::protocol::TOKEN_HEADER, self.token.as_str()),
        ];
        let resp = http_request(
            addr,
            "POST",
            &format!("{}{}", self.mount, crate::protocol::SESSION_EXCHANGE_PATH),
            &headers,
            body.as_bytes(),
        )
        .await?;
        for set in resp.headers.iter().filter(|(k, _)| k == "set-cookie") {
            let first = set.1.split(';').next().unwrap_or("");
            if let Some((name, value)) = first.trim().split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                if !value.is_empty() {
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Ok(resp)
    }

    /// Posts an upload to `/_upload` as the browser client does: the tab's token and cookies,
    /// handler `handler` (`"<state>.<handler>"`), from page `/`, with a multipart `body` of
    /// `content_type`. The other sockets of the tab get the update pushed.
    pub async fn upload(
        &self,
        handler: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<TestResponse, TestError> {
        let cookies = self.cookies().unwrap_or_default();
        let headers = [
            ("content-type", content_type),
            (crate::protocol::TOKEN_HEADER, self.token.as_str()),
            ("ferrule-event-handler", handler),
            ("ferrule-path", "/"),
            ("cookie", cookies.as_str()),
        ];
        http_request(
            self.addr,
            "POST",
            &format!("{}{}", self.mount, crate::protocol::UPLOAD_PATH),
            &headers,
            body,
        )
        .await
    }

    /// The `Cookie` header a browser would send now: the handshake's, with what its answer set
    /// (the session a handshake without one was given) and what [`TestClient::follow_session`]
    /// took.
    pub fn cookies(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The page load this client stands for.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Sets how long to wait for each update (default 10 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Emits event `name` with `payload` from page `/`; returns its id.
    pub async fn emit(&mut self, name: &str, payload: Value) -> Result<u64, TestError> {
        self.emit_from(name, payload, RouterData::default()).await
    }

    /// Emits event `name` with `payload` from the page `router_data` describes.
    pub async fn emit_from(
        &mut self,
        name: &str,
        payload: Value,
        router_data: RouterData,
    ) -> Result<u64, TestError> {
        let id = self.next_id;
        self.next_id += 1;
        let event = json!({"id": id, "name": name, "payload": payload, "router_data": router_data});
        self.emit_raw(event).await?;
        Ok(id)
    }

    /// Sends event `name` again under an id it was sent with before, as a browser does after
    /// a reconnect for events that had no answer; later events continue after `id`.
    pub async fn resend(&mut self, id: u64, name: &str, payload: Value) -> Result<(), TestError> {
        self.next_id = self.next_id.max(id + 1);
        let event = json!({"id": id, "name": name, "payload": payload, "router_data": RouterData::default()});
        self.emit_raw(event).await
    }

    /// Emits any JSON as the `event` argument (for malformed-input tests).
    pub async fn emit_raw(&mut self, data: Value) -> Result<(), TestError> {
        self.send_socket(&SocketPacket::event(EVENT, vec![data]))
            .await
    }

    /// Sends a raw Engine.IO text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TestError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Sends `action` to its handler, as a page's `emit.send(action)` does, and returns the
    /// final update answering it: `client.send(Add { amount: 5 }).await?`.
    pub async fn send<A: Action>(&mut self, action: A) -> Result<StateUpdate, TestError> {
        self.call(&A::event_name(), action.payload()).await
    }

    /// State `S` as this client has seen it: its default, with every field any update
    /// received so far carried merged in (call [`TestClient::hydrate`] first for all of it).
    pub fn state<S>(&self) -> Result<S, TestError>
    where
        S: StateName + Default + Serialize + DeserializeOwned,
    {
        let mut seen = crate::client::StateStore::default();
        seen.register(&S::state_name(), &S::default());
        if let Some(fields) = self.seen.fields(&S::state_name()) {
            let delta = Delta::from([(S::state_name(), fields.clone())]);
            seen.apply(&delta);
        }
        seen.decode(&S::state_name()).map_err(TestError::Protocol)
    }

    /// Emits `name` and returns the final update answering it.
    pub async fn call(&mut self, name: &str, payload: Value) -> Result<StateUpdate, TestError> {
        let id = self.emit(name, payload).await?;
        self.final_for(id).await
    }

    /// Like [`TestClient::call`] from the page `router_data` describes.
    pub async fn call_from(
        &mut self,
        name: &str,
        payload: Value,
        router_data: RouterData,
    ) -> Result<StateUpdate, TestError> {
        let id = self.emit_from(name, payload, router_data).await?;
        self.final_for(id).await
    }

    /// Every state of this token in full.
    pub async fn hydrate(&mut self) -> Result<StateUpdate, TestError> {
        self.call(crate::protocol::HYDRATE, Value::Null).await
    }

    /// Every state of this token in full, as a tab showing the page at `path` (a path with its
    /// query, `/notes?page=2`) gets them when it connects: that page's loaders run first.
    pub async fn hydrate_at(&mut self, path: &str) -> Result<StateUpdate, TestError> {
        self.page = page(path);
        self.call_from(crate::protocol::HYDRATE, Value::Null, page(path))
            .await
    }

    /// What a tab gets when it moves to the page at `path` without a page load: what that
    /// page's loaders changed.
    pub async fn navigate(&mut self, path: &str) -> Result<StateUpdate, TestError> {
        self.page = page(path);
        self.call_from(crate::protocol::LOAD, Value::Null, page(path))
            .await
    }

    /// What the browser does when told that rows of `tables` changed (`_changed`): asks for
    /// them again (`_live`) from the page it shows, and returns what its live handlers changed.
    pub async fn reload_live<T: AsRef<str>>(
        &mut self,
        tables: &[T],
    ) -> Result<StateUpdate, TestError> {
        let tables: Vec<&str> = tables.iter().map(AsRef::as_ref).collect();
        let page = self.page.clone();
        self.call_from(crate::protocol::LIVE, json!({ "tables": tables }), page)
            .await
    }

    /// Waits up to `wait` for a `_changed` notice pushed to this tab, skipping other updates;
    /// the tables it names, `None` when none came.
    pub async fn next_change(&mut self, wait: Duration) -> Option<Vec<String>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let update = tokio::time::timeout_at(deadline, self.next_update())
                .await
                .ok()?
                .ok()?;
            let changed = crate::protocol::ClientCommand::CHANGED;
            if let Some(notice) = update.events_named(changed).next() {
                return Some(notice.tables());
            }
        }
    }

    /// Waits for the final update of event `id`; other updates stay queued.
    pub async fn final_for(&mut self, id: u64) -> Result<StateUpdate, TestError> {
        if let Some(pos) = self
            .backlog
            .iter()
            .position(|u| u.id == Some(id) && u.is_final)
        {
            return Ok(self.backlog.remove(pos).expect("position is in range"));
        }
        loop {
            let update = self.receive_update().await?;
            if update.id == Some(id) && update.is_final {
                return Ok(update);
            }
            self.backlog.push_back(update);
        }
    }

    /// The next update, in arrival order.
    pub async fn next_update(&mut self) -> Result<StateUpdate, TestError> {
        if let Some(u) = self.backlog.pop_front() {
            return Ok(u);
        }
        self.receive_update().await
    }

    /// Checks the connection is still up by a round trip through the bridge.
    pub async fn is_alive(&mut self) -> bool {
        self.hydrate().await.is_ok()
    }

    /// Closes the socket politely.
    pub async fn close(mut self) -> Result<(), TestError> {
        let _ = self
            .send_socket(&SocketPacket::Disconnect { nsp: "/".into() })
            .await;
        self.ws.close(None).await?;
        Ok(())
    }

    /// The next update, waiting at most the client's timeout in all (pings do not extend it).
    async fn receive_update(&mut self) -> Result<StateUpdate, TestError> {
        let limit = self.timeout;
        tokio::time::timeout(limit, self.receive_update_untimed())
            .await
            .map_err(|_| TestError::Timeout("an update"))?
    }

    async fn receive_update_untimed(&mut self) -> Result<StateUpdate, TestError> {
        match self.next_socket_packet().await? {
            SocketPacket::Event { name, mut args, .. } if name == EVENT && !args.is_empty() => {
                let update: StateUpdate = serde_json::from_value(args.remove(0))
                    .map_err(|e| TestError::Protocol(format!("bad update: {e}")))?;
                self.seen.apply(&update.delta);
                Ok(update)
            }
            SocketPacket::Disconnect { .. } => Err(TestError::Closed),
            other => Err(TestError::Protocol(format!("unexpected packet {other:?}"))),
        }
    }

    async fn send_socket(&mut self, packet: &SocketPacket) -> Result<(), TestError> {
        let text = EnginePacket::Message(packet.encode()).encode();
        self.send_text(&text).await
    }

    /// The next Socket.IO packet; flow markers are acked on the way, as the browser does.
    async fn next_socket_packet(&mut self) -> Result<SocketPacket, TestError> {
        loop {
            let EnginePacket::Message(text) = self.next_engine_packet().await? else {
                continue;
            };
            match SocketPacket::decode(&text).map_err(|e| TestError::Protocol(e.to_string()))? {
                SocketPacket::Event {
                    nsp,
                    ack: Some(ack),
                    name,
                    args,
                } if name == crate::protocol::FLOW => {
                    self.send_socket(&SocketPacket::Ack { nsp, ack, args })
                        .await?;
                }
                packet => return Ok(packet),
            }
        }
    }

    /// The next Engine.IO packet; pings are answered on the way.
    async fn next_engine_packet(&mut self) -> Result<EnginePacket, TestError> {
        loop {
            let msg = tokio::time::timeout(self.timeout, self.ws.next())
                .await
                .map_err(|_| TestError::Timeout("a packet"))?;
            let msg = match msg {
                Some(m) => m?,
                None => return Err(TestError::Closed),
            };
            match msg {
                Message::Text(text) => {
                    let packet = EnginePacket::decode(text.as_str())
                        .map_err(|e| TestError::Protocol(e.to_string()))?;
                    match packet {
                        EnginePacket::Ping(data) => {
                            self.send_text(&EnginePacket::Pong(data).encode()).await?
                        }
                        EnginePacket::Close => return Err(TestError::Closed),
                        other => return Ok(other),
                    }
                }
                Message::Close(_) => return Err(TestError::Closed),
                Message::Binary(_) => {
                    return Err(TestError::Protocol(
                        "binary frame: attachments are not supported".into(),
                    ));
                }
                _ => {}
            }
        }
    }
}

/// The `router_data` of the page at `path` (with its query, if any).
fn page(path: &str) -> RouterData {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    RouterData {
        path: path.to_owned(),
        query: query.to_owned(),
    }
}
