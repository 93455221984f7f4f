//! Bounds on client connections, below Pingora's HTTP layer:
//!
//! - **A cap on open connections** (`server.max_connections`). Past it a new
//!   connection is closed at once, before its TLS handshake when Pingora's
//!   connection filter sees it, so refusing costs an accept and a close.
//!   Connections already open keep being served.
//! - **A deadline for a complete request head**
//!   (`server.request_head_timeout_seconds`). Pingora's read timeout is per
//!   read, so a client that trickles a header byte every few seconds would
//!   hold its connection forever (slowloris). The clock starts when a
//!   connection opens, or at the first byte of a later request on a kept-alive
//!   one, and stops when the gateway's first hook sees the whole head
//!   ([`head_complete`]); [`request_done`] re-arms it. A connection past its
//!   deadline is closed.
//!
//! - **A drain before shutdown.** Pingora drops idle keep-alive connections
//!   the moment its cleanup runs, which races a client's next request on
//!   them: the request is lost mid-send (a reset, or an incomplete answer).
//!   [`GuardedApp`] first marks the process [`draining`], so that each such
//!   connection carries one more request, answered with `Connection: close`,
//!   and waits (up to the grace period) for the connections to go. Clients
//!   then move between requests: to the new process of a graceful upgrade,
//!   or to another instance.
//!
//! The first two live in [`GuardedStream`], a wrapper around Pingora's
//! stream that [`GuardedApp`] puts on each new connection. HTTP/2 connections are counted
//! but have no head clock: their streams share one connection, and the h2
//! layer bounds them (concurrent streams, reset budget, header list size).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::ConnectionFilter;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics;

/// The limits, from `server` in gateway.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub request_head_timeout: Duration,
}

/// Open connections of one listener service, shared with its filter.
#[derive(Debug, Default)]
pub struct OpenConnections(AtomicUsize);

impl OpenConnections {
    /// One more connection, unless `max` are open.
    fn admit(self: &Arc<Self>, max: usize) -> Option<ConnectionPermit> {
        let before = self.0.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        metrics::connection_opened();
        Some(ConnectionPermit(self.clone()))
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Held by an open connection; dropping it (the connection closed) frees
/// its place.
struct ConnectionPermit(Arc<OpenConnections>);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
        metrics::connection_closed();
    }
}

/// Refuses new connections while the cap is reached, before any TLS work.
/// The exact count is taken again in [`GuardedApp`], which admits or drops.
#[derive(Debug)]
pub struct CapFilter {
    open: Arc<OpenConnections>,
    max: usize,
}

#[async_trait]
impl ConnectionFilter for CapFilter {
    async fn should_accept(&self, _addr: Option<&std::net::SocketAddr>) -> bool {
        let accept = self.open.count() < self.max;
        if !accept {
            metrics::connection_refused();
        }
        accept
    }
}

/// Wraps a Pingora application: admits connections under the cap and puts
/// a [`GuardedStream`] around each.
pub struct GuardedApp<A> {
    app: Arc<A>,
    open: Arc<OpenConnections>,
    limits: ConnectionLimits,
    /// How long shutdown waits for connections to finish their requests.
    drain: Duration,
}

/// Set once shutdown begins: every response from then on closes its
/// connection.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Whether the process is shutting down: the gateway answers with
/// `Connection: close` (see the module's documentation).
pub fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

/// How often the drain looks at the open connections.
const DRAIN_POLL: Duration = Duration::from_millis(20);

impl<A> GuardedApp<A> {
    pub fn new(app: A, limits: ConnectionLimits, drain: Duration) -> Self {
        GuardedApp {
            app: Arc::new(app),
            open: Arc::default(),
            limits,
            drain,
        }
    }

