//! Idle upstream connections, kept per worker thread for the next request to the same upstream.
//!
//! pingora's own pool hands every released connection to a task of its own that watches it
//! while idle (an `Arc<Mutex<_>>`, channels, a spawned task), and the next request has to wait
//! for that task to run and let go of it: two tasks and a wake-up per proxied request. Here a
//! released connection is put in its thread's list, and the request that takes it checks it
//! then, without waiting on anyone: too old (`peer.idle_timeout`, else [`DEFAULT_IDLE`]), or
//! closed or sent bytes by the application while idle (a read that does not block) — dropped,
//! and the next one tried. A connection the application closes between that check and the
//! request is what `http::h1` sends again on a new connection when it safely can.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::protocols::Stream;
use pingora::upstreams::peer::{HttpPeer, Peer};
use tokio::io::AsyncReadExt;

use super::client::ClientSession;
use super::duplex::{Drain, DuplexStream};

/// How long an idle connection is kept when the peer does not say.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

struct Idle {
    key: u64,
    stream: Stream,
    since: Instant,
}

thread_local! {
    static IDLE: RefCell<Vec<Idle>> = const { RefCell::new(Vec::new()) };
}

/// The idle connections of this process, at most `per_upstream` per upstream and thread.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamPool {
    per_upstream: usize,
}

impl UpstreamPool {
    pub fn new(per_upstream: usize) -> Self {
        UpstreamPool { per_upstream }
    }

    /// The most recently released connection to `peer` that is still usable, if any.
    pub fn take(&self, peer: &HttpPeer) -> Option<Stream> {
        let key = peer.reuse_hash();
        let limit = peer.idle_timeout().unwrap_or(DEFAULT_IDLE);
        IDLE.try_with(|idle| {
            let mut idle = idle.try_borrow_mut().ok()?;
            while let Some(at) = idle.iter().rposition(|c| c.key == key) {
                let mut found = idle.remove(at);
                if found.since.elapsed() < limit && still_idle(&mut found.stream) {
                    return Some(found.stream);
                }
            }
            None
        })
        .ok()
        .flatten()
    }

    /// Keeps `stream`, a connection to `peer` whose last response was read to its end, for a
    /// later request; the oldest connections to `peer` over the bound, and those over their
    /// idle time, are closed.
    pub fn put(&self, peer: &HttpPeer, stream: Stream) {
        if self.per_upstream == 0 {
            return;
        }
        let key = peer.reuse_hash();
        let limit = peer.idle_timeout().unwrap_or(DEFAULT_IDLE);
        let _ = IDLE.try_with(|idle| {
            let Ok(mut idle) = idle.try_borrow_mut() else {
                return;
            };
            // Oldest first: closes what has idled too long, whatever its upstream.
            while idle.first().is_some_and(|c| c.since.elapsed() >= limit) {
                idle.remove(0);
            }
            if idle.iter().filter(|c| c.key == key).count() >= self.per_upstream {
                if let Some(oldest) = idle.iter().position(|c| c.key == key) {
                    idle.remove(oldest);
                }
            }
            idle.push(Idle {
                key,
                stream,
                since: Instant::now(),
            });
        });
    }
}

/// HTTP/1.1 sessions to the upstreams: an idle connection of this thread's pool, else a new one
/// (TCP, TLS with the options' `ca_file`); handed back to the pool when they can serve another
/// request. guichet's loop (`http::h1`) and the benchmark's pingora-core loop use it.
pub struct Upstreams {
    transport: TransportConnector,
    pool: UpstreamPool,
}

impl Upstreams {
    pub fn new(options: Option<ConnectorOptions>, per_upstream: usize) -> Self {
        Upstreams {
            transport: TransportConnector::new(options),
            pool: UpstreamPool::new(per_upstream),
        }
    }

