//! HTTP/1.1 on the wire through the gateway's own proxy loop: what reaches the application of
//! the client's framing and connection headers, what reaches the client of the application's,
//! and a request sent again when the application closed a pooled connection. Each test drives
//! the real binary with raw bytes, against a scripted application that records what it read.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Browser, GatewayOptions, Stack};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the scripted application behaves.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    /// Answers the first request of each connection (keep-alive) and closes the connection,
    /// unanswered, when a second request arrives on it: what a pooled connection looks like
    /// when the application closed it at the moment guichet reused it.
    DropSecond,
    /// `100 Continue` when asked; `/unframed`: a response without length, ended by closing;
    /// `/hang`: no answer, the connection left open; `HEAD`: a length and no body; else what
    /// it read (framing, length, byte sum, head).
    Plain,
    /// Sends its whole response ([`ANSWER_FIRST`] bytes) before it reads any of the request's
    /// body, then reads the body: an application that answers while it reads. An upgrade:
    /// `101`, the client's first byte read, then the same.
    AnswerFirst,
    /// `POST`: answers `ok` as soon as it has read the request's head, then holds the
    /// connection open for a minute without reading the body. Else as `Plain`.
    AnswerNoRead,
}

/// The length of [`Script::AnswerFirst`]'s response, and of the body sent to it: more than
/// loopback sockets hold.
const ANSWER_FIRST: usize = 40 * 1024 * 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// What the scripted application read: one line per request, `answered <request line>` or
/// `dropped <request line>`.
type Seen = Arc<Mutex<Vec<String>>>;

async fn start_scripted(script: Script) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve(stream, script, record.clone()));
        }
    });
    (address, seen)
}

/// A request as the scripted application read it.
struct Read {
    line: String,
    head: String,
    framing: &'static str,
    body: Vec<u8>,
}

async fn read_request(
    reader: &mut BufReader<TcpStream>,
    before_body: impl AsyncFnOnce(&mut BufReader<TcpStream>, &str, &str),
) -> Option<Read> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut head = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        if header.trim_end().is_empty() {
            break;
        }
        head.push_str(&header.trim_end().to_ascii_lowercase());
        head.push('\n');
    }
    before_body(reader, &line, &head).await;
    let value = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    let mut body = Vec::new();
    let framing = if value("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end).await.ok()?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await.ok()?;
            body.extend_from_slice(&chunk[..size]);
        }
        "chunked"
    } else if let Some(length) = value("content-length") {
        body = vec![0; length.parse().ok()?];
        reader.read_exact(&mut body).await.ok()?;
        "length"
    } else {
        "none"
    };
    Some(Read {
        line: line.trim_end().to_string(),
        head,
        framing,
        body,
    })
}

