//! guichet's HTTP/1.x server session on a client's connection: the request header read and
//! checked, its body read as its framing says, the response written and framed, the connection
//! kept for the next request when the exchange left it clean.
//!
//! pingora-core's server session, which guichet's loop used before, spent more instructions per
//! request than nginx spends on the whole request (`benches/instructions.sh`): a new session
//! per request (its state and a digest allocated), a 256-entry header array initialised per
//! read, each header name copied into a case map, the `Date` and `Connection` values made and
//! the response header serialised into a new buffer per response. Here a [`Connection`] lives
//! as long as the client's connection, its read buffer kept from one request to the next; the
//! header section is found first, taken out of that buffer whole and parsed once into
//! uninitialised slots, each value a slice of it.
//!
//! Everything the client sends is checked before it is believed (RFC 9112):
//! - the header section: at most [`MAX_REQUEST_HEAD`] bytes (else `431`) and
//!   [`MAX_HEADERS`] fields (else `431`), all of it within [`READ_TIMEOUT`] of its first
//!   byte; names and values as `http` accepts them, no obsolete line folding (else `400`);
//! - the authority: one `Host` (required in HTTP/1.1), no userinfo, an absolute-form target's
//!   authority the same as `Host` (pingora's `validate_request_authority`);
//! - the body's framing: `Transfer-Encoding` exactly `chunked` (another coding: `501`), never in
//!   HTTP/1.0 and never beside `Content-Length` (`400`: a request two proxies could frame
//!   differently is not guessed at); every `Content-Length` value (repeated fields, comma
//!   lists) the same number of at most 19 digits (else `400`);
//! - a chunked body: as `http::client` checks the application's (`chunk_step`);
//! - a body that ends before its framing says: an error, never a shorter body passed on as
//!   whole.
//!
//! The connection serves another request only when the request said so (HTTP/1.1 without
//! `Connection: close`, HTTP/1.0 with `Connection: keep-alive`), its body was read to the end
//! before the response began, the response was framed (a length or chunks) and written whole,
//! and no upgrade took it. Bytes the client sent after its request (pipelining) stay in the
//! buffer for the next one. A connection waits at most [`IDLE_TIMEOUT`] for its next request.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header;
use http::{Method, StatusCode, Version};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::authority::validate_request_authority;
use pingora::protocols::http::date::get_cached_date;
use pingora::protocols::Stream;
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::http::client::{
    chunk_size_line, chunk_step, head_end, header_map, list_items, parse_length, write_gathered,
    Chunk, ChunkStep, MAX_HEADERS,
};

/// The largest request header section read.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// How long a connection waits for the first byte of its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request's header section may take to arrive whole once its first byte came, and
/// how long each read of its body may wait.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The read buffer's first size, and the room made before each read when less is left.
const READ_ROOM: usize = 4096;

/// A client's HTTP/1.x connection between requests.
pub struct Connection {
    stream: Stream,
    /// Bytes read and not yet used: the start of the next request, when the client pipelines.
    buf: BytesMut,
    /// Where the search for the end of the header section resumes.
    scanned: usize,
    /// The response header is serialised here (kept from one response to the next).
    out: Vec<u8>,
    peer: Option<IpAddr>,
}

/// A request read from a [`Connection`], its body not yet.
pub struct Request {
    header: Box<RequestHeader>,
    body: Body,
    keepalive: bool,
}

/// How the request's body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// No body, or all of it read.
    Done,
    /// This many bytes still to read.
    Length(u64),
    Chunked(Chunk),
    /// After a `101`: bytes as they come, until the client closes.
    Upgraded,
}

/// How the response's body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// No final response header yet.
    Head,
    /// This many bytes still to write (more are dropped).
    Length(u64),
    Chunked,
    /// Until the connection closes (a response without length to an HTTP/1.0 client, or an
    /// upgrade).
    Close,
    /// Written to its end.
    Done,
}

/// One request on a client's HTTP/1.x connection, from its header to its response's end.
pub struct Inbound {
    conn: Connection,
    request: Box<RequestHeader>,
    body: Body,
    had_body: bool,
    keepalive: bool,
    out: Out,
    /// The final response's status, once written.
    status: Option<StatusCode>,
    upgraded: bool,
    /// The client closed its side.
    eof: bool,
    /// Bytes of the next request arrived while this one was answered: no more reads.
    stashed: bool,
    body_bytes_read: usize,
    body_bytes_sent: usize,
}

