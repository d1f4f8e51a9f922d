use super::*;
use crate::identity::Identity;
use crate::session::SessionRecord;

/// Extra headers of a check request.
type Headers = &'static [(&'static str, &'static str)];

fn public() -> Url {
    Url::parse("https://app.example.gouv.fr").unwrap()
}

fn check(path: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut request = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
    for (name, value) in headers {
        request.append_header(name.to_string(), *value).unwrap();
    }
    request
}

#[test]
fn the_original_request_comes_from_either_header_family_or_the_path() {
    let cases: &[(&str, Headers, &str, &str)] = &[
        (
            "/.guichet/auth",
            &[
                ("X-Original-URI", "/a/b?c=1"),
                ("X-Original-Method", "POST"),
            ],
            "POST",
            "/a/b?c=1",
        ),
        (
            "/.guichet/auth",
            &[
                ("X-Forwarded-Uri", "/x"),
                ("X-Forwarded-Method", "DELETE"),
                ("X-Forwarded-Host", "APP.example.gouv.fr:443"),
                ("X-Forwarded-Proto", "https"),
            ],
            "DELETE",
            "/x",
        ),
        // The Traefik/Caddy header wins over the nginx one when both come.
        (
            "/.guichet/auth",
            &[("X-Forwarded-Uri", "/first"), ("X-Original-URI", "/second")],
            "GET",
            "/first",
        ),
        // Envoy's path_prefix: the original path below /.guichet/auth, its query kept.
        (
            "/.guichet/auth/app/page?q=%C3%A9",
            &[],
            "GET",
            "/app/page?q=%C3%A9",
        ),
        ("/.guichet/auth/", &[], "GET", "/"),
    ];
    for (path, headers, method, uri) in cases {
        let mut request = check(path, headers);
        request.append_header("cookie", "a=b").unwrap();
        let original = original_request(&request, &public()).unwrap();
        assert_eq!(original.method.as_str(), *method, "{path} {headers:?}");
        assert_eq!(original.uri.to_string(), *uri, "{path} {headers:?}");
        assert_eq!(original.headers.get("cookie").unwrap(), "a=b");
    }
}

#[test]
fn a_check_that_names_no_usable_request_is_refused() {
    let cases: &[(&str, Headers, Refusal)] = &[
        ("/.guichet/auth", &[], Refusal::NoUri),
        ("/.guichet/auth?x=/a", &[], Refusal::NoUri),
        (
            "/.guichet/auth",
            &[("X-Original-URI", "http://evil/a")],
            Refusal::Malformed,
        ),
        (
            "/.guichet/auth",
            &[("X-Original-URI", "*")],
            Refusal::Malformed,
        ),
        (
            "/.guichet/auth",
            &[("X-Original-URI", "a/b")],
            Refusal::Malformed,
        ),
        (
            "/.guichet/auth",
            &[("X-Original-URI", "/a b")],
            Refusal::Malformed,
        ),
        (
            "/.guichet/auth",
            &[("X-Original-URI", "/a"), ("X-Original-Method", "G T")],
            Refusal::Malformed,
        ),
        (
            "/.guichet/auth",
            &[
                ("X-Original-URI", "/a"),
                ("X-Forwarded-Host", "other.example.gouv.fr"),
            ],
            Refusal::OtherHost,
        ),
        (
            "/.guichet/auth",
            &[
                ("X-Original-URI", "/a"),
                ("X-Forwarded-Host", "app.example.gouv.fr.evil"),
            ],
            Refusal::OtherHost,
        ),
    ];
    for (path, headers, refusal) in cases {
        let request = check(path, headers);
        assert_eq!(
            original_request(&request, &public()).err(),
            Some(*refusal),
            "{path} {headers:?}"
        );
        let (reply, log) = refusal.reply();
        assert!(reply.status.is_client_error() && !log.is_empty());
    }
}

#[test]
fn host_comparison_ignores_port_and_brackets_only() {
    assert_eq!(host_only("a.fr:8443"), "a.fr");
    assert_eq!(host_only("a.fr"), "a.fr");
    assert_eq!(host_only("[::1]:80"), "::1");
    assert_eq!(host_only("[::1]"), "::1");
    let v6 = Url::parse("http://[::1]:8080").unwrap();
    let request = check(
        "/.guichet/auth",
        &[("X-Original-URI", "/"), ("X-Forwarded-Host", "[::1]:8080")],
    );
    assert!(original_request(&request, &v6).is_ok());
}

