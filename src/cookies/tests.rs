use super::*;
use proptest::prelude::*;

fn names() -> CookieNames {
    CookieNames {
        session: "guichet".into(),
        login_prefix: "guichet-login-".into(),
        logout: "guichet-logout".into(),
    }
}

fn value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap()
}

fn request_header(cookies: &[&[u8]]) -> RequestHeader {
    let mut request = RequestHeader::build("GET", b"/", None).unwrap();
    for cookie in cookies {
        request.append_header("cookie", value(cookie)).unwrap();
    }
    request
}

fn request(cookies: &[&[u8]]) -> http::request::Parts {
    request_header(cookies).as_owned_parts()
}

fn cookie_headers(request: &http::request::Parts) -> Vec<Vec<u8>> {
    request
        .headers
        .get_all("cookie")
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect()
}

#[test]
fn a_non_ascii_cookie_neither_hides_ours_nor_is_dropped() {
    // `pref=é` in UTF-8 and in Latin-1, before and after the session cookie.
    for header in [
        &b"guichet=abc; pref=\xc3\xa9"[..],
        b"pref=\xe9; guichet=abc",
        b"pref=\xff\xfe; guichet=abc; other=1",
    ] {
        let headers = [value(header)];
        assert_eq!(find(headers.iter(), "guichet"), Some(&b"abc"[..]));
        let mut request = request(&[header]);
        rewrite_for_upstream(&mut request.headers, &names());
        let forwarded = cookie_headers(&request);
        assert_eq!(forwarded.len(), 1);
        assert!(!forwarded[0].windows(7).any(|w| w == b"guichet"));
        assert!(forwarded[0].starts_with(b"pref="), "{forwarded:?}");
    }
}

#[test]
fn http2_crumbs_reach_the_application_as_one_header() {
    let mut request = request(&[
        b"a=1",
        b"guichet=s",
        b"b=2",
        b"guichet-login-abc=x",
        b"c=\xe9",
    ]);
    rewrite_for_upstream(&mut request.headers, &names());
    assert_eq!(cookie_headers(&request), vec![b"a=1; b=2; c=\xe9".to_vec()]);
    // Several headers without any of ours are joined too.
    let mut request = request_two();
    rewrite_for_upstream(&mut request.headers, &names());
    assert_eq!(cookie_headers(&request), vec![b"a=1; b=2".to_vec()]);
}

fn request_two() -> http::request::Parts {
    request(&[b"a=1", b"b=2"])
}

#[test]
fn only_our_exact_names_are_removed() {
    let mut request =
        request(&[b"guichetx=1; xguichet=2; guichet=3; guichet-login=4; guichet-login-z=5; guichet-logout=6; guichet-logoutx=7"]);
    rewrite_for_upstream(&mut request.headers, &names());
    assert_eq!(
        cookie_headers(&request),
        vec![b"guichetx=1; xguichet=2; guichet-login=4; guichet-logoutx=7".to_vec()]
    );
    let mut only_ours = request_with(b"guichet=1; guichet-login-a=2; guichet-logout=3");
    rewrite_for_upstream(&mut only_ours.headers, &names());
    assert!(cookie_headers(&only_ours).is_empty());
    // A single header without any of ours goes as it came, byte for byte, even when names of
    // the application's cookies contain ours.
    for header in [
        &b"a=1;b=2 ;; c"[..],
        b"xguichet=1 ;guichetx=2;;",
        b"guichet-loginx=1;  guichet-logou=2; guichet",
    ] {
        let mut untouched = request_with(header);
        rewrite_for_upstream(&mut untouched.headers, &names());
        assert_eq!(cookie_headers(&untouched), vec![header.to_vec()]);
    }
}

#[test]
fn a_map_that_cannot_grow_loses_every_cookie_rather_than_pass_ours() {
    let mut request = request_with(b"a=1; guichet=secret");
    let mut n = 0u32;
    while request
        .headers
        .try_append(
            http::HeaderName::from_bytes(format!("x-{n}").as_bytes()).unwrap(),
            value(b"v"),
        )
        .is_ok()
    {
        n += 1;
    }
    assert!(request.headers.try_reserve(1).is_err());
    rewrite_for_upstream(&mut request.headers, &names());
    assert!(cookie_headers(&request).is_empty());
}

