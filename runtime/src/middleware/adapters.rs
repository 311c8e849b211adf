//! The two adapters that make a middleware from something else: any tower [`Layer`] ([`layer`],
//! through [`NextService`]), and Django's hook trio ([`process`], [`ProcessMiddleware`]).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use futures_util::future::BoxFuture;
use tower::{Layer, Service, ServiceExt};

use super::{Middleware, Named, Next, Request, Response};
use crate::Error;
use crate::error::BoxError;

/// The rest of the chain as a tower [`Service`], for [`layer`] adapters.
///
/// It may be called once; a second call answers with an internal error.
#[derive(Clone)]
pub struct NextService(Arc<Mutex<Option<Next>>>);

impl Service<Request> for NextService {
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Response, Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let next = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        Box::pin(async move {
            match next {
                Some(next) => next.run(req).await,
                None => Err(Error::internal(
                    "a layer called the rest of the chain twice",
                )),
            }
        })
    }
}

struct LayerMiddleware<L>(L);

#[async_trait::async_trait]
impl<L, S, B> Middleware for LayerMiddleware<L>
where
    L: Layer<NextService, Service = S> + Send + Sync + 'static,
    S: Service<Request, Response = http::Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    async fn call(&self, req: Request, next: Next) -> Result<Response, Error> {
        let svc = self.0.layer(NextService(Arc::new(Mutex::new(Some(next)))));
        match svc.oneshot(req).await {
            Ok(resp) => Ok(resp.map(Body::new)),
            Err(e) => Err(Error::from_boxed(e.into())),
        }
    }
}

/// A middleware from any tower [`Layer`] (tower-http's, or your own).
pub fn layer<L, S, B>(name: impl Into<Cow<'static, str>>, layer: L) -> Named
where
    L: Layer<NextService, Service = S> + Send + Sync + 'static,
    S: Service<Request, Response = http::Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Named::new(name, LayerMiddleware(layer))
}

/// Method, URI and headers of a request, kept for hooks that run after the request moved on.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The method.
    pub method: http::Method,
    /// The URI (path and query).
    pub uri: http::Uri,
    /// The headers as the request had them when it entered this middleware.
    pub headers: http::HeaderMap,
}

/// Django-style middleware: hooks before the handler, after it, and when it fails.
///
/// `process_response` runs on every response that passes this middleware, including one its
/// own `process_request` returned; `process_exception` may turn an error from further in
/// (another middleware or the handler) into a response.
#[async_trait::async_trait]
pub trait ProcessMiddleware: Send + Sync + 'static {
    /// Runs before the rest of the chain; a response returned here short-circuits it.
    async fn process_request(&self, _req: &mut Request) -> Result<Option<Response>, Error> {
        Ok(None)
    }

    /// Runs after the rest of the chain with its response.
    async fn process_response(
        &self,
        _req: &RequestHead,
        resp: Response,
    ) -> Result<Response, Error> {
        Ok(resp)
    }

    /// Runs when the rest of the chain failed; `Some` answers with that response instead.
    async fn process_exception(&self, _req: &RequestHead, _err: &Error) -> Option<Response> {
        None
    }
}

struct ProcessAdapter<P>(P);

#[async_trait::async_trait]
impl<P: ProcessMiddleware> Middleware for ProcessAdapter<P> {
    async fn call(&self, mut req: Request, next: Next) -> Result<Response, Error> {
        let head = RequestHead {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        };
        let resp = match self.0.process_request(&mut req).await? {
            Some(early) => early,
            None => match next.run(req).await {
                Ok(resp) => resp,
                Err(err) => match self.0.process_exception(&head, &err).await {
                    Some(resp) => resp,
                    None => return Err(err),
                },
            },
        };
        self.0.process_response(&head, resp).await
    }
}

/// A middleware from a [`ProcessMiddleware`].
pub fn process(name: impl Into<Cow<'static, str>>, middleware: impl ProcessMiddleware) -> Named {
    Named::new(name, ProcessAdapter(middleware))
}
