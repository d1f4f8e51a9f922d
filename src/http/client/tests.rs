use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::protocols::http::HttpTask;
use pingora::ErrorType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::http::pool::tests::connected;

/// What a client read of one response.
#[derive(Debug, Default)]
struct Read {
    /// Statuses of the headers, interim ones first.
    statuses: Vec<u16>,
    /// The final header's fields, `name: value`, in order.
    fields: Vec<String>,
    reason: Option<String>,
    body: Vec<u8>,
    /// Whether the connection could serve another request.
    reusable: bool,
}

fn request(method: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut request = RequestHeader::build(method, b"/a?b=c", None).unwrap();
    request.insert_header("host", "app.test").unwrap();
    for (name, value) in headers {
        request.append_header(name.to_string(), *value).unwrap();
    }
    request
}

/// A client session on a new connection, and the application's end.
async fn pair() -> (ClientSession, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stream, server) = connected(&listener).await;
    (ClientSession::new(stream), server)
}

/// Sends `request`; the application answers `response` in pieces of `piece` bytes (closing
/// after when `close`); the response read to its end, or the first error.
async fn fetch(
    request: &RequestHeader,
    response: &[u8],
    piece: usize,
    close: bool,
) -> pingora::Result<Read> {
    let (mut client, mut server) = pair().await;
    client.read_timeout = Some(Duration::from_secs(5));
    client.write_request_header(request).await?;
    let response = response.to_vec();
    let application = tokio::spawn(async move {
        // The request's header first: closing on unread bytes would reset the connection.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && server.read(&mut byte).await.unwrap() == 1 {
            head.push(byte[0]);
        }
        for part in response.chunks(piece.max(1)) {
            server.write_all(part).await.unwrap();
            server.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        if !close {
            // Keeps the connection open until the client is done with it.
            let mut rest = Vec::new();
            let _ = server.read_to_end(&mut rest).await;
        }
    });
    let mut read = Read::default();
    loop {
        match client.read_response_task().await? {
            HttpTask::Header(header, end) => {
                read.statuses.push(header.status.as_u16());
                read.fields = header
                    .headers
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                    .collect();
                read.reason = header.get_reason_phrase().map(str::to_string);
                if end {
                    break;
                }
            }
            HttpTask::Body(data, end) | HttpTask::UpgradedBody(data, end) => {
                read.body.extend_from_slice(&data.unwrap_or_default());
                if end {
                    break;
                }
            }
            other => panic!("unexpected task {other:?}"),
        }
    }
    assert!(client.is_body_done());
    read.reusable = client.reuse().is_some();
    application.abort();
    Ok(read)
}

/// Every framing an application may use reads to the same header and body however its bytes
/// are cut (one at a time, in odd pieces, whole), and leaves the connection reusable exactly
/// when its end was known without closing.
#[tokio::test]
async fn every_framing_reads_the_same_however_the_bytes_are_cut() {
    let get = request("GET", &[]);
    let head = request("HEAD", &[]);
    // Name, request, response, whether the application closes after it, the statuses read, the
    // body read, whether the connection may serve another request.
    type Case<'a> = (
        &'a str,
        &'a RequestHeader,
        &'a [u8],
        bool,
        &'a [u16],
        &'a [u8],
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            "length",
            &get,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
            false,
            &[200],
            b"hello",
            true,
        ),
        (
            "chunked, extensions, trailers",
            &get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Sum: 1\r\n\r\n",
            false,
            &[200],
            b"hello, world!!!",
            true,
        ),
        (
            "chunked, upper-case hex, no trailer",
            &get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0B\r\nhello world\r\n0\r\n\r\n",
            false,
            &[200],
            b"hello world",
            true,
        ),
        (
            "until the application closes",
            &get,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nended by closing",
            true,
            &[200],
            b"ended by closing",
            false,
        ),
        (
            "HTTP/1.0 with a length",
            &get,
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
            &[200],
            b"ok",
            false,
        ),
        (
            "Connection: close",
            &get,
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
            false,
            &[200],
            b"ok",
            false,
        ),
        (
            "204",
            &get,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            false,
            &[204],
            b"",
            true,
        ),
        (
            "304 with the length of what it stands for",
            &get,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n",
            false,
            &[304],
            b"",
            true,
        ),
        (
            "HEAD",
            &head,
            b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
            false,
            &[200],
            b"",
            true,
        ),
        (
            "interim responses, then the final one",
            &get,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
            &[100, 103, 200],
            b"ok",
            true,
        ),
        (
            "lines ended by LF alone",
            &get,
            b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            false,
            &[200],
            b"ok",
            true,
        ),
        (
            "empty body by length",
            &get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            &[200],
            b"",
            true,
        ),
    ];
    for (name, request, response, close, statuses, body, reusable) in cases {
        for piece in [1, 2, 3, 7, 64, response.len()] {
            let read = fetch(request, response, piece, close)
                .await
                .unwrap_or_else(|e| panic!("{name}, pieces of {piece}: {e}"));
            assert_eq!(read.statuses, statuses, "{name}, pieces of {piece}");
            assert_eq!(read.body, body, "{name}, pieces of {piece}");
            assert_eq!(read.reusable, reusable, "{name}, pieces of {piece}");
        }
    }
}