fn request_with(header: &[u8]) -> http::request::Parts {
    request(&[header])
}

#[test]
fn pairs_follow_rfc_6265() {
    let parsed: Vec<(&[u8], &[u8])> = pairs(b" a = 1 ;b=;=c; d ;\te=x=y\t").collect();
    assert_eq!(
        parsed,
        vec![
            (&b"a"[..], &b"1"[..]),
            (b"b", b""),
            (b"", b"c"),
            (b"", b"d"),
            (b"e", b"x=y"),
        ]
    );
    let headers = [value(b"guichet-login-1=a; x=1; guichet-login-2=b")];
    assert_eq!(
        find_prefixed(headers.iter(), "guichet-login-"),
        vec![
            (&b"guichet-login-1"[..], &b"a"[..]),
            (b"guichet-login-2", b"b")
        ]
    );
}

/// Bytes a header value may hold (visible ASCII, space, tab, obs-text), `;` and `=` frequent.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(b';'),
            3 => Just(b'='),
            2 => Just(b' '),
            1 => Just(b'\t'),
            10 => 0x21u8..0x7f,
            4 => 0x80u8..=0xff,
            2 => prop::sample::select(b"guichet-login".to_vec()),
        ],
        0..80,
    )
}

proptest! {
    /// The vectorised split cuts a header where the standard library's does, empty parts and
    /// all.
    #[test]
    fn segments_are_the_parts_between_semicolons(header in header_bytes()) {
        let ours: Vec<&[u8]> = segments(&header).collect();
        let std: Vec<&[u8]> = header.split(|b| *b == b';').collect();
        prop_assert_eq!(ours, std);
    }

    /// Whatever the other cookies hold, ours is found and removed, and theirs pass in order.
    #[test]
    fn our_cookie_is_found_and_only_ours_removed(
        before in header_bytes(),
        after in header_bytes(),
        split in any::<bool>(),
    ) {
        let session = b"guichet=S3ss10n";
        let mut one = before.clone();
        one.extend_from_slice(b";");
        one.extend_from_slice(session);
        one.extend_from_slice(b";");
        one.extend_from_slice(&after);
        let headers: Vec<Vec<u8>> = if split {
            vec![before.clone(), session.to_vec(), after.clone()]
        } else {
            vec![one.clone()]
        };
        let values: Vec<HeaderValue> = headers.iter().map(|h| value(h)).collect();
        let found = find(values.iter(), "guichet");
        let earlier = pairs(&before).find(|(n, _)| *n == b"guichet").map(|(_, v)| v.to_vec());
        prop_assert_eq!(found.map(<[u8]>::to_vec), Some(earlier.unwrap_or(b"S3ss10n".to_vec())));

        let refs: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
        let mut request = request(&refs);
        rewrite_for_upstream(&mut request.headers, &names());
        let out = cookie_headers(&request);
        prop_assert!(out.len() <= 1);
        let kept: Vec<(Vec<u8>, Vec<u8>)> = out
            .first()
            .map(|h| pairs(h).map(|(n, v)| (n.to_vec(), v.to_vec())).collect())
            .unwrap_or_default();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = pairs(&before)
            .chain(pairs(&after))
            .filter(|(n, _)| n.is_empty() || !names().is_ours(n))
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        prop_assert_eq!(kept, expected);
    }
}

#[test]
fn set_cookie_is_hardened() {
    let c = set_cookie("__Host-guichet", "v", None, true);
    for part in [
        "__Host-guichet=v",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
    ] {
        assert!(c.contains(part), "{c}");
    }
    assert!(!set_cookie("guichet", "v", None, false).contains("Secure"));
    assert!(clear_cookie("guichet", false).contains("Max-Age=0"));
}