fn invalid(what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InvalidHTTPHeader, what).into_down()
}

fn refused(status: u16, what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(status), what).into_down()
}

impl Connection {
    pub fn new(stream: Stream) -> Self {
        let peer = stream
            .get_socket_digest()
            .and_then(|digest| digest.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        Connection {
            stream,
            buf: BytesMut::new(),
            scanned: 0,
            out: Vec::new(),
            peer,
        }
    }

    /// The next request's header: `Ok(None)` when the client closed the connection, or left it
    /// idle past [`IDLE_TIMEOUT`], before its first byte. An error of type
    /// `InvalidHTTPHeader` (answer `400`) or `HTTPStatus` (answer that status) for a request
    /// refused; another for a connection that broke.
    pub async fn next_request(&mut self) -> Result<Option<Request>> {
        let mut deadline = None;
        loop {
            if !self.buf.is_empty() {
                deadline.get_or_insert_with(|| Instant::now() + READ_TIMEOUT);
                if let Some(end) = head_end(&self.buf, self.scanned.saturating_sub(2)) {
                    self.scanned = 0;
                    if end > MAX_REQUEST_HEAD {
                        return Err(refused(431, "request header larger than 64 KiB"));
                    }
                    let raw = self.buf.split_to(end).freeze();
                    return parse_request(&raw).map(Some);
                }
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_REQUEST_HEAD {
                    return Err(refused(431, "request header larger than 64 KiB"));
                }
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(READ_ROOM);
            }
            let started = self.buf.is_empty();
            let read = self.stream.read_buf(&mut self.buf);
            let read = match deadline {
                None => tokio::time::timeout(IDLE_TIMEOUT, read).await,
                Some(deadline) => tokio::time::timeout_at(deadline, read).await,
            };
            match read {
                Err(_) if started => return Ok(None),
                Err(_) => {
                    return Err(Error::explain(
                        ErrorType::ReadTimedout,
                        "the request header took too long to arrive",
                    )
                    .into_down())
                }
                Ok(Ok(0)) | Ok(Err(_)) if started => return Ok(None),
                Ok(Ok(0)) => {
                    return Err(Error::explain(
                        ErrorType::ConnectionClosed,
                        "the client closed the connection inside the request header",
                    )
                    .into_down())
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Error::because(
                        ErrorType::ReadError,
                        "while reading the request header",
                        e,
                    )
                    .into_down())
                }
            }
        }
    }

    /// Answers a request refused before it was served (`status`, no body) and closes.
    pub async fn refuse(&mut self, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        self.out.clear();
        status_line(&mut self.out, status, None);
        self.out.put_slice(b"Date: ");
        self.out.put_slice(get_cached_date().as_bytes());
        self.out.put_slice(
            b"\r\nContent-Length: 0\r\nCache-Control: private, no-store\r\nConnection: close\r\n\r\n",
        );
        let _ = self.stream.write_all(&self.out).await;
        let _ = self.stream.flush().await;
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// `HTTP/1.1 <status> <reason>` and CRLF into `out`.
fn status_line(out: &mut Vec<u8>, status: StatusCode, reason: Option<&str>) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(
        reason
            .or(status.canonical_reason())
            .unwrap_or("")
            .as_bytes(),
    );
    out.put_slice(b"\r\n");
}

/// The request in `raw` (its whole header section), checked as the module says.
fn parse_request(raw: &Bytes) -> Result<Request> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        raw,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) if len == raw.len() => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refused(431, "more than 256 request header fields"))
        }
        _ => return Err(invalid("malformed request header")),
    }
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Err(invalid("malformed request line"));
    };
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method =
        Method::from_bytes(method.as_bytes()).map_err(|_| invalid("invalid request method"))?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    parts.version = version;
    parts.headers = header_map(raw, parsed.headers).map_err(|name| {
        invalid(if name {
            "invalid request header name"
        } else {
            "invalid request header value"
        })
    })?;
    // The target parsed as pingora parses it (kept as sent when it is not in origin form).
    let mut header = RequestHeader::from(parts);
    header
        .set_raw_path(target.as_bytes())
        .map_err(|e| e.into_down())?;
    if version == Version::HTTP_11 && !header.headers.contains_key(header::HOST) {
        return Err(invalid("HTTP/1.1 request without Host"));
    }
    validate_request_authority(&header).map_err(|e| e.into_down())?;
    let body = request_framing(&mut header)?;
    let connection = |token: &[u8]| {
        list_items(&header.headers, header::CONNECTION).any(|t| t.eq_ignore_ascii_case(token))
    };
    let keepalive = match version {
        Version::HTTP_11 => !connection(b"close"),
        _ => connection(b"keep-alive") && !connection(b"close"),
    };
    Ok(Request {
        header: Box::new(header),
        body,
        keepalive,
    })
}

