//! What the application is told about the request's way to it: `Host`, `X-Forwarded-*`,
//! `X-Real-IP`, `X-Request-Id`, and what the access log may say of the request.
//!
//! None of it is taken from the client: `Host` and `X-Forwarded-Host` name `public_url`'s host
//! (unless `upstream.pass_host`), `X-Forwarded-Proto` its scheme; `Forwarded` and the headers
//! frameworks read a client address, a scheme or a rewritten URL from (`X-Original-URL`,
//! `X-Rewrite-URL`, `X-Forwarded-Prefix`, `True-Client-IP`, …) are removed. The client's
//! `X-Forwarded-For` is kept only when the peer is one of `server.trusted_proxies`; otherwise
//! the peer address replaces it. `X-Real-IP` is the client address so determined.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{Cidr, Settings};

/// Headers from which applications and frameworks read a client address, scheme, host or path:
/// never the client's to set.
const REMOVED: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-forwarded-client-cert",
    "x-url-scheme",
    "front-end-https",
    "x-original-url",
    "x-original-uri",
    "x-original-host",
    "x-original-method",
    "x-rewrite-url",
    "x-host",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
];

/// Sets the forwarding headers of every proxied request.
#[derive(Clone)]
pub struct ForwardedHeaders {
    proto: HeaderValue,
    /// `public_url`'s host and port, as `Host` and `X-Forwarded-Host`.
    host: HeaderValue,
    trusted: Vec<Cidr>,
    removed: Vec<HeaderName>,
}

impl ForwardedHeaders {
    pub fn new(settings: &Settings) -> Self {
        let url = &settings.public_url;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => String::new(),
        };
        ForwardedHeaders {
            proto: HeaderValue::from_static(if url.scheme() == "https" {
                "https"
            } else {
                "http"
            }),
            // Cloned into every request: kept for the process's life (see `lasting`).
            host: HeaderValue::from_str(&host)
                .map(|host| crate::lasting::value(&host))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            trusted: settings.trusted_proxies.clone(),
            removed: REMOVED
                .iter()
                .map(|name| HeaderName::from_static(name))
                .collect(),
        }
    }

    /// Whether `ip` is one of `server.trusted_proxies`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address: the peer's, or, behind trusted proxies, the rightmost address of
    /// `X-Forwarded-For` that is not one of theirs.
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let mut chain: Vec<IpAddr> = Vec::new();
        for value in headers.get_all(&X_FORWARDED_FOR) {
            let Ok(text) = value.to_str() else {
                return Some(peer);
            };
            for item in text.split(',') {
                match item.trim().parse::<IpAddr>() {
                    Ok(ip) => chain.push(ip),
                    Err(_) => return Some(peer),
                }
            }
        }
        Some(
            chain
                .into_iter()
                .rev()
                .find(|ip| !self.is_trusted(*ip))
                .unwrap_or(peer),
        )
    }

    /// How many headers [`ForwardedHeaders::apply`] adds at most (`Host` is replaced, not
    /// added).
    pub const ADDED: usize = 5;

    /// Rewrites the request's forwarding headers for the application (`pass_host`: the
    /// upstream's, to keep the visitor's `Host`).
    pub fn apply(
        &self,
        request: &mut Parts,
        peer: Option<IpAddr>,
        request_id: &HeaderValue,
        pass_host: bool,
    ) {
        let trusted = peer.is_some_and(|p| self.is_trusted(p));
        // The peer's address, written once; behind a trusted proxy, its chain first.
        let peer_value = peer.map(peer_address_value);
        let real_ip = if trusted {
            self.client_address(&request.headers, peer)
                .map(address_value)
        } else {
            peer_value.clone()
        };
        let forwarded_for = match peer_value {
            Some(peer_value) if trusted => {
                let mut joined: Vec<u8> = Vec::new();
                for value in request.headers.get_all(&X_FORWARDED_FOR) {
                    joined.extend_from_slice(value.as_bytes());
                    joined.extend_from_slice(b", ");
                }
                joined.extend_from_slice(peer_value.as_bytes());
                HeaderValue::from_bytes(&joined).ok()
            }
            other => other,
        };
        let headers = &mut request.headers;
        // Most requests carry none of them: look before removing.
        if headers.keys().any(|name| self.removed.contains(name)) {
            for name in &self.removed {
                headers.remove(name);
            }
        }
        match forwarded_for {
            Some(value) => headers.insert(X_FORWARDED_FOR, value),
            None => headers.remove(X_FORWARDED_FOR),
        };
        if let Some(real_ip) = real_ip {
            headers.insert(X_REAL_IP, real_ip);
        }
        headers.insert(X_FORWARDED_PROTO, self.proto.clone());
        let host = if pass_host {
            headers.get(http::header::HOST).cloned().or_else(|| {
                request
                    .uri
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            })
        } else {
            Some(self.host.clone())
        };
        if let Some(host) = host {
            request.headers.insert(http::header::HOST, host.clone());
            request.headers.insert(X_FORWARDED_HOST, host);
        }
        request.headers.insert(X_REQUEST_ID, request_id.clone());
    }
}