#[test]
fn redirects_are_refused_only_when_asked() {
    for (path, redirects) in [
        ("/.guichet/auth", true),
        ("/.guichet/auth?redirect=true", true),
        ("/.guichet/auth?redirect=false", false),
        ("/.guichet/auth?x=1&redirect=0", false),
        ("/.guichet/auth?redirect=no", false),
    ] {
        assert_eq!(
            Answering::of(&check(path, &[])).redirects,
            redirects,
            "{path}"
        );
    }
}

#[test]
fn sign_in_answers_suit_the_front_proxy_and_the_visitor() {
    let login = "/.guichet/login?rd=%2Fa";
    let absolute = "https://app.example.gouv.fr/.guichet/login?rd=%2Fa";
    let header = |reply: &Reply, name: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let passing = Answering { redirects: true };
    let nginx = Answering { redirects: false };

    let reply = sign_in(login, true, passing, &public());
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(header(&reply, "location").as_deref(), Some(absolute));

    for answering in [passing, nginx] {
        let reply = sign_in(login, false, answering, &public());
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(header(&reply, REDIRECT_HEADER), None);
        assert!(header(&reply, "www-authenticate")
            .unwrap()
            .contains(absolute));
    }
    let reply = sign_in(login, true, nginx, &public());
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&reply, REDIRECT_HEADER).as_deref(), Some(absolute));
}

#[test]
fn refusals_keep_their_status_unless_the_front_proxy_only_knows_401_and_403() {
    for (status, passing, nginx) in [
        (400, 400, 403),
        (401, 401, 401),
        (403, 403, 403),
        (404, 404, 403),
    ] {
        let reply = || Reply::text(StatusCode::from_u16(status).unwrap(), "x");
        assert_eq!(
            refusal(reply(), Answering { redirects: true })
                .status
                .as_u16(),
            passing
        );
        assert_eq!(
            refusal(reply(), Answering { redirects: false })
                .status
                .as_u16(),
            nginx
        );
    }
}

/// What the front proxy is told to add is exactly what the proxy mode adds to the request it
/// forwards, and the application's own cookies go on without guichet's.
#[tokio::test]
async fn the_identity_for_the_front_proxy_is_the_proxy_mode_s() {
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let addresses = crate::demo::DemoAddresses::all(any);
    let mut settings = crate::demo::demo_settings(&addresses, &"s".repeat(40));
    settings.signature = Some(crate::config::SignatureSettings {
        header: "x-guichet-signature".into(),
        key: crate::config::Secret::new("k".repeat(40)),
    });
    let gateway = Gateway::new(settings).unwrap();
    let provider = gateway.settings().providers[0].id.clone();
    let (_, session) = gateway
        .sessions()
        .create(SessionRecord {
            identity: Identity::new(&provider, "sub-1")
                .with_claim("email", "agent@example.gouv.fr")
                .with_claim("uid", "u1"),
            id_token: String::new(),
            access_token: None,
            created_at_ms: crate::clock::unix_now() * 1000,
        })
        .await
        .unwrap();
    let cookie = format!(
        "{}=abc; app=1; {}x=y",
        gateway.settings().session.cookie_name,
        gateway.settings().session.login_cookie_prefix
    );
    let mut original = check(
        "/a?b=1",
        &[("cookie", &cookie), ("x-guichet-sub", "forged")],
    );
    original.set_method(Method::POST);

    let reply = allowed(&gateway, &original, Some(&session), 1000).unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let mut proxied = RequestHeader::build("POST", b"/a?b=1", None)
        .unwrap()
        .as_owned_parts();
    gateway
        .forwarder()
        .apply(&mut proxied, Some(&session), || 1000)
        .unwrap();
    let mut expected: Vec<(String, String)> = proxied
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    expected.push((COOKIE_HEADER.into(), "app=1".into()));
    let mut got: Vec<(String, String)> = reply
        .copied
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(got
        .iter()
        .any(|(n, v)| n == "x-guichet-sub" && v == "sub-1"));
    assert!(got.iter().any(|(n, _)| n == "x-guichet-signature"));

    // Without a session: no identity; only guichet's cookies gone (here: all of them).
    let only_ours = check(
        "/",
        &[(
            "cookie",
            &format!("{}=abc", gateway.settings().session.cookie_name),
        )],
    );
    let reply = allowed(&gateway, &only_ours, None, 1000).unwrap();
    let copied: Vec<_> = reply
        .copied
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    assert_eq!(copied, [(COOKIE_HEADER, &b""[..])]);
    let reply = allowed(&gateway, &check("/", &[]), None, 1000).unwrap();
    assert!(reply.copied.is_empty());
}
