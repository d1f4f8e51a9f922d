//! guichet's HTTP/1.1 client session on one upstream connection: the request's header and body
//! written, the application's response read back as [`HttpTask`]s (interim responses, the
//! header, the body's pieces), the connection handed back for reuse when the exchange left it
//! clean.
//!
//! pingora-core's own client session spent a third of the smallest proxy loop's instructions on
//! reading a response header (`benches/instructions.sh`): a 256-entry header array initialised
//! per read, the application's header-name case recorded in a second map (each name copied into
//! an allocation of its own), `Content-Length` parsed again at each of four checks, and the
//! header cloned once more to be handed over. Here the header section is found first, taken
//! out of the read buffer whole, and parsed once into uninitialised slots; each value is a slice
//! of that section (a reference count, no copy), each name a `HeaderName` (the standard ones
//! without allocating), and the header is handed over, not cloned. Names reach the client in
//! their standard case (`Content-Type`), or in lower case for the others, as over HTTP/2.
//!
//! Everything the application sends is checked before it is believed (RFC 9112):
//! - the header section: at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] fields, lines ended by
//!   CRLF or LF, no obsolete line folding, names and values as `http` accepts them;
//! - the body's framing: `Transfer-Encoding` must be exactly `chunked` (any other coding is
//!   refused rather than guessed at), and beside it `Content-Length` is dropped and the
//!   connection not reused; every `Content-Length` value (repeated fields, comma lists) must be
//!   the same number, passed on once; neither: the body ends when the application closes;
//! - chunks: a size of 1 to 15 hexadecimal digits, then optional extensions of visible bytes,
//!   each line at most [`MAX_CHUNK_LINE`] bytes and ended by CRLF, each chunk's data followed by
//!   CRLF, trailers (dropped) at most [`MAX_HEAD`] bytes;
//! - a response that ends before its framing says: an error, never a shorter body passed on as
//!   whole;
//! - `101 Switching Protocols` only for a request that asked for an upgrade.
//!
//! Reading is safe to cancel between reads (the loop in `http::h1` selects it beside the
//! request body): every byte read stays in the session until parsed.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::HttpTask;
use pingora::protocols::Stream;
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest response header section (and the largest trailer section) read.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in a response.
pub const MAX_HEADERS: usize = 256;
/// The longest chunk-size line (size and extensions).
pub const MAX_CHUNK_LINE: usize = 4096;
/// The most interim (`1xx`) responses before the final one: each is passed on to the client,
/// so an application sending them without end would hold the exchange until its read time-out.
pub const MAX_INTERIM: usize = 32;
/// Room made in the read buffer before each read.
const READ_ROOM: usize = 16 * 1024;

/// How the request's body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outgoing {
    /// No body (or all of it written, and ended).
    Done,
    /// This many bytes still to write.
    Length(u64),
    Chunked,
    /// After a `101`: bytes as they come.
    Raw,
}

/// Where the response's reading stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Incoming {
    /// A header (interim or final) is next.
    Head,
    /// This many body bytes still to read.
    Length(u64),
    Chunked(Chunk),
    /// The body ends when the application closes the connection.
    UntilClose,
    /// After a `101`: bytes as they come, until the application closes.
    Upgraded,
    /// The response was read to its end.
    Done,
}

/// Where a chunked body's reading stands (a response's here, a request's in `http::inbound`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// A chunk-size line is next.
    Size,
    /// This many bytes of the chunk's data still to read.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer section, after the last chunk; this many bytes of it read so far.
    Trailers(usize),
}

/// One exchange on an upstream connection (HTTP/1.1).
pub struct ClientSession {
    stream: Stream,
    /// Bytes read and not yet handed over.
    buf: BytesMut,
    /// The application closed its side.
    eof: bool,
    /// Applied to each read (reset on every read).
    pub read_timeout: Option<Duration>,
    /// Applied to each write.
    pub write_timeout: Option<Duration>,
    head_request: bool,
    upgrade_asked: bool,
    upgraded: bool,
    outgoing: Outgoing,
    incoming: Incoming,
    /// The response let the connection serve another request.
    keepalive: bool,
    /// Interim responses read so far.
    interim: usize,
}