/// The peer's address as a header value ([`address_value`]). A connection's requests, and
/// every request behind a load balancer, come from the same address: the last one written on
/// this thread is kept and handed out again (a reference count, not a formatting and two
/// allocations per request).
fn peer_address_value(ip: IpAddr) -> HeaderValue {
    thread_local! {
        static LAST: RefCell<Option<(IpAddr, HeaderValue)>> = const { RefCell::new(None) };
    }
    LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, value)) if *cached == ip => value.clone(),
            _ => {
                let value = address_value(ip);
                *last = Some((ip, value.clone()));
                value
            }
        }
    })
    .unwrap_or_else(|_| address_value(ip))
}

/// An address as a header value, IPv4-mapped IPv6 addresses written as IPv4. Formatted without
/// `format!`: this runs on every proxied request.
fn address_value(ip: IpAddr) -> HeaderValue {
    use std::io::Write;
    let mut buffer = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    // An IPv6 address is at most 45 characters: the buffer always holds it.
    let _ = write!(cursor, "{}", ip.to_canonical());
    let length = cursor.position() as usize;
    HeaderValue::from_bytes(&buffer[..length]).unwrap_or_else(|_| HeaderValue::from_static(""))
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client-supplied request id is kept when it is 1 to 128 characters of `[A-Za-z0-9._:-]`.
/// The request to the application, taken out of pingora's `RequestHeader` to be rewritten as
/// plain `http` parts — moved, not copied — and put back without pingora's record of the
/// client's header-name case: pingora keeps that record in a second map it updates, re-parsing
/// the name, on every header inserted or removed, which cost more than everything else guichet
/// does to the request. Header names reach the application in lowercase (`cookie`,
/// `x-guichet-sub`) but for a handful pingora writes in title case (`Host`, `Content-Type`):
/// HTTP says it is the same name.
pub struct UpstreamParts {
    pub parts: Parts,
    /// The request target as the client sent it, when the URI does not say it byte for byte
    /// (absolute form, bytes the URI type cannot hold).
    raw_target: Option<Vec<u8>>,
}

impl UpstreamParts {
    /// Takes the request out of `upstream` (left empty until [`Self::put_back`]).
    pub fn take(upstream: &mut pingora::http::RequestHeader) -> Self {
        let raw_target = Self::raw_target(upstream);
        let empty = pingora::http::RequestHeader::from(http::Request::new(()).into_parts().0);
        let parts = std::mem::replace(upstream, empty).into();
        UpstreamParts { parts, raw_target }
    }

    /// A copy of `original`'s method, target, version and headers, to be rewritten while the
    /// client's request stays as it came (pingora reads its framing and `Connection` headers
    /// after guichet has sent the upstream one). Cheaper than cloning pingora's header and
    /// taking the clone: neither its record of the header-name case (a second map, one more
    /// reference count per header, dropped right after) nor an empty header is made.
    pub fn copy_of(original: &pingora::http::RequestHeader) -> Self {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = original.method.clone();
        parts.uri = original.uri.clone();
        parts.version = original.version;
        parts.headers = original.headers.clone();
        UpstreamParts {
            parts,
            raw_target: Self::raw_target(original),
        }
    }

    /// The target as the client sent it, when the URI does not say it byte for byte.
    fn raw_target(request: &pingora::http::RequestHeader) -> Option<Vec<u8>> {
        let target = request
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().as_bytes());
        (target != Some(request.raw_path())).then(|| request.raw_path().to_vec())
    }

    /// Puts the rewritten request back into `upstream`. The URI must not have changed.
    pub fn put_back(self, upstream: &mut pingora::http::RequestHeader) -> pingora::Result<()> {
        *upstream = self.into_header()?;
        Ok(())
    }

    /// The rewritten request as pingora's header. The URI must not have changed.
    pub fn into_header(self) -> pingora::Result<pingora::http::RequestHeader> {
        let mut header = pingora::http::RequestHeader::from(self.parts);
        if let Some(raw) = self.raw_target {
            header.set_raw_path(&raw)?;
        }
        Ok(header)
    }
}

pub fn valid_request_id(value: &[u8]) -> bool {
    (1..=128).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// The path with nothing of the query but its parameter names (`/a?x=1&y=2` → `/a?x=&y=`), for
/// logs. A name that does not look like one (longer than 32 characters, or with characters
/// other than letters, digits, `_`, `-`, `.`, `[`, `]`) and an item without `=` (`/reset?<token>`)
/// are written `_`: they may be values. A path without a query is borrowed, not copied.
pub fn loggable_path(uri: &http::Uri) -> Cow<'_, str> {
    let Some(query) = uri.query() else {
        return Cow::Borrowed(uri.path());
    };
    let mut path = uri.path().to_string();
    path.push('?');
    for (i, item) in query.split('&').enumerate() {
        if i > 0 {
            path.push('&');
        }
        match item.split_once('=') {
            Some((name, _)) if looks_like_a_name(name) => {
                path.push_str(name);
                path.push('=');
            }
            Some(_) => path.push_str("_="),
            None if item.is_empty() => {}
            None => path.push('_'),
        }
    }
    Cow::Owned(path)
}

fn looks_like_a_name(name: &str) -> bool {
    name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

#[cfg(test)]
mod tests;
