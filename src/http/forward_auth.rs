//! Forward-auth: `/.guichet/auth` answers a front proxy (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`) about a request it received and
//! will serve itself. The request described is rebuilt here ([`original_request`]) and then
//! judged exactly as the proxy mode judges its own requests; this module turns the verdict into
//! what a front proxy understands:
//!
//! - allowed: `200` with the identity headers the proxy mode would send upstream (same names,
//!   values, assertion and signature — [`allowed`]) and `X-Guichet-Cookie`, the visitor's
//!   `Cookie` header without guichet's own cookies;
//! - no session (or a level too low): `302` to the login for proxies that pass the answer to the
//!   browser, or, with `?redirect=false` (nginx, which only understands 2xx, 401 and 403), `401`
//!   with `X-Guichet-Redirect` naming the login when the visitor is a browser;
//! - refused by the route's rules: `403`.
//!
//! Only peers in `server.trusted_proxies` are answered: the request they describe is taken on
//! their word.

use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use pingora::http::RequestHeader;
use url::Url;

use crate::assertion::AssertionError;
use crate::gateway::Gateway;
use crate::http::pages::Reply;
use crate::http::routes::Route;
use crate::session::Session;

/// Headers naming the original request's path and query, first found wins: Traefik, Caddy
/// and most others send `X-Forwarded-Uri`; nginx recipes use `X-Original-URI`.
const URI_HEADERS: [&str; 2] = ["x-forwarded-uri", "x-original-uri"];
/// Headers naming the original request's method (default: the check request's own).
const METHOD_HEADERS: [&str; 2] = ["x-forwarded-method", "x-original-method"];
/// The host the visitor asked for; when sent, it must be `public_url`'s.
const HOST_HEADER: &str = "x-forwarded-host";
/// The visitor's `Cookie` header without guichet's cookies, for the front proxy to send on.
pub const COOKIE_HEADER: &str = "x-guichet-cookie";
/// Where to send a browser to sign in, on a `401` (`?redirect=false`).
pub const REDIRECT_HEADER: &str = "x-guichet-redirect";

/// Why a check request is not answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is not one of `server.trusted_proxies`.
    UntrustedPeer,
    /// Neither a URI header nor a path below `/.guichet/auth/` says which request to check.
    NoUri,
    /// The URI or method named is not an origin-form path or a method.
    Malformed,
    /// `X-Forwarded-Host` names another host than `public_url`'s.
    OtherHost,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UntrustedPeer => "untrusted_peer",
            Refusal::NoUri => "no_uri",
            Refusal::Malformed => "malformed",
            Refusal::OtherHost => "other_host",
        }
    }

    /// The status and text for the front proxy, the line for the operator.
    pub fn reply(self) -> (Reply, &'static str) {
        let (status, text, log) = match self {
            Refusal::UntrustedPeer => (
                StatusCode::FORBIDDEN,
                "guichet answers /.guichet/auth only for its front proxies\n",
                "check request from a peer not in server.trusted_proxies: refused (add the front proxy's address there)",
            ),
            Refusal::NoUri => (
                StatusCode::BAD_REQUEST,
                "the front proxy did not say which request to check\n",
                "check request without X-Forwarded-Uri or X-Original-URI: configure the front proxy to send the original request's URI",
            ),
            Refusal::Malformed => (
                StatusCode::BAD_REQUEST,
                "the request to check is malformed\n",
                "check request naming a URI that is not a path (or a method that is not one): refused",
            ),
            Refusal::OtherHost => (
                StatusCode::FORBIDDEN,
                "this guichet does not serve that host\n",
                "check request for another host than server.public_url's: its cookies and logins would not work there; give that application its own guichet or fix public_url",
            ),
        };
        (Reply::text(status, text), log)
    }
}

/// How the check request asks to be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answering {
    /// `false` (`?redirect=false`): never a redirect; a `401` (and every other refusal a `403`),
    /// for front proxies such as nginx that only understand 2xx, 401 and 403.
    pub redirects: bool,
}

impl Answering {
    pub fn of(request: &RequestHeader) -> Self {
        let redirects = !request.uri.query().is_some_and(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .any(|(key, value)| key == "redirect" && matches!(&*value, "false" | "0" | "no"))
        });
        Answering { redirects }
    }
}

/// The host part of a `Host`-like value, without port or IPv6 brackets.
fn host_only(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    value.rsplit_once(':').map_or(value, |(host, _)| host)
}

fn first_header<'a>(request: &'a RequestHeader, names: &[&str]) -> Option<&'a HeaderValue> {
    names.iter().find_map(|name| request.headers.get(*name))
}