    /// A pooled session to `peer` (unless `fresh`), else a new one. Its time-outs are the
    /// peer's. `duplex`: for a request with a body (or an upgrade), whose body and response
    /// must move at once — the connection is put behind a [`DuplexStream`], whose [`Drain`]
    /// the caller awaits beside the response.
    pub async fn connect(
        &self,
        peer: &HttpPeer,
        fresh: bool,
        duplex: bool,
    ) -> pingora::Result<Connection> {
        let pooled = if fresh { None } else { self.pool.take(peer) };
        let reused = pooled.is_some();
        let stream = match pooled {
            Some(stream) => stream,
            // Connecting (and TLS) makes a large future: in its own allocation, taken only when
            // the pool has no connection, so that every request's future stays small.
            None => Box::pin(self.transport.new_stream(peer))
                .await
                .map_err(|e| e.into_up())?,
        };
        let (stream, drain) = if duplex {
            let (stream, drain) = DuplexStream::wrap(stream);
            (stream, Some(drain))
        } else {
            (stream, None)
        };
        let mut session = ClientSession::new(stream);
        session.read_timeout = peer.options.read_timeout;
        session.write_timeout = peer.options.write_timeout;
        Ok(Connection {
            session,
            reused,
            drain,
        })
    }

    /// Hands a finished session's connection back to the pool, if it can serve another request
    /// (its response read to the end, keep-alive on both sides, nothing of the request left
    /// to send). The connection's [`Drain`] must be dropped first.
    pub fn release(&self, session: ClientSession, peer: &HttpPeer) {
        if let Some(stream) = session.reuse().and_then(DuplexStream::unwrap) {
            self.pool.put(peer, stream);
        }
    }
}

/// A session from [`Upstreams::connect`].
pub struct Connection {
    pub session: ClientSession,
    /// Taken from the pool (the application may have closed it meanwhile).
    pub reused: bool,
    /// For a duplex connection: what sends the request bytes its writes kept.
    pub drain: Option<Drain>,
}

/// Whether an idle connection is still open and silent: a read that would block. End of
/// stream (the application closed it), bytes it should not have sent, or an error: not usable.
fn still_idle(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let read = pin!(stream.read(&mut byte));
    let mut context = Context::from_waker(Waker::noop());
    matches!(read.poll(&mut context), Poll::Pending)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A pingora stream connected to `listener`, and the accepted end.
    pub(crate) async fn connected(
        listener: &tokio::net::TcpListener,
    ) -> (Stream, tokio::net::TcpStream) {
        let address = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (
            Box::new(pingora::protocols::l4::stream::Stream::from(client)),
            server,
        )
    }

    fn peer_of(listener: &tokio::net::TcpListener, idle: Option<Duration>) -> HttpPeer {
        let mut peer = HttpPeer::new(listener.local_addr().unwrap(), false, String::new());
        peer.options.idle_timeout = idle;
        peer
    }

    #[tokio::test]
    async fn a_connection_closed_or_written_to_while_idle_is_not_reused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = peer_of(&listener, None);
        let pool = UpstreamPool::new(8);
        let (open, _open_server) = connected(&listener).await;
        let (closed, closed_server) = connected(&listener).await;
        let (chatty, mut chatty_server) = connected(&listener).await;
        let open_id = open.id();
        pool.put(&peer, open);
        pool.put(&peer, closed);
        pool.put(&peer, chatty);
        drop(closed_server);
        chatty_server
            .write_all(b"HTTP/1.1 408\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The two latest are dropped on the way to the open one.
        let taken = pool.take(&peer).expect("the open connection");
        assert_eq!(taken.id(), open_id);
        assert!(pool.take(&peer).is_none());
    }

    #[tokio::test]
    async fn connections_are_bounded_per_upstream_and_expire() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = peer_of(&listener, Some(Duration::from_millis(200)));
        let other_peer = peer_of(&other, None);
        let pool = UpstreamPool::new(2);
        let mut servers = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (stream, server) = connected(&listener).await;
            ids.push(stream.id());
            servers.push(server);
            pool.put(&peer, stream);
        }
        let (stream, server) = connected(&other).await;
        servers.push(server);
        pool.put(&other_peer, stream);
        // The newest two, newest first; the other upstream's is not handed out for this one.
        assert_eq!(pool.take(&peer).map(|s| s.id()), Some(ids[2]));
        assert_eq!(pool.take(&peer).map(|s| s.id()), Some(ids[1]));
        assert!(pool.take(&peer).is_none());
        let (stream, server) = connected(&listener).await;
        servers.push(server);
        pool.put(&peer, stream);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(
            pool.take(&peer).is_none(),
            "idle longer than the peer allows"
        );
        assert!(pool.take(&other_peer).is_some());
    }
}
