use super::*;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";

fn pair() -> (Connection, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    (Connection::new(Box::new(ours)), theirs)
}

/// Writes `bytes` cut at `cut`, letting the reader run between the two halves.
fn send_cut(
    mut client: DuplexStream,
    bytes: Vec<u8>,
    cut: usize,
) -> tokio::task::JoinHandle<DuplexStream> {
    tokio::spawn(async move {
        client.write_all(&bytes[..cut]).await.unwrap();
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        client.write_all(&bytes[cut..]).await.unwrap();
        client
    })
}

async fn read_body(inbound: &mut Inbound) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(piece) = inbound.read_body_or_idle(false).await? {
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

fn ok_response(length: usize) -> Box<ResponseHeader> {
    let mut header = ResponseHeader::build(200, None).unwrap();
    header
        .insert_header(header::CONTENT_LENGTH, length.to_string())
        .unwrap();
    Box::new(header)
}

/// Every body framing a client may use, cut at every byte: the body comes whole, the
/// connection serves the pipelined request after it.
#[tokio::test]
async fn request_bodies_come_whole_however_their_bytes_are_cut() {
    let cases: [(&[u8], &[u8]); 5] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"hello",
        ),
        (
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc",
            b"abc",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"hello world",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\nA \r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
        ),
    ];
    for (request, body) in cases {
        let bytes = [request, NEXT].concat();
        for cut in 0..=bytes.len() {
            let (mut conn, client) = pair();
            let writer = send_cut(client, bytes.clone(), cut);
            let head = conn.next_request().await.unwrap().unwrap();
            let mut inbound = Inbound::new(conn, head);
            assert_eq!(inbound.is_body_empty(), body.is_empty(), "cut {cut}");
            let read = read_body(&mut inbound).await.unwrap();
            assert_eq!(read, body, "cut {cut}");
            assert!(inbound.is_body_done());
            assert_eq!(inbound.body_bytes_read(), body.len());
            inbound.write_response_header(ok_response(0)).await.unwrap();
            let mut conn = inbound.finish().await.expect("kept");
            let next = conn.next_request().await.unwrap().unwrap();
            assert_eq!(next.header.uri.path(), "/next", "cut {cut}");
            drop(writer.await.unwrap());
        }
    }
}

/// The status a request is refused with before it is served, or `None` when it is accepted.
async fn refusal(bytes: &[u8]) -> Option<u16> {
    let (mut conn, mut client) = pair();
    client.write_all(bytes).await.unwrap();
    client.shutdown().await.unwrap();
    match conn.next_request().await {
        Ok(Some(_)) => None,
        Ok(None) => panic!("no request in {}", bytes.escape_ascii()),
        Err(e) => Some(match e.etype() {
            ErrorType::InvalidHTTPHeader => 400,
            ErrorType::HTTPStatus(status) => *status,
            // The connection ended inside the header: an error, nothing to answer.
            ErrorType::ConnectionClosed => 0,
            other => panic!("{other:?} for {}", bytes.escape_ascii()),
        }),
    }
}