impl ClientSession {
    pub fn new(stream: Stream) -> Self {
        ClientSession {
            stream,
            buf: BytesMut::new(),
            eof: false,
            read_timeout: None,
            write_timeout: None,
            head_request: false,
            upgrade_asked: false,
            upgraded: false,
            outgoing: Outgoing::Done,
            incoming: Incoming::Head,
            keepalive: false,
            interim: 0,
        }
    }

    /// Writes the request line (HTTP/1.1) and `request`'s headers, which decide how its body is
    /// framed: `Transfer-Encoding: chunked`, else `Content-Length`, else no body.
    pub async fn write_request_header(&mut self, request: &RequestHeader) -> Result<()> {
        let path = request.raw_path();
        if path.is_empty() || path.iter().any(|b| b.is_ascii_control() || *b == b' ') {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                "request target with a space or a control byte",
            ));
        }
        self.outgoing = if request.headers.contains_key(header::TRANSFER_ENCODING) {
            Outgoing::Chunked
        } else {
            match request.headers.get(header::CONTENT_LENGTH) {
                Some(value) => match parse_length(value.as_bytes()) {
                    // An empty body is no body: the connection stays reusable without an end.
                    Some(0) => Outgoing::Done,
                    Some(length) => Outgoing::Length(length),
                    None => {
                        return Err(Error::explain(
                            ErrorType::InvalidHTTPHeader,
                            "invalid Content-Length",
                        ))
                    }
                },
                None => Outgoing::Done,
            }
        };
        self.head_request = request.method == Method::HEAD;
        self.upgrade_asked = request.headers.contains_key(header::UPGRADE);
        let method = request.method.as_str().as_bytes();
        let mut head = BytesMut::with_capacity(method.len() + path.len() + 512);
        head.put_slice(method);
        head.put_u8(b' ');
        head.put_slice(path);
        head.put_slice(b" HTTP/1.1\r\n");
        request.header_to_h1_wire(&mut head);
        head.put_slice(b"\r\n");
        self.write(&head, "while writing the request header")
            .await?;
        self.flush().await
    }

    /// Whether the request asked for an upgrade (`Upgrade` header).
    pub fn is_upgrade_req(&self) -> bool {
        self.upgrade_asked
    }

    /// After a `101`, the request's body becomes the client's bytes as they come.
    pub fn maybe_upgrade_body_writer(&mut self) {
        if self.upgraded {
            self.outgoing = Outgoing::Raw;
        }
    }

    /// Writes a piece of the request's body, framed as the header said.
    pub async fn write_body(&mut self, data: &[u8]) -> Result<()> {
        match self.outgoing {
            Outgoing::Length(left) => {
                let len = data.len() as u64;
                if len > left {
                    return Err(Error::explain(
                        ErrorType::WriteError,
                        "request body longer than its Content-Length",
                    ));
                }
                self.write(data, "while writing the request body").await?;
                self.outgoing = Outgoing::Length(left - len);
            }
            Outgoing::Chunked => {
                if data.is_empty() {
                    // An empty chunk would end the body.
                    return Ok(());
                }
                let mut size = [0u8; 18];
                let size = chunk_size_line(data.len(), &mut size);
                // The size line, the data and its end in one system call (the upstream socket
                // has no write buffer): not three, each a TCP segment of its own.
                let mut chunk = [
                    IoSlice::new(size),
                    IoSlice::new(data),
                    IoSlice::new(b"\r\n"),
                ];
                self.write_vectored(&mut chunk, "while writing the request body")
                    .await?;
            }
            Outgoing::Raw => self.write(data, "while writing upgraded bytes").await?,
            Outgoing::Done => {
                return Err(Error::explain(
                    ErrorType::WriteError,
                    "request body after its end",
                ))
            }
        }
        self.flush().await
    }

    /// Ends the request's body: the last chunk when chunked; an error when fewer bytes were
    /// written than its `Content-Length` said.
    pub async fn finish_body(&mut self) -> Result<()> {
        match self.outgoing {
            Outgoing::Chunked => {
                self.write(b"0\r\n\r\n", "while ending the request body")
                    .await?;
                self.outgoing = Outgoing::Done;
            }
            Outgoing::Length(0) => self.outgoing = Outgoing::Done,
            Outgoing::Length(_) => {
                return Err(Error::explain(
                    ErrorType::WriteError,
                    "request body shorter than its Content-Length",
                ))
            }
            Outgoing::Raw | Outgoing::Done => {}
        }
        self.flush().await
    }

    /// The next piece of the response: a header (`1xx` ones first, each its own task), then
    /// the body's pieces; `end` marks the last.
    pub async fn read_response_task(&mut self) -> Result<HttpTask> {
        loop {
            if let Some(task) = self.next_task()? {
                return Ok(task);
            }
            self.fill().await?;
        }
    }

    /// Whether the response was read to its end.
    pub fn is_body_done(&self) -> bool {
        self.incoming == Incoming::Done
    }

    /// The connection, when it can serve another request: the response read to its end and
    /// nothing after it, the request's body all written, keep-alive on, no upgrade.
    pub fn reuse(self) -> Option<Stream> {
        let clean = self.keepalive
            && self.incoming == Incoming::Done
            && self.outgoing == Outgoing::Done
            && !self.upgraded
            && !self.eof
            && self.buf.is_empty();
        clean.then_some(self.stream)
    }

    async fn write(&mut self, data: &[u8], context: &'static str) -> Result<()> {
        self.write_vectored(&mut [IoSlice::new(data)], context)
            .await
    }

    /// Writes all of `parts`, gathered: one system call when the socket takes them at once.
    async fn write_vectored(
        &mut self,
        parts: &mut [IoSlice<'_>],
        context: &'static str,
    ) -> Result<()> {
        let all = write_gathered(&mut self.stream, parts);
        let written = match self.write_timeout {
            Some(limit) => pingora_timeout::timeout(limit, all)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            None => all.await,
        };
        written.map_err(|e: std::io::Error| match e.kind() {
            std::io::ErrorKind::TimedOut => Error::because(ErrorType::WriteTimedout, context, e),
            _ => Error::because(ErrorType::WriteError, context, e),
        })
    }

    async fn flush(&mut self) -> Result<()> {
        self.stream
            .flush()
            .await
            .map_err(|e| Error::because(ErrorType::WriteError, "while flushing the request", e))
    }

    /// Reads more of the response (at least one byte, or the end of the stream).
    async fn fill(&mut self) -> Result<()> {
        if self.eof {
            // `next_task` handles the end; reaching here is a framing state that cannot end.
            return Err(Error::explain(
                ErrorType::ConnectionClosed,
                "the application closed the connection",
            ));
        }
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_ROOM);
        }
        let read = match self.read_timeout {
            Some(limit) => pingora_timeout::timeout(limit, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| {
                    Error::explain(ErrorType::ReadTimedout, "while reading the response")
                })?,
            None => self.stream.read_buf(&mut self.buf).await,
        };
        match read {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(e) => {
                return Err(Error::because(
                    ErrorType::ReadError,
                    "while reading the response",
                    e,
                ))
            }
        }
        Ok(())
    }

    /// The next task from the bytes already read; `None` when more must be read.
    fn next_task(&mut self) -> Result<Option<HttpTask>> {
        loop {
            match self.incoming {
                Incoming::Head => return self.head(),
                Incoming::Length(left) => {
                    let Some(data) = self.take(left) else {
                        return self.short("the response body ended before its Content-Length");
                    };
                    let left = left - data.len() as u64;
                    self.incoming = if left == 0 {
                        Incoming::Done
                    } else {
                        Incoming::Length(left)
                    };
                    return Ok(Some(HttpTask::Body(Some(data), left == 0)));
                }
                Incoming::UntilClose | Incoming::Upgraded => {
                    let upgraded = self.incoming == Incoming::Upgraded;
                    let data = if !self.buf.is_empty() {
                        Some(self.buf.split().freeze())
                    } else if self.eof {
                        self.incoming = Incoming::Done;
                        self.keepalive = false;
                        None
                    } else {
                        return Ok(None);
                    };
                    let end = data.is_none();
                    return Ok(Some(if upgraded {
                        HttpTask::UpgradedBody(data, end)
                    } else {
                        HttpTask::Body(data, end)
                    }));
                }
                Incoming::Chunked(chunk) => match self.chunk(chunk)? {
                    Step::Task(task) => return Ok(Some(task)),
                    Step::Again => {}
                    Step::More if self.eof => {
                        return self.short("the chunked response body ended before its last chunk")
                    }
                    Step::More => return Ok(None),
                },
                Incoming::Done => return Ok(Some(HttpTask::Done)),
            }
        }
    }

    /// Up to `left` bytes of what was read; `None` when nothing is left to read from.
    fn take(&mut self, left: u64) -> Option<Bytes> {
        if self.buf.is_empty() {
            return None;
        }
        let len = usize::try_from(left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
        Some(self.buf.split_to(len).freeze())
    }

    /// More is needed: an error once the application has closed.
    fn short(&mut self, what: &'static str) -> Result<Option<HttpTask>> {
        if self.eof {
            self.keepalive = false;
            Err(Error::explain(ErrorType::ConnectionClosed, what))
        } else {
            Ok(None)
        }
    }

    /// One step of a chunked body.
    fn chunk(&mut self, chunk: Chunk) -> Result<Step> {
        let (next, step) = chunk_step(&mut self.buf, chunk)?;
        self.incoming = next.map_or(Incoming::Done, Incoming::Chunked);
        Ok(match step {
            ChunkStep::Data(data) => Step::Task(HttpTask::Body(Some(data), false)),
            ChunkStep::End => Step::Task(HttpTask::Body(None, true)),
            ChunkStep::Again => Step::Again,
            ChunkStep::More => Step::More,
        })
    }

    /// A response header from what was read, if all of it is there.
    fn head(&mut self) -> Result<Option<HttpTask>> {
        let Some(end) = head_end(&self.buf, 0) else {
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("response header larger than 64 KiB"));
            }
            if self.eof {
                return Err(Error::explain(
                    ErrorType::ConnectionClosed,
                    if self.buf.is_empty() {
                        "the application closed the connection before answering"
                    } else {
                        "the application closed the connection inside the response header"
                    },
                ));
            }
            return Ok(None);
        };
        if end > MAX_HEAD {
            return Err(invalid("response header larger than 64 KiB"));
        }
        let raw = self.buf.split_to(end).freeze();
        let (mut parts, reason) = parse_head(&raw)?;
        let status = parts.status;
        let mut end = false;
        if status.is_informational() {
            self.interim += 1;
            if self.interim > MAX_INTERIM {
                return Err(invalid("more than 32 interim (1xx) responses"));
            }
            if status == StatusCode::SWITCHING_PROTOCOLS {
                if !self.upgrade_asked {
                    return Err(invalid(
                        "101 Switching Protocols for a request that asked for no upgrade",
                    ));
                }
                self.upgraded = true;
                self.keepalive = false;
                self.incoming = Incoming::Upgraded;
            }
        } else {
            self.keepalive = keeps_alive(&parts);
            let framing = framing(&mut parts)?;
            self.incoming = if self.head_request
                || status == StatusCode::NO_CONTENT
                || status == StatusCode::NOT_MODIFIED
            {
                Incoming::Done
            } else {
                match framing {
                    Framing::Chunked => Incoming::Chunked(Chunk::Size),
                    Framing::Length(0) => Incoming::Done,
                    Framing::Length(n) => Incoming::Length(n),
                    Framing::UntilClose => {
                        self.keepalive = false;
                        Incoming::UntilClose
                    }
                }
            };
            if framing == Framing::Chunked && parts.headers.remove(header::CONTENT_LENGTH).is_some()
            {
                // Both: the length is dropped (RFC 9112 §6.3), the connection not trusted again.
                self.keepalive = false;
            }
            end = self.incoming == Incoming::Done;
        }
        let mut header = ResponseHeader::from(parts);
        header.set_reason_phrase(reason.as_deref())?;
        Ok(Some(HttpTask::Header(Box::new(header), end)))
    }
}

