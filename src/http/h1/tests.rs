use super::*;

fn request(target: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut request = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
    for (name, value) in headers {
        request.append_header(name.to_string(), *value).unwrap();
    }
    request
}

#[test]
fn hop_by_hop_headers_and_those_connection_names_are_removed() {
    let mut all: Vec<(&str, &str)> = HOP_BY_HOP.iter().map(|n| (n.as_str(), "x")).collect();
    all.retain(|(n, _)| *n != "connection");
    all.extend([
        ("connection", "keep-alive, X-One"),
        ("connection", "x-two ,, Upgrade"),
        ("x-one", "1"),
        ("x-two", "2"),
        ("x-kept", "3"),
        ("cookie", "a=b"),
    ]);
    let mut upstream = request("/", &all).headers.clone();
    strip_hop_by_hop(&mut upstream).unwrap();
    let mut left: Vec<&str> = upstream.keys().map(|n| n.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["cookie", "x-kept"]);
}

#[test]
fn a_connection_header_naming_what_guichet_sets_or_not_names_is_refused() {
    let many = (0..=CONNECTION_NAMES)
        .map(|n| format!("x-{n}"))
        .collect::<Vec<_>>()
        .join(",");
    for value in [
        "host",
        "HOST",
        "x-forwarded-for",
        "X-Forwarded-Proto",
        "x-forwarded-anything",
        "\"x-private\"",
        "x a",
        "x@y",
        "é",
        many.as_str(),
    ] {
        let mut upstream = request("/", &[("connection", value)]).headers.clone();
        let refused = strip_hop_by_hop(&mut upstream);
        assert!(refused.is_err(), "{value}");
        assert_eq!(
            refused.unwrap_err().etype(),
            &ErrorType::InvalidHTTPHeader,
            "{value}"
        );
    }
    let exactly = (0..CONNECTION_NAMES)
        .map(|n| format!("x-{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut upstream = request("/", &[("connection", &exactly), ("x-3", "v")])
        .headers
        .clone();
    strip_hop_by_hop(&mut upstream).unwrap();
    assert!(upstream.is_empty());
}

#[test]
fn targets_reach_the_application_in_origin_form() {
    for (target, expected) in [
        ("/", "/"),
        ("/a/b?c=d", "/a/b?c=d"),
        ("*", "*"),
        ("http://h/a?b", "/a?b"),
        ("http://h", "/"),
        ("https://h:8443?q=1", "/?q=1"),
        ("http://user@h/p", "/p"),
        ("HTTP://H/%2e%2e/x", "/%2e%2e/x"),
    ] {
        let mut upstream = request(target, &[]);
        to_origin_form(&mut upstream).unwrap();
        assert_eq!(upstream.raw_path(), expected.as_bytes(), "{target}");
    }
}

#[test]
fn only_a_body_without_length_is_sent_chunked() {
    let get = request("/", &[]);
    let mut head = request("/", &[]);
    head.set_method(Method::HEAD);
    let unframed = || ResponseHeader::build(200, None).unwrap();
    let mut response = unframed();
    frame_response(&get, &mut response, false).unwrap();
    assert_eq!(
        response.headers.get(header::TRANSFER_ENCODING).unwrap(),
        "chunked"
    );
    // No body by definition, or already ended, or a client without chunks: nothing added.
    let mut old_client = request("/", &[]);
    old_client.set_version(Version::HTTP_10);
    for (request, status, end) in [
        (&old_client, 200, false),
        (&head, 200, false),
        (&get, 204, false),
        (&get, 304, false),
        (&get, 101, false),
        (&get, 200, true),
    ] {
        let mut response = ResponseHeader::build(status, None).unwrap();
        frame_response(request, &mut response, end).unwrap();
        assert!(response.headers.is_empty(), "{status} {end}");
    }
    // A length or a transfer coding the application said is kept as it is.
    for (name, value) in [("content-length", "3"), ("transfer-encoding", "chunked")] {
        let mut response = unframed();
        response.insert_header(name, value).unwrap();
        frame_response(&get, &mut response, false).unwrap();
        assert_eq!(response.headers.len(), 1);
    }
}

/// Every HTTP/1.x connection builds this future (pingora boxes it), and every request the inner one, moved as it is set up: the
/// rare large ones (guichet's own pages, connecting) have their own allocations.
#[tokio::test]
async fn the_future_of_a_request_stays_small() {
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let settings =
        crate::demo::demo_settings(&crate::demo::DemoAddresses::all(any), &"s".repeat(40));
    let gateway = Arc::new(crate::gateway::Gateway::new(settings).unwrap());
    let app = GatewayApp::new(
        GatewayProxy::new(gateway.clone()),
        gateway.settings(),
        &Arc::new(ServerConf::default()),
        HttpServerOptions::default(),
    );
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let (stream, _peer) = tokio::io::duplex(1024);
    let connection =
        std::mem::size_of_val(&app.inner.serve_connection(Box::new(stream), &shutdown));
    assert!(connection <= 6144, "serve_connection: {connection} bytes");
    let (stream, _peer) = tokio::io::duplex(1024);
    let session = Downstream::H2(Box::new(ServerSession::new_http1(Box::new(stream))));
    let future = std::mem::size_of_val(&app.inner.serve_one(session, &shutdown));
    assert!(future <= 6144, "serve_one: {future} bytes");
}
