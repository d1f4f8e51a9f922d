//! guichet's cookies in the visitor's `Cookie` headers: finding them, and removing them before
//! the request goes to the application.
//!
//! Cookie headers are bytes (RFC 6265 §5.4): another cookie of the application, or of a sibling
//! site of the same domain, may hold any byte, UTF-8 or not. Nothing here turns a header into
//! text, so a cookie such as `pref=é` never hides guichet's own nor gets the application's
//! dropped. HTTP/2 browsers send one `cookie` field per cookie (RFC 9113 §8.2.3); the
//! application, reached over HTTP/1.1, gets them joined into one header with `"; "`.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue};
use pingora::http::RequestHeader;

/// The names of guichet's cookies, as the visitor's browser holds them.
#[derive(Clone, Debug)]
pub struct CookieNames {
    /// The session cookie (`__Host-guichet` over https).
    pub session: String,
    /// The prefix of the login-state cookies (`__Secure-guichet-login-` over https), one per
    /// login in progress.
    pub login_prefix: String,
    /// The cookie keeping the session's logout hint (`__Secure-guichet-logout` over https),
    /// sent by the browser to the logout path only.
    pub logout: String,
}

impl CookieNames {
    /// Whether a cookie name is one of guichet's.
    pub fn is_ours(&self, name: &[u8]) -> bool {
        name == self.session.as_bytes()
            || name == self.logout.as_bytes()
            || name.starts_with(self.login_prefix.as_bytes())
    }

    /// The session id in the request's session cookie, if well-formed.
    pub fn session_id(&self, request: &RequestHeader) -> Option<crate::session::SessionId> {
        find(
            request.headers.get_all(http::header::COOKIE).iter(),
            &self.session,
        )
        .and_then(crate::session::SessionId::from_cookie_value)
    }

    /// The request's `Cookie` headers rewritten for the application (see
    /// [`rewrite_for_upstream`]).
    pub fn rewrite_for_upstream(&self, headers: &mut HeaderMap) {
        rewrite_for_upstream(headers, self)
    }
}

/// One cookie of a `Cookie` header, as bytes: the pair as the browser wrote it, and its name and
/// value, leading and trailing spaces and tabs removed. A pair without `=` is a value with an
/// empty name (RFC 6265bis).
struct Crumb<'a> {
    pair: &'a [u8],
    name: &'a [u8],
    value: &'a [u8],
}

impl Crumb<'_> {
    fn is_ours(&self, names: &CookieNames) -> bool {
        !self.name.is_empty() && names.is_ours(self.name)
    }
}

/// The cookies of one `Cookie` header, in order, empty parts skipped.
fn crumbs(header: &[u8]) -> impl Iterator<Item = Crumb<'_>> {
    segments(header).filter_map(|pair| {
        let pair = trim(pair);
        if pair.is_empty() {
            return None;
        }
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (trim(&pair[..at]), trim(&pair[at + 1..])),
            None => (&pair[..0], pair),
        };
        Some(Crumb { pair, name, value })
    })
}

/// The `(name, value)` pairs of one `Cookie` header (see [`Crumb`]).
pub fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    crumbs(header).map(|crumb| (crumb.name, crumb.value))
}

/// The `;`-separated parts of a `Cookie` header, untrimmed (found with a vectorised byte search:
/// every request with a session goes through its cookies twice).
fn segments(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(b';', current) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

/// The value of the first cookie called `name` among all the `Cookie` headers.
pub fn find<'a>(headers: impl Iterator<Item = &'a HeaderValue>, name: &str) -> Option<&'a [u8]> {
    headers
        .flat_map(|header| pairs(header.as_bytes()))
        .find(|(n, _)| *n == name.as_bytes())
        .map(|(_, value)| value)
}

/// Every cookie whose name starts with `prefix`: (name, value).
pub fn find_prefixed<'a>(
    headers: impl Iterator<Item = &'a HeaderValue>,
    prefix: &str,
) -> Vec<(&'a [u8], &'a [u8])> {
    headers
        .flat_map(|header| pairs(header.as_bytes()))
        .filter(|(n, _)| n.starts_with(prefix.as_bytes()))
        .collect()
}

/// Whether a `Cookie` header holds one of guichet's cookies, by name: one pass over its pairs,
/// no copy (a cookie of the application whose name merely contains one of guichet's is not
/// one of them).
fn carries_ours(value: &HeaderValue, names: &CookieNames) -> bool {
    crumbs(value.as_bytes()).any(|crumb| crumb.is_ours(names))
}

/// The `Cookie` header the application receives: every cookie but guichet's, in order, from all
/// the request's `Cookie` headers joined with `"; "`; `None` when none is left.
pub fn forwarded<'a>(
    headers: impl IntoIterator<Item = &'a HeaderValue>,
    names: &CookieNames,
) -> Option<HeaderValue> {
    let mut joined: Vec<u8> = Vec::new();
    for header in headers {
        for crumb in crumbs(header.as_bytes()).filter(|crumb| !crumb.is_ours(names)) {
            if !joined.is_empty() {
                joined.extend_from_slice(b"; ");
            }
            joined.extend_from_slice(crumb.pair);
        }
    }
    if joined.is_empty() {
        return None;
    }
    // Made only of bytes of valid header values and "; ": always valid.
    HeaderValue::from_bytes(&joined).ok()
}

/// Rewrites the request's `Cookie` headers for the application: guichet's cookies removed, the
/// rest joined into one header. A request with a single `Cookie` header that carries none of
/// guichet's cookies is left untouched. The headers are found once (one lookup in the map for
/// reading, replacing and removing them).
pub fn rewrite_for_upstream(headers: &mut HeaderMap, names: &CookieNames) {
    let mut entry = match headers.try_entry(http::header::COOKIE) {
        Ok(http::header::Entry::Occupied(entry)) => entry,
        Ok(http::header::Entry::Vacant(_)) => return,
        // A map at its size limit (pingora's header limits keep a request far below it):
        // every cookie out rather than guichet's passed on.
        Err(_) => {
            headers.remove(http::header::COOKIE);
            return;
        }
    };
    let mut values = entry.iter();
    let single = match (values.next(), values.next()) {
        (Some(first), None) => Some(first),
        _ => None,
    };
    if single.is_some_and(|value| !carries_ours(value, names)) {
        return;
    }
    match forwarded(entry.iter(), names) {
        // Replaces every `Cookie` header by the one value.
        Some(value) => {
            entry.insert(value);
        }
        None => {
            entry.remove();
        }
    }
}

/// A `Set-Cookie` value for one of guichet's cookies: `HttpOnly`, `SameSite=Lax`, `Secure` over
/// https.
pub struct SetCookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub path: &'a str,
    /// `None`: a browser-session cookie; zero: delete it.
    pub max_age: Option<Duration>,
    pub secure: bool,
}

impl std::fmt::Display for SetCookie<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut cookie = Cookie::build((self.name, self.value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path(self.path)
            .secure(self.secure);
        if let Some(age) = self.max_age {
            cookie = cookie.max_age(cookie::time::Duration::seconds(
                i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
            ));
        }
        write!(f, "{}", cookie.build())
    }
}

/// `Set-Cookie` for the session cookie (path `/`).
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    SetCookie {
        name,
        value,
        path: "/",
        max_age,
        secure,
    }
    .to_string()
}

/// `Set-Cookie` that deletes the session cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", Some(Duration::ZERO), secure)
}

#[cfg(test)]
mod tests;