/// How the request's body is framed (RFC 9112 §6), `Content-Length` collapsed to one value.
fn request_framing(request: &mut RequestHeader) -> Result<Body> {
    if request.headers.contains_key(header::TRANSFER_ENCODING) {
        if request.version != Version::HTTP_11 {
            return Err(invalid("Transfer-Encoding in an HTTP/1.0 request"));
        }
        let mut codings = list_items(&request.headers, header::TRANSFER_ENCODING)
            .filter(|c| !c.is_empty())
            .peekable();
        let chunked = codings
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
            && codings.peek().is_none();
        if !chunked {
            return Err(refused(501, "request transfer coding other than chunked"));
        }
        if request.headers.contains_key(header::CONTENT_LENGTH) {
            return Err(invalid(
                "request with both Content-Length and Transfer-Encoding",
            ));
        }
        return Ok(Body::Chunked(Chunk::Size));
    }
    let mut length = None;
    let mut values = 0;
    for token in list_items(&request.headers, header::CONTENT_LENGTH) {
        values += 1;
        let token = parse_length(token).ok_or_else(|| invalid("invalid Content-Length"))?;
        if length.is_some_and(|l| l != token) {
            return Err(invalid("conflicting Content-Length values"));
        }
        length = Some(token);
    }
    if values > 1 {
        if let Some(length) = length {
            request
                .insert_header(header::CONTENT_LENGTH, length)
                .map_err(|e| e.into_down())?;
        }
    }
    Ok(match length {
        None | Some(0) => Body::Done,
        Some(n) => Body::Length(n),
    })
}

impl Inbound {
    pub fn new(conn: Connection, request: Request) -> Self {
        Inbound {
            conn,
            had_body: request.body != Body::Done,
            request: request.header,
            body: request.body,
            keepalive: request.keepalive,
            out: Out::Head,
            status: None,
            upgraded: false,
            eof: false,
            stashed: false,
            body_bytes_read: 0,
            body_bytes_sent: 0,
        }
    }

