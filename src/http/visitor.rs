//! Decisions about a visitor, as plain functions: does a visitor without a session get a login
//! redirect (a browser navigating) or a 401 (a script), and where may a visitor be sent back
//! after login.

use http::Method;
use pingora::http::RequestHeader;

use crate::http::routes::is_own_path;

/// What to do with a request that has no valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// A browser navigating: `302` to the login page.
    RedirectToLogin,
    /// A script or API client: `401`.
    Reject,
}

/// Browsers navigating (GET/HEAD, not XHR, accepting HTML or anything) are sent to the login
/// page; everything else gets a 401, since a redirect to a login page would only confuse a script.
pub fn unauthenticated(request: &RequestHeader) -> Unauthenticated {
    if request.method != Method::GET && request.method != Method::HEAD {
        return Unauthenticated::Reject;
    }
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("x-requested-with").eq_ignore_ascii_case("xmlhttprequest")
        || header("upgrade").eq_ignore_ascii_case("websocket")
    {
        return Unauthenticated::Reject;
    }
    let accept = header("accept");
    if accept.is_empty() || accept.contains("text/html") || accept.contains("*/*") {
        Unauthenticated::RedirectToLogin
    } else {
        Unauthenticated::Reject
    }
}

/// The longest return path kept (longer ones return to `/`): it travels in the login-state
/// cookie, which browsers cap at 4 KiB.
pub const MAX_RETURN_PATH: usize = 2048;

/// Where to send the visitor after login: the given path if it is a same-origin relative path
/// outside guichet's own pages, else `/`.
///
/// The path is normalised as a browser would before it is checked (dot segments, also
/// percent-encoded as `%2e`, removed), and that normalised form is what the visitor is sent to:
/// `/x/%2e%2e/.guichet/logout` and `/./.guichet/logout` are refused, `/.//host` cannot become
/// `//host`. Refused too: schemes, `//host`, backslashes (browsers fold them into `/`), control
/// characters and whitespace, and paths longer than [`MAX_RETURN_PATH`]. Characters outside
/// ASCII are percent-encoded.
pub fn safe_return_to(target: Option<&str>) -> String {
    target
        .and_then(normalise_return_path)
        .unwrap_or_else(|| "/".into())
}

fn normalise_return_path(target: &str) -> Option<String> {
    if target.len() > MAX_RETURN_PATH
        || !target.starts_with('/')
        || target
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let split = target.find(['?', '#']).unwrap_or(target.len());
    let (path, rest) = target.split_at(split);
    let path = remove_dot_segments(path);
    if !path.starts_with('/') || path.starts_with("//") {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
    let lowered = decoded.to_ascii_lowercase();
    if is_own_path(&lowered) || lowered.starts_with("//") {
        return None;
    }
    let mut out = String::with_capacity(path.len() + rest.len());
    for c in path.chars().chain(rest.chars()) {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    (out.len() <= MAX_RETURN_PATH).then_some(out)
}

/// A `.` segment, also written `%2e` (any case), as browsers read it.
fn is_dot(segment: &str) -> bool {
    segment == "." || segment.eq_ignore_ascii_case("%2e")
}

/// A `..` segment, in any mix of `.` and `%2e`.
fn is_dot_dot(segment: &str) -> bool {
    matches!(segment.len(), 2 | 4 | 6)
        && (segment == ".."
            || segment.eq_ignore_ascii_case(".%2e")
            || segment.eq_ignore_ascii_case("%2e.")
            || segment.eq_ignore_ascii_case("%2e%2e"))
}

/// Whether a path could be resolved by the application to another path than the one matched
/// against routes: `.` or `..` segments (which a browser would have removed), also written with
/// `%2e` or followed by path parameters (`..;x`, which Java servers drop), and encoded or
/// backslash separators (`%2f`, `%5c`, `\`), which some servers decode into `/`.
pub fn has_dot_segments(path: &str) -> bool {
    let escaped_separator = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%' && (w[1..].eq_ignore_ascii_case(b"2f") || w[1..].eq_ignore_ascii_case(b"5c"))
    });
    if escaped_separator || path.contains('\\') {
        return true;
    }
    path.split('/').any(|segment| {
        let segment = segment.split(';').next().unwrap_or("");
        is_dot(segment) || is_dot_dot(segment)
    })
}

