//! An upstream connection whose writes never wait, so that a request body and its response
//! can both move at once on one task.
//!
//! pingora's HTTP/1 client session reads the response and writes the request body through one
//! `&mut`: while a body write waits for the application to read, nothing reads what the
//! application answers. An application that answers while it reads (an echo, a converter, a
//! server that sends its response before it takes the body) then waits for its own write,
//! stops reading, and both directions stall until a time-out ends the connection.
//!
//! [`DuplexStream::wrap`] puts the connection behind a [`Stream`] whose writes give the socket
//! what it takes now and keep the rest; the [`Drain`] it hands back sends what is kept, and
//! is awaited beside the response read (`http::h1::exchange`). What is kept is bounded by the
//! caller: it reads more of the client's body only while [`Drain::pending`] is at most
//! [`MAX_PENDING`].

use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::SslDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the caller lets wait for the application before it stops reading the client's body.
pub const MAX_PENDING: usize = 64 * 1024;

/// The connection and what it has not taken yet; one task uses it, so the lock never waits.
struct Outbox {
    stream: Stream,
    /// Bytes written to this stream that the socket has not taken yet, in order.
    pending: BytesMut,
    /// Bytes handed to the socket's own buffer since its last flush.
    unflushed: bool,
    /// The error that ended the connection's writing side: every later write gets it too.
    failed: Option<io::ErrorKind>,
}

impl Outbox {
    /// Gives the socket what it takes of `pending`, then flushes it; `Ready(Ok)` when all is
    /// sent.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(kind) = self.failed {
            return Poll::Ready(Err(kind.into()));
        }
        while !self.pending.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(self.fail(io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.pending.advance(n);
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(self.fail(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.unflushed {
            if let Err(e) = ready!(Pin::new(&mut self.stream).poll_flush(cx)) {
                return Poll::Ready(self.fail(e));
            }
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Ends the writing side with `e`: what was kept is dropped, later writes fail.
    fn fail<T>(&mut self, e: io::Error) -> io::Result<T> {
        self.failed = Some(e.kind());
        self.pending.clear();
        Err(e)
    }
}

/// A connection whose writes complete at once: see the module's documentation.
pub struct DuplexStream {
    outbox: Arc<Mutex<Outbox>>,
    id: UniqueIDType,
}

/// Sends what a [`DuplexStream`] kept; a handle that does not borrow the connection.
#[derive(Clone)]
pub struct Drain {
    outbox: Arc<Mutex<Outbox>>,
}

fn lock(outbox: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    // Nothing panics while the lock is held; a poisoned lock still holds a consistent outbox.
    outbox
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DuplexStream {
    /// `stream` behind writes that never wait, and the handle that sends what they kept.
    pub fn wrap(stream: Stream) -> (Stream, Drain) {
        let id = stream.id();
        let outbox = Arc::new(Mutex::new(Outbox {
            stream,
            pending: BytesMut::new(),
            unflushed: false,
            failed: None,
        }));
        let drain = Drain {
            outbox: outbox.clone(),
        };
        (Box::new(DuplexStream { outbox, id }), drain)
    }

    /// The connection inside `stream` when it is a [`DuplexStream`] with nothing left to send
    /// and no [`Drain`] alive; `stream` itself when it is not one; `None` otherwise.
    pub fn unwrap(stream: Stream) -> Option<Stream> {
        if !stream.as_any().is::<DuplexStream>() {
            return Some(stream);
        }
        let duplex = stream.into_any().downcast::<DuplexStream>().ok()?;
        let outbox = Arc::try_unwrap(duplex.outbox).ok()?;
        let outbox = outbox
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (outbox.pending.is_empty() && !outbox.unflushed && outbox.failed.is_none())
            .then_some(outbox.stream)
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox)
    }
}

impl Drain {
    /// Bytes written that the socket has not taken yet.
    pub fn pending(&self) -> usize {
        self.state().1
    }

    /// Whether nothing is left to send: everything written was handed to the socket and
    /// flushed, or the writing side failed (what it kept is dropped).
    pub fn is_drained(&self) -> bool {
        self.state().0
    }

    /// [`Drain::is_drained`] and [`Drain::pending`] at once (one lock).
    pub fn state(&self) -> (bool, usize) {
        let outbox = lock(&self.outbox);
        let drained = outbox.failed.is_some() || (outbox.pending.is_empty() && !outbox.unflushed);
        (drained, outbox.pending.len())
    }

    /// Sends what is kept; ends when all is sent, or with the error that ended the writing
    /// side, or with `TimedOut` when it is not all sent within `timeout` — which ends the
    /// writing side too: what was kept is dropped, and later writes fail.
    pub async fn drained(&self, timeout: Option<Duration>) -> io::Result<()> {
        let push = std::future::poll_fn(|cx| lock(&self.outbox).poll_push(cx));
        match timeout {
            None => push.await,
            Some(limit) => match tokio::time::timeout(limit, push).await {
                Ok(pushed) => pushed,
                Err(_) => lock(&self.outbox).fail(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the application took no request bytes for {limit:?}"),
                )),
            },
        }
    }
}

impl AsyncWrite for DuplexStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// All of `bufs` is taken at once: the socket gets what it takes now in one gathered
    /// system call (a chunk's size line, data and line end: one TCP segment, not three), the
    /// rest waits, in order.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut outbox = self.outbox();
        if let Some(kind) = outbox.failed {
            return Poll::Ready(Err(kind.into()));
        }
        if !outbox.pending.is_empty() {
            // Order: what waits goes first.
            if let Poll::Ready(Err(e)) = outbox.poll_push(cx) {
                return Poll::Ready(Err(e));
            }
        }
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        let mut taken = 0;
        if outbox.pending.is_empty() && total > 0 {
            match Pin::new(&mut outbox.stream).poll_write_vectored(cx, bufs) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(outbox.fail(io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    taken = n;
                    outbox.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(outbox.fail(e)),
                Poll::Pending => {}
            }
        }
        for buf in bufs {
            let skipped = taken.min(buf.len());
            taken -= skipped;
            outbox.pending.extend_from_slice(&buf[skipped..]);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Hands the socket what it takes now: what it does not take is sent by [`Drain`], which
    /// the caller awaits before the exchange ends.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.outbox().poll_push(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut outbox = self.outbox();
        // What is kept goes first if the socket takes it now; closing never waits for an
        // application that does not read.
        let _ = outbox.poll_push(cx);
        Pin::new(&mut outbox.stream).poll_shutdown(cx)
    }
}

impl AsyncRead for DuplexStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.outbox().stream).poll_read(cx, buf)
    }
}

#[async_trait::async_trait]
impl Shutdown for DuplexStream {
    async fn shutdown(&mut self) {
        let _ = std::future::poll_fn(|cx| Pin::new(&mut *self).poll_shutdown(cx)).await;
    }
}

impl UniqueID for DuplexStream {
    fn id(&self) -> UniqueIDType {
        self.id
    }
}

impl Ssl for DuplexStream {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.outbox().stream.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.outbox().stream.selected_alpn_proto()
    }
}

impl GetTimingDigest for DuplexStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.outbox().stream.get_timing_digest()
    }
}

impl GetProxyDigest for DuplexStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.outbox().stream.get_proxy_digest()
    }
}

impl GetSocketDigest for DuplexStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.outbox().stream.get_socket_digest()
    }
}

impl Peek for DuplexStream {}

impl fmt::Debug for DuplexStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuplexStream")
            .field("id", &self.id)
            .finish()
    }
}

#[cfg(test)]
mod tests;
