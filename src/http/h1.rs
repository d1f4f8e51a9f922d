//! Requests served by guichet's own loop on pingora-core ([`GatewayApp`]): HTTP/1.x, and each
//! stream of an HTTP/2 connection.
//!
//! pingora-proxy runs each request through a general machine (phase futures boxed one by one,
//! the request and response halves joined by channels, cache and module hooks guichet never
//! uses): measured, that machine cost more instructions per request than all of guichet's own
//! work (`benches/instructions.sh`, README "Performance"), and its upstream half, which waits
//! on each write of a request body before it reads the response again, stalls with an
//! application that answers while it reads. This loop does what guichet needs, with
//! guichet's own HTTP/1.x server session on the client's side (`http::inbound`; an HTTP/2
//! connection is pingora-core's, each of its streams served here) and guichet's own client
//! session (`http::client`), connection pool (`http::pool`) and duplex connections
//! (`http::duplex`) on the application's:
//!
//! 1. read the request (400 for a malformed one, 431 for one too large, 501 for a transfer
//!    coding other than chunked, 405 for `CONNECT`; an HTTP/2 stream comes read);
//! 2. `GatewayProxy::admit`: guichet's own pages, the session, the route's rules;
//! 3. the upstream request: hop-by-hop headers and the headers `Connection` names removed
//!    (`strip_hop_by_hop`), a WebSocket upgrade kept, then [`prepare_upstream`], the target
//!    in origin form, the body framed;
//! 4. an upstream connection (HTTP/1.1) from the pool (or a new one), the request header
//!    written, then both ways at once in one task: the client's body to the application (a
//!    duplex connection's writes never wait on the application), the application's
//!    response (1xx, then the header, then the body) to the client; after a `101`, bytes both
//!    ways until either side closes;
//! 5. a request that met a pooled connection the application had closed is sent again, once,
//!    on a new connection — only when nothing of it can have been acted on (an idempotent
//!    method, no body byte read, no response byte);
//! 6. errors as pages (`GatewayProxy::fail`), metrics and the access line
//!    (`GatewayProxy::record`), both connections handed back for reuse when they can be.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::connectors::ConnectorOptions;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::protocols::{Stream, ALPN};
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use tokio::sync::Notify;

use crate::config::Settings;
use crate::http::client::{list_items, ClientSession};
use crate::http::downstream::Downstream;
use crate::http::duplex::{Drain, MAX_PENDING};
use crate::http::forwarded::UpstreamParts;
use crate::http::inbound::{Connection, Inbound};
use crate::http::pool::Upstreams;
use crate::http::proxy::{prepare_upstream, write_reply, GatewayProxy, RequestContext};

/// The gateway's listening application: every connection; its HTTP/1.x requests served on
/// guichet's own server session (`http::inbound`), an HTTP/2 connection (ALPN `h2`, or the
/// HTTP/2 preface without TLS) handed to pingora-core, whose streams come back to the same
/// loop.
pub struct GatewayApp {
    inner: Arc<Loop>,
}

