//! Assembly: the registered states checked into a registry, the built-in auth installed, and
//! everything put together into one axum router with the socket layer and the bridge.

use super::*;
use crate::error::ErrorWords;

impl App {
    /// The routes document `/_all_routes` serves and `routes` prints.
    pub(super) fn routes_doc(&self, registry: &StateRegistry) -> serde_json::Value {
        let states: BTreeMap<&str, Vec<&str>> = registry
            .by_name
            .iter()
            .map(|(name, e)| {
                (
                    name.as_str(),
                    e.handlers.keys().map(String::as_str).collect(),
                )
            })
            .collect();
        let http: Vec<&str> = self.routes.iter().map(String::as_str).collect();
        json!({
            "reserved": RESERVED,
            "http": http,
            "states": states,
            "middleware": self.chain.names().collect::<Vec<_>>(),
        })
    }

    pub(super) fn registry(&self) -> Result<StateRegistry, BuildError> {
        let mut registry = StateRegistry::default();
        for entry in &self.states {
            entry.check().map_err(BuildError::State)?;
            if let Some(first) = registry.by_name.get(&entry.name) {
                return Err(BuildError::State(if first.rust_type == entry.rust_type {
                    format!(
                        "state `{}` ({}) is registered twice",
                        entry.name, entry.rust_type
                    )
                } else {
                    format!(
                        "states `{}` and `{}` have one wire name, `{}`: name one of them with \
                         #[ferrule::state(name = \"…\")]",
                        first.rust_type, entry.rust_type, entry.name
                    )
                }));
            }
            let entry = entry.clone();
            registry.by_name.insert(entry.name.clone(), Arc::new(entry));
        }
        registry.pages =
            crate::state::PageRoutes::of(registry.by_name.values()).map_err(BuildError::State)?;
        Ok(registry)
    }

