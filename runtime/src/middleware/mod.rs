//! One ordered list of named middleware that runs on HTTP requests and on every socket event.
//!
//! A middleware gets the request and a [`Next`] that runs the rest of the chain, with the
//! request handler (an HTTP route, or the event handler on the bridge) innermost. So a middleware
//! sees the handler's outcome on the way out, for HTTP and events alike.
//!
//! Three ways to write one:
//! - [`from_fn`]: an `async fn(Request, Next) -> Result<Response, Error>`;
//! - [`layer`]: any tower [`Layer`](tower::Layer) under a name;
//! - [`process`]: a [`ProcessMiddleware`] with Django's `process_request` /
//!   `process_response` / `process_exception` hooks (`process_view` has no analogue: an event
//!   dispatches to no view).
//!
//! ```
//! use ferrule::middleware::{self, Next, Request, Response};
//!
//! #[derive(Clone)]
//! struct Tenant(&'static str);
//!
//! async fn tenant(mut req: Request, next: Next) -> Result<Response, ferrule::Error> {
//!     req.extensions_mut().insert(Tenant("acme"));
//!     next.run(req).await
//! }
//!
//! let chain = ferrule::MiddlewareChain::new().with(middleware::from_fn("tenant", tenant));
//! assert_eq!(chain.names().collect::<Vec<_>>(), ["tenant"]);
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use tower::{Layer, Service, ServiceExt};

use crate::Error;
use crate::settings::Tier;

mod adapters;

pub use adapters::{NextService, ProcessMiddleware, RequestHead, layer, process};

/// The request type middleware sees: a plain `http::Request` with axum's body.
pub type Request = http::Request<Body>;
/// The response type middleware returns.
pub type Response = http::Response<Body>;

/// A middleware: does something before and/or after the rest of the chain.
#[async_trait::async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// Handles `req`, usually by calling `next.run(req)` once.
    async fn call(&self, req: Request, next: Next) -> Result<Response, Error>;
}

type Endpoint = Box<dyn FnOnce(Request) -> BoxFuture<'static, Result<Response, Error>> + Send>;

/// The rest of the chain, ending in the request or event handler.
pub struct Next {
    stack: Stack,
    index: usize,
    endpoint: Endpoint,
}

impl Next {
    /// Runs the remaining middleware and the handler.
    pub async fn run(self, req: Request) -> Result<Response, Error> {
        let Self {
            stack,
            index,
            endpoint,
        } = self;
        match stack.0.get(index).cloned() {
            Some(mw) => {
                let next = Self {
                    stack,
                    index: index + 1,
                    endpoint,
                };
                mw.call(req, next).await
            }
            None => endpoint(req).await,
        }
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.stack.0.len() - self.index))
            .finish()
    }
}

/// A middleware with its name, as it stands in the chain.
#[derive(Clone)]
pub struct Named {
    name: Cow<'static, str>,
    middleware: Arc<dyn Middleware>,
    auth_tier: bool,
}

impl Named {
    /// Names `middleware`.
    pub fn new(name: impl Into<Cow<'static, str>>, middleware: impl Middleware) -> Self {
        Self {
            name: name.into(),
            middleware: Arc::new(middleware),
            auth_tier: false,
        }
    }

    /// Also runs this middleware for states of tier [`Tier::AuthOnly`] (session and user
    /// middleware belong there).
    pub fn auth_tier(mut self) -> Self {
        self.auth_tier = true;
        self
    }

    /// The name it was registered under (what `event_middleware_skip` refers to).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Named")
            .field("name", &self.name)
            .field("auth_tier", &self.auth_tier)
            .finish()
    }
}

struct FnMiddleware<F>(F);

#[async_trait::async_trait]
impl<F, Fut> Middleware for FnMiddleware<F>
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, Error>> + Send + 'static,
{
    async fn call(&self, req: Request, next: Next) -> Result<Response, Error> {
        (self.0)(req, next).await
    }
}

/// A middleware from an async function of `(Request, Next)`.
pub fn from_fn<F, Fut>(name: impl Into<Cow<'static, str>>, f: F) -> Named
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, Error>> + Send + 'static,
{
    Named::new(name, FnMiddleware(f))
}

/// The ordered list of an app's middleware. The first added runs first (outermost).
#[derive(Clone, Default, Debug)]
pub struct MiddlewareChain {
    entries: Vec<Named>,
}

impl MiddlewareChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `entry` (innermost so far).
    pub fn push(&mut self, entry: Named) {
        self.entries.push(entry);
    }

    /// Appends `entry`, builder style.
    pub fn with(mut self, entry: Named) -> Self {
        self.push(entry);
        self
    }

    /// The entries in order.
    pub fn entries(&self) -> impl Iterator<Item = &Named> {
        self.entries.iter()
    }

    /// Names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(Named::name)
    }

    /// The stack HTTP requests go through: every entry.
    pub(crate) fn http_stack(&self) -> Stack {
        Stack(self.entries.iter().map(|e| e.middleware.clone()).collect())
    }

    /// The stack events of `tier` go through, minus the names in `skip`.
    pub(crate) fn event_stack(&self, tier: Tier, skip: &[String]) -> Stack {
        Stack(
            self.entries
                .iter()
                .filter(|e| !skip.iter().any(|s| s == e.name()))
                .filter(|e| match tier {
                    Tier::Full => true,
                    Tier::AuthOnly => e.auth_tier,
                    Tier::NoChain => false,
                })
                .map(|e| e.middleware.clone())
                .collect(),
        )
    }

    /// A tower layer that runs the whole chain around an HTTP service.
    pub fn into_layer(self) -> ChainLayer {
        ChainLayer {
            stack: self.http_stack(),
        }
    }
}