/// The loop every request goes through.
struct Loop {
    proxy: GatewayProxy,
    /// Upstream connections: pooled, else new.
    upstreams: Upstreams,
    /// `[upstream]`'s peer (absent with `server.mode = "auth"`), and `[upstreams.NAME]`'s in
    /// `Settings::upstreams` order: built once, with their time-outs.
    main_peer: Option<HttpPeer>,
    peers: Vec<HttpPeer>,
    options: HttpServerOptions,
    /// Set when the service stops: idle keep-alive connections close.
    stopping: AtomicBool,
    stop: Notify,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl GatewayApp {
    /// The application for `proxy`; `options` are the listener's (`h2c`), `conf` pingora's
    /// server configuration (the upstream pool's size, `ca_file`).
    pub fn new(
        proxy: GatewayProxy,
        settings: &Settings,
        conf: &Arc<ServerConf>,
        options: HttpServerOptions,
    ) -> Self {
        GatewayApp {
            inner: Arc::new(Loop::new(proxy, settings, conf, options)),
        }
    }

    /// Whether the connection speaks HTTP/2: ALPN `h2`, or (without TLS, `h2c` on) the
    /// preface first. `None`: the connection broke while its first bytes were awaited.
    async fn is_h2(&self, stream: &mut Stream) -> Option<bool> {
        if stream.get_ssl_digest().is_some() {
            return Some(matches!(stream.selected_alpn_proto(), Some(ALPN::H2)));
        }
        if !self.inner.options.h2c {
            return Some(false);
        }
        let mut first = [0u8; 24];
        match stream.try_peek(&mut first).await {
            Ok(peeked) => Some(peeked && &first == H2_PREFACE),
            Err(e) => {
                tracing::debug!(error = %e, "connection closed before its first bytes");
                None
            }
        }
    }
}

#[async_trait]
impl ServerApp for GatewayApp {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if self.is_h2(&mut stream).await? {
            // pingora-core's HTTP/2 server: each stream to `Loop::process_new_http`.
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }
        self.inner.serve_connection(stream, shutdown).await;
        None
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}

impl Loop {
    fn new(
        proxy: GatewayProxy,
        settings: &Settings,
        conf: &Arc<ServerConf>,
        options: HttpServerOptions,
    ) -> Self {
        Loop {
            proxy,
            upstreams: Upstreams::new(
                Some(ConnectorOptions::from_server_conf(conf)),
                conf.upstream_keepalive_pool_size,
            ),
            main_peer: settings.upstream.as_ref().map(crate::server::upstream_peer),
            peers: settings
                .upstreams
                .iter()
                .map(|(_, upstream)| crate::server::upstream_peer(upstream))
                .collect(),
            options,
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        }
    }

    /// Every request of a client's HTTP/1.x connection, until it closes or cannot serve
    /// another; a request refused before it is served (malformed: `400`, too large: `431`, an
    /// unknown transfer coding: `501`) is answered and the connection closed.
    async fn serve_connection(&self, stream: Stream, shutdown: &ShutdownWatch) {
        let mut conn = Connection::new(stream);
        loop {
            let next = tokio::select! {
                biased;
                next = conn.next_request() => next,
                () = self.stopped() => return,
            };
            let request = match next {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(e) => {
                    let status = match e.etype() {
                        ErrorType::InvalidHTTPHeader => Some(400),
                        ErrorType::HTTPStatus(status) => Some(*status),
                        _ => None,
                    };
                    tracing::debug!(error = %e, "request refused or connection broken");
                    if let Some(status) = status {
                        conn.refuse(status).await;
                    }
                    conn.shutdown().await;
                    return;
                }
            };
            let session = Downstream::H1(Inbound::new(conn, request));
            match self.serve_one(session, shutdown).await {
                Some(kept) => conn = kept,
                None => return,
            }
        }
    }

