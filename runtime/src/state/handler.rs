//! Handler type erasure: the `async fn`s of a state, behind one object-safe trait the bridge
//! calls with a decoded payload and a copy of the state.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use crate::Error;
use crate::context::EventContext;
use crate::protocol::ClientCommand;

use super::{IntoEvents, State};

/// `async fn(&mut S, EventContext) -> R`, with the future's lifetime tied to the borrow.
#[doc(hidden)]
pub trait AsyncHandler0<'a, S: 'a>: Send + Sync + 'static {
    type Output;
    type Fut: Future<Output = Self::Output> + Send + 'a;
    fn invoke(&self, state: &'a mut S, ctx: EventContext) -> Self::Fut;
}

impl<'a, S: 'a, F, Fut> AsyncHandler0<'a, S> for F
where
    F: Fn(&'a mut S, EventContext) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'a,
{
    type Output = Fut::Output;
    type Fut = Fut;
    fn invoke(&self, state: &'a mut S, ctx: EventContext) -> Fut {
        self(state, ctx)
    }
}

/// `async fn(&mut S, EventContext, P) -> R`.
#[doc(hidden)]
pub trait AsyncHandler1<'a, S: 'a, P>: Send + Sync + 'static {
    type Output;
    type Fut: Future<Output = Self::Output> + Send + 'a;
    fn invoke(&self, state: &'a mut S, ctx: EventContext, payload: P) -> Self::Fut;
}

impl<'a, S: 'a, P, F, Fut> AsyncHandler1<'a, S, P> for F
where
    F: Fn(&'a mut S, EventContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'a,
{
    type Output = Fut::Output;
    type Fut = Fut;
    fn invoke(&self, state: &'a mut S, ctx: EventContext, payload: P) -> Fut {
        self(state, ctx, payload)
    }
}

/// An event handler of state `S`; implemented for `async fn`s of the two shapes above.
/// `M` only tells the shapes apart.
pub trait Handler<S, M>: Send + Sync + 'static {
    /// The payload type; handlers without one ignore any payload.
    type Payload: DeserializeOwned + Send + 'static;
    /// Runs the handler.
    fn call<'a>(
        &'a self,
        state: &'a mut S,
        ctx: EventContext,
        payload: Self::Payload,
    ) -> BoxFuture<'a, Result<Vec<ClientCommand>, Error>>;
}

#[doc(hidden)]
pub struct NoPayload<R>(PhantomData<fn() -> R>);
#[doc(hidden)]
pub struct WithPayload<P, R>(PhantomData<fn() -> (P, R)>);

impl<S, F, R> Handler<S, NoPayload<R>> for F
where
    S: Send + 'static,
    F: for<'a> AsyncHandler0<'a, S, Output = R>,
    R: IntoEvents + 'static,
{
    type Payload = IgnoredAny;
    fn call<'a>(
        &'a self,
        state: &'a mut S,
        ctx: EventContext,
        _: IgnoredAny,
    ) -> BoxFuture<'a, Result<Vec<ClientCommand>, Error>> {
        let fut = self.invoke(state, ctx);
        Box::pin(async move { fut.await.into_events() })
    }
}

impl<S, F, P, R> Handler<S, WithPayload<P, R>> for F
where
    S: Send + 'static,
    P: DeserializeOwned + Send + 'static,
    F: for<'a> AsyncHandler1<'a, S, P, Output = R>,
    R: IntoEvents + 'static,
{
    type Payload = P;
    fn call<'a>(
        &'a self,
        state: &'a mut S,
        ctx: EventContext,
        payload: P,
    ) -> BoxFuture<'a, Result<Vec<ClientCommand>, Error>> {
        let fut = self.invoke(state, ctx, payload);
        Box::pin(async move { fut.await.into_events() })
    }
}

/// A state held without its type.
pub(crate) trait AnyState: Send + Sync + 'static {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn clone_box(&self) -> Box<dyn AnyState>;
    fn to_json(&self) -> Result<Value, serde_json::Error>;
}

impl<S: State> AnyState for S {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn AnyState> {
        Box::new(self.clone())
    }
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// How a handler run ended.
pub(crate) enum RunOutcome {
    /// It returned; the state is the one to commit on success.
    Returned(Box<dyn AnyState>, Result<Vec<ClientCommand>, Error>),
    /// It panicked with this message; the working copy is gone.
    Panicked(String),
}

/// A handler call with its payload already decoded, waiting for a state and a context.
pub(crate) type PreparedCall =
    Box<dyn FnOnce(Box<dyn AnyState>, EventContext) -> BoxFuture<'static, RunOutcome> + Send>;

pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// Decodes `payload`; the error names the field that is wrong.
    fn prepare(self: Arc<Self>, payload: Value) -> Result<PreparedCall, String>;
}

pub(crate) struct Typed<S, M, H> {
    pub(crate) handler: H,
    pub(crate) _marker: PhantomData<fn() -> (S, M)>,
}

/// Decodes a handler's payload; the error names the field that is wrong.
pub(crate) fn decode_payload<P: DeserializeOwned>(payload: Value) -> Result<P, String> {
    // A unit action (`struct Increment;`) goes on the wire as `{}`, which serde reads only as
    // a map: an empty object the type refuses is read as the unit instead.
    let empty = payload.as_object().is_some_and(|m| m.is_empty());
    serde_path_to_error::deserialize(payload)
        .or_else(|e| match empty {
            true => serde_json::from_value::<P>(Value::Null).map_err(|_| e),
            false => Err(e),
        })
        .map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("field `{path}`: {}", e.inner())
            }
        })
}

impl<S: State, M: 'static, H: Handler<S, M>> ErasedHandler for Typed<S, M, H> {
    fn prepare(self: Arc<Self>, payload: Value) -> Result<PreparedCall, String> {
        let payload: H::Payload = decode_payload(payload)?;
        Ok(Box::new(
            move |mut state: Box<dyn AnyState>, ctx: EventContext| {
                Box::pin(async move {
                    let run = AssertUnwindSafe(async {
                        let typed = state
                            .as_any_mut()
                            .downcast_mut::<S>()
                            .expect("a handler is only ever given its own state type");
                        self.handler.call(typed, ctx, payload).await
                    })
                    .catch_unwind()
                    .await;
                    match run {
                        Ok(result) => RunOutcome::Returned(state, result),
                        Err(panic) => RunOutcome::Panicked(panic_message(&panic)),
                    }
                }) as BoxFuture<'static, RunOutcome>
            },
        ))
    }
}

/// The message a panic was raised with, for the log.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