/// The request the front proxy asks about: its method and URI from the forwarded headers (or,
/// for Envoy's `path_prefix`, from the path below `/.guichet/auth/`), and the check request's
/// other headers (cookies, `Accept`, `Sec-Fetch-*`), which front proxies copy from the original.
pub fn original_request(
    request: &RequestHeader,
    public_url: &Url,
) -> Result<RequestHeader, Refusal> {
    if let Some(host) = request.headers.get(HOST_HEADER) {
        let host = host.to_str().map_err(|_| Refusal::Malformed)?;
        let served = public_url.host_str().unwrap_or_default();
        let served = served.trim_start_matches('[').trim_end_matches(']');
        if !host_only(host.trim()).eq_ignore_ascii_case(served) {
            return Err(Refusal::OtherHost);
        }
    }
    let uri: Uri = match first_header(request, &URI_HEADERS) {
        Some(value) => Uri::try_from(value.as_bytes()).map_err(|_| Refusal::Malformed)?,
        None => {
            let prefixed = request
                .uri
                .path()
                .strip_prefix(Route::Auth.path())
                .filter(|rest| rest.starts_with('/'))
                .ok_or(Refusal::NoUri)?;
            let text = match request.uri.query() {
                Some(query) => format!("{prefixed}?{query}"),
                None => prefixed.to_string(),
            };
            Uri::try_from(text).map_err(|_| Refusal::Malformed)?
        }
    };
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return Err(Refusal::Malformed);
    }
    let method = match first_header(request, &METHOD_HEADERS) {
        Some(value) => Method::from_bytes(value.as_bytes()).map_err(|_| Refusal::Malformed)?,
        None => request.method.clone(),
    };
    let mut original = request.clone();
    original.set_method(method);
    original.set_uri(uri);
    Ok(original)
}

/// The `200` for an allowed request: the identity headers [`IdentityForwarder`] would add to
/// the proxied request (none without a session), and [`COOKIE_HEADER`] when the visitor sent
/// cookies.
///
/// [`IdentityForwarder`]: crate::assertion::forward::IdentityForwarder
pub fn allowed(
    gateway: &Gateway,
    original: &RequestHeader,
    session: Option<&Session>,
    now: u64,
) -> Result<Reply, AssertionError> {
    // The request as proxy mode would send it, with only the visitor's cookies as headers.
    let mut upstream = http::Request::builder()
        .method(original.method.clone())
        .uri(original.uri.clone())
        .body(())
        .map_err(|_| AssertionError::HeaderName("request line".into()))?
        .into_parts()
        .0;
    let cookie = http::header::COOKIE;
    let had_cookies = original.headers.contains_key(&cookie);
    for value in original.headers.get_all(&cookie) {
        upstream.headers.append(cookie.clone(), value.clone());
    }
    gateway
        .cookies()
        .rewrite_for_upstream(&mut upstream.headers);
    let cookies = upstream.headers.remove(&cookie);
    gateway.forwarder().apply(&mut upstream, session, || now)?;
    let mut reply = Reply::text(StatusCode::OK, "");
    reply.copied = upstream
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    if had_cookies {
        let value = cookies.unwrap_or_else(|| HeaderValue::from_static(""));
        reply
            .copied
            .push((HeaderName::from_static(COOKIE_HEADER), value));
    }
    Ok(reply)
}

/// The answer sending the visitor to `login` (a path): a `302` (absolute, since the front
/// proxy passes it on) for a browser when redirects are allowed, else a `401` naming it in
/// `WWW-Authenticate` and, for a browser, in [`REDIRECT_HEADER`].
pub fn sign_in(login: &str, browser: bool, answering: Answering, public_url: &Url) -> Reply {
    let absolute = format!("{}{login}", public_url.as_str().trim_end_matches('/'));
    if browser && answering.redirects {
        return Reply::redirect(&absolute);
    }
    let reply = Reply::text(StatusCode::UNAUTHORIZED, "sign-in required\n")
        .with_header("www-authenticate", format!("Guichet login=\"{absolute}\""));
    if browser {
        reply.with_header(REDIRECT_HEADER, absolute)
    } else {
        reply
    }
}

/// Another reply of the proxy mode (a refusal), as the front proxy must receive it: as is when
/// it passes answers on, else `403` unless it is already a `401` or `403`.
pub fn refusal(reply: Reply, answering: Answering) -> Reply {
    if answering.redirects || matches!(reply.status.as_u16(), 401 | 403) {
        return reply;
    }
    Reply {
        status: StatusCode::FORBIDDEN,
        ..reply
    }
}

#[cfg(test)]
mod tests;