    pub(super) fn build(mut self) -> Result<Built, BuildError> {
        let settings = self.resolved_settings()?.clone();
        for path in &self.routes {
            if RESERVED
                .iter()
                .any(|r| path == r || path.starts_with(&format!("{r}/")))
            {
                return Err(BuildError::ReservedRoute(path.clone()));
            }
        }
        for skipped in &settings.event_middleware_skip {
            if !self.chain.names().any(|n| n == skipped) {
                tracing::debug!(middleware = %skipped, "event_middleware_skip names a middleware the chain does not have");
            }
        }
        let catalogues = Arc::new(
            crate::i18n::Catalogues::new(&settings.languages, self.locales)
                .map_err(BuildError::Locales)?,
        );
        // In every request and event, for `t!`, `ctx.language()` and the pages.
        self.extensions.insert(catalogues.clone());
        #[cfg(feature = "admin")]
        if let Some(site) = self.extensions.get_mut::<crate::admin::AdminSite>() {
            site.path = settings.admin_path.clone();
            if let Some(auth) = &self.auth {
                site.add_accounts(auth);
            }
            let site = site.clone();
            let name = <crate::admin::AdminState as crate::protocol::StateName>::state_name();
            if let Some(entry) = self.states.iter_mut().find(|e| e.name == name) {
                site.watch(entry);
            }
        }
        #[cfg(feature = "ssr")]
        if settings.browser_log {
            self.extensions.insert(crate::ssr::BrowserLog);
        }
        self.router =
            std::mem::take(&mut self.router).merge(super::language::route(settings.secure_cookies));
        let (follow, binder) = self.install_auth(&settings).unzip();
        let registry = self.registry()?;
        let shares_states = registry
            .by_name
            .values()
            .any(|e| e.keyed == crate::state::Keyed::Session);
        let binder = binder.map(|b| b.binding_pages(shares_states));
        let doc = Arc::new((!settings.is_production()).then(|| self.routes_doc(&registry)));
        let trusted = settings.proxies()?;
        let manager: Arc<dyn StateManager> = match self.manager.take() {
            Some(m) => m,
            None => {
                let memory = Arc::new(MemoryStateManager::default());
                let weak = Arc::downgrade(&memory);
                self.lifespan.tasks.push(TaskSpec::new(
                    "state sweeper",
                    OnPanic::Restart,
                    move |cancel| sweep_states(weak.clone(), cancel),
                ));
                memory
            }
        };
        self.install_mail(&settings)?;
        self.install_jobs(&settings)?;
        let bridge = EventBridge::new(
            settings.clone(),
            registry,
            manager,
            &self.chain,
            follow,
            self.rooms.clone(),
            self.extensions.clone(),
        );
        let node_room = crate::rooms::node_room();
        let tabs = Arc::new(crate::socket::TabLimits::new(
            settings.max_tabs_per_session,
            settings.max_tabs_per_client,
        ));
        let sweeping = Arc::downgrade(&tabs);
        self.lifespan.tasks.push(TaskSpec::new(
            "tab registry sweeper",
            OnPanic::Restart,
            move |cancel| {
                let tabs = sweeping.clone();
                crate::lifespan::every(Duration::from_secs(600), cancel, move || {
                    let tabs = tabs.upgrade();
                    async move {
                        // As long as the states of an idle tab are kept.
                        tabs.inspect(|t| t.sweep(Duration::from_secs(24 * 3600)))
                            .is_some()
                    }
                })
            },
        ));
        let env = Arc::new(SocketEnv {
            bridge: bridge.clone(),
            node_room: node_room.clone(),
            trusted: trusted.clone(),
            // As long as the heartbeat gives a silent client before closing its socket.
            patience_ms: settings.ping_interval_ms + settings.ping_timeout_ms,
            max_unread_bytes: settings.max_unread_bytes,
            max_per_client: settings.max_sockets_per_client,
            ipv6_prefix_len: settings.ipv6_prefix_len,
            per_client: Arc::default(),
            tabs,
        });
        let admission = env.clone();
        // Innermost, after the chain resolved the user: what `t!` translates for in HTTP
        // handlers.
        let http = self
            .router
            .layer(axum::middleware::from_fn(
                |req: crate::middleware::Request, next: axum::middleware::Next| {
                    let (parts, body) = req.into_parts();
                    let scoped = Arc::new(parts.clone());
                    let req = crate::middleware::Request::from_parts(parts, body);
                    crate::i18n::with_request(scoped, async move {
                        let mut resp = next.run(req).await;
                        // An error's words, in the request's language.
                        if let Some(words) = resp.extensions_mut().remove::<ErrorWords>() {
                            let words = ErrorWords {
                                message: crate::i18n::localize(&words.message),
                                fields: words.fields.map(|f| f.map_messages(crate::i18n::localize)),
                            };
                            *resp.body_mut() = axum::body::Body::from(words.body());
                        }
                        resp
                    })
                },
            ))
            .layer(self.chain.clone().into_layer());
        // Outermost: the app's extensions are there before any middleware runs.
        let shared = self.extensions.clone();
        let http = http.layer(axum::middleware::from_fn(
            move |mut req: crate::middleware::Request, next: axum::middleware::Next| {
                req.extensions_mut().extend(shared.clone());
                next.run(req)
            },
        ));
        // Page loaders run inside the chain, where the page renderer finds them.
        let http = if bridge.has_page_loaders() {
            let loads = crate::state::PageLoads(bridge.clone());
            http.layer(axum::middleware::from_fn(
                move |mut req: crate::middleware::Request, next: axum::middleware::Next| {
                    req.extensions_mut().insert(loads.clone());
                    next.run(req)
                },
            ))
        } else {
            http
        };
        // Pages render with the session's shared states: read them before the chain runs.
        let http = if shares_states {
            let bridge = bridge.clone();
            http.layer(axum::middleware::from_fn(move |req, next| {
                bridge.clone().with_shared_states(req, next)
            }))
        } else {
            http
        };
        let origins = OriginPolicy {
            allowed: settings.allowed_origins.clone().into(),
        };
        let trusted = Arc::new(trusted);
        let base = reserved_routes(
            doc,
            bridge.clone(),
            trusted.clone(),
            self.db.clone(),
            catalogues,
        )
        .merge(http_fallback(http, trusted.clone()));
        #[cfg(feature = "redis")]
        let redis = self.redis_broadcast.take();
        #[cfg(not(feature = "redis"))]
        let redis: Option<std::convert::Infallible> = None;
        let (router, io, init) = match redis {
            #[cfg(feature = "redis")]
            Some(redis) => {
                let builder =
                    SocketIo::builder().with_adapter::<crate::rooms::RedisAdapter>(redis.ctr);
                let (layer, io, init) = socket_server(builder, &settings, env);
                let init: InitFuture = Box::pin(async move {
                    init.await
                        .map_err(|e| format!("cannot subscribe to Redis for broadcasts: {e}"))
                });
                (base.layer(layer), crate::rooms::Io::Redis(io), Some(init))
            }
            #[cfg(not(feature = "redis"))]
            Some(never) => match never {},
            None => {
                let (layer, io, ()) = socket_server(SocketIo::builder(), &settings, env);
                (base.layer(layer), crate::rooms::Io::Local(io), None)
            }
        };
        self.rooms.set(
            io.clone(),
            crate::rooms::Rooms::push_limit(settings.max_unread_bytes, crate::socket::SEND_BUFFER),
            Duration::from_millis(settings.ping_interval_ms + settings.ping_timeout_ms),
            node_room,
        );
        let headers = Arc::new(crate::dispatcher::security_header_list(&settings));
        let session_cookie: Arc<str> = settings.session_cookie.as_str().into();
        let hosts = crate::dispatcher::HostPolicy::new(&settings);
        let csp = Arc::new(crate::csp::CspPolicy {
            template: settings.content_security_policy.as_str().into(),
            frame_deny: settings.header_frame_deny,
        });
        let router = match binder {
            // Outside the socket layer, so the handshake sees the binding it resolves.
            Some(binder) => router.layer(axum::middleware::from_fn(move |req, next| {
                binder.clone().bind(req, next)
            })),
            None => router,
        };
        let (body_limit, upload_limit) = (
            Duration::from_millis(settings.body_timeout_ms),
            Duration::from_millis(settings.upload_timeout_ms),
        );
        let router = router
            // Before the socket layer: a transport takes its address's place at its first
            // request, whether it ever sends CONNECT or not.
            .layer(axum::middleware::from_fn(move |req, next| {
                crate::socket::admit_transport(admission.clone(), req, next)
            }))
            .layer(axum::Extension(origins))
            .layer(axum::Extension(crate::lifespan::Stopping::new(
                bridge.shutdown_token().clone(),
            )))
            .layer(axum::middleware::from_fn(move |req, next| {
                crate::csp::content_security_policy(csp.clone(), req, next)
            }))
            .layer(axum::middleware::from_fn(move |req, next| {
                crate::dispatcher::check_host(hosts.clone(), req, next)
            }))
            .layer(axum::middleware::map_response(move |resp| {
                crate::dispatcher::security_headers(headers.clone(), resp)
            }))
            .layer(axum::middleware::map_response(move |resp| {
                crate::session::settle_session_cookie(session_cookie.clone(), resp)
            }))
            .layer(axum::middleware::map_request(move |req| async move {
                super::timeouts::limit_body(req, body_limit, upload_limit)
            }))
            // Outside every other layer but the trace: they all see the request's mount path,
            // and every redirect leaves with it.
            .layer(axum::middleware::from_fn(crate::mount::settle));
        let router = super::request_trace::layer(router, trusted);
        Ok(Built {
            router,
            io,
            init,
            bridge,
            lifespan: self.lifespan,
        })
    }