/// What a chunked-body step did.
enum Step {
    Task(HttpTask),
    /// The state moved on: go on with what was read.
    Again,
    /// More bytes are needed.
    More,
}

/// Writes all of `parts` on `stream`, gathered: one system call when the socket takes them at
/// once.
pub(crate) async fn write_gathered(
    stream: &mut Stream,
    mut parts: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    // Empty pieces first out: with nothing left to write, a write of 0 bytes is no sign of a
    // closed connection.
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match stream.write_vectored(parts).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            written => IoSlice::advance_slices(&mut parts, written),
        }
    }
    Ok(())
}

/// What one step of a chunked body's reading gave.
pub(crate) enum ChunkStep {
    /// A piece of a chunk's data.
    Data(Bytes),
    /// The body ended (last chunk and trailers read).
    End,
    /// The state moved on: go on with what was read.
    Again,
    /// More bytes are needed.
    More,
}

/// One step of reading a chunked body out of `buf` from state `chunk`: the state after it
/// (`None` once the body ended) and what the step gave. Sizes, extensions, the CRLF after
/// each chunk's data and the trailer section (dropped, at most [`MAX_HEAD`] bytes) are checked
/// as the module's documentation says.
pub(crate) fn chunk_step(buf: &mut BytesMut, chunk: Chunk) -> Result<(Option<Chunk>, ChunkStep)> {
    match chunk {
        Chunk::Size => {
            let Some(end) = line_end(buf, MAX_CHUNK_LINE)? else {
                return Ok((Some(chunk), ChunkStep::More));
            };
            let line = buf.split_to(end);
            let size = parse_chunk_size(&line)?;
            let next = if size == 0 {
                Chunk::Trailers(0)
            } else {
                Chunk::Data(size)
            };
            Ok((Some(next), ChunkStep::Again))
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok((Some(chunk), ChunkStep::More));
            }
            let len = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
            let data = buf.split_to(len).freeze();
            let left = left - len as u64;
            let next = if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            };
            Ok((Some(next), ChunkStep::Data(data)))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok((Some(chunk), ChunkStep::More));
            }
            if &buf[..2] != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            let _ = buf.split_to(2);
            Ok((Some(Chunk::Size), ChunkStep::Again))
        }
        Chunk::Trailers(read) => {
            let Some(end) = line_end(buf, MAX_HEAD - read)? else {
                return Ok((Some(chunk), ChunkStep::More));
            };
            let line = buf.split_to(end);
            if line.as_ref() == b"\r\n" || line.as_ref() == b"\n" {
                return Ok((None, ChunkStep::End));
            }
            // Trailer fields are not passed on; they must still be fields.
            if !line.contains(&b':') || line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                return Err(invalid("malformed trailer field"));
            }
            Ok((Some(Chunk::Trailers(read + end)), ChunkStep::Again))
        }
    }
}