async fn serve(stream: TcpStream, script: Script, seen: Seen) {
    let mut reader = BufReader::new(stream);
    let mut served = 0;
    loop {
        let continued = async |reader: &mut BufReader<TcpStream>, line: &str, head: &str| {
            if script == Script::Plain && head.contains("expect: 100-continue\n") {
                let _ = reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .await;
            }
            if script == Script::AnswerNoRead && line.starts_with("POST ") {
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                let _ = reader.get_mut().write_all(answer).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            if script == Script::AnswerFirst {
                let answer = if head.contains("upgrade: websocket\n") {
                    // The rest once the client's bytes start (below).
                    b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n".to_vec()
                } else {
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {ANSWER_FIRST}\r\n\r\n");
                    [head.into_bytes(), pattern(ANSWER_FIRST)].concat()
                };
                let _ = reader.get_mut().write_all(&answer).await;
            }
        };
        let Some(request) = read_request(&mut reader, continued).await else {
            return;
        };
        if script == Script::DropSecond && served == 1 {
            seen.lock()
                .unwrap()
                .push(format!("dropped {}", request.line));
            return;
        }
        served += 1;
        if script == Script::AnswerFirst {
            let mut request = request;
            if request.head.contains("upgrade: websocket\n") {
                // After the 101: the client's first byte, then the whole answer, then the
                // rest of the client's bytes (as many as the answer's).
                request.body = vec![0; ANSWER_FIRST];
                if reader.read_exact(&mut request.body[..1]).await.is_err()
                    || reader
                        .get_mut()
                        .write_all(&pattern(ANSWER_FIRST))
                        .await
                        .is_err()
                    || reader.read_exact(&mut request.body[1..]).await.is_err()
                {
                    return;
                }
                request.framing = "upgraded";
            }
            let sum: u64 = request.body.iter().map(|b| u64::from(*b)).sum();
            seen.lock().unwrap().push(format!(
                "answered {} first, then read framing={} length={} sum={sum}",
                request.line,
                request.framing,
                request.body.len()
            ));
            continue;
        }
        seen.lock()
            .unwrap()
            .push(format!("answered {}", request.line));
        let answer = if request.line.starts_with("HEAD ") {
            "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n".to_string()
        } else if request.line.contains(" /hang") {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        } else if request.line.contains(" /conflicting-length") {
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!".to_string()
        } else if request.line.contains(" /gzip-coded") {
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxyz".to_string()
        } else if request.line.contains(" /unframed") {
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nno length, ended by closing")
                .await;
            return;
        } else {
            let sum: u64 = request.body.iter().map(|b| u64::from(*b)).sum();
            let body = format!(
                "{}\nframing={} length={} sum={sum}\n{}",
                request.line,
                request.framing,
                request.body.len(),
                request.head
            );
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A response as the client reads it.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
}

/// Reads one response (after any 1xx) from `reader`: its head, and a body framed by length or
/// chunks (`HEAD`: none).
async fn read_response(reader: &mut BufReader<TcpStream>, head_only: bool) -> Response {
    let read = async {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await.unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line: {status_line:?}"));
        let mut head = String::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await.unwrap();
            if header.trim_end().is_empty() {
                break;
            }
            head.push_str(&header.trim_end().to_ascii_lowercase());
            head.push('\n');
        }
        let value = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_string)
        };
        let mut body = Vec::new();
        if head_only || status < 200 {
        } else if value("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).await.unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).await.unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = value("content-length") {
            body = vec![0; length.parse().unwrap()];
            reader.read_exact(&mut body).await.unwrap();
        } else {
            reader.read_to_end(&mut body).await.unwrap();
        }
        Response {
            status,
            head,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

/// A stack in front of the scripted application, and a signed-in visitor's cookie header.
async fn signed_in(name: &str, script: Script) -> (Stack, String, Seen) {
    signed_in_with(name, script, "").await
}

/// The same, with `server_extra` in `[server]`.
async fn signed_in_with(name: &str, script: Script, server_extra: &str) -> (Stack, String, Seen) {
    let (upstream, seen) = start_scripted(script).await;
    let stack = Stack::start(
        name,
        GatewayOptions {
            upstream: Some(upstream),
            server_extra: server_extra.into(),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let cookie = browser.cookie_header();
    (stack, cookie, seen)
}

async fn connect(stack: &Stack) -> BufReader<TcpStream> {
    let address = stack.direct_url.trim_start_matches("http://");
    BufReader::new(TcpStream::connect(address).await.unwrap())
}

/// Sends `request` (raw bytes) on a new connection and reads its response.
async fn send_raw(stack: &Stack, request: &str) -> (BufReader<TcpStream>, Response) {
    let mut client = connect(stack).await;
    client
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let response = read_response(&mut client, false).await;
    (client, response)
}

/// Sends one request without a body on `connection` and reads its response.
async fn exchange(
    connection: &mut BufReader<TcpStream>,
    method: &str,
    target: &str,
    cookie: &str,
    extra: &str,
) -> Response {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: gateway.test\r\ncookie: {cookie}\r\n{extra}\r\n"
    );
    connection
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    read_response(connection, method == "HEAD").await
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_on_connections_the_application_closed_are_sent_again_only_when_safe() {
    let (stack, cookie, seen) = signed_in("stale-pool", Script::DropSecond).await;
    let count = |line: &str| seen.lock().unwrap().iter().filter(|l| *l == line).count();
    // Each worker thread keeps its own idle connections: a request usually finds the one its
    // connection's previous request left, which the application closes on it.
    let mut client = connect(&stack).await;
    let _ = exchange(&mut client, "GET", "/fill-the-pool", &cookie, "").await;
    let mut resent = 0;
    for (n, method) in [
        "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "GET", "GET", "HEAD",
    ]
    .iter()
    .enumerate()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let target = format!("/idempotent-{n}");
        let response = exchange(&mut client, method, &target, &cookie, "").await;
        assert_eq!(response.status, 200, "{method}: {response:?}");
        let line = format!("{method} {target} HTTP/1.1");
        assert_eq!(
            count(&format!("answered {line}")),
            1,
            "{method} answered once"
        );
        resent += count(&format!("dropped {line}"));
    }
    assert!(
        resent > 0,
        "no request met a connection the application closed"
    );

    // POST and PATCH may have been acted on, and a request with a body has had it taken from
    // the client: when they meet a closed connection they are not sent again — a 502 page.
    for (method, body) in [
        ("POST", "content-length: 5\r\n\r\nhello"),
        ("PATCH", "content-length: 0\r\n"),
        ("PUT", "content-length: 5\r\n\r\nhello"),
    ] {
        let mut met = false;
        for attempt in 0..20 {
            let _ = exchange(&mut client, "GET", "/fill-the-pool", &cookie, "").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let target = format!("/unsafe-{attempt}");
            let response = exchange(&mut client, method, &target, &cookie, body).await;
            let line = format!("{method} {target} HTTP/1.1");
            if count(&format!("dropped {line}")) == 1 {
                assert_eq!(response.status, 502, "{method}: {response:?}");
                assert!(response.body.contains("Application injoignable"));
                assert_eq!(count(&format!("answered {line}")), 0, "{method} sent again");
                met = true;
                // The 502 closes the client's connection.
                client = connect(&stack).await;
                break;
            }
            assert_eq!(response.status, 200, "{method}: {response:?}");
            assert_eq!(count(&format!("answered {line}")), 1);
        }
        assert!(
            met,
            "{method} never met a connection the application closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_headers_stay_with_the_connection() {
    let (stack, cookie, seen) = signed_in("hop-by-hop", Script::Plain).await;
    let mut client = connect(&stack).await;
    let response = exchange(
        &mut client,
        "GET",
        "/hop",
        &cookie,
        "connection: keep-alive, X-Private, x-other\r\nx-private: secret\r\nx-other: 1\r\n\
         keep-alive: timeout=300\r\nte: trailers\r\ntrailer: x-t\r\nproxy-authorization: Basic eDp5\r\n\
         proxy-connection: keep-alive\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\n\
         x-kept: yes\r\n",
    )
    .await;
    assert_eq!(response.status, 200, "{response:?}");
    let app = &response.body;
    assert!(app.contains("\nx-kept: yes\n"), "{app}");
    for gone in [
        "x-private",
        "x-other",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "http2-settings",
    ] {
        assert!(
            !app.contains(&format!("\n{gone}: ")),
            "{gone} reached the app: {app}"
        );
    }
    // The client's connection is still usable.
    let again = exchange(&mut client, "GET", "/again", &cookie, "").await;
    assert_eq!(again.status, 200);

    // A Connection header that would remove what guichet sets, or is not a list of names, is
    // refused before anything reaches the application.
    let too_many = (0..17)
        .map(|n| format!("x-{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    for connection in [
        "host",
        "Host",
        "x-forwarded-for",
        "X-Forwarded-Proto",
        "x-forwarded-host",
        "\"x-private\"",
        "x-a x-b",
        too_many.as_str(),
    ] {
        let mut client = connect(&stack).await;
        let response = exchange(
            &mut client,
            "GET",
            "/refused",
            &cookie,
            &format!("connection: {connection}\r\n"),
        )
        .await;
        assert_eq!(
            response.status, 400,
            "connection: {connection}: {response:?}"
        );
    }
    let reached = seen
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains(" /refused "));
    assert!(!reached, "a refused request reached the application");
}

#[tokio::test(flavor = "multi_thread")]
async fn absolute_form_targets_reach_the_application_as_paths() {
    let (stack, cookie, _) = signed_in("absolute-form", Script::Plain).await;
    let public_host = stack.direct_url.trim_start_matches("http://").to_string();
    // (pingora refuses an absolute form whose host is not the `Host` header's: 400.)
    for (target, host, path) in [
        ("http://evil.example/abs?q=1", "evil.example", "/abs?q=1"),
        ("http://evil.example", "evil.example", "/"),
        ("https://evil.example?x=1", "evil.example", "/?x=1"),
        ("http://evil.example:8080/a/b", "evil.example:8080", "/a/b"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\ncookie: {cookie}\r\n\r\n");
        let (_, response) = send_raw(&stack, &request).await;
        assert_eq!(response.status, 200, "{target}: {response:?}");
        assert!(
            response.body.starts_with(&format!("GET {path} HTTP/1.1\n")),
            "{target}: {}",
            response.body
        );
        assert!(
            response.body.contains(&format!("\nhost: {public_host}\n")),
            "{target}: {}",
            response.body
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_stream_with_their_framing_and_expect_continue() {
    let (stack, cookie, _) = signed_in("uploads", Script::Plain).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();

    // Chunked, with Expect: the application's 100 Continue reaches the client, which sends
    // the body only then; the application reads it chunked.
    for chunked in [true, false] {
        let mut client = connect(&stack).await;
        let framing = if chunked {
            "transfer-encoding: chunked\r\n".to_string()
        } else {
            format!("content-length: {}\r\n", body.len())
        };
        let head = format!(
            "POST /upload HTTP/1.1\r\nhost: gateway.test\r\ncookie: {cookie}\r\n\
             expect: 100-continue\r\n{framing}\r\n"
        );
        client.get_mut().write_all(head.as_bytes()).await.unwrap();
        let mut interim = String::new();
        client.read_line(&mut interim).await.unwrap();
        assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
        let mut blank = String::new();
        client.read_line(&mut blank).await.unwrap();
        for piece in body.chunks(70_000) {
            if chunked {
                // The size line alone first: the gateway reads a piece of framing without data.
                let size = format!("{:x}\r\n", piece.len());
                client.get_mut().write_all(size.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                client.get_mut().write_all(piece).await.unwrap();
                client.get_mut().write_all(b"\r\n").await.unwrap();
            } else {
                client.get_mut().write_all(piece).await.unwrap();
            }
        }
        if chunked {
            client.get_mut().write_all(b"0\r\n\r\n").await.unwrap();
        }
        let response = read_response(&mut client, false).await;
        assert_eq!(response.status, 200, "{response:?}");
        let expected = format!(
            "framing={} length={} sum={sum}\n",
            if chunked { "chunked" } else { "length" },
            body.len()
        );
        assert!(response.body.contains(&expected), "{}", response.body);
        let again = exchange(&mut client, "GET", "/after-upload", &cookie, "").await;
        assert_eq!(again.status, 200);
    }

    // Both a length and chunked (a request smuggling shape): never both to the application.
    let request = format!(
        "POST /both HTTP/1.1\r\nhost: gateway.test\r\ncookie: {cookie}\r\n\
         content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let (_, response) = send_raw(&stack, &request).await;
    if response.status == 200 {
        assert!(
            response.body.contains("framing=chunked length=5 "),
            "{}",
            response.body
        );
        assert!(
            !response.body.contains("\ncontent-length: "),
            "{}",
            response.body
        );
    } else {
        assert_eq!(response.status, 400, "{response:?}");
    }
}

/// An application that sends its response before it reads the request's body, a body and a
/// response each larger than what sockets hold: both move at once through the gateway, whose
/// writes to the application never keep it from reading the answer (else each side waits for
/// the other until a time-out). A body framed by length, one chunked, and the bytes of an
/// upgraded connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_and_its_response_move_at_once() {
    // With tokio's work stealing on (every other test runs with the default, off): a request's
    // task may move between threads while both directions are in flight.
    let (stack, cookie, seen) =
        signed_in_with("answer-first", Script::AnswerFirst, "work_stealing = true").await;
    let before = support::peak_rss_kib(stack.gateway.pid());
    let body = Arc::new(pattern(ANSWER_FIRST));
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    for framing in ["length", "chunked", "upgraded"] {
        let (mut from_gateway, mut to_gateway) = connect(&stack).await.into_inner().into_split();
        let (method, headers) = match framing {
            "length" => ("POST", format!("content-length: {ANSWER_FIRST}\r\n")),
            "chunked" => ("POST", "transfer-encoding: chunked\r\n".to_string()),
            _ => (
                "GET",
                "connection: upgrade\r\nupgrade: websocket\r\n".to_string(),
            ),
        };
        let head = format!(
            "{method} /answer-first HTTP/1.1\r\nhost: gateway.test\r\ncookie: {cookie}\r\n{headers}\r\n"
        );
        to_gateway.write_all(head.as_bytes()).await.unwrap();
        let upload = body.clone();
        let send = async move {
            for piece in upload.chunks(256 * 1024) {
                if framing == "chunked" {
                    let size = format!("{:x}\r\n", piece.len());
                    to_gateway.write_all(size.as_bytes()).await?;
                    to_gateway.write_all(piece).await?;
                    to_gateway.write_all(b"\r\n").await?;
                } else {
                    to_gateway.write_all(piece).await?;
                }
            }
            if framing == "chunked" {
                to_gateway.write_all(b"0\r\n\r\n").await?;
            }
            Ok::<_, std::io::Error>(to_gateway)
        };
        // The body goes at once, or, for an upgrade, once the 101 is read.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            if framing == "upgraded" {
                rx.await.expect("a 101");
            }
            send.await
        });
        let mut tx = Some(tx);
        let read = async {
            let mut received = Vec::with_capacity(ANSWER_FIRST + 4096);
            let mut buffer = vec![0u8; 256 * 1024];
            let head_end = loop {
                let n = from_gateway.read(&mut buffer).await.unwrap();
                assert!(n > 0, "closed after {} bytes", received.len());
                received.extend_from_slice(&buffer[..n]);
                if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
            };
            let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
            if framing == "upgraded" {
                assert!(head.starts_with("http/1.1 101"), "{head}");
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            } else {
                assert!(head.starts_with("http/1.1 200"), "{head}");
                let length = format!("content-length: {ANSWER_FIRST}\r\n");
                assert!(head.contains(&length), "{head}");
            }
            while received.len() < head_end + ANSWER_FIRST {
                let n = from_gateway.read(&mut buffer).await.unwrap();
                assert!(n > 0, "closed after {} bytes", received.len());
                received.extend_from_slice(&buffer[..n]);
            }
            received.split_off(head_end)
        };
        let answer = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .unwrap_or_else(|_| panic!("{framing}: the whole response within 60 s"));
        assert!(
            answer == pattern(ANSWER_FIRST),
            "{framing}: the response changed"
        );
        tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .unwrap_or_else(|_| panic!("{framing}: the whole body sent within 60 s"))
            .unwrap()
            .expect("the gateway read the whole body");
        assert_read_after_answer(&seen, method, framing, sum).await;
    }
    assert_bounded(&stack, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_reach_the_client_framed_and_the_connection_stays() {
    let (stack, cookie, _) = signed_in("response-framing", Script::Plain).await;
    let mut client = connect(&stack).await;
    // Ended by the application closing: chunked to the client, whose connection goes on.
    let unframed = exchange(&mut client, "GET", "/unframed", &cookie, "").await;
    assert_eq!(unframed.status, 200);
    assert_eq!(unframed.body, "no length, ended by closing");
    assert!(
        unframed.head.contains("transfer-encoding: chunked\n"),
        "{}",
        unframed.head
    );
    // HEAD: the length the application said, no body; the next response is read whole.
    let head = exchange(&mut client, "HEAD", "/", &cookie, "").await;
    assert_eq!(head.status, 200);
    assert!(head.head.contains("content-length: 42\n"), "{}", head.head);
    let next = exchange(&mut client, "GET", "/after-head", &cookie, "").await;
    assert_eq!(next.status, 200);
    assert!(
        next.body.starts_with("GET /after-head HTTP/1.1\n"),
        "{}",
        next.body
    );

    // An HTTP/1.0 client does not know chunks: it reads the body to the connection's end.
    let mut old = connect(&stack).await;
    let request =
        format!("GET /unframed HTTP/1.0\r\nhost: gateway.test\r\ncookie: {cookie}\r\n\r\n");
    old.get_mut().write_all(request.as_bytes()).await.unwrap();
    let unframed = read_response(&mut old, false).await;
    assert_eq!(unframed.status, 200);
    assert_eq!(unframed.body, "no length, ended by closing");
    assert!(
        !unframed.head.contains("transfer-encoding"),
        "{}",
        unframed.head
    );
}

/// A response whose framing cannot be trusted (conflicting lengths, a coding other than
/// chunked) is not passed on: the client gets the 502 page, and the next request is served.
#[tokio::test(flavor = "multi_thread")]
async fn responses_with_untrustworthy_framing_give_the_502_page() {
    let (stack, cookie, _) = signed_in("response-untrusted", Script::Plain).await;
    for path in ["/conflicting-length", "/gzip-coded"] {
        let mut client = connect(&stack).await;
        let page = exchange(&mut client, "GET", path, &cookie, "").await;
        assert_eq!(page.status, 502, "{path}: {page:?}");
        assert!(!page.body.contains("hello"), "{path}: {page:?}");
        let mut client = connect(&stack).await;
        let next = exchange(&mut client, "GET", "/next", &cookie, "").await;
        assert_eq!(next.status, 200, "after {path}: {next:?}");
    }
}

/// Upgrades many at once, each on its own connection: every one echoes on its first try (the
/// `101` and the request's end are never confused, whichever the loop reads first).
#[tokio::test(flavor = "multi_thread")]
async fn every_websocket_upgrade_echoes_on_its_first_try() {
    let stack = Stack::start("websocket-burst", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let address = stack.direct_url.trim_start_matches("http://").to_string();
    let cookie = browser.cookie_header();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (address, cookie) = (address.clone(), cookie.clone());
        clients.spawn(async move {
            for _ in 0..10 {
                support::assert_websocket_echoes(&address, &cookie).await;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("80 upgrades, each echoing");
    }
}

/// An application that does not answer within `[upstream] read_timeout` (5 s here): the 504
/// page, and the client's next connection is served.
#[tokio::test(flavor = "multi_thread")]
async fn an_application_too_slow_gives_the_504_page() {
    let (stack, cookie, seen) = signed_in("too-slow", Script::Plain).await;
    let mut client = connect(&stack).await;
    let response = exchange(&mut client, "GET", "/hang", &cookie, "").await;
    assert_eq!(response.status, 504, "{response:?}");
    assert!(
        response.body.contains("Application trop lente"),
        "{}",
        response.body
    );
    assert!(
        response.head.contains("connection: close\n"),
        "{}",
        response.head
    );
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" /hang "))
            .count(),
        1,
        "a request that timed out is not sent again"
    );
    let mut client = connect(&stack).await;
    let next = exchange(&mut client, "GET", "/after-timeout", &cookie, "").await;
    assert_eq!(next.status, 200);
}

/// An application that answers and then never reads the request's body: the client gets the
/// answer, and the gateway gives up the rest of the body within the upstream's `read_timeout`
/// (5 s here) and closes the client's connection, instead of holding both connections open for
/// as long as the application does.
#[tokio::test(flavor = "multi_thread")]
async fn an_application_that_stops_reading_the_body_does_not_hold_the_exchange() {
    let (stack, cookie, _) = signed_in("answer-no-read", Script::AnswerNoRead).await;
    let (mut from_gateway, mut to_gateway) = connect(&stack).await.into_inner().into_split();
    let head = format!(
        "POST /no-read HTTP/1.1\r\nhost: gateway.test\r\ncookie: {cookie}\r\n\
         content-length: {ANSWER_FIRST}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        to_gateway.write_all(head.as_bytes()).await?;
        to_gateway.write_all(&pattern(ANSWER_FIRST)).await
    });
    let started = tokio::time::Instant::now();
    let read = async {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match from_gateway.read(&mut buffer).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    let received = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the gateway closes the connection within 30 s");
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.ends_with("\r\n\r\nok"), "{received}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed after {:?}, before the read time-out",
        started.elapsed()
    );
    assert!(writer.await.unwrap().is_err(), "the whole body was taken");
}

/// The [`Script::AnswerFirst`] application read the whole body (`framing`, byte sum `sum`)
/// after its answer, within 30 s.
async fn assert_read_after_answer(seen: &Seen, method: &str, framing: &str, sum: u64) {
    let expected = format!(
        "answered {method} /answer-first HTTP/1.1 first, then read framing={framing} \
         length={ANSWER_FIRST} sum={sum}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.lock().unwrap().contains(&expected) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{framing}: the application did not read the body: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the gateway holds of a body the application does not take yet is bounded: its peak
/// memory grows far less than the 40 MiB that went each way.
fn assert_bounded(stack: &Stack, before: u64) {
    let after = support::peak_rss_kib(stack.gateway.pid());
    assert!(before > 0 && after > 0);
    assert!(
        after - before < 24 * 1024,
        "gateway peak memory grew by {} KiB",
        after - before
    );
}

/// The same over HTTP/2 (h2c): a request body and its response move at once.
#[tokio::test(flavor = "multi_thread")]
async fn over_http2_a_body_and_its_response_move_at_once() {
    let (stack, cookie, seen) = signed_in("answer-first-h2", Script::AnswerFirst).await;
    let before = support::peak_rss_kib(stack.gateway.pid());
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let body = pattern(ANSWER_FIRST);
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    let exchange = async {
        let response = client
            .post(format!("{}/answer-first", stack.direct_url))
            .header("cookie", &cookie)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap()
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("the whole exchange within 60 s");
    assert!(answer == pattern(ANSWER_FIRST), "the response changed");
    assert_read_after_answer(&seen, "POST", "length", sum).await;
    assert_bounded(&stack, before);
}

/// Requests whose framing two HTTP parsers could read differently (the request-smuggling
/// class) are refused with the status that says why, the connection closed after it, and
/// nothing of them reaches the application; requests pipelined on one connection are answered
/// in order.
#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_requests_never_reach_the_application_and_pipelined_ones_are_answered() {
    let (stack, cookie, seen) = signed_in("ambiguous", Script::Plain).await;
    let head = |line: &str, extra: &str| {
        format!("{line}\r\nhost: gateway.test\r\ncookie: {cookie}\r\n{extra}\r\n")
    };
    let inner = "GET /smuggled-inner HTTP/1.1\r\nhost: gateway.test\r\n\r\n";
    let cases = [
        (
            head(
                "POST /smuggled HTTP/1.1",
                "content-length: 44\r\ntransfer-encoding: chunked\r\n",
            ) + "0\r\n\r\n"
                + inner,
            400,
        ),
        (
            head(
                "POST /smuggled HTTP/1.1",
                "transfer-encoding: gzip, chunked\r\n",
            ) + "0\r\n\r\n",
            501,
        ),
        (
            head(
                "POST /smuggled HTTP/1.1",
                "transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n",
            ) + "0\r\n\r\n",
            501,
        ),
        (
            head("POST /smuggled HTTP/1.0", "transfer-encoding: chunked\r\n") + "0\r\n\r\n",
            400,
        ),
        (
            head(
                "POST /smuggled HTTP/1.1",
                "content-length: 5\r\ncontent-length: 50\r\n",
            ) + "hello",
            400,
        ),
        (
            head("POST /smuggled HTTP/1.1", "transfer-encoding : chunked\r\n") + "0\r\n\r\n",
            400,
        ),
        (
            head(
                "GET /smuggled HTTP/1.1",
                "x-folded: a\r\n transfer-encoding: chunked\r\n",
            ),
            400,
        ),
        (
            head("GET /smuggled HTTP/1.1", "host: elsewhere.test\r\n"),
            400,
        ),
        (
            head(
                "GET /smuggled HTTP/1.1",
                &format!("x-big: {}\r\n", "a".repeat(70 * 1024)),
            ),
            431,
        ),
    ];
    for (request, status) in &cases {
        let (mut client, response) = send_raw(&stack, request).await;
        let shown = request.escape_debug().to_string();
        let shown = &shown[..shown.len().min(200)];
        assert_eq!(response.status, *status, "{shown}");
        assert!(response.head.contains("connection: close\n"), "{shown}");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest));
        assert!(matches!(closed.await, Ok(Ok(0))), "{shown}: {rest:?}");
    }
    // Pipelined: three requests in one write, three answers in order on the same connection.
    let mut client = connect(&stack).await;
    let three: String = ["/p1", "/p2", "/p3"]
        .iter()
        .map(|path| head(&format!("GET {path} HTTP/1.1"), ""))
        .collect();
    client.get_mut().write_all(three.as_bytes()).await.unwrap();
    for path in ["/p1", "/p2", "/p3"] {
        let response = read_response(&mut client, false).await;
        assert_eq!(response.status, 200, "{path}");
        let line = format!("GET {path} HTTP/1.1\n");
        assert!(
            response.body.starts_with(&line),
            "{path}: {}",
            response.body
        );
    }
    let seen = seen.lock().unwrap();
    assert!(
        !seen.iter().any(|line| line.contains("smuggled")),
        "{seen:?}"
    );
}