/// A frozen list of middleware to run.
#[derive(Clone)]
pub(crate) struct Stack(Arc<[Arc<dyn Middleware>]>);

impl Stack {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Runs the stack with `endpoint` innermost.
    pub(crate) async fn run<F, Fut>(&self, req: Request, endpoint: F) -> Result<Response, Error>
    where
        F: FnOnce(Request) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response, Error>> + Send + 'static,
    {
        let next = Next {
            stack: self.clone(),
            index: 0,
            endpoint: Box::new(move |req| Box::pin(endpoint(req))),
        };
        next.run(req).await
    }
}

/// Tower layer running a [`MiddlewareChain`] around an HTTP service.
#[derive(Clone)]
pub struct ChainLayer {
    stack: Stack,
}

impl<S> Layer<S> for ChainLayer {
    type Service = ChainService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ChainService {
            stack: self.stack.clone(),
            inner,
        }
    }
}

/// The service [`ChainLayer`] makes: errors from the chain become their HTTP responses.
#[derive(Clone)]
pub struct ChainService<S> {
    stack: Stack,
    inner: S,
}

impl<S> Service<Request> for ChainService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = self.inner.clone();
        let stack = self.stack.clone();
        Box::pin(async move {
            let endpoint = move |req: Request| async move {
                match inner.oneshot(req).await {
                    Ok(resp) => Ok(resp),
                    Err(never) => match never {},
                }
            };
            Ok(match stack.run(req, endpoint).await {
                Ok(resp) => resp,
                Err(err) => err.into_response(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    fn recorder(name: &'static str, log: Arc<StdMutex<Vec<String>>>) -> Named {
        from_fn(name, move |req, next: Next| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(format!("{name} in"));
                let resp = next.run(req).await;
                log.lock().unwrap().push(format!("{name} out"));
                resp
            }
        })
    }

    fn ok_endpoint(
        log: Arc<StdMutex<Vec<String>>>,
    ) -> impl FnOnce(Request) -> BoxFuture<'static, Result<Response, Error>> + Send {
        move |_req| {
            Box::pin(async move {
                log.lock().unwrap().push("handler".into());
                Ok(Response::new(Body::empty()))
            })
        }
    }

    #[tokio::test]
    async fn runs_in_order_with_handler_innermost() {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let chain = MiddlewareChain::new()
            .with(recorder("a", log.clone()))
            .with(recorder("b", log.clone()));
        chain
            .http_stack()
            .run(Request::new(Body::empty()), ok_endpoint(log.clone()))
            .await
            .unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["a in", "b in", "handler", "b out", "a out"]
        );
    }

    #[tokio::test]
    async fn skip_list_and_tiers_filter_the_event_stack() {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let chain = MiddlewareChain::new()
            .with(recorder("session", log.clone()).auth_tier())
            .with(recorder("csrf", log.clone()))
            .with(recorder("tenant", log.clone()));
        let skip = vec!["csrf".to_owned()];
        assert_eq!(chain.event_stack(Tier::Full, &skip).len(), 2);
        assert_eq!(chain.event_stack(Tier::AuthOnly, &skip).len(), 1);
        assert_eq!(chain.event_stack(Tier::NoChain, &skip).len(), 0);
        chain
            .event_stack(Tier::AuthOnly, &skip)
            .run(Request::new(Body::empty()), ok_endpoint(log.clone()))
            .await
            .unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["session in", "handler", "session out"]
        );
    }

    struct Audit(Arc<StdMutex<Vec<String>>>);

    #[async_trait::async_trait]
    impl ProcessMiddleware for Audit {
        async fn process_request(&self, req: &mut Request) -> Result<Option<Response>, Error> {
            self.0
                .lock()
                .unwrap()
                .push(format!("request {}", req.uri().path()));
            Ok(None)
        }
        async fn process_response(
            &self,
            _: &RequestHead,
            resp: Response,
        ) -> Result<Response, Error> {
            self.0
                .lock()
                .unwrap()
                .push(format!("response {}", resp.status().as_u16()));
            Ok(resp)
        }
        async fn process_exception(&self, _: &RequestHead, err: &Error) -> Option<Response> {
            self.0.lock().unwrap().push(format!("exception {err}"));
            Some(
                http::Response::builder()
                    .status(418)
                    .body(Body::empty())
                    .unwrap(),
            )
        }
    }

    #[tokio::test]
    async fn process_hooks_run_and_exception_can_answer() {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let chain = MiddlewareChain::new().with(process("audit", Audit(log.clone())));
        let req = http::Request::builder()
            .uri("/x")
            .body(Body::empty())
            .unwrap();
        let resp = chain
            .http_stack()
            .run(req, |_| async { Err(Error::permission_denied("no")) })
            .await
            .unwrap();
        assert_eq!(resp.status(), 418);
        assert_eq!(
            *log.lock().unwrap(),
            ["request /x", "exception no", "response 418"]
        );
    }

    #[tokio::test]
    async fn tower_layers_wrap_the_rest_of_the_chain() {
        let chain = MiddlewareChain::new().with(layer(
            "poweredby",
            tower_http::set_header::SetResponseHeaderLayer::overriding(
                http::header::SERVER,
                http::HeaderValue::from_static("ferrule"),
            ),
        ));
        let resp = chain
            .http_stack()
            .run(Request::new(Body::empty()), |_| async {
                Ok(Response::new(Body::empty()))
            })
            .await
            .unwrap();
        assert_eq!(resp.headers()[http::header::SERVER], "ferrule");
        let err = chain
            .http_stack()
            .run(Request::new(Body::empty()), |_| async {
                Err(Error::permission_denied("Account suspended."))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(m) if m == "Account suspended."));
    }
}
