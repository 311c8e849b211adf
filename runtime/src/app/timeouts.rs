//! Time limits on what a client sends: a request body must arrive within its deadline and
//! never stall for longer than the same time, so a slow sender cannot hold a connection (and
//! the handler waiting on it) for as long as it likes. Request heads are limited by hyper's
//! header-read timeout where the server is made (`serve.rs`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why a body was given up.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time ({0:?})")]
pub(crate) struct BodyTooSlow(Duration);

/// A body that fails once `whole` has passed since the request came, or once nothing came for
/// `idle`.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    whole: Duration,
    idle: Duration,
    quiet: Pin<Box<Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            let next = Instant::now() + this.idle;
            this.quiet.as_mut().reset(next);
            return Poll::Ready(frame);
        }
        let late = if this.deadline.as_mut().poll(cx).is_ready() {
            Some(this.whole)
        } else if this.quiet.as_mut().poll(cx).is_ready() {
            Some(this.idle)
        } else {
            None
        };
        match late {
            Some(limit) => Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow(limit))))),
            None => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives the body of `req` its deadline: `upload` for the upload endpoint, `body` for the rest;
/// `body` is also the longest a body may stall.
pub(crate) fn limit_body(
    req: axum::extract::Request,
    body: Duration,
    upload: Duration,
) -> axum::extract::Request {
    if req.body().is_end_stream() {
        return req;
    }
    let whole = if req.uri().path().starts_with(crate::protocol::UPLOAD_PATH) {
        upload
    } else {
        body
    };
    let now = Instant::now();
    req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(now + whole)),
            whole,
            idle: body,
            quiet: Box::pin(tokio::time::sleep_until(now + body)),
        })
    })
}