/// How a final response's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(u64),
    UntilClose,
}

pub(crate) fn invalid(what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InvalidHTTPHeader, what)
}

/// The end (exclusive) of the header section in `buf`: after the empty line, CRLF or LF. The
/// search starts at `from` (where an earlier search of the same bytes stopped, less two).
pub(crate) fn head_end(buf: &[u8], mut from: usize) -> Option<usize> {
    while let Some(at) = memchr::memchr(b'\n', &buf[from..]) {
        let at = from + at;
        match buf.get(at + 1..) {
            Some([b'\n', ..]) => return Some(at + 2),
            Some([b'\r', b'\n', ..]) => return Some(at + 3),
            _ => from = at + 1,
        }
    }
    None
}

/// The end (exclusive) of the first line in `buf`, ended by CRLF or LF; an error when no line
/// ends within `limit` bytes.
pub(crate) fn line_end(buf: &[u8], limit: usize) -> Result<Option<usize>> {
    match memchr::memchr(b'\n', &buf[..buf.len().min(limit)]) {
        Some(at) => Ok(Some(at + 1)),
        None if buf.len() >= limit => Err(invalid("chunk line or trailer section too long")),
        None => Ok(None),
    }
}

/// A chunk-size line: 1 to 15 hexadecimal digits, optional whitespace and `;` extensions of
/// visible bytes (and whitespace), CRLF.
fn parse_chunk_size(line: &[u8]) -> Result<u64> {
    let line = line
        .strip_suffix(b"\r\n")
        .ok_or_else(|| invalid("chunk size line not ended by CRLF"))?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(invalid("chunk size not 1 to 15 hexadecimal digits"));
    }
    let rest = &line[digits..];
    let extensions_ok = rest
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t')
        && rest.trim_ascii_start().first().is_none_or(|b| *b == b';');
    if !extensions_ok {
        return Err(invalid("malformed chunk extension"));
    }
    let digits = std::str::from_utf8(&line[..digits]).map_err(|_| invalid("chunk size"))?;
    u64::from_str_radix(digits, 16).map_err(|_| invalid("chunk size"))
}

