use super::*;
use pingora::http::RequestHeader;
use proptest::prelude::*;

fn forwarded(trusted: &[&str]) -> ForwardedHeaders {
    ForwardedHeaders {
        proto: HeaderValue::from_static("https"),
        host: HeaderValue::from_static("app.example.gouv.fr"),
        trusted: trusted.iter().map(|t| t.parse().unwrap()).collect(),
        removed: REMOVED.iter().map(|n| HeaderName::from_static(n)).collect(),
    }
}

fn hostile_request() -> Parts {
    let mut request = RequestHeader::build("GET", b"/x", None).unwrap();
    for (name, value) in [
        ("Host", "evil.example"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("x-forwarded-for", "7.7.7.7, 8.8.8.8"),
        ("Forwarded", "for=6.6.6.6;host=evil.example;proto=http"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "80"),
        ("X-Original-URL", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X-Forwarded-Prefix", "/evil"),
        ("True-Client-IP", "6.6.6.6"),
        ("X-Request-Id", "client-chosen"),
    ] {
        request.append_header(name, value).unwrap();
    }
    request.as_owned_parts()
}

fn header(request: &Parts, name: &str) -> Vec<String> {
    request
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[test]
fn nothing_the_client_says_about_the_way_reaches_the_application() {
    let peer: IpAddr = "203.0.113.9".parse().unwrap();
    let mut request = hostile_request();
    forwarded(&[]).apply(
        &mut request,
        Some(peer),
        &HeaderValue::from_static("rid"),
        false,
    );
    assert_eq!(header(&request, "host"), ["app.example.gouv.fr"]);
    assert_eq!(
        header(&request, "x-forwarded-host"),
        ["app.example.gouv.fr"]
    );
    assert_eq!(header(&request, "x-forwarded-proto"), ["https"]);
    assert_eq!(header(&request, "x-forwarded-for"), ["203.0.113.9"]);
    assert_eq!(header(&request, "x-real-ip"), ["203.0.113.9"]);
    assert_eq!(header(&request, "x-request-id"), ["rid"]);
    for gone in [
        "forwarded",
        "x-forwarded-port",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-prefix",
        "true-client-ip",
    ] {
        assert!(header(&request, gone).is_empty(), "{gone}");
    }
}

#[test]
fn a_trusted_proxy_s_chain_is_kept_and_the_client_found_in_it() {
    let proxy: IpAddr = "10.0.0.5".parse().unwrap();
    let mut request = hostile_request();
    let trusted = forwarded(&["10.0.0.0/8", "8.8.8.8"]);
    trusted.apply(
        &mut request,
        Some(proxy),
        &HeaderValue::from_static("rid"),
        true,
    );
    assert_eq!(
        header(&request, "x-forwarded-for"),
        ["6.6.6.6, 7.7.7.7, 8.8.8.8, 10.0.0.5"]
    );
    // 8.8.8.8 is trusted too: the client is the next one to the left.
    assert_eq!(header(&request, "x-real-ip"), ["7.7.7.7"]);
    // pass_host: the visitor's Host goes through.
    assert_eq!(header(&request, "host"), ["evil.example"]);
    // A peer outside the list has its chain replaced.
    let mut request = hostile_request();
    trusted.apply(
        &mut request,
        Some("192.0.2.1".parse().unwrap()),
        &HeaderValue::from_static("rid"),
        true,
    );
    assert_eq!(header(&request, "x-forwarded-for"), ["192.0.2.1"]);
    // A garbled chain from a trusted proxy: the proxy itself is the client.
    let mut request = RequestHeader::build("GET", b"/", None).unwrap();
    request
        .append_header("x-forwarded-for", "not-an-ip")
        .unwrap();
    assert_eq!(
        trusted.client_address(&request.headers, Some(proxy)),
        Some(proxy)
    );
    // IPv4-mapped IPv6 peers match IPv4 networks.
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    assert_eq!(
        trusted.client_address(&HeaderMap::new(), Some(mapped)),
        Some(mapped)
    );
    assert!(trusted.is_trusted(mapped));
}

#[test]
fn cidrs_match_their_networks_only() {
    let net: Cidr = "192.168.1.0/24".parse().unwrap();
    assert!(net.contains("192.168.1.200".parse().unwrap()));
    assert!(!net.contains("192.168.2.1".parse().unwrap()));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
    assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains("1.2.3.4".parse().unwrap()));
    for bad in ["10.0.0.0/33", "x", "10.0.0/8", "::/129", ""] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
}

#[test]
fn request_ids_are_checked() {
    assert!(valid_request_id(b"abc-123_X.y:z"));
    assert!(!valid_request_id(b""));
    assert!(!valid_request_id(b"a b"));
    assert!(!valid_request_id(b"<script>"));
    assert!(!valid_request_id(&[b'a'; 129]));
}

#[test]
fn logged_paths_have_no_query_values() {
    let uri: http::Uri = "/dossiers/42?nir=1234567890123&vue=complete&flag"
        .parse()
        .unwrap();
    assert_eq!(loggable_path(&uri), "/dossiers/42?nir=&vue=&_");
    let uri: http::Uri = "/reset?eyJhbGciOiJIUzI1NiJ9.secret".parse().unwrap();
    assert_eq!(loggable_path(&uri), "/reset?_");
    let uri: http::Uri = "/a?%73ecret%3Dvalue=1&=2&&b[]=3".parse().unwrap();
    assert_eq!(loggable_path(&uri), "/a?_=&=&&b[]=");
    let uri: http::Uri = "/plain".parse().unwrap();
    assert_eq!(loggable_path(&uri), "/plain");
}

proptest! {
    /// Whatever the query, no value and no bare item reaches the log: what is left of the
    /// query is names, `=`, `&` and `_`.
    #[test]
    fn no_query_value_is_logged(
        names in prop::collection::vec("[a-z]{1,8}", 1..5),
        values in prop::collection::vec("[A-Za-z0-9%._~-]{1,20}", 1..5),
        bare in "[A-Za-z0-9%._~-]{1,40}",
    ) {
        let mut query = String::new();
        for (name, value) in names.iter().zip(&values) {
            query.push_str(&format!("{name}=SECRET{value}&"));
        }
        query.push_str(&format!("SECRET{bare}"));
        let uri: http::Uri = format!("/p?{query}").parse().unwrap();
        let logged = loggable_path(&uri);
        prop_assert!(!logged.contains("SECRET"), "{logged}");
    }

    /// Request ids kept are always safe to log and to send on.
    #[test]
    fn kept_request_ids_are_header_safe(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if valid_request_id(&bytes) {
            prop_assert!(HeaderValue::from_bytes(&bytes).is_ok());
            prop_assert!(bytes.len() <= 128);
        }
    }
}

#[test]
fn the_request_taken_out_comes_back_with_its_target_and_headers() {
    // An origin-form target, an absolute-form one, and one the URI type re-encodes.
    for target in [
        &b"/a/b?c=d"[..],
        b"http://app.example/x?y=1",
        b"/caf\xc3\xa9?q=\xff",
    ] {
        let mut upstream = RequestHeader::build("POST", target, None).unwrap();
        upstream.append_header("X-Mixed-Case", "1").unwrap();
        upstream.append_header("cookie", "a=1").unwrap();
        let method = upstream.method.clone();
        let uri = upstream.uri.clone();
        let mut request = UpstreamParts::take(&mut upstream);
        // The parts were moved out; the header left behind is empty.
        assert!(upstream.headers.is_empty());
        assert_eq!(request.parts.headers.len(), 2);
        request
            .parts
            .headers
            .insert("x-added", HeaderValue::from_static("2"));
        request.put_back(&mut upstream).unwrap();
        assert_eq!(
            upstream.raw_path(),
            target,
            "{}",
            String::from_utf8_lossy(target)
        );
        assert_eq!(upstream.method, method);
        assert_eq!(upstream.uri, uri);
        assert_eq!(upstream.headers["x-mixed-case"], "1");
        assert_eq!(upstream.headers["x-added"], "2");
        assert_eq!(upstream.headers["cookie"], "a=1");
    }
}

#[test]
fn a_copy_of_the_request_is_rewritten_while_the_original_stays_as_it_came() {
    for target in [
        &b"/a/b?c=d"[..],
        b"*",
        b"http://app.example/x?y=1",
        b"/caf\xc3\xa9?q=\xff",
    ] {
        let label = String::from_utf8_lossy(target).into_owned();
        let mut original = RequestHeader::build("PUT", target, None).unwrap();
        original.set_version(http::Version::HTTP_10);
        original.append_header("X-Mixed-Case", "1").unwrap();
        original.append_header("cookie", "a=1").unwrap();
        original.append_header("cookie", "b=2").unwrap();
        let before = original.clone();
        let mut copy = UpstreamParts::copy_of(&original);
        assert_eq!(copy.parts.method, http::Method::PUT, "{label}");
        assert_eq!(copy.parts.version, http::Version::HTTP_10, "{label}");
        assert_eq!(copy.parts.headers, original.headers, "{label}");
        copy.parts.headers.remove("cookie");
        copy.parts
            .headers
            .insert("x-added", HeaderValue::from_static("2"));
        let upstream = copy.into_header().unwrap();
        // The copy carries the target byte for byte, and the edits.
        assert_eq!(upstream.raw_path(), target, "{label}");
        assert_eq!(upstream.uri, original.uri, "{label}");
        assert!(upstream.headers.get("cookie").is_none(), "{label}");
        assert_eq!(upstream.headers["x-added"], "2", "{label}");
        assert_eq!(upstream.headers["x-mixed-case"], "1", "{label}");
        // The client's request is untouched, its header-name case included.
        assert_eq!(original.raw_path(), before.raw_path(), "{label}");
        assert_eq!(original.headers, before.headers, "{label}");
        let (mut wire, mut wire_before) = (Vec::new(), Vec::new());
        original.header_to_h1_wire(&mut wire);
        before.header_to_h1_wire(&mut wire_before);
        assert_eq!(wire, wire_before, "{label}");
        assert!(
            String::from_utf8_lossy(&wire).contains("X-Mixed-Case: 1"),
            "{label}"
        );
    }
}

#[test]
fn header_names_reach_the_application_in_lowercase_but_a_few() {
    // The client's spelling, as pingora records it when it parses a request.
    let mut upstream = RequestHeader::build("GET", b"/", None).unwrap();
    for (name, value) in [
        ("HOST", "app.example"),
        ("User-Agent", "ua"),
        ("Cookie", "a=1"),
        ("X-Custom-Header", "1"),
        ("content-type", "text/plain"),
    ] {
        upstream.append_header(name, value).unwrap();
    }
    let mut request = UpstreamParts::take(&mut upstream);
    request
        .parts
        .headers
        .insert("x-guichet-sub", HeaderValue::from_static("s"));
    request.put_back(&mut upstream).unwrap();
    let mut wire = Vec::new();
    upstream.header_to_h1_wire(&mut wire);
    let names: Vec<String> = String::from_utf8(wire)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_string()))
        .collect();
    // As the README's "Known limitations" says: pingora's title case for a handful of standard
    // names, lowercase for every other, whatever the client wrote.
    for expected in [
        "Host",
        "user-agent",
        "cookie",
        "x-custom-header",
        "Content-Type",
        "x-guichet-sub",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert_eq!(names.len(), 6, "{names:?}");
}

#[test]
fn the_room_made_for_forwarding_headers_is_what_they_take() {
    let peer: IpAddr = "203.0.113.9".parse().unwrap();
    for pass_host in [false, true] {
        let mut request = RequestHeader::build("GET", b"/x", None).unwrap();
        request.append_header("Host", "app.example").unwrap();
        let mut parts = request.as_owned_parts();
        let before = parts.headers.len();
        forwarded(&[]).apply(
            &mut parts,
            Some(peer),
            &HeaderValue::from_static("rid"),
            pass_host,
        );
        assert_eq!(parts.headers.len() - before, ForwardedHeaders::ADDED);
    }
}

#[test]
fn the_peer_s_address_kept_between_requests_is_the_peer_s() {
    let addresses: Vec<IpAddr> = [
        "203.0.113.9",
        "::ffff:198.51.100.7",
        "2001:db8::1",
        "203.0.113.9",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    for _ in 0..2 {
        for ip in &addresses {
            assert_eq!(peer_address_value(*ip), address_value(*ip), "{ip}");
        }
    }
    let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
    assert_eq!(peer_address_value(mapped), "198.51.100.7");
    // Each thread keeps its own.
    let other = std::thread::spawn(|| peer_address_value("192.0.2.1".parse().unwrap()));
    assert_eq!(other.join().unwrap(), "192.0.2.1");
    assert_eq!(peer_address_value(addresses[0]), "203.0.113.9");
}