    /// With a database: the built-in middleware in front of the app's, the auth routes and
    /// `auth_state`. Returns what the bridge needs to follow logins on sockets, and what binds
    /// tabs to sessions at the socket handshake.
    pub(super) fn install_auth(
        &mut self,
        settings: &Settings,
    ) -> Option<(SessionFollow, HandshakeBinder)> {
        let db = self.db.clone()?;
        let cache = Duration::from_millis(settings.auth_cache_ms);
        let store = SeaOrmStore::new(db.clone()).with_cache(cache);
        let sweeper = store.clone();
        self.lifespan.tasks.push(TaskSpec::new(
            "session sweeper",
            OnPanic::Restart,
            move |cancel| {
                let store = sweeper.clone();
                async move { store.sweep_until(Duration::from_secs(600), cancel).await }
            },
        ));
        let expiring = crate::db::expiring::Expiring::new(db.clone());
        let sweeper = expiring.clone();
        self.lifespan.tasks.push(TaskSpec::new(
            "expired codes and counters sweeper",
            OnPanic::Restart,
            move |cancel| {
                let expiring = sweeper.clone();
                async move { expiring.sweep_until(Duration::from_secs(600), cancel).await }
            },
        ));
        let auth = self
            .auth
            .clone()
            .unwrap_or_else(|| Auth::new(db).telling(self.rooms.clone()));
        auth.set_cache_ttl(cache);
        auth.set_ipv6_prefix_len(settings.ipv6_prefix_len);
        let config = SessionConfig {
            cookie_name: settings.session_cookie.clone().into(),
            secure: settings.secure_cookies,
            ..SessionConfig::default()
        };
        let binder = HandshakeBinder::new(store.clone(), config.clone());
        let mut chain = MiddlewareChain::new()
            .with(session_middleware(store, &config))
            .with(csrf_middleware(settings.secure_cookies))
            .with(auth_middleware(auth.clone()));
        for entry in self.chain.entries() {
            chain.push(entry.clone());
        }
        self.chain = chain;
        let links = self.install_account_mail(settings, &auth, expiring.clone());
        let codes = CookieCodes::new(expiring);
        let routes = AuthRoutes::new(auth, codes.clone(), links, settings);
        self.router = std::mem::take(&mut self.router).merge(routes.router());
        for p in [
            "/_auth/login",
            "/_auth/logout",
            "/_auth/register",
            "/_auth/password",
            "/_auth/password_reset",
            "/_auth/password_reset/confirm",
            "/_auth/email",
            crate::auth::confirmation::CONFIRM_PATH,
            "/_auth/session",
        ] {
            self.routes.push(p.to_owned());
        }
        if !self.states.iter().any(|s| s.name == "auth_state") {
            self.states.push(StateEntry::of::<AuthState>());
        }
        Some((
            SessionFollow {
                codes,
                cookie_name: settings.session_cookie.clone(),
            },
            binder,
        ))
    }
}