/// `len` as a chunk-size line (hexadecimal, CRLF) in `out`.
pub(crate) fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = 16;
    let mut rest = len;
    loop {
        at -= 1;
        out[at] = HEX[rest % 16];
        rest /= 16;
        if rest == 0 {
            break;
        }
    }
    out[16] = b'\r';
    out[17] = b'\n';
    &out[at..]
}

/// A `Content-Length` value: digits only, at most 19 of them.
pub(crate) fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The response header in `raw` (the whole header section), and its reason phrase when it is
/// not the status's own. Names and values are checked as `http` checks them; each value is a
/// slice of `raw`.
fn parse_head(raw: &Bytes) -> Result<(http::response::Parts, Option<String>)> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut response, raw, &mut slots)
        .map_err(|e| {
            Error::because(ErrorType::InvalidHTTPHeader, "malformed response header", e)
        })?;
    if parsed != httparse::Status::Complete(raw.len()) {
        return Err(invalid("malformed response header"));
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| invalid("invalid status in the response"))?;
    parts.version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    parts.headers = header_map(raw, response.headers).map_err(|what| {
        invalid(if what {
            "invalid header name in the response"
        } else {
            "invalid header value in the response"
        })
    })?;
    let reason = response
        .reason
        .filter(|r| Some(*r) != parts.status.canonical_reason())
        .map(str::to_string);
    Ok((parts, reason))
}