    pub fn req_header(&self) -> &RequestHeader {
        &self.request
    }

    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.conn.peer
    }

    /// An HTTP/1.1 request asking for an upgrade (`Upgrade`).
    pub fn is_upgrade_req(&self) -> bool {
        self.request.version == Version::HTTP_11
            && self.request.headers.contains_key(header::UPGRADE)
    }

    /// The request has no body.
    pub fn is_body_empty(&self) -> bool {
        !self.had_body
    }

    /// No (more) body to read.
    pub fn is_body_done(&self) -> bool {
        self.body == Body::Done
    }

    pub fn was_upgraded(&self) -> bool {
        self.upgraded
    }

    /// The final response's status, once its header is written.
    pub fn response_status(&self) -> Option<StatusCode> {
        self.status
    }

    pub fn body_bytes_read(&self) -> usize {
        self.body_bytes_read
    }

    pub fn body_bytes_sent(&self) -> usize {
        self.body_bytes_sent
    }

    /// The connection closes after this request.
    pub fn set_keepalive_off(&mut self) {
        self.keepalive = false;
    }

    /// Reads more from the client (`timeout` per read); `false` at the end of its stream.
    async fn fill(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let conn = &mut self.conn;
        if conn.buf.capacity() - conn.buf.len() < 1024 {
            conn.buf.reserve(16 * 1024);
        }
        let read = conn.stream.read_buf(&mut conn.buf);
        let read = match timeout {
            Some(limit) => tokio::time::timeout(limit, read).await.map_err(|_| {
                Error::explain(ErrorType::ReadTimedout, "while reading the request body")
                    .into_down()
            })?,
            None => read.await,
        };
        match read {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => {
                Err(
                    Error::because(ErrorType::ReadError, "while reading the request body", e)
                        .into_down(),
                )
            }
        }
    }

    fn closed_early() -> Box<Error> {
        Error::explain(
            ErrorType::ConnectionClosed,
            "the client closed the connection before the end of the request body",
        )
        .into_down()
    }

    /// The next piece of the request's body (`None` at its end); with `done` (the body read
    /// to its end), waits until the client closes the connection (an error) — bytes it sends
    /// meanwhile are kept for its next request.
    pub async fn read_body_or_idle(&mut self, done: bool) -> Result<Option<Bytes>> {
        if done {
            return self.idle().await;
        }
        loop {
            let buf = &mut self.conn.buf;
            match self.body {
                Body::Done => return Ok(None),
                Body::Length(left) => {
                    if !buf.is_empty() {
                        let len = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                        let data = buf.split_to(len).freeze();
                        let left = left - len as u64;
                        self.body = if left == 0 {
                            Body::Done
                        } else {
                            Body::Length(left)
                        };
                        self.body_bytes_read += len;
                        return Ok(Some(data));
                    }
                }
                Body::Chunked(chunk) => {
                    let (next, step) = chunk_step(buf, chunk).map_err(|e| e.into_down())?;
                    self.body = next.map_or(Body::Done, Body::Chunked);
                    match step {
                        ChunkStep::Data(data) => {
                            self.body_bytes_read += data.len();
                            return Ok(Some(data));
                        }
                        ChunkStep::End => return Ok(None),
                        ChunkStep::Again => continue,
                        ChunkStep::More => {}
                    }
                }
                Body::Upgraded => {
                    if !buf.is_empty() {
                        let data = buf.split().freeze();
                        self.body_bytes_read += data.len();
                        return Ok(Some(data));
                    }
                    if self.eof {
                        self.body = Body::Done;
                        return Ok(None);
                    }
                    // An upgraded connection may stay quiet for long: no time-out here (the
                    // application's side has its own).
                    self.fill(None).await?;
                    continue;
                }
            }
            if self.eof || !self.fill(Some(READ_TIMEOUT)).await? {
                return Err(Self::closed_early());
            }
        }
    }

    /// Waits for the client to close the connection while its request is answered.
    async fn idle(&mut self) -> Result<Option<Bytes>> {
        if self.stashed || self.eof || !self.conn.buf.is_empty() {
            return std::future::pending().await;
        }
        if self.fill(None).await? {
            // The next request's first bytes: kept, not read further until this one ends.
            self.stashed = true;
            return std::future::pending().await;
        }
        Err(Error::explain(
            ErrorType::ConnectionClosed,
            "the client closed the connection",
        )
        .into_down())
    }

    /// Writes a response header: an interim one (`1xx` but `101`, to HTTP/1.1 clients only),
    /// then the final one, which sets the body's framing and whether the connection stays.
    /// Headers after the final one are ignored.
    pub async fn write_response_header(&mut self, mut header: Box<ResponseHeader>) -> Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let status = header.status;
        let interim = status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS;
        if interim {
            if self.request.version != Version::HTTP_11 {
                return Ok(());
            }
        } else if status == StatusCode::SWITCHING_PROTOCOLS {
            if !self.is_upgrade_req() {
                return Err(Error::explain(
                    ErrorType::InternalError,
                    "101 Switching Protocols for a request without upgrade",
                ));
            }
            self.upgraded = true;
            self.keepalive = false;
            self.body = Body::Upgraded;
            self.out = Out::Close;
        } else {
            self.out = self.response_framing(&header);
            if self.out == Out::Chunked && self.request.version != Version::HTTP_11 {
                // An HTTP/1.0 client knows no chunks: the body runs to the connection's end.
                header.remove_header(&header::TRANSFER_ENCODING);
                self.out = Out::Close;
            }
            if self.out == Out::Close || self.body != Body::Done {
                // A body not read to its end: the connection cannot be read from again.
                self.keepalive = false;
            }
            // This connection's, not the application's.
            header.remove_header(&header::CONNECTION);
        }
        let conn = &mut self.conn;
        conn.out.clear();
        status_line(&mut conn.out, status, header.get_reason_phrase());
        header.header_to_h1_wire(&mut conn.out);
        if !interim && status != StatusCode::SWITCHING_PROTOCOLS {
            if !header.headers.contains_key(header::DATE) {
                conn.out.put_slice(b"Date: ");
                conn.out.put_slice(get_cached_date().as_bytes());
                conn.out.put_slice(b"\r\n");
            }
            conn.out.put_slice(if self.keepalive {
                b"Connection: keep-alive\r\n".as_slice()
            } else {
                b"Connection: close\r\n".as_slice()
            });
        }
        conn.out.put_slice(b"\r\n");
        conn.stream
            .write_all(&conn.out)
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "writing the response header", e))?;
        if !interim {
            self.status = Some(status);
        }
        // A body follows by length: it goes out with the header.
        if !matches!(self.out, Out::Length(n) if n > 0) || interim {
            self.flush().await?;
        }
        Ok(())
    }

    /// How the final response's body is written: none for `HEAD`, `204`, `304`; chunks or a
    /// length as its header says; else until the connection closes.
    fn response_framing(&self, header: &ResponseHeader) -> Out {
        if self.request.method == Method::HEAD
            || matches!(
                header.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            )
        {
            return Out::Length(0);
        }
        if list_items(&header.headers, header::TRANSFER_ENCODING)
            .any(|c| c.eq_ignore_ascii_case(b"chunked"))
        {
            return Out::Chunked;
        }
        match header
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| parse_length(v.as_bytes()))
        {
            Some(n) => Out::Length(n),
            None => Out::Close,
        }
    }

    async fn flush(&mut self) -> Result<()> {
        self.conn.stream.flush().await.map_err(|e| {
            Error::because(ErrorType::WriteError, "writing the response", e).into_down()
        })
    }

    /// Writes a piece of the response's body (framed as its header said; bytes past its length
    /// dropped); `end` ends it.
    pub async fn write_response_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        let written = match self.out {
            Out::Length(left) => {
                let len = usize::try_from(left).map_or(data.len(), |l| l.min(data.len()));
                self.out = Out::Length(left - len as u64);
                self.conn.stream.write_all(&data[..len]).await.map(|()| len)
            }
            Out::Chunked if !data.is_empty() => {
                let mut size = [0; 18];
                let mut parts = [
                    IoSlice::new(chunk_size_line(data.len(), &mut size)),
                    IoSlice::new(&data),
                    IoSlice::new(b"\r\n"),
                ];
                write_gathered(&mut self.conn.stream, &mut parts)
                    .await
                    .map(|()| data.len())
            }
            Out::Close => self.conn.stream.write_all(&data).await.map(|()| data.len()),
            Out::Chunked | Out::Head | Out::Done => Ok(0),
        };
        let written = written
            .map_err(|e| Error::because(ErrorType::WriteError, "writing the response body", e))?;
        self.body_bytes_sent += written;
        if end {
            self.finish_body().await
        } else {
            self.flush().await
        }
    }

    /// Ends the response's body: the last chunk, or the connection not kept when fewer bytes
    /// than its length were written.
    pub async fn finish_body(&mut self) -> Result<()> {
        match self.out {
            Out::Chunked => {
                self.conn
                    .stream
                    .write_all(b"0\r\n\r\n")
                    .await
                    .map_err(|e| {
                        Error::because(ErrorType::WriteError, "ending the response body", e)
                    })?;
            }
            Out::Length(left) if left > 0 => self.keepalive = false,
            Out::Close | Out::Head => self.keepalive = false,
            Out::Length(_) | Out::Done => {}
        }
        if self.out != Out::Done {
            self.out = Out::Done;
            self.flush().await?;
        }
        Ok(())
    }

    /// Answers with `status` and no body, and closes.
    pub async fn refuse(&mut self, status: u16) {
        self.conn.refuse(status).await;
        self.keepalive = false;
    }

    pub async fn shutdown(&mut self) {
        self.conn.shutdown().await;
    }

    /// The connection, when it can serve another request: the response ended (its end written
    /// now if it was not), the request's body read, keep-alive on, no upgrade.
    pub async fn finish(mut self) -> Option<Connection> {
        if self.out != Out::Done && self.finish_body().await.is_err() {
            return None;
        }
        let clean = self.keepalive && self.body == Body::Done && !self.upgraded && !self.eof;
        clean.then_some(self.conn)
    }
}

#[cfg(test)]
mod tests;