/// RFC 3986 §5.2.4, with the WHATWG URL rule that `%2e` (any case) in a segment counts as `.`.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        if is_dot(segment) {
            trailing_slash = i == last;
        } else if is_dot_dot(segment) {
            output.pop();
            trailing_slash = i == last;
        } else {
            output.push(segment);
            trailing_slash = false;
        }
    }
    let mut normalised = String::with_capacity(path.len());
    for segment in &output {
        normalised.push('/');
        normalised.push_str(segment);
    }
    if trailing_slash || normalised.is_empty() {
        normalised.push('/');
    }
    normalised
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, b"/x", None).unwrap();
        for (n, v) in headers {
            r.insert_header(n.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn browsers_are_redirected_scripts_rejected() {
        use Unauthenticated::*;
        assert_eq!(unauthenticated(&request("GET", &[])), RedirectToLogin);
        assert_eq!(
            unauthenticated(&request(
                "GET",
                &[("accept", "text/html,application/xhtml+xml")]
            )),
            RedirectToLogin
        );
        assert_eq!(
            unauthenticated(&request("GET", &[("accept", "application/json")])),
            Reject
        );
        assert_eq!(
            unauthenticated(&request("GET", &[("x-requested-with", "XMLHttpRequest")])),
            Reject
        );
        assert_eq!(unauthenticated(&request("POST", &[])), Reject);
        assert_eq!(
            unauthenticated(&request("GET", &[("upgrade", "websocket")])),
            Reject
        );
    }

    #[test]
    fn return_to_stays_on_this_origin() {
        assert_eq!(safe_return_to(Some("/app?x=1")), "/app?x=1");
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "http://evil.example",
            "https:evil",
            "evil",
            "/\t/evil.example",
            "/ok\n",
            "/.guichet/logout",
            "/.guichet",
            "/./.guichet/logout",
            "/x/../.guichet/logout",
            "/x/%2e%2e/.guichet/logout",
            "/x/%2E%2e/.GUICHET/logout",
            "/x/.%2E/%2eguichet/logout",
            "/%2Eguichet/logout",
            "/.//evil.example",
            "/x/..//evil.example",
            "/%2F%2Fevil.example",
            "",
        ] {
            assert_eq!(safe_return_to(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_return_to(None), "/");
        assert_eq!(safe_return_to(Some("/a/./b/../c?x=/../y")), "/a/c?x=/../y");
        assert_eq!(safe_return_to(Some("/a/b/..")), "/a/");
        assert_eq!(safe_return_to(Some("/../../a")), "/a");
        assert_eq!(safe_return_to(Some("/caf\u{e9}")), "/caf%C3%A9");
        let long = format!("/{}", "a".repeat(MAX_RETURN_PATH));
        assert_eq!(safe_return_to(Some(&long)), "/");
    }

    #[test]
    fn paths_an_application_could_resolve_elsewhere_are_recognised() {
        for path in [
            "/static/../admin",
            "/static/./x",
            "/static/%2e%2e/admin",
            "/static/%2E./admin",
            "/static/..;/admin",
            "/static/..;jsessionid=1/admin",
            "/static/.;x/y",
            "/static/..%2fadmin",
            "/static/%2F..%2Fadmin",
            "/static/..%5cadmin",
            "/static\\..\\admin",
        ] {
            assert!(has_dot_segments(path), "{path}");
        }
        for path in [
            "/",
            "/static/app.js",
            "/a.b/c..d/.e",
            "/x;y=1/z",
            "/%2e%2ex",
        ] {
            assert!(!has_dot_segments(path), "{path}");
        }
    }

    proptest::proptest! {
        /// Whatever the input, the browser (the `url` crate follows the WHATWG URL standard)
        /// resolves the result on this origin, outside guichet's own pages.
        #[test]
        fn a_safe_return_path_never_leaves_the_origin_nor_names_guichet(
            target in proptest::string::string_regex(
                "(/|//|\\\\|%2[eEfF]|\\.|\\.\\.|\\.guichet|\\.GUICHET|[a-z]|\\?|#|:|@|%|é|\t)*"
            ).unwrap()
        ) {
            let safe = safe_return_to(Some(&target));
            let base = url::Url::parse("https://app.example.gouv.fr/start").unwrap();
            let resolved = base.join(&safe).unwrap();
            proptest::prop_assert_eq!(resolved.host_str(), Some("app.example.gouv.fr"));
            proptest::prop_assert_eq!(resolved.scheme(), "https");
            let path = percent_encoding::percent_decode_str(resolved.path()).decode_utf8_lossy().to_ascii_lowercase();
            proptest::prop_assert!(!is_own_path(&path), "{target:?} -> {safe:?}");
            proptest::prop_assert!(safe.len() <= MAX_RETURN_PATH);
            proptest::prop_assert!(http::HeaderValue::from_str(&safe).is_ok());
        }
    }
}