    /// Resolves when the service stops.
    async fn stopped(&self) {
        let notified = self.stop.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// One HTTP/2 stream (pingora-core reads its header).
    async fn serve_stream(&self, mut session: ServerSession, shutdown: &ShutdownWatch) {
        let read = tokio::select! {
            biased;
            read = session.read_request() => read,
            () = self.stopped() => return,
        };
        match read {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                if e.etype() == &ErrorType::InvalidHTTPHeader {
                    tracing::debug!(error = %e, "malformed request");
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                return;
            }
        }
        self.serve_one(Downstream::H2(Box::new(session)), shutdown)
            .await;
    }

    /// One request, its header read; the HTTP/1.x connection back when it can serve another.
    async fn serve_one(
        &self,
        mut session: Downstream,
        shutdown: &ShutdownWatch,
    ) -> Option<Connection> {
        if session.req_header().method == Method::CONNECT {
            session.refuse(405).await;
            session.shutdown().await;
            return None;
        }
        if *shutdown.borrow() {
            session.set_keepalive_off();
        }
        let mut ctx = self.proxy.new_request();
        let served = self.serve(&mut session, &mut ctx).await;
        if let Err(e) = &served {
            self.proxy.fail(&mut session, e, &mut ctx).await;
        }
        self.proxy.record(&session, &ctx);
        if served.is_err() {
            session.shutdown().await;
            return None;
        }
        match session {
            Downstream::H1(inbound) => inbound.finish().await,
            Downstream::H2(session) => {
                if let Err(e) = session.finish().await {
                    tracing::debug!(error = %e, "stream not ended cleanly");
                }
                None
            }
        }
    }

    /// Answers the request: guichet's reply, or the application's through [`exchange`].
    async fn serve(&self, session: &mut Downstream, ctx: &mut RequestContext) -> Result<()> {
        let peer_ip = session.peer_ip();
        if let Some(reply) = self.proxy.admit(session.req_header(), peer_ip, ctx).await {
            return write_reply(session, reply).await;
        }
        let peer = self.peer(ctx)?;
        // A body (or an upgrade's bytes) and the response move at once: see `http::duplex`.
        let duplex = !session.is_body_empty() || session.is_upgrade_req();
        let mut fresh = false;
        loop {
            let request = self.upstream_request(session, peer_ip, ctx)?;
            let connection = self.upstreams.connect(peer, fresh, duplex).await?;
            let (mut upstream, reused) = (connection.session, connection.reused);
            let exchanged = exchange(
                &self.proxy,
                session,
                &mut upstream,
                connection.drain,
                request,
                ctx,
            )
            .await;
            match exchanged {
                Ok(true) => {
                    self.upstreams.release(upstream, peer);
                    return Ok(());
                }
                Ok(false) => return Ok(()),
                Err(e) if reused && !fresh && may_send_again(session, &e) => {
                    tracing::debug!(error = %e, "pooled connection closed by the application: sending again on a new one");
                    fresh = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The peer of the request's route.
    fn peer(&self, ctx: &RequestContext) -> Result<&HttpPeer> {
        let peer = match ctx.upstream {
            Some(index) => self.peers.get(index),
            None => self.main_peer.as_ref(),
        };
        peer.ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream for the route"))
    }

    /// The request as the application receives it.
    fn upstream_request(
        &self,
        session: &mut Downstream,
        peer_ip: Option<IpAddr>,
        ctx: &RequestContext,
    ) -> Result<Box<RequestHeader>> {
        let has_body = !session.is_body_empty();
        let original = session.req_header();
        let chunked = original.headers.contains_key(header::TRANSFER_ENCODING);
        let websocket = original.version == Version::HTTP_11
            && original
                .headers
                .get(header::UPGRADE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        // A copy: pingora still reads the client's header (its body's framing, `Connection`).
        let mut request = UpstreamParts::copy_of(original);
        strip_hop_by_hop(&mut request.parts.headers).map_err(|e| e.into_down())?;
        prepare_upstream(
            self.proxy.gateway(),
            self.proxy.forwarded(),
            &mut request,
            peer_ip,
            &ctx.correlation_id,
            ctx.session.as_deref(),
            self.proxy.upstream(ctx)?.pass_host,
        )?;
        let parts = &mut request.parts;
        parts.version = Version::HTTP_11;
        if websocket {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts
                .headers
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        if has_body && (chunked || !parts.headers.contains_key(header::CONTENT_LENGTH)) {
            // The client's framing is gone with the hop-by-hop headers: a chunked body (or one
            // whose length is not said) goes chunked, and never with a length beside it.
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        let mut request = Box::new(request.into_header()?);
        to_origin_form(&mut request)?;
        Ok(request)
    }
}

/// Whether a request that failed on a pooled connection may be sent again: the connection
/// broke before any response byte, no byte of the request's body was taken from the client,
/// and the method is idempotent (the application may have acted on the first one).
fn may_send_again(session: &Downstream, e: &Error) -> bool {
    let broken = matches!(
        e.etype(),
        ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
    ) && e.esource() == &pingora::ErrorSource::Upstream;
    let idempotent = matches!(
        session.req_header().method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    broken && idempotent && session.response_status().is_none() && session.body_bytes_read() == 0
}

/// Sends `request` on `upstream` and the response back to the client, both bodies streamed
/// at once. `drain`: the connection's, when it is duplex (a request with a body, or an
/// upgrade): the request bytes its writes kept are sent beside the response's reading, and
/// no more of the client's body is read while over [`MAX_PENDING`] wait. `Ok(true)`: the
/// upstream connection can be reused.
async fn exchange(
    proxy: &GatewayProxy,
    session: &mut Downstream,
    upstream: &mut ClientSession,
    drain: Option<Drain>,
    request: Box<RequestHeader>,
    ctx: &mut RequestContext,
) -> Result<bool> {
    upstream
        .write_request_header(&request)
        .await
        .map_err(|e| e.into_up())?;
    ctx.upstream_sent = Some(Instant::now());
    // What the application has not taken of the body waits at most this long (the read time-out
    // when no write time-out is set): an application that answered and stopped reading does not
    // hold the exchange open.
    let write_timeout = upstream.write_timeout.or(upstream.read_timeout);
    let mut request_done = session.is_body_done();
    let mut response_done = false;
    let mut upgraded = false;
    // A request body the application stopped taking (it may have answered early): the rest is
    // neither read nor sent, and the connection is not reused.
    let mut reusable = true;
    let mut abandoned = false;
    loop {
        let (drained, pending) = drain.as_ref().map_or((true, 0), Drain::state);
        let sending = !drained;
        let ended = if upgraded {
            // Either side closing ends an upgraded connection; the client's last bytes go first.
            response_done || (request_done && !sending)
        } else {
            request_done && response_done && !sending
        };
        if ended {
            break;
        }
        let room = pending <= MAX_PENDING;
        tokio::select! {
            biased;
            task = upstream.read_response_task(), if !response_done => {
                let task = task.map_err(|e| e.into_up())?;
                response_done = respond(proxy, session, task, ctx).await?;
                if !upgraded && session.was_upgraded() {
                    // After a 101 the client's bytes go to the application until either closes.
                    upgraded = true;
                    request_done = false;
                }
            }
            sent = async {
                match &drain {
                    Some(drain) => drain.drained(write_timeout).await,
                    None => Ok(()),
                }
            }, if sending => {
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "the application stopped reading the request body");
                    reusable = false;
                    request_done = true;
                    abandoned = true;
                }
            }
            body = session.read_body_or_idle(request_done), if room && !abandoned && !(upgraded && request_done) => {
                let body = body.map_err(|e| e.into_down())?;
                if upgraded {
                    upstream.maybe_upgrade_body_writer();
                }
                let end = match &body {
                    Some(_) => !upgraded && session.is_body_done(),
                    None => true,
                };
                // An empty piece (a read that ended inside a chunk's framing) is not written:
                // an empty chunk would end a chunked body.
                if let Some(data) = body.filter(|d| !d.is_empty()) {
                    if let Err(e) = upstream.write_body(&data).await {
                        tracing::debug!(error = %e, "the application stopped reading the request body");
                        reusable = false;
                        request_done = true;
                        abandoned = true;
                        continue;
                    }
                }
                if end {
                    if let Err(e) = upstream.finish_body().await {
                        tracing::debug!(error = %e, "cannot end the request body");
                        reusable = false;
                    }
                    request_done = true;
                }
            }
        }
    }
    Ok(reusable && !upgraded)
}

/// Writes one piece of the application's response to the client; `true` at its end.
async fn respond(
    proxy: &GatewayProxy,
    session: &mut Downstream,
    task: HttpTask,
    ctx: &mut RequestContext,
) -> Result<bool> {
    let end = match task {
        HttpTask::Header(mut header, end) => {
            // A 101 reaches here only for a request that asked for an upgrade (the client
            // session refuses any other, `http::client`): it is the final header.
            if header.status.is_informational()
                && header.status != http::StatusCode::SWITCHING_PROTOCOLS
            {
                // HTTP/1.0 has no interim responses: its clients get the final one only.
                if session.req_header().version != Version::HTTP_11 {
                    return Ok(false);
                }
                // 100 Continue and the like: passed on, the final header follows. A final
                // response that starts before the request's body has ended closes the
                // connection (rather than drain the rest); an interim one does not:
                // `100 Continue` is what asks for the body.
                session
                    .write_response_header(header)
                    .await
                    .map_err(|e| e.into_down())?;
                return Ok(false);
            }
            proxy.upstream_answered(ctx);
            frame_response(session.req_header(), &mut header, end)?;
            session
                .write_response_header(header)
                .await
                .map_err(|e| e.into_down())?;
            end
        }
        HttpTask::Body(data, end) | HttpTask::UpgradedBody(data, end) => {
            if let Some(data) = data.filter(|d| !d.is_empty()) {
                session
                    .write_response_body(data, false)
                    .await
                    .map_err(|e| e.into_down())?;
            }
            end
        }
        HttpTask::Trailer(_) | HttpTask::Done => true,
        HttpTask::Failed(e) => return Err(e.into_up()),
    };
    if end {
        session.finish_body().await.map_err(|e| e.into_down())?;
    }
    Ok(end)
}

/// A response whose length the application does not say (it ends when the application closes)
/// goes to an HTTP/1.1 client chunked, so that the client's connection stays usable; an
/// HTTP/1.0 client, which does not know chunks, reads it to the connection's end.
fn frame_response(request: &RequestHeader, header: &mut ResponseHeader, end: bool) -> Result<()> {
    let no_body = request.method == Method::HEAD
        || matches!(header.status.as_u16(), 101 | 204 | 304)
        || end
        || request.version != Version::HTTP_11;
    if !no_body
        && !header.headers.contains_key(header::TRANSFER_ENCODING)
        && !header.headers.contains_key(header::CONTENT_LENGTH)
    {
        header.set_version(Version::HTTP_11);
        header.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}

/// Headers that describe one connection, not the request (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

/// At most this many names in the client's `Connection` headers.
const CONNECTION_NAMES: usize = 16;

/// Removes the hop-by-hop headers and those the client's `Connection` header names. A
/// `Connection` header naming `Host` or a forwarding header (which would have them removed
/// after guichet set them, or before a front proxy's are read), a name that is not a token, or
/// more than [`CONNECTION_NAMES`] names: the request is refused.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) -> Result<()> {
    let mut named: Vec<HeaderName> = Vec::new();
    for token in list_items(headers, header::CONNECTION).filter(|t| !t.is_empty()) {
        if named.len() == CONNECTION_NAMES {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "too many names in the Connection header",
            ));
        }
        let name = HeaderName::from_bytes(token)
            .ok()
            .filter(|_| token.iter().all(|b| is_token_byte(*b)))
            .ok_or_else(|| {
                Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "the Connection header names something that is not a header",
                )
            })?;
        if name == header::HOST || name.as_str().starts_with("x-forwarded-") {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "the Connection header names Host or a forwarding header",
            ));
        }
        named.push(name);
    }
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    Ok(())
}

/// A byte of an HTTP token (RFC 9110 §5.6.2).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The request target in origin form (`/path?query`): a client's absolute form
/// (`http://host/path`) names a host the application must not take from it (guichet sets
/// `Host`). `*` (`OPTIONS *`) is kept.
pub(crate) fn to_origin_form(request: &mut RequestHeader) -> Result<()> {
    let raw = request.raw_path();
    if raw.first() == Some(&b'/') || raw == b"*" {
        return Ok(());
    }
    let origin = match raw.windows(3).position(|w| w == b"://") {
        Some(scheme_end) => {
            let rest = &raw[scheme_end + 3..];
            match rest.iter().position(|b| *b == b'/' || *b == b'?') {
                Some(start) if rest[start] == b'/' => rest[start..].to_vec(),
                Some(start) => [b"/".as_slice(), &rest[start..]].concat(),
                None => b"/".to_vec(),
            }
        }
        None => {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "request target neither a path nor an absolute URL",
            )
            .into_down())
        }
    };
    request.set_raw_path(&origin)
}

/// pingora-core's side: the streams of an HTTP/2 connection.
#[async_trait]
impl HttpServerApp for Loop {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        self.serve_stream(session, shutdown).await;
        None
    }

    async fn http_cleanup(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }
}

#[cfg(test)]
mod tests;
