//! Reading a backend response into a cache entry without ever holding more than the cacheable
//! size: a body that turns out larger is passed on as a stream (the bytes already read first),
//! so a large download costs the gateway no more memory than without the cache.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Response;
use http::response::Parts;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;

use crate::body::{Body, BoxError};

/// API Gateway's largest cacheable response body.
pub const CACHEABLE_BODY_BYTES_MAX: usize = 1024 * 1024;

/// A response read as far as the cache cares.
pub enum Buffered {
    /// The whole body, at most the limit.
    Complete(Parts, Bytes),
    /// Too large (or failed while reading): the response to pass on, unchanged for the client.
    Passed(Response<Body>),
}

/// Reads `response`'s body up to `limit` bytes.
pub async fn read(response: Response<Body>, limit: usize) -> Buffered {
    let declared_too_large = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64);
    if declared_too_large || response.body().size_hint().lower() > limit as u64 {
        return Buffered::Passed(response);
    }
    let (parts, mut body) = response.into_parts();
    let mut collected = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Buffered::Complete(parts, collected.freeze()),
            Some(Ok(frame)) => {
                // Trailers are not kept: API Gateway does not pass them either.
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                collected.extend_from_slice(&data);
                if collected.len() > limit {
                    let rest = Prefixed {
                        prefix: Some(collected.freeze()),
                        rest: Some(body),
                        error: None,
                    };
                    return Buffered::Passed(Response::from_parts(parts, rest.boxed_unsync()));
                }
            }
            Some(Err(error)) => {
                // The client gets what the backend sent, then the same failure it would have
                // seen without the cache.
                let failed = Prefixed {
                    prefix: Some(collected.freeze()),
                    rest: None,
                    error: Some(error),
                };
                return Buffered::Passed(Response::from_parts(parts, failed.boxed_unsync()));
            }
        }
    }
}

/// The bytes already read, then the rest of the stream (or the error that ended it).
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Option<Body>,
    error: Option<BoxError>,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(prefix) = this.prefix.take()
            && !prefix.is_empty()
        {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match this.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(context),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(Bytes::is_empty)
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |prefix| prefix.len() as u64);
        let mut hint = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |rest| rest.size_hint());
        hint.set_lower(hint.lower() + prefix);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + prefix);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(response: Response<Body>) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .map(|collected| collected.to_bytes().to_vec())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn small_bodies_complete_large_ones_pass_through_whole() {
        let small = Response::new(crate::body::full(vec![1u8; 10]));
        match read(small, 16).await {
            Buffered::Complete(_, bytes) => assert_eq!(bytes.len(), 10),
            Buffered::Passed(_) => panic!("a small body completes"),
        }
        // A streamed body (no exact size) larger than the limit comes through intact.
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = (0..5)
            .map(|index| Ok(Frame::data(Bytes::from(vec![index as u8; 8]))))
            .collect();
        let stream = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
        let large = Response::new(crate::body::boxed(stream));
        match read(large, 16).await {
            Buffered::Complete(..) => panic!("a large body is not buffered"),
            Buffered::Passed(response) => {
                let bytes = text(response).await;
                assert_eq!(bytes.len(), 40);
                assert_eq!(&bytes[..8], &[0u8; 8]);
                assert_eq!(&bytes[32..], &[4u8; 8]);
            }
        }
    }
}
