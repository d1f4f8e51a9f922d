//! Decisions over a request, as plain functions: is this one of guichet's own endpoints, does an
//! unauthenticated visitor get a login redirect (browser) or a 401 (API call), and where may a
//! visitor be sent back after login.

use http::Method;
use pingora::http::RequestHeader;

use crate::config::OWN_PREFIX;

/// What to do with a request that has no valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// A browser navigating: `302` to the login page.
    RedirectToLogin,
    /// A script or API client: `401`.
    Reject,
}

/// The own endpoint named by a path (`/.guichet/login` → `login`), if it is one.
pub fn own_endpoint(path: &str) -> Option<&str> {
    path.strip_prefix(OWN_PREFIX)
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

/// Where to send the visitor after login: the given path if it is a same-origin relative path,
/// else `/`. Refuses `//host`, `/\host`, schemes, and any control character or backslash (which
/// browsers strip or fold into `/`).
pub fn safe_return_to(target: Option<&str>) -> String {
    let Some(target) = target else {
        return "/".into();
    };
    let safe = target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(|c| c.is_control() || c.is_whitespace())
        && !target.starts_with(OWN_PREFIX);
    if safe {
        target.to_string()
    } else {
        "/".into()
    }
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
            "",
        ] {
            assert_eq!(safe_return_to(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }

    #[test]
    fn own_endpoints_are_recognised() {
        assert_eq!(own_endpoint("/.guichet/login"), Some("login"));
        assert_eq!(own_endpoint("/app/.guichet/login"), None);
    }
}