#[tokio::test]
async fn requests_two_proxies_could_read_differently_are_refused() {
    let host = "Host: x\r\n";
    let cases: Vec<(String, u16)> = vec![
        // Framing (RFC 9112 §6).
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: gzip, chunked\r\n\r\n"), 501),
        (format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked, gzip\r\n\r\n"), 501),
        (format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 501),
        (format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: xchunked\r\n\r\n"), 501),
        (format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: \r\n\r\n"), 501),
        (format!("POST / HTTP/1.0\r\n{host}Transfer-Encoding: chunked\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: 5, 6\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: 5,\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: +5\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: 0x5\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: 99999999999999999999\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{host}Content-Length: \r\n\r\n"), 400),
        // Authority.
        ("GET / HTTP/1.1\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n".to_string(), 400),
        ("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n".to_string(), 400),
        // Syntax.
        (format!("GET / HTTP/1.1\r\n{host}X-Folded: a\r\n b\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{host}Bad Name: a\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{host}X-Nul: a\0b\r\n\r\n"), 400),
        (format!("GET /a b HTTP/1.1\r\n{host}\r\n"), 400),
        (format!("GET / HTTP/2.0\r\n{host}\r\n"), 400),
        (format!("G(T / HTTP/1.1\r\n{host}\r\n"), 400),
        ("\r\n\r\n".to_string(), 400),
        // Size.
        (format!("GET / HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n", "a".repeat(MAX_REQUEST_HEAD)), 431),
        (
            format!(
                "GET / HTTP/1.1\r\n{host}{}\r\n",
                (0..MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect::<String>()
            ),
            431,
        ),
        // A header section the client never ends.
        ("GET / HTTP/1.1\r\nHost: x\r\n".to_string(), 0),
    ];
    for (request, status) in &cases {
        let got = refusal(request.as_bytes()).await;
        assert_eq!(got, Some(*status), "{}", request.escape_default());
    }
    // What is accepted beside them: the limits themselves, an empty line before the request,
    // the same length repeated, the absolute form naming the same host.
    let fields: String = (0..MAX_HEADERS - 1)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect();
    for request in [
        format!("GET / HTTP/1.1\r\n{host}{fields}\r\n"),
        format!("\r\nGET / HTTP/1.1\r\n{host}\r\n"),
        format!(
            "GET / HTTP/1.1\r\n{host}X-Big: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST_HEAD - 64)
        ),
        format!("POST / HTTP/1.1\r\n{host}Content-Length: 007\r\n\r\n"),
        "GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        "GET / HTTP/1.0\r\n\r\n".to_string(),
        "GET /\u{e9}\u{ff} HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
    ] {
        assert_eq!(
            refusal(request.as_bytes()).await,
            None,
            "{}",
            request.escape_default()
        );
    }
}

#[tokio::test]
async fn a_connection_closed_inside_a_header_or_a_body_is_an_error() {
    let (mut conn, mut client) = pair();
    client.write_all(b"GET / HTTP/1.1\r\nHost").await.unwrap();
    drop(client);
    let e = conn.next_request().await.err().unwrap();
    assert_eq!(e.etype(), &ErrorType::ConnectionClosed);

    for request in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX",
    ] {
        let (mut conn, mut client) = pair();
        client.write_all(request).await.unwrap();
        drop(client);
        let head = conn.next_request().await.unwrap().unwrap();
        let mut inbound = Inbound::new(conn, head);
        assert!(
            read_body(&mut inbound).await.is_err(),
            "{}",
            request.escape_ascii()
        );
    }
}

/// The bytes the client receives for a response written as `pieces` to `request`.
async fn answer(request: &[u8], header: ResponseHeader, pieces: &[&[u8]]) -> (String, bool) {
    let (mut conn, mut client) = pair();
    client.write_all(request).await.unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    inbound
        .write_response_header(Box::new(header))
        .await
        .unwrap();
    for piece in pieces {
        inbound
            .write_response_body(Bytes::copy_from_slice(piece), false)
            .await
            .unwrap();
    }
    inbound.finish_body().await.unwrap();
    let kept = inbound.finish().await.is_some();
    let mut seen = vec![0u8; 65536];
    let n = client.read(&mut seen).await.unwrap();
    (String::from_utf8_lossy(&seen[..n]).into_owned(), kept)
}

fn response(status: u16, headers: &[(&str, &str)]) -> ResponseHeader {
    let mut header = ResponseHeader::build(status, None).unwrap();
    for (name, value) in headers {
        header.append_header(name.to_string(), *value).unwrap();
    }
    header
}

#[tokio::test]
async fn responses_are_framed_as_their_header_says_and_the_connection_kept_only_when_clean() {
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Chunks: each piece one chunk, then the last one.
    let (seen, kept) = answer(
        get,
        response(200, &[("transfer-encoding", "chunked")]),
        &[b"hello", b"", b" world"],
    )
    .await;
    assert!(
        seen.ends_with("\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{seen}"
    );
    assert!(
        seen.contains("connection: keep-alive\r\n") || seen.contains("Connection: keep-alive\r\n")
    );
    assert!(kept);
    // A length: bytes past it dropped.
    let (seen, kept) = answer(
        get,
        response(200, &[("content-length", "5")]),
        &[b"hello", b" world"],
    )
    .await;
    assert!(seen.ends_with("\r\n\r\nhello"), "{seen}");
    assert!(kept);
    // Fewer bytes than the length: the connection is not kept.
    let (_, kept) = answer(get, response(200, &[("content-length", "9")]), &[b"hello"]).await;
    assert!(!kept);
    // No length: the body ends with the connection.
    let (seen, kept) = answer(get, response(200, &[]), &[b"hello"]).await;
    assert!(
        seen.contains("Connection: close\r\n") && seen.ends_with("hello"),
        "{seen}"
    );
    assert!(!kept);
    // An HTTP/1.0 client gets no chunks: the body runs to the connection's end.
    let (seen, kept) = answer(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        response(200, &[("transfer-encoding", "chunked")]),
        &[b"hello", b" world"],
    )
    .await;
    assert!(seen.ends_with("\r\n\r\nhello world"), "{seen}");
    assert!(
        !seen.to_ascii_lowercase().contains("transfer-encoding"),
        "{seen}"
    );
    assert!(seen.contains("Connection: close\r\n") && !kept, "{seen}");
    // HEAD, 204, 304: no body, whatever is written.
    let head = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (seen, kept) = answer(head, response(200, &[("content-length", "5")]), &[b"hello"]).await;
    assert!(
        seen.ends_with("\r\n\r\n") && seen.to_ascii_lowercase().contains("content-length: 5\r\n"),
        "{seen}"
    );
    assert!(kept);
    for status in [204, 304] {
        let (seen, kept) = answer(get, response(status, &[]), &[b"hello"]).await;
        assert!(seen.ends_with("\r\n\r\n"), "{seen}");
        assert!(kept, "{status}");
    }
    // The application's Date is kept, one is added when it sent none; its Connection is
    // replaced by this connection's.
    let (seen, _) = answer(
        get,
        response(
            200,
            &[
                ("content-length", "0"),
                ("date", "Tue, 01 Dec 2026 10:00:00 GMT"),
                ("connection", "close, x-private"),
            ],
        ),
        &[],
    )
    .await;
    assert_eq!(seen.matches("ate: ").count(), 1, "{seen}");
    assert!(seen.contains("Tue, 01 Dec 2026 10:00:00 GMT"));
    assert!(
        !seen.contains("x-private") && seen.contains("Connection: keep-alive\r\n"),
        "{seen}"
    );
    let (seen, _) = answer(get, response(200, &[("content-length", "0")]), &[]).await;
    assert!(
        seen.contains("Date: ") && seen.starts_with("HTTP/1.1 200 OK\r\n"),
        "{seen}"
    );

    // Whether the client's connection serves another request.
    let ok = || response(200, &[("content-length", "0")]);
    for (request, keep) in [
        (&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], true),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: x, Close\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        // The response began before the body was read: the rest cannot be told from a request.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody",
            false,
        ),
    ] {
        let (seen, kept) = answer(request, ok(), &[]).await;
        assert_eq!(kept, keep, "{}", request.escape_ascii());
        let said = if keep {
            "Connection: keep-alive\r\n"
        } else {
            "Connection: close\r\n"
        };
        assert!(seen.contains(said), "{seen}");
    }
}

#[tokio::test]
async fn interim_responses_go_to_http_1_1_clients_and_an_upgrade_takes_the_connection() {
    let expect = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    let (mut conn, mut client) = pair();
    client.write_all(expect).await.unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    inbound
        .write_response_header(Box::new(response(100, &[])))
        .await
        .unwrap();
    assert_eq!(inbound.response_status(), None);
    let mut seen = vec![0u8; 1024];
    let n = client.read(&mut seen).await.unwrap();
    assert_eq!(&seen[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    client.write_all(b"ok").await.unwrap();
    assert_eq!(read_body(&mut inbound).await.unwrap(), b"ok");
    inbound.write_response_header(ok_response(0)).await.unwrap();
    assert!(inbound.finish().await.is_some());

    // HTTP/1.0: no interim response.
    let (seen, _) = answer(b"GET / HTTP/1.0\r\n\r\n", response(100, &[]), &[]).await;
    assert!(seen.is_empty() || !seen.contains("100"), "{seen}");

    // An upgrade: 101 as the application sent it, then bytes both ways, never kept.
    let upgrade =
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nearly";
    let (mut conn, mut client) = pair();
    client.write_all(upgrade).await.unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    assert!(inbound.is_upgrade_req());
    let switching = response(101, &[("connection", "upgrade"), ("upgrade", "websocket")]);
    inbound
        .write_response_header(Box::new(switching))
        .await
        .unwrap();
    assert!(inbound.was_upgraded());
    assert_eq!(
        &inbound.read_body_or_idle(false).await.unwrap().unwrap()[..],
        b"early"
    );
    inbound
        .write_response_body(Bytes::from_static(b"frame"), false)
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = client.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n") && text.ends_with("\r\n\r\nframe"),
        "{text}"
    );
    assert!(
        text.contains("connection: upgrade") || text.contains("Connection: upgrade"),
        "{text}"
    );
    drop(client);
    assert_eq!(inbound.read_body_or_idle(false).await.unwrap(), None);
    assert!(inbound.finish().await.is_none());

    // A 101 for a request that asked for no upgrade is not written.
    let (mut conn, mut client) = pair();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    assert!(inbound
        .write_response_header(Box::new(response(101, &[])))
        .await
        .is_err());
}

#[tokio::test]
async fn a_client_leaving_while_answered_is_seen_and_its_next_request_kept() {
    let (mut conn, mut client) = pair();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    drop(client);
    let e = inbound.read_body_or_idle(true).await.unwrap_err();
    assert_eq!(e.etype(), &ErrorType::ConnectionClosed);

    // Bytes of the next request while this one is answered: kept, not an error.
    let (mut conn, mut client) = pair();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    client.write_all(&NEXT[..10]).await.unwrap();
    let waited =
        tokio::time::timeout(Duration::from_millis(50), inbound.read_body_or_idle(true)).await;
    assert!(
        waited.is_err(),
        "the idle wait ends only when the client leaves"
    );
    inbound.write_response_header(ok_response(0)).await.unwrap();
    let mut conn = inbound.finish().await.unwrap();
    client.write_all(&NEXT[10..]).await.unwrap();
    let next = conn.next_request().await.unwrap().unwrap();
    assert_eq!(next.header.uri.path(), "/next");
}

#[tokio::test(start_paused = true)]
async fn idle_and_slow_clients_are_let_go() {
    // Idle: no byte for IDLE_TIMEOUT: closed quietly.
    let (mut conn, _client) = pair();
    let started = Instant::now();
    assert!(conn.next_request().await.unwrap().is_none());
    assert!(started.elapsed() >= IDLE_TIMEOUT);

    // A header trickling in, a byte every 5 s: the whole of it is due READ_TIMEOUT after its
    // first byte, however often bytes come.
    let (mut conn, mut client) = pair();
    let trickle = tokio::spawn(async move {
        client.write_all(b"GET / HTTP/1.1\r\nX: ").await.unwrap();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if client.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let e = conn.next_request().await.err().unwrap();
    assert_eq!(e.etype(), &ErrorType::ReadTimedout);
    let took = started.elapsed();
    assert!(
        took >= READ_TIMEOUT && took < READ_TIMEOUT + Duration::from_secs(6),
        "{took:?}"
    );
    trickle.abort();

    // A body that stops coming: each read waits READ_TIMEOUT.
    let (mut conn, mut client) = pair();
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let head = conn.next_request().await.unwrap().unwrap();
    let mut inbound = Inbound::new(conn, head);
    let e = read_body(&mut inbound).await.unwrap_err();
    assert_eq!(e.etype(), &ErrorType::ReadTimedout);
}