/// The fields httparse found in the header section `raw` as a header map, each value a slice of
/// `raw`, names and values checked as `http` checks them. `Err(true)`: a name it refuses,
/// `Err(false)`: a value.
pub(crate) fn header_map(
    raw: &Bytes,
    fields: &[httparse::Header<'_>],
) -> std::result::Result<HeaderMap, bool> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| true)?;
        let value =
            HeaderValue::from_maybe_shared(raw.slice_ref(field.value)).map_err(|_| false)?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The items of the list headers `name` (RFC 9110 §5.6.1: every field of that name, split at
/// commas), each trimmed of whitespace; empty items are kept, for the caller to judge.
pub(crate) fn list_items<'a>(
    headers: &'a HeaderMap,
    name: HeaderName,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Whether the response lets the connection serve another request: HTTP/1.1 without
/// `Connection: close`.
fn keeps_alive(parts: &http::response::Parts) -> bool {
    parts.version == Version::HTTP_11
        && !list_items(&parts.headers, header::CONNECTION).any(|t| t.eq_ignore_ascii_case(b"close"))
}

/// The body's framing from the response's headers (RFC 9112 §6.3), `Content-Length` collapsed
/// to one value.
fn framing(parts: &mut http::response::Parts) -> Result<Framing> {
    let headers = &mut parts.headers;
    let mut codings = 0;
    for coding in list_items(headers, header::TRANSFER_ENCODING).filter(|c| !c.is_empty()) {
        if !coding.eq_ignore_ascii_case(b"chunked") || codings > 0 {
            return Err(invalid("response transfer coding other than chunked"));
        }
        codings += 1;
    }
    if codings == 1 {
        return Ok(Framing::Chunked);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(invalid("empty Transfer-Encoding in the response"));
    }
    let mut length = None;
    let mut values = 0;
    // An empty item ("5,") is not a length either.
    for token in list_items(headers, header::CONTENT_LENGTH) {
        values += 1;
        let token =
            parse_length(token).ok_or_else(|| invalid("invalid Content-Length in the response"))?;
        if length.is_some_and(|l| l != token) {
            return Err(invalid("conflicting Content-Length values in the response"));
        }
        length = Some(token);
    }
    match length {
        Some(length) => {
            if values > 1 {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            Ok(Framing::Length(length))
        }
        None => Ok(Framing::UntilClose),
    }
}

#[cfg(test)]
mod tests;