    /// The filter that refuses connections early for this application.
    pub fn filter(&self) -> Arc<CapFilter> {
        Arc::new(CapFilter {
            open: self.open.clone(),
            max: self.limits.max_connections,
        })
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for GuardedApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // A kept-alive connection comes back already wrapped.
        let stream = if stream.as_any().is::<GuardedStream>() {
            stream
        } else {
            let Some(permit) = self.open.admit(self.limits.max_connections) else {
                metrics::connection_refused();
                return None;
            };
            Box::new(GuardedStream::new(
                stream,
                permit,
                self.limits.request_head_timeout,
            ))
        };
        self.app.process_new(stream, shutdown).await
    }

    /// Runs when the listeners have stopped accepting: drain, then let
    /// Pingora close what is left.
    async fn cleanup(&self) {
        DRAINING.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + self.drain;
        while self.open.count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        self.app.cleanup().await
    }
}

/// Where a connection is in its request cycle.
const AWAITING_HEAD: u8 = 0;
const IN_REQUEST: u8 = 1;
const IDLE: u8 = 2;

/// A client connection with its place under the cap and its head clock.
pub struct GuardedStream {
    inner: Stream,
    _permit: ConnectionPermit,
    head_timeout: Duration,
    /// AWAITING_HEAD, IN_REQUEST or IDLE; set by the gateway's hooks
    /// through a shared reference, read by the reads.
    phase: AtomicU8,
    /// Armed while awaiting a head.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl GuardedStream {
    fn new(inner: Stream, permit: ConnectionPermit, head_timeout: Duration) -> Self {
        // HTTP/2 multiplexes requests: no head clock for the connection.
        let is_h2 = matches!(inner.selected_alpn_proto(), Some(ALPN::H2));
        GuardedStream {
            inner,
            _permit: permit,
            head_timeout,
            phase: AtomicU8::new(if is_h2 { IN_REQUEST } else { AWAITING_HEAD }),
            deadline: (!is_h2).then(|| Box::pin(tokio::time::sleep(head_timeout))),
        }
    }

    /// The head of the current request has been read: stop the clock.
    pub fn head_complete(&self) {
        self.phase.store(IN_REQUEST, Ordering::Release);
    }

    /// The current request is answered: the next one's head gets a clock
    /// from its first byte.
    pub fn request_done(&self) {
        self.phase.store(IDLE, Ordering::Release);
    }

    fn poll_head_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.deadline {
            Some(deadline) => deadline.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// The guard of the connection a request came on, if it has one (HTTP/1).
pub fn guard_of(session: &pingora::proxy::Session) -> Option<&GuardedStream> {
    session.stream()?.as_any().downcast_ref::<GuardedStream>()
}

/// See [`GuardedStream::head_complete`].
pub fn head_complete(session: &pingora::proxy::Session) {
    if let Some(guard) = guard_of(session) {
        guard.head_complete();
    }
}

/// See [`GuardedStream::request_done`].
pub fn request_done(session: &pingora::proxy::Session) {
    if let Some(guard) = guard_of(session) {
        guard.request_done();
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.phase.load(Ordering::Acquire) {
            IN_REQUEST => Pin::new(&mut this.inner).poll_read(cx, buf),
            IDLE => {
                let before = buf.filled().len();
                let result = Pin::new(&mut this.inner).poll_read(cx, buf);
                if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
                    // The first byte of the next request starts its clock.
                    this.phase.store(AWAITING_HEAD, Ordering::Release);
                    let deadline = Instant::now() + this.head_timeout;
                    match &mut this.deadline {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                result
            }
            _ => {
                if this.poll_head_deadline(cx).is_ready() {
                    metrics::request_head_timeout();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )));
                }
                Pin::new(&mut this.inner).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

impl fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("phase", &self.phase.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_up_to_its_size_and_frees_on_drop() {
        let open = Arc::new(OpenConnections::default());
        let first = open.admit(2).expect("first");
        let second = open.admit(2).expect("second");
        assert!(open.admit(2).is_none());
        assert_eq!(open.count(), 2);
        drop(first);
        let third = open.admit(2).expect("a freed place is given again");
        drop((second, third));
        assert_eq!(open.count(), 0);
    }
}
