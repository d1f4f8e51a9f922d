//! What a hostile visitor can try against the real binary: login floods, cookies with any byte,
//! HTTP/2 cookie crumbs, return paths that normalise into guichet's own pages, cross-site
//! logouts, forged forwarding headers — and, in `hostile_clients_never_disturb_a_live_session`,
//! a bounded mix of malformed and abusive traffic while a signed-in visitor keeps being served.

mod support;

use std::time::Duration;

use support::{echoed, peak_rss_kib, rss_kib, Browser, GatewayOptions, Stack};

#[tokio::test(flavor = "multi_thread")]
async fn a_login_flood_neither_fails_real_logins_nor_grows_memory() {
    let stack = Stack::start("login-flood", GatewayOptions::default()).await;
    // A real visitor starts signing in before the flood...
    let mut alice = Browser::new();
    let confirm = alice.start_login(&stack, "/before-the-flood", 0).await;
    let before = rss_kib(stack.gateway.pid());

    // ...then 4,000 logins with 30 KB return paths from clients that never come back.
    let long = format!("/{}", "a".repeat(30_000));
    let url = format!(
        "{}/.guichet/login?rd={}",
        stack.gateway_url,
        url::form_urlencoded::byte_serialize(long.as_bytes()).collect::<String>()
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut largest = 0;
            for _ in 0..250 {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 302);
                for cookie in response.headers().get_all("set-cookie") {
                    largest = largest.max(cookie.len());
                }
            }
            largest
        }));
    }
    for task in tasks {
        let largest = task.await.unwrap();
        assert!(largest < 4096, "a login cookie of {largest} bytes");
    }
    let grown = rss_kib(stack.gateway.pid()).saturating_sub(before);
    assert!(
        grown < 40 * 1024,
        "4,000 pending logins grew the gateway by {grown} KiB"
    );

    // The real visitor's login completes, to where they were going.
    let done = alice.confirm(&confirm).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/before-the-flood"));
    let page = alice.get(&stack.url("/before-the-flood")).await;
    assert_eq!(page.status, 200);
    assert!(peak_rss_kib(stack.gateway.pid()) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_with_any_byte_keep_the_session_and_reach_the_app_joined() {
    let stack = Stack::start("cookie-bytes", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let session = browser.cookies["guichet"].clone();

    let send = |headers: Vec<reqwest::header::HeaderValue>| {
        let mut request = browser.client.get(stack.url("/x"));
        for value in headers {
            request = request.header("cookie", value);
        }
        request.send()
    };
    let value = |bytes: &[u8]| reqwest::header::HeaderValue::from_bytes(bytes).unwrap();

    // UTF-8 and Latin-1 bytes, before and after the session cookie.
    for header in [
        format!("pref=\u{e9}t\u{e9}; guichet={session}; lang=fr").into_bytes(),
        [
            b"pref=\xe9; guichet=".as_slice(),
            session.as_bytes(),
            b"; lang=fr",
        ]
        .concat(),
    ] {
        let page = send(vec![value(&header)]).await.unwrap();
        assert_eq!(page.status(), 200, "signed in despite a non-ASCII cookie");
        let body = page.text().await.unwrap();
        assert!(!echoed(&body, "x-guichet-sub").is_empty(), "{body}");
        let cookies = echoed(&body, "cookie");
        assert_eq!(cookies.len(), 1, "{body}");
        assert!(cookies[0].starts_with("pref=") && cookies[0].ends_with("; lang=fr"));
        assert!(!cookies[0].contains("guichet"), "{body}");
    }

    // Several Cookie fields (HTTP/1.1 clients that split them) reach the app as one.
    let page = send(vec![
        value(b"a=1"),
        value(format!("guichet={session}").as_bytes()),
        value(b"b=2"),
    ])
    .await
    .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert_eq!(echoed(&body, "cookie"), ["a=1; b=2"], "{body}");

    // HTTP/2 (h2c here): one `cookie` field per cookie, as browsers send them (RFC 9113 §8.2.3).
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::get(format!("http://{address}/x"))
        .body(())
        .unwrap();
    for crumb in [
        "a=1".to_string(),
        format!("guichet={session}"),
        "b=2".into(),
    ] {
        request
            .headers_mut()
            .append("cookie", http::HeaderValue::from_str(&crumb).unwrap());
    }
    let (response, _) = h2.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&text);
    assert_eq!(echoed(&text, "cookie"), ["a=1; b=2"], "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn return_paths_that_normalise_into_guichet_pages_go_home() {
    let stack = Stack::start("return-paths", GatewayOptions::default()).await;
    for evil in [
        "/./.guichet/logout",
        "/x/%2e%2e/.guichet/logout",
        "/x/.%2E/.guichet/logout",
        "/.//evil.example/",
        "/x/../..//evil.example",
    ] {
        let mut browser = Browser::new();
        let login = browser
            .get(&format!(
                "{}/.guichet/login?rd={}",
                stack.gateway_url,
                url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(login.status, 302);
        let page = browser.get(login.location.as_deref().unwrap()).await;
        let confirm = support::confirm_link(&page.body, 0, &stack);
        let done = browser.confirm(&confirm).await;
        assert_eq!(done.status, 302, "{}", done.body);
        assert_eq!(done.location.as_deref(), Some("/"), "{evil}");
        // Still signed in: the return path did not log the visitor out.
        assert_eq!(browser.get(&stack.url("/")).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_needs_a_same_origin_signal() {
    let stack = Stack::start("logout-csrf", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let logout = stack.url("/.guichet/logout");
    let cookie = browser.cookie_header();

    // A link or redirect from another site, a bare request, a cross-site form: a page asks.
    let evil_origin = "http://evil.example";
    let attempts = [
        browser
            .client
            .get(&logout)
            .header("sec-fetch-site", "cross-site"),
        browser
            .client
            .get(&logout)
            .header("sec-fetch-site", "same-site"),
        browser.client.get(&logout),
        browser
            .client
            .get(&logout)
            .header("referer", format!("{evil_origin}/page")),
        browser
            .client
            .get(&logout)
            .header("referer", format!("{}.evil.example/", stack.gateway_url)),
        browser.client.post(&logout).header("origin", evil_origin),
        browser
            .client
            .post(&logout)
            .header("origin", evil_origin)
            .header("sec-fetch-site", "cross-site"),
    ];
    for attempt in attempts {
        let page = attempt.header("cookie", &cookie).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let body = page.text().await.unwrap();
        assert!(body.contains("Se déconnecter ?"), "{body}");
        assert!(body.contains("method=\"post\" action=\"/.guichet/logout\""));
        assert_eq!(
            browser.get(&stack.url("/")).await.status,
            200,
            "still signed in"
        );
    }

    // The confirmation button: a POST from guichet's own origin.
    let confirmed = browser
        .client
        .post(&logout)
        .header("cookie", &cookie)
        .header("origin", &stack.gateway_url)
        .send()
        .await
        .unwrap();
    let confirmed = browser.read(confirmed).await;
    assert_eq!(confirmed.status, 302, "{}", confirmed.body);
    assert!(!browser.cookies.contains_key("guichet"));
    let page = browser
        .client
        .get(stack.url("/"))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 302, "the session has ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_application_sees_pinned_forwarding_headers() {
    for trusted in [false, true] {
        let stack = Stack::start(
            if trusted {
                "forwarded-trusted"
            } else {
                "forwarded"
            },
            GatewayOptions {
                server_extra: if trusted {
                    "trusted_proxies = [\"127.0.0.0/8\"]\n".into()
                } else {
                    String::new()
                },
                ..GatewayOptions::default()
            },
        )
        .await;
        let mut browser = Browser::new();
        assert_eq!(browser.login(&stack, "/").await.status, 200);
        let page = browser
            .get_with(
                &stack.url("/x"),
                &[
                    ("host", "evil.example"),
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-host", "evil.example"),
                    ("x-forwarded-proto", "https"),
                    ("forwarded", "for=6.6.6.6;host=evil.example"),
                    ("x-real-ip", "6.6.6.6"),
                    ("x-original-url", "/admin"),
                    ("x-rewrite-url", "/admin"),
                    ("true-client-ip", "6.6.6.6"),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let public_host = stack.gateway_url.trim_start_matches("http://");
        assert_eq!(echoed(&page.body, "host"), [public_host]);
        assert_eq!(echoed(&page.body, "x-forwarded-host"), [public_host]);
        assert_eq!(echoed(&page.body, "x-forwarded-proto"), ["http"]);
        for gone in [
            "forwarded",
            "x-original-url",
            "x-rewrite-url",
            "true-client-ip",
        ] {
            assert!(echoed(&page.body, gone).is_empty(), "{gone}: {}", page.body);
        }
        if trusted {
            assert_eq!(
                echoed(&page.body, "x-forwarded-for"),
                ["6.6.6.6, 127.0.0.1"]
            );
            assert_eq!(echoed(&page.body, "x-real-ip"), ["6.6.6.6"]);
        } else {
            assert_eq!(echoed(&page.body, "x-forwarded-for"), ["127.0.0.1"]);
            assert_eq!(echoed(&page.body, "x-real-ip"), ["127.0.0.1"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bare_query_items_are_not_logged() {
    let stack = Stack::start("log-query", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let page = browser
        .get(&stack.url("/reset?Tok3nS3cretBareItem&id=V4lueS3cret"))
        .await;
    assert_eq!(page.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = stack.gateway.log_text();
    assert!(log.contains("/reset?_&id="), "{log}");
    assert!(
        !log.contains("Tok3nS3cret") && !log.contains("V4lueS3cret"),
        "{log}"
    );
}

/// Sends raw bytes on a fresh connection and returns the status line of the answer, if any
/// (the connection may be closed instead: both are fine for garbage).
async fn raw(address: &str, bytes: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let _ = stream.write_all(bytes).await;
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    text.lines().next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_clients_never_disturb_a_live_session() {
    let stack = Stack::start("hostile", GatewayOptions::default()).await;
    let mut alice = Browser::new();
    assert_eq!(alice.login(&stack, "/").await.status, 200);
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    let before = rss_kib(stack.gateway.pid());

    // Alice keeps working while the attacks run: one request every 50 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let client = alice.client.clone();
        let cookie = alice.cookie_header();
        let url = stack.url("/x");
        tokio::spawn(async move {
            let (mut served, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get(&url).header("cookie", &cookie).send().await {
                    Ok(r) if r.status() == 200 => served += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (served, failed)
        })
    };

    // Slow clients: 200 connections sending a header a byte at a time, for 3 s.
    let slow: Vec<_> = (0..200)
        .map(|_| {
            let address = address.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
                    return;
                };
                let started = std::time::Instant::now();
                let _ = stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await;
                while started.elapsed() < Duration::from_secs(3) {
                    if stream.write_all(b"a").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            })
        })
        .collect();

    // Malformed and oversized requests, invalid UTF-8 everywhere.
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let many_headers: String = (0..5_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_headers = format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n");
    let garbage: Vec<Vec<u8>> = vec![
        big_header.into_bytes(),
        many_headers.into_bytes(),
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\nCookie: guichet=\xff\xff; a=\x80\r\n\r\n".to_vec(),
        b"GET /.guichet/login?rd=%ff%fe%00 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /.guichet/callback?state=%ff&code=%fe HTTP/1.1\r\nHost: x\r\nCookie: guichet-login-%ff=\xff\r\n\r\n".to_vec(),
        b"GET /.guichet/logout HTTP/1.1\r\nHost: x\r\nSec-Fetch-Site: \xff\r\nOrigin: \xfe\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xff\xfe\r\nX-Forwarded-For: \xff\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage".to_vec(),
        vec![0u8; 10_000],
        b"\r\n\r\n\r\n".to_vec(),
    ];
    let sent: Vec<_> = (0..5)
        .flat_map(|_| garbage.iter().cloned())
        .map(|bytes| {
            let address = address.clone();
            tokio::spawn(async move { raw(&address, &bytes).await })
        })
        .collect();
    for answer in sent {
        if let Some(line) = answer.await.unwrap() {
            assert!(!line.starts_with("HTTP/1.1 5"), "a 5xx for garbage: {line}");
        }
    }

    // Thousands of cookies beside the session, and a session cookie made of other bytes.
    let cookie = alice.cookies["guichet"].clone();
    let mut jar: String = (0..3_000).map(|i| format!("c{i}=v{i}; ")).collect();
    jar.push_str(&format!("guichet={cookie}"));
    let page = alice
        .client
        .get(stack.url("/x"))
        .header("cookie", jar)
        .send()
        .await
        .unwrap();
    assert!(
        page.status() == 200 || page.status().is_client_error(),
        "{}",
        page.status()
    );

    // HTTP/2: many streams on one connection, most reset by the client right away.
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let mut kept = Vec::new();
    for i in 0..1_000 {
        let request = http::Request::get(format!("http://{address}/x?{i}"))
            .header("cookie", format!("guichet={cookie}"))
            .body(())
            .unwrap();
        h2 = match h2.ready().await {
            Ok(ready) => ready,
            Err(_) => break,
        };
        let Ok((response, _)) = h2.send_request(request, true) else {
            break;
        };
        if i % 10 == 0 {
            kept.push(response);
        } // else dropped: the stream is reset (RST_STREAM CANCEL).
    }
    for response in kept {
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(5), response).await {
            assert!(
                !response.status().is_server_error(),
                "{}",
                response.status()
            );
        }
    }

    for task in slow {
        let _ = task.await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (served, failed) = watcher.await.unwrap();
    assert!(
        failed.is_empty(),
        "Alice was refused during the attacks: {failed:?}"
    );
    assert!(served > 20, "{served} requests served to Alice");
    assert_eq!(alice.get(&stack.url("/x")).await.status, 200);

    let log = stack.gateway.log_text();
    assert!(!log.contains("panicked"), "{log}");
    let grown = rss_kib(stack.gateway.pid()).saturating_sub(before);
    assert!(
        grown < 100 * 1024,
        "the attacks grew the gateway by {grown} KiB"
    );
}
