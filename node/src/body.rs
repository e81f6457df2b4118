//! The one body type the gateway passes around, so that streamed backend bodies, buffered
//! function replies and generated error bodies travel the same path without conversions.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed body: `Send` but not `Sync`, which is all hyper needs, and which lets a streamed
/// backend body be forwarded without buffering.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Boxes a request body as received. Spelled out for `Incoming` (rather than through
/// [`boxed`]) because the generic `Into` conversion defeats rustc's `Send` inference for the
/// connection futures that hold it.
pub fn incoming(body: hyper::body::Incoming) -> Body {
    body.map_err(|error| -> BoxError { Box::new(error) })
        .boxed_unsync()
}

/// Bounds a body to `limit` bytes; past it, the body fails with
/// [`http_body_util::LengthLimitError`].
pub fn limited(body: Body, limit: usize) -> Body {
    http_body_util::Limited::new(body, limit)
        .map_err(|error: BoxError| error)
        .boxed_unsync()
}

/// Boxes any body whose errors convert into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A body that fails once `deadline` passes, so a backend that sends headers and then stalls
/// cannot hold a client forever: the integration timeout covers the whole response, as on API
/// Gateway, even when the body is streamed.
pub struct DeadlineBody<B> {
    inner: B,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, deadline: tokio::time::Instant) -> Self {
        DeadlineBody {
            inner,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the integration response body was not complete within the integration timeout")]
pub struct DeadlineElapsed;

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::future::Future as _;
        let this = &mut *self;
        if let std::task::Poll::Ready(frame) =
            std::pin::Pin::new(&mut this.inner).poll_frame(context)
        {
            return std::task::Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(context).is_ready() {
            return std::task::Poll::Ready(Some(Err(Box::new(DeadlineElapsed))));
        }
        std::task::Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
