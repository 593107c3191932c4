//! Accepting and serving connections, how many at once, and how long the server
//! waits on a client.
//!
//! At most `max` connections are served at once: past that the server accepts
//! no more until one closes, and new clients wait in the listen backlog. What
//! one connection may hold is bounded (request bodies by their limits, responses
//! by a bounded channel), so this bounds the server's memory whatever the number
//! of clients.
//!
//! Each connection is served by hyper's HTTP/1 connection with its header timer:
//! a request's headers — and, on a kept-alive connection, the next request — must
//! arrive within `header` time, or the connection closes. Writes are watched by
//! [`StallGuard`]: a client that stops reading its response for `send` time is cut
//! off, which also ends the blocking work feeding that response. Request bodies
//! are paced by the router (`http::body::Paced`).
//!
//! With TLS (`crate::tls`), the handshake comes first and must end within the
//! header time too; a client that fails it is dropped and logged at DEBUG.
//!
//! Not for: routing or anything a request means (the `http` module).

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::{sync::Semaphore, time::Sleep};

/// How many connections are served at once, and how long the server waits on one.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// For a request's headers, and for the next request on an idle kept-alive connection.
    pub header: Duration,
    /// For a client to take any of a response it stopped reading.
    pub send: Duration,
    /// Connections served at once.
    pub max: usize,
    /// Counts the connections open, when given.
    pub open: Option<prometheus::IntGauge>,
}

impl ConnectionLimits {
    /// The limits of `config`'s main listener, counted by `open`.
    pub fn of(config: &crate::config::Config, open: prometheus::IntGauge) -> Self {
        ConnectionLimits {
            header: Duration::from_secs(config.timeouts.header_secs),
            send: Duration::from_secs(config.timeouts.send_secs),
            max: config.max_connections,
            open: Some(open),
        }
    }
}

/// Serve `router` on connections from `listener` (over TLS with `tls`) until
/// `shutdown` resolves; then stop accepting and wait for the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Each connection task holds a sender: once all are dropped, every connection
    // has ended. The watch tells them to finish their request and close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(limits.max.max(1)));
    let mut full_since: Option<std::time::Instant> = None;
    loop {
        // A free slot first: at the limit, nothing more is accepted until a
        // connection closes.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if full_since.is_none() {
                    tracing::warn!(
                        max = limits.max,
                        "connection limit reached (GITCLAW_MAX_CONNECTIONS): new connections wait until one closes"
                    );
                    full_since = Some(std::time::Instant::now());
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        if let Some(since) = full_since.take() {
            tracing::info!(
                waited_ms = since.elapsed().as_millis() as u64,
                "below the connection limit again"
            );
        }
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // No Nagle: pkt-line answers are many small writes, and waiting on delayed
        // ACKs costs tens of milliseconds per round trip.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {err}");
        }
        let guarded = StallGuard::new(tcp, limits.send);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let (alive, stop) = (alive_tx.clone(), stop_rx.clone());
        let open = limits.open.clone().map(Open::new);
        let (header, tls) = (limits.header, tls.clone());
        tokio::spawn(async move {
            let ended = match tls {
                None => serve_connection(guarded, service, header, stop).await,
                Some(tls) => match tokio::time::timeout(header, tls.accept(guarded)).await {
                    Ok(Ok(stream)) => serve_connection(stream, service, header, stop).await,
                    Ok(Err(err)) => {
                        tracing::debug!(peer = %peer, error = %err, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer, "no TLS handshake within the header time");
                        Ok(())
                    }
                },
            };
            if let Err(err) = ended {
                tracing::debug!(peer = %peer, error = %err, "connection ended");
            }
            drop((alive, open, slot));
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

/// HTTP/1.1 on `io` until the client closes, or `stop` asks to finish the
/// request in flight and close.
async fn serve_connection<IO, S>(
    io: IO,
    service: S,
    header: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => ended,
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

/// One open connection, counted while it lives.
struct Open(prometheus::IntGauge);

impl Open {
    fn new(gauge: prometheus::IntGauge) -> Open {
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A connection whose writes fail once they have made no progress for `limit`.
pub struct StallGuard<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        StallGuard {
            inner,
            limit,
            stalled: None,
        }
    }

    /// The outcome of a write attempt, failing it when the client has taken
    /// nothing for `limit`.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} s: giving up on it",
                    limit.as_secs()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_after_the_limit() {
        // A pipe of 64 bytes whose other end nobody reads.
        let (near, _far) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(near, Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = guarded
            .write_all(&[0u8; 1024])
            .await
            .expect_err("the write fails once stalled");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_taking_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(near, Duration::from_millis(500));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut total = 0;
            while total < 1024 {
                // The slow reading is the behaviour under test, not a wait.
                tokio::time::sleep(Duration::from_millis(100)).await;
                total += tokio::io::AsyncReadExt::read(&mut far, &mut buf)
                    .await
                    .unwrap();
            }
            total
        });
        guarded
            .write_all(&[0u8; 1024])
            .await
            .expect("a reader taking a little every 100 ms keeps the write alive");
        drop(guarded);
        assert!(reader.await.unwrap() >= 1024);
    }

    /// A `GET /` on a new connection; its answer's first line, or `None` if none
    /// came within `within`.
    async fn get(
        addr: std::net::SocketAddr,
        within: Duration,
    ) -> (tokio::net::TcpStream, Option<String>) {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 256];
        let read = tokio::time::timeout(within, tokio::io::AsyncReadExt::read(&mut tcp, &mut buf));
        let line = match read.await {
            Ok(Ok(n)) if n > 0 => Some(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => None,
        };
        (tcp, line)
    }

    #[tokio::test]
    async fn past_the_limit_a_connection_waits_until_one_closes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let open = prometheus::IntGauge::new("open", "open").unwrap();
        let limits = ConnectionLimits {
            header: Duration::from_secs(30),
            send: Duration::from_secs(30),
            max: 2,
            open: Some(open.clone()),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, limits, None, async {
            let _ = stopped.await;
        }));
        // Two kept-alive connections take both slots…
        let (first, answer) = get(addr, Duration::from_secs(10)).await;
        assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"));
        let (_second, answer) = get(addr, Duration::from_secs(10)).await;
        assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(open.get(), 2);
        // …so a third is not answered (the wait is the behaviour under test)…
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 256];
        let early = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::io::AsyncReadExt::read(&mut third, &mut buf),
        )
        .await;
        assert!(early.is_err(), "answered past the limit");
        // …until one closes.
        drop(first);
        let n = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncReadExt::read(&mut third, &mut buf),
        )
        .await
        .expect("answered once a slot is free")
        .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        let _ = stop.send(());
        drop(third);
        drop(_second);
        server.await.unwrap().unwrap();
        assert_eq!(open.get(), 0);
    }
}
