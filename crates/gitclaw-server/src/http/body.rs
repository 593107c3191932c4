//! Request bodies as bounded async readers, and streamed response bodies fed from
//! blocking code through a bounded channel (so a slow client slows the producer).

use std::{io, pin::Pin};

use async_compression::tokio::bufread::GzipDecoder;
use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

pub type BodyReader = Pin<Box<dyn AsyncRead + Send>>;

/// The request body as a reader, inflated when the client sent `Content-Encoding: gzip`.
pub fn body_reader(headers: &HeaderMap, body: Body) -> Result<BodyReader, String> {
    let stream = body.into_data_stream().map_err(io::Error::other);
    let raw = StreamReader::new(stream);
    match headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None | Some("identity") => Ok(Box::pin(raw)),
        Some("gzip") | Some("x-gzip") => {
            let mut decoder = GzipDecoder::new(BufReader::new(raw));
            decoder.multiple_members(true);
            Ok(Box::pin(decoder))
        }
        Some(other) => Err(format!("unsupported Content-Encoding '{other}'")),
    }
}

/// Read the whole body, refusing more than `limit` bytes (after inflation).
pub async fn read_limited(reader: &mut BodyReader, limit: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut limited = reader.take(limit as u64 + 1);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|err| format!("cannot read the request body: {err}"))?;
    if buf.len() > limit {
        return Err(format!("request body is larger than {limit} bytes"));
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