/// What [`App::build`] makes.
pub(super) struct Built {
    pub(super) router: Router,
    pub(super) io: crate::rooms::Io,
    /// Subscribing to the broadcast channels (Redis only); awaited before serving.
    pub(super) init: Option<InitFuture>,
    pub(super) bridge: Arc<EventBridge>,
    pub(super) lifespan: HooksAndTasks,
}

pub(super) type InitFuture = BoxFuture<'static, Result<(), String>>;

/// The socket.io server on `/_event/` with the runtime's connect middleware, for adapter `A`.
fn socket_server<A: socketioxide::adapter::Adapter + socketioxide_core::adapter::DefinedAdapter>(
    builder: socketioxide::SocketIoBuilder<A>,
    settings: &Settings,
    env: Arc<SocketEnv>,
) -> (
    socketioxide::layer::SocketIoLayer<A>,
    SocketIo<A>,
    A::InitRes,
) {
    let (layer, io) = builder
        .req_path(crate::protocol::EVENT_PATH)
        .max_payload(settings.max_event_bytes as u64)
        .ws_max_message_size(settings.max_event_bytes)
        .ws_max_frame_size(settings.max_event_bytes)
        .max_buffer_size(crate::socket::SEND_BUFFER)
        .ping_interval(Duration::from_millis(settings.ping_interval_ms))
        .ping_timeout(Duration::from_millis(settings.ping_timeout_ms))
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        // Our events carry no binary attachments; what a client sends as such is held by the
        // parser until complete, so it gets the same budget as an event, in at most a few parts.
        .with_parser(
            socketioxide::ParserConfig::common()
                .max_incoming_binary_buf_size(settings.max_event_bytes)
                .max_incoming_binaries(MAX_ATTACHMENTS)
                .packet_completion_timeout(Duration::from_millis(settings.connect_timeout_ms)),
        )
        .build_layer();
    let init = io.ns("/", (async || {}).with(connect_middleware::<A>(env)));
    (layer, io, init)
}

/// Most binary attachments one Socket.IO packet may announce.
const MAX_ATTACHMENTS: usize = 16;

/// Drops idle tokens' states every minute until cancelled.
async fn sweep_states(memory: std::sync::Weak<MemoryStateManager>, cancel: CancellationToken) {
    crate::lifespan::every(Duration::from_secs(60), cancel, || {
        let memory = memory.clone();
        async move {
            let Some(m) = memory.upgrade() else {
                return false;
            };
            let gone = m.sweep();
            let size = m.size();
            tracing::debug!(
                tabs = size.tabs,
                bytes = size.bytes,
                dropped = gone,
                "state store"
            );
            true
        }
    })
    .await;
}
