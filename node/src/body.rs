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
        Self::with_timer(inner, Box::pin(tokio::time::sleep_until(deadline)))
    }

    /// Reuses the timer that already bounded the wait for the response head: one timer entry
    /// per request instead of two (registering one is a lock and a wheel insert).
    pub fn with_timer(inner: B, sleep: std::pin::Pin<Box<tokio::time::Sleep>>) -> Self {
        DeadlineBody { inner, sleep }
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

/// How long a request body may go without delivering a byte while the gateway waits for it.
/// API Gateway documents no figure; 20 s is under the 29 s default integration timeout, so a
/// stalled upload to a streaming proxy is answered as the client's fault (408) before the
/// integration's deadline would blame the backend (504).
pub const REQUEST_BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// At most this many bytes of a refused request's body are read and discarded: enough to drain
/// an upload refused for being just over the 10 MB payload limit, with room for a client that
/// overshoots it.
pub const LINGER_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// ... and for at most this long.
pub const LINGER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a client's request body could not be read. Integrations find it in an error's source
/// chain (also inside a backend client's error, for a streamed upload) and answer the client's
/// fault as such instead of as a backend failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// No byte arrived for the idle timeout while the gateway waited.
    #[error("the client sent no request body bytes for {} ms", .0.as_millis())]
    Idle(std::time::Duration),
    /// The body's framing is broken (a malformed or overflowing chunk size, a connection closed
    /// mid-body...).
    #[error("the request body is malformed: {0}")]
    Malformed(#[source] hyper::Error),
}

/// A client's request body as the pipeline hands it to the stages: idle-timed, with its errors
/// marked as the client's, and drained when dropped unread.
///
/// Draining ("lingering close"): when a request is refused before its body was read (413, 403,
/// 401...), HTTP/1.1 would otherwise close a connection with unread bytes in flight, and the
/// client's TCP stack, receiving a reset while still sending, often discards the answer it
/// was sent. Dropped before its end, this body hands itself to a task that reads and discards up
/// to [`LINGER_BYTES_MAX`] bytes within [`LINGER_TIMEOUT`]: hyper keeps the connection reading
/// (and sends the response meanwhile), the client sees its 413, and a drained connection even
/// stays open for the next request. Not for HTTP/2, where a stream reset never loses the
/// response; not for a request waiting on `Expect: 100-continue` whose body was never asked for
/// (reading it would invite the upload the gateway just refused).
pub struct ClientBody {
    inner: Option<hyper::body::Incoming>,
    idle: std::time::Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// True while the last poll returned `Pending`: the idle clock runs only while the gateway
    /// waits on the client, never while a slow backend keeps the gateway from asking.
    waiting: bool,
    polled: bool,
    finished: bool,
    linger: bool,
    expects_continue: bool,
}

impl ClientBody {
    /// `linger`: drain when dropped unread (HTTP/1.x). `expects_continue`: the request carries
    /// `Expect: 100-continue`.
    pub fn new(
        inner: hyper::body::Incoming,
        idle: std::time::Duration,
        linger: bool,
        expects_continue: bool,
    ) -> Self {
        ClientBody {
            inner: Some(inner),
            idle,
            sleep: None,
            waiting: false,
            polled: false,
            finished: false,
            linger,
            expects_continue,
        }
    }

    /// Boxed as the gateway's [`Body`].
    pub fn into_body(self) -> Body {
        self.boxed_unsync()
    }
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::future::Future as _;
        use std::task::Poll;
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        match std::pin::Pin::new(inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                this.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.finished = true;
                Poll::Ready(Some(Err(Box::new(ClientBodyError::Malformed(error)))))
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                // The clock starts when the gateway starts waiting, not at the last frame.
                if !this.waiting || this.sleep.is_none() {
                    let deadline = tokio::time::Instant::now() + this.idle;
                    match &mut this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                this.waiting = true;
                if let Some(sleep) = &mut this.sleep
                    && sleep.as_mut().poll(context).is_ready()
                {
                    this.finished = true;
                    return Poll::Ready(Some(Err(Box::new(ClientBodyError::Idle(this.idle)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished
            || self
                .inner
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => http_body::SizeHint::with_exact(0),
        }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        if !self.linger || self.finished || (self.expects_continue && !self.polled) {
            return;
        }
        let Some(inner) = self.inner.take() else {
            return;
        };
        if http_body::Body::is_end_stream(&inner) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(inner));
        }
    }
}

/// Reads and discards what is left of a refused request's body, within the linger bounds; then
/// drops it, which lets hyper close the connection if the body did not end.
async fn linger(mut body: hyper::body::Incoming) {
    let drain = async {
        let mut read: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > LINGER_BYTES_MAX {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A request body as hyper hands it to the gateway, from bytes written on an in-memory
    /// connection: the head and `first` now, the rest of `length` whenever the test writes it.
    async fn incoming(
        length: usize,
        first: &[u8],
    ) -> (hyper::body::Incoming, tokio::io::DuplexStream) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let sender = std::sync::Mutex::new(Some(sender));
        let service =
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                if let Some(sender) = sender.lock().unwrap().take() {
                    let _ = sender.send(request.into_body());
                }
                async { Ok::<_, std::convert::Infallible>(http::Response::new(empty())) }
            });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(server), service),
        );
        let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n");
        client.write_all(head.as_bytes()).await.unwrap();
        client.write_all(first).await.unwrap();
        (receiver.await.unwrap(), client)
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_runs_only_while_the_gateway_waits() {
        let (inner, mut client) = incoming(10, b"").await;
        let mut body = ClientBody::new(inner, Duration::from_secs(10), false, false);
        // The gateway waits 5 s for the first bytes (the clock runs)...
        let (frame, ()) = tokio::join!(body.frame(), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            client.write_all(b"abc").await.unwrap();
        });
        assert_eq!(frame.unwrap().unwrap().into_data().unwrap(), "abc");
        // ... then does not ask for a minute (a slow backend): not the client's idleness, and
        // the clock starts afresh when the gateway waits again.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let waited = tokio::time::timeout(Duration::from_secs(9), body.frame()).await;
        assert!(waited.is_err(), "no timeout 9 s into the wait");
        client.write_all(b"de").await.unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "de");
        // Then the client stalls for good: 408 material once 10 s pass.
        let started = tokio::time::Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(matches!(
            error.downcast_ref::<ClientBodyError>(),
            Some(ClientBodyError::Idle(_))
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_body_dropped_unread_is_drained_only_when_asked_to() {
        // Drained: the client's remaining bytes are taken, so its writes complete.
        let (inner, mut client) = incoming(512 * 1024, b"").await;
        drop(ClientBody::new(inner, Duration::from_secs(10), true, false));
        let written = tokio::time::timeout(
            Duration::from_secs(5),
            client.write_all(&[b'a'; 512 * 1024]),
        )
        .await;
        assert!(matches!(written, Ok(Ok(()))), "{written:?}");
        // Not drained (HTTP/2, or 100-continue never asked for): nobody reads past the duplex
        // buffer.
        let (inner, mut client) = incoming(512 * 1024, b"").await;
        drop(ClientBody::new(inner, Duration::from_secs(10), true, true));
        let written = tokio::time::timeout(
            Duration::from_millis(300),
            client.write_all(&[b'a'; 512 * 1024]),
        )
        .await;
        assert!(!matches!(written, Ok(Ok(()))), "{written:?}");
    }

    /// Reads until the gateway's side closes; the time that took.
    async fn until_closed(client: &mut tokio::io::DuplexStream) -> Duration {
        use tokio::io::AsyncReadExt;
        let started = tokio::time::Instant::now();
        let mut buffer = [0u8; 1024];
        while client.read(&mut buffer).await.is_ok_and(|read| read > 0) {}
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn lingering_is_bounded_in_time() {
        // A client that stops sending: the drain gives up after LINGER_TIMEOUT and the
        // connection closes.
        let (inner, mut client) = incoming(1000, b"abc").await;
        drop(ClientBody::new(inner, Duration::from_secs(10), true, false));
        let closed_after = tokio::time::timeout(Duration::from_secs(60), until_closed(&mut client))
            .await
            .expect("the connection closes");
        assert_eq!(closed_after, LINGER_TIMEOUT);
    }

    #[tokio::test]
    async fn lingering_is_bounded_in_bytes() {
        let total = LINGER_BYTES_MAX as usize + 1024 * 1024;
        let (inner, client) = incoming(total, b"").await;
        drop(ClientBody::new(inner, Duration::from_secs(10), true, false));
        let (mut reader, mut writer) = tokio::io::split(client);
        let writing = tokio::spawn(async move {
            let chunk = vec![b'a'; 64 * 1024];
            let mut written = 0;
            while written < total && writer.write_all(&chunk).await.is_ok() {
                written += chunk.len();
            }
            written
        });
        // The connection closes once the bound is passed, before the client is done.
        let mut buffer = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            use tokio::io::AsyncReadExt;
            while reader.read(&mut buffer).await.is_ok_and(|read| read > 0) {}
        })
        .await;
        assert!(closed.is_ok(), "the connection closes");
        let written = writing.await.unwrap();
        assert!(written < total, "{written} of {total} taken");
        assert!(written as u64 >= LINGER_BYTES_MAX, "{written} taken");
    }
}