#[tokio::test]
async fn headers_are_passed_on_as_sent_with_their_length_made_single() {
    let get = request("GET", &[]);
    let read = fetch(
        &get,
        b"HTTP/1.1 200 Fine Thanks\r\nX-App: a\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
        4096,
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        read.fields,
        [
            "x-app: a",
            "set-cookie: a=1",
            "set-cookie: b=2",
            "content-length: 2"
        ]
    );
    assert_eq!(read.reason.as_deref(), Some("Fine Thanks"));
    assert_eq!(read.body, b"ok");
    assert!(read.reusable);

    // Both framings: the length is dropped, the chunks decoded, the connection not reused.
    let read = fetch(
        &get,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        4096,
        false,
    )
    .await
    .unwrap();
    assert_eq!(read.fields, ["transfer-encoding: chunked"]);
    assert_eq!(read.body, b"ok");
    assert!(!read.reusable);
}

/// A request whose body is said to be empty leaves its connection reusable, as one without.
#[tokio::test]
async fn an_empty_body_by_length_keeps_the_connection() {
    let post = request("POST", &[("content-length", "0")]);
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let read = fetch(&post, response, 4096, false).await.unwrap();
    assert!(read.reusable);
}

/// Responses whose framing or header cannot be trusted: each an error of the kind the gateway
/// turns into a 502 (never a panic, never a body passed on as whole), however its bytes come.
#[tokio::test]
async fn untrustworthy_responses_are_errors() {
    let get = request("GET", &[]);
    let long_field = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000));
    let many_fields = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        (0..300)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let long_chunk_line = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;{}\r\nhello\r\n0\r\n\r\n",
        "x".repeat(5000)
    );
    let chunked =
        |rest: &str| format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{rest}");
    let interim = |count: usize| {
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n".repeat(count)
            + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    };
    let invalid = ErrorType::InvalidHTTPHeader;
    let closed = ErrorType::ConnectionClosed;
    let cases: Vec<(&str, String, ErrorType)> = vec![
        ("conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".into(), invalid.clone()),
        ("conflicting length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!".into(), invalid.clone()),
        ("negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".into(), invalid.clone()),
        ("signed length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello".into(), invalid.clone()),
        ("hexadecimal length", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello".into(), invalid.clone()),
        ("empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n".into(), invalid.clone()),
        ("length over 19 digits", "HTTP/1.1 200 OK\r\nContent-Length: 12345678901234567890\r\n\r\n".into(), invalid.clone()),
        ("gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx".into(), invalid.clone()),
        ("gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".into(), invalid.clone()),
        ("chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(), invalid.clone()),
        ("empty coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n".into(), invalid.clone()),
        ("empty chunk size", chunked("\r\nhello\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk size not hexadecimal", chunked("g\r\nhello\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk size of 16 digits", chunked("0000000000000005\r\nhello\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk size then junk", chunked("5 x\r\nhello\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk size line ended by LF", chunked("5\nhello\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk extension with a control byte", chunked("5;a\x01\r\nhello\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk data longer than its size", chunked("5\r\nhello!!\r\n0\r\n\r\n"), invalid.clone()),
        ("chunk size line too long", long_chunk_line, invalid.clone()),
        ("malformed trailer", chunked("0\r\nno colon here\r\n\r\n"), invalid.clone()),
        ("header section too large", long_field, invalid.clone()),
        ("too many fields", many_fields, invalid.clone()),
        ("obsolete line folding", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n".into(), invalid.clone()),
        ("status not a number", "HTTP/1.1 2x0 OK\r\n\r\n".into(), invalid.clone()),
        ("not HTTP", "SSH-2.0-OpenSSH\r\n\r\n".into(), invalid.clone()),
        ("control byte in a value", "HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n".into(), invalid.clone()),
        ("space in a name", "HTTP/1.1 200 OK\r\nX A: a\r\nContent-Length: 0\r\n\r\n".into(), invalid.clone()),
        ("101 without an upgrade asked", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".into(), invalid.clone()),
        ("one interim response too many", interim(MAX_INTERIM + 1), invalid.clone()),
        ("interim responses without end", interim(1000), invalid.clone()),
    ];
    for (name, response, kind) in &cases {
        // The large ones a byte at a time would only be slow.
        let pieces = if response.len() < 1000 {
            [1, 5, 4096]
        } else {
            [997, 1024, 4096]
        };
        for piece in pieces {
            match fetch(&get, response.as_bytes(), piece, false).await {
                Ok(read) => panic!("{name}, pieces of {piece}: read as {read:?}"),
                Err(e) => assert_eq!(e.etype(), kind, "{name}, pieces of {piece}: {e}"),
            }
        }
    }
    // As many interim responses as allowed: all passed on, then the final one.
    let read = fetch(&get, interim(MAX_INTERIM).as_bytes(), 4096, false)
        .await
        .unwrap();
    assert_eq!(read.statuses.len(), MAX_INTERIM + 1);
    assert_eq!(read.statuses.last(), Some(&200));
    // Responses cut short by the application closing: an error, not a shorter body.
    let cut: Vec<(&str, &[u8])> = vec![
        ("nothing", b""),
        ("inside the header", b"HTTP/1.1 200 OK\r\nContent-Len"),
        (
            "inside a body by length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        ),
        (
            "inside a chunk",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        ),
        (
            "before the last chunk",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        ),
        (
            "inside the trailers",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n",
        ),
    ];
    for (name, response) in cut {
        for piece in [1, 4096] {
            match fetch(&get, response, piece, true).await {
                Ok(read) => panic!("cut {name}, pieces of {piece}: read as {read:?}"),
                Err(e) => assert_eq!(e.etype(), &closed, "cut {name}: {e}"),
            }
        }
    }
}

/// What the application sent after its response's end, or a response not read to its end:
/// the connection is not handed back.
#[tokio::test]
async fn a_connection_goes_back_only_when_its_exchange_is_complete() {
    let get = request("GET", &[]);
    let extra = fetch(
        &get,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
        4096,
        false,
    )
    .await
    .unwrap();
    assert!(!extra.reusable);

    let (mut client, mut server) = pair().await;
    client.write_request_header(&get).await.unwrap();
    server
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    assert!(matches!(
        client.read_response_task().await.unwrap(),
        HttpTask::Header(_, false)
    ));
    assert!(matches!(
        client.read_response_task().await.unwrap(),
        HttpTask::Body(Some(_), false)
    ));
    assert!(!client.is_body_done());
    assert!(client.reuse().is_none());
}

/// The request as the application reads it: its line, its headers, its body framed as the
/// header says (a piece at a time).
#[tokio::test]
async fn request_bodies_are_framed_as_their_header_says() {
    async fn sent(request: RequestHeader, pieces: &[&[u8]]) -> (String, pingora::Result<()>) {
        let (mut client, mut server) = pair().await;
        client.write_request_header(&request).await.unwrap();
        let mut result = Ok(());
        for piece in pieces {
            result = client.write_body(piece).await;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = client.finish_body().await;
        }
        drop(client);
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();
        (String::from_utf8(wire).unwrap(), result)
    }
    let (wire, result) = sent(
        request("POST", &[("content-length", "11")]),
        &[b"hello", b" ", b"world"],
    )
    .await;
    result.unwrap();
    assert!(wire.starts_with("POST /a?b=c HTTP/1.1\r\n"), "{wire}");
    assert!(
        wire.ends_with("content-length: 11\r\n\r\nhello world"),
        "{wire}"
    );

    let (wire, result) = sent(
        request("POST", &[("transfer-encoding", "chunked")]),
        &[b"hello", b"", &[b'x'; 300]],
    )
    .await;
    result.unwrap();
    let expected = format!(
        "\r\n\r\n5\r\nhello\r\n12c\r\n{}\r\n0\r\n\r\n",
        "x".repeat(300)
    );
    assert!(wire.ends_with(&expected), "{wire}");

    // An empty piece writes nothing and is no error, whatever the framing.
    let (wire, result) = sent(
        request("POST", &[("content-length", "5")]),
        &[b"", b"he", b"", b"llo", b""],
    )
    .await;
    result.unwrap();
    assert!(wire.ends_with("content-length: 5\r\n\r\nhello"), "{wire}");

    let (_, result) = sent(request("POST", &[("content-length", "3")]), &[b"four"]).await;
    assert!(result.is_err(), "longer than its length");
    let (_, result) = sent(request("POST", &[("content-length", "5")]), &[b"four"]).await;
    assert!(result.is_err(), "shorter than its length");
    let (_, result) = sent(request("GET", &[]), &[b"x"]).await;
    assert!(result.is_err(), "a body the header did not announce");
}

/// A target with a space or a control byte never reaches the wire: refused when it is set on
/// the request, or else when the request is written.
#[tokio::test]
async fn a_target_with_a_space_or_control_byte_is_not_sent() {
    for target in [&b"/a b"[..], b"/a\r\nX: y", b"/a\0", b"/\x7f", b"/\t"] {
        let mut request = request("GET", &[]);
        if request.set_raw_path(target).is_err() {
            continue;
        }
        let (mut client, _server) = pair().await;
        let written = client.write_request_header(&request).await;
        let e = written.expect_err(&format!("{target:?} sent as {:?}", request.raw_path()));
        assert_eq!(e.etype(), &ErrorType::InvalidHTTPHeader, "{target:?}");
    }
}

/// After a `101`, bytes go both ways as they come, and the connection is never reused.
#[tokio::test]
async fn an_upgrade_passes_bytes_both_ways() {
    let (mut client, mut server) = pair().await;
    let upgrade = request(
        "GET",
        &[("connection", "upgrade"), ("upgrade", "websocket")],
    );
    client.write_request_header(&upgrade).await.unwrap();
    assert!(client.is_upgrade_req());
    server
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nfirst")
        .await
        .unwrap();
    match client.read_response_task().await.unwrap() {
        HttpTask::Header(header, false) => assert_eq!(header.status.as_u16(), 101),
        other => panic!("{other:?}"),
    }
    match client.read_response_task().await.unwrap() {
        HttpTask::UpgradedBody(Some(data), false) => assert_eq!(&data[..], b"first"),
        other => panic!("{other:?}"),
    }
    client.maybe_upgrade_body_writer();
    client.write_body(b"raw bytes").await.unwrap();
    let mut head = vec![0; 4096];
    let mut got = Vec::new();
    while !got.ends_with(b"raw bytes") {
        let n = server.read(&mut head).await.unwrap();
        got.extend_from_slice(&head[..n]);
    }
    drop(server);
    assert!(matches!(
        client.read_response_task().await.unwrap(),
        HttpTask::UpgradedBody(None, true)
    ));
    assert!(client.reuse().is_none());
}

#[tokio::test]
async fn an_application_that_does_not_answer_times_out() {
    let (mut client, _server) = pair().await;
    client.read_timeout = Some(Duration::from_millis(100));
    client
        .write_request_header(&request("GET", &[]))
        .await
        .unwrap();
    let e = client.read_response_task().await.unwrap_err();
    assert_eq!(e.etype(), &ErrorType::ReadTimedout);
}

#[test]
fn chunk_size_lines() {
    let mut out = [0u8; 18];
    assert_eq!(chunk_size_line(0, &mut out), b"0\r\n");
    assert_eq!(chunk_size_line(300, &mut out), b"12c\r\n");
    assert_eq!(
        chunk_size_line(usize::MAX, &mut out),
        format!("{:x}\r\n", usize::MAX).as_bytes()
    );
    assert_eq!(parse_chunk_size(b"fFf; a=\"b c\"\r\n").unwrap(), 0xfff);
    assert_eq!(parse_chunk_size(b"10 ;x\r\n").unwrap(), 16);
    assert_eq!(
        parse_chunk_size(b"fffffffffffffff\r\n").unwrap(),
        0xfff_ffff_ffff_ffff
    );
}
