//! Request bodies as bounded async readers, and streamed response bodies fed from
//! blocking code through a bounded channel (so a slow client slows the producer).

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use async_compression::tokio::bufread::GzipDecoder;
use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::io::StreamReader;

use crate::{error::GitError, service::push::PushBody};

/// The request body as a reader: the bytes as sent, or inflated when the client
/// sent `Content-Encoding: gzip`.
pub struct BodyReader {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes received on the wire so far, when the body is compressed.
    wire_bytes: Option<Arc<AtomicU64>>,
}

impl PushBody for BodyReader {
    fn compressed_bytes(&self) -> Option<u64> {
        self.wire_bytes.as_ref().map(|n| n.load(Ordering::Relaxed))
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.reader.as_mut().poll_read(cx, buf)
    }
}

/// Counts the bytes that pass through a reader.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

/// The request body as a reader, inflated when the client sent `Content-Encoding: gzip`.
pub fn body_reader(headers: &HeaderMap, body: Body) -> Result<BodyReader, GitError> {
    let stream = body.into_data_stream().map_err(io::Error::other);
    let raw = StreamReader::new(stream);
    match headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None | Some("identity") => Ok(BodyReader {
            reader: Box::pin(raw),
            wire_bytes: None,
        }),
        Some("gzip") | Some("x-gzip") => {
            let count = Arc::new(AtomicU64::new(0));
            let counted = Counted {
                inner: raw,
                count: count.clone(),
            };
            let mut decoder = GzipDecoder::new(BufReader::new(counted));
            decoder.multiple_members(true);
            Ok(BodyReader {
                reader: Box::pin(decoder),
                wire_bytes: Some(count),
            })
        }
        Some(other) => Err(GitError::UnsupportedEncoding(format!(
            "unsupported Content-Encoding '{other}'"
        ))),
    }
}

/// Read the whole body, refusing more than `limit` bytes (after inflation).
pub async fn read_limited(reader: &mut BodyReader, limit: usize) -> Result<Vec<u8>, GitError> {
    let mut buf = Vec::new();
    let mut limited = reader.take(limit as u64 + 1);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|err| GitError::BadRequest(format!("cannot read the request body: {err}")))?;
    if buf.len() > limit {
        return Err(GitError::TooLarge(format!(
            "request body is larger than {limit} bytes"
        )));
    }
    Ok(buf)
}

/// A `std::io::Write` that hands its bytes to an async response body in chunks.
/// Writing blocks while the channel is full; it fails once the client is gone.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    pub fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl ChannelWriter {
    /// End the response as broken: what is buffered is dropped and the body
    /// fails, so the client sees a cut-off transfer, never a short one that
    /// looks whole.
    pub fn fail(mut self, why: &str) {
        self.buf.clear();
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other(why.to_string())));
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush_chunk();
    }
}

/// A response body and the writer that feeds it.
pub fn streamed_body() -> (ChannelWriter, Body) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        body,
    )
}

/// How long, and how slowly, a client may send a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// Longest silence, and the stretch over which the rate is measured.
    pub idle: Duration,
    /// Fewest bytes a second, on average over each stretch of `idle` (0: any rate).
    pub min_rate: u64,
}

impl From<&crate::config::Timeouts> for BodyPace {
    fn from(timeouts: &crate::config::Timeouts) -> Self {
        BodyPace {
            idle: Duration::from_secs(timeouts.body_secs),
            min_rate: timeouts.body_min_rate,
        }
    }
}

/// A request body that fails once the client has sent nothing for `idle`, or less
/// than `min_rate` bytes a second over a stretch of `idle`: a client that stalls
/// or trickles cannot hold a connection (and what the server keeps for it) open.
pub struct Paced {
    inner: Body,
    pace: BodyPace,
    window_start: Instant,
    window_bytes: u64,
    timer: Pin<Box<Sleep>>,
}

impl Paced {
    pub fn new(inner: Body, pace: BodyPace) -> Self {
        let now = Instant::now();
        Paced {
            inner,
            pace,
            window_start: now,
            window_bytes: 0,
            timer: Box::pin(tokio::time::sleep_until(now + pace.idle)),
        }
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let now = Instant::now();
                self.window_bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                let elapsed = now - self.window_start;
                if elapsed >= self.pace.idle {
                    let floor = self.pace.min_rate.saturating_mul(elapsed.as_secs());
                    if self.window_bytes < floor {
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "request body too slow: {} bytes in {} s, the least accepted is {} bytes a second",
                                self.window_bytes,
                                elapsed.as_secs(),
                                self.pace.min_rate
                            ),
                        ))));
                    }
                    self.window_start = now;
                    self.window_bytes = 0;
                }
                let deadline = now + self.pace.idle;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(io::Error::other(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "request body timed out: nothing received for {} s",
                        self.pace.idle.as_secs()
                    ),
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: every request body is [`Paced`].
pub async fn pace_request_body(
    axum::extract::State(pace): axum::extract::State<BodyPace>,
    request: axum::extract::Request,
) -> axum::extract::Request {
    request.map(|body| Body::new(Paced::new(body, pace)))
}
