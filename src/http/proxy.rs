//! The request pipeline drawn in `ARCHITECTURE.md`, as the steps `http::h1`'s loop calls, each
//! one named function of another module:
//!
//! - [`GatewayProxy::admit`]: own routes (`endpoints`), the session (`session`), the route's
//!   rules, or the way to sign in (`visitor`);
//! - [`prepare_upstream`]: guichet's cookies out (`cookies`), forwarding headers
//!   (`forwarded`), identity in (`assertion::forward`);
//! - [`GatewayProxy::fail`]: the page for an upstream failure (`pages`);
//! - [`GatewayProxy::record`]: metrics and the access line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::downstream::Downstream;
use http::StatusCode;
use pingora::http::RequestHeader;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::access_log;
use crate::clock::unix_now;
use crate::config::UpstreamSettings;
use crate::gateway::Gateway;
use crate::http::endpoints;
use crate::http::forward_auth::{self, Answering, Refusal};
use crate::http::forwarded::{loggable_path, ForwardedHeaders, UpstreamParts};
use crate::http::pages::{render_error, CorrelationId, PageError, Pages, Reply};
use crate::http::routes::{login_path, Route};
use crate::http::visitor::{has_dot_segments, unauthenticated, Unauthenticated};
use crate::metrics::RequestMetrics;
use crate::policy::{Auth, Denial, Route as PolicyRoute, WithoutSession};
use crate::session::Session;

/// What happened to a request, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Proxied,
    LoginRedirect,
    Unauthorized,
    OwnEndpoint,
    Denied,
    /// A front proxy's check answered yes.
    Authorized,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Proxied,
        Outcome::LoginRedirect,
        Outcome::Unauthorized,
        Outcome::OwnEndpoint,
        Outcome::Denied,
        Outcome::Authorized,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Proxied => "proxied",
            Outcome::LoginRedirect => "login_redirect",
            Outcome::Unauthorized => "unauthorized",
            Outcome::OwnEndpoint => "own_endpoint",
            Outcome::Denied => "denied",
            Outcome::Authorized => "authorized",
            Outcome::Error => "error",
        }
    }
}

/// Per-request state.
pub struct RequestContext {
    pub session: Option<Arc<Session>>,
    pub outcome: Outcome,
    /// The client's valid `X-Request-Id`, or a fresh one; passed upstream, shown on error pages.
    pub correlation_id: CorrelationId,
    pub started: Instant,
    pub upstream_sent: Option<Instant>,
    pub upstream_latency: Option<Duration>,
    /// The route's upstream (index in `Settings::upstreams`; `None`: `[upstream]`).
    pub upstream: Option<usize>,
    /// Why the route's rules (or the check request's form) refused the request, for the access
    /// line.
    pub denied: Option<&'static str>,
    /// The path a front proxy asked about (`/.guichet/auth`), for the access line.
    pub checked: Option<String>,
}

/// The proxy service.
#[derive(Clone)]
pub struct GatewayProxy {
    gateway: Arc<Gateway>,
    forwarded: ForwardedHeaders,
    metrics: Arc<RequestMetrics>,
    access_format: access_log::Format,
}

/// Writes a reply guichet made itself (HEAD gets the header only).
pub(crate) async fn write_reply(session: &mut Downstream, reply: Reply) -> Result<()> {
    let header = reply.to_response_header()?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(header)).await?;
    if !head_only {
        session.write_response_body(reply.body, true).await?;
    }
    Ok(())
}

/// The status shown for an error pingora met while proxying: 504 for an upstream timeout, 502
/// for another upstream failure, 400 for a bad request, 500 for guichet's own; 0 when the client
/// went away (nothing to show).
pub(crate) fn failure_status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The request's path and query, where the visitor goes back after signing in.
fn target(request: &RequestHeader) -> &str {
    request.uri.path_and_query().map_or("/", |pq| pq.as_str())
}

/// What [`GatewayProxy::judge`] decided about a request.
enum Verdict {
    /// Proxy it (or, asked by a front proxy, say yes).
    Allow,
    /// The visitor must sign in at `login` first; `browser`: send them there rather than refuse.
    SignIn { login: String, browser: bool },
    /// Refused with this reply (403, 400).
    Refuse(Reply),
}

/// Sends the visitor to `login`: a redirect for a browser, else a 401 whose `WWW-Authenticate`
/// names the login URL.
fn sign_in(pages: &Pages, login: &str, redirect: bool, ctx: &mut RequestContext) -> Reply {
    if redirect {
        ctx.outcome = Outcome::LoginRedirect;
        return Reply::redirect(login);
    }
    ctx.outcome = Outcome::Unauthorized;
    render_error(pages, &PageError::no_session(), &ctx.correlation_id)
        .with_header("www-authenticate", format!("Guichet login=\"{login}\""))
}

/// The request as the application receives it: without guichet's cookies, with the forwarding
/// headers guichet sets, and with the identity of `session` (if any) only; rewritten as plain
/// `http` parts ([`UpstreamParts`]). The loop (`http::h1`) calls it for every request it
/// forwards; `benches/sessions.rs` calls it to show what is added.
pub fn prepare_upstream(
    gateway: &Gateway,
    forwarded: &ForwardedHeaders,
    upstream: &mut UpstreamParts,
    peer: Option<IpAddr>,
    correlation_id: &CorrelationId,
    session: Option<&Session>,
    pass_host: bool,
) -> Result<()> {
    let parts = &mut upstream.parts;
    // Room for every header added below at once, instead of the map growing twice or three
    // times on the way (each time a new table, rehashed). A request's headers are bounded by
    // pingora far below the map's limit; the reserve cannot fail in practice and costs nothing
    // when it does.
    let added = ForwardedHeaders::ADDED + gateway.forwarder().added_headers(session);
    let _ = parts.headers.try_reserve(added);
    gateway.cookies().rewrite_for_upstream(&mut parts.headers);
    forwarded.apply(parts, peer, correlation_id.header_value(), pass_host);
    gateway
        .forwarder()
        .apply(parts, session, unix_now)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot attach the identity");
            Error::explain(ErrorType::InternalError, "identity forwarding failed")
        })
}

impl GatewayProxy {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        let forwarded = ForwardedHeaders::new(gateway.settings());
        let metrics = gateway.metrics().per_request.clone();
        let access_format = if gateway.settings().log_json {
            access_log::Format::Json
        } else {
            access_log::Format::Text
        };
        GatewayProxy {
            gateway,
            forwarded,
            metrics,
            access_format,
        }
    }

    /// The shared state.
    pub(crate) fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The forwarding headers' settings.
    pub(crate) fn forwarded(&self) -> &ForwardedHeaders {
        &self.forwarded
    }

    /// The upstream of the request's route; `None` only with `server.mode = "auth"`, where
    /// no request is proxied.
    pub(crate) fn upstream(&self, ctx: &RequestContext) -> Result<&UpstreamSettings> {
        let settings = self.gateway.settings();
        match ctx.upstream {
            Some(index) => Ok(&settings.upstreams[index].1),
            None => settings.upstream.as_ref().ok_or_else(|| {
                Error::explain(ErrorType::InternalError, "no upstream in auth mode")
            }),
        }
    }

    /// The session named by the request's cookie, if it is live.
    async fn load_session(&self, request: &RequestHeader) -> Option<Arc<Session>> {
        let id = self.gateway.cookies().session_id(request)?;
        let found = self.gateway.sessions().get(&id).await;
        self.metrics.session_lookup(found.is_some());
        found
    }

    /// What to do with a request: `None` to proxy it (with its session in `ctx`), or the reply
    /// guichet sends itself (an own route, a front proxy's check, a login redirect, a 401).
    pub(crate) async fn admit(
        &self,
        request: &RequestHeader,
        peer: Option<IpAddr>,
        ctx: &mut RequestContext,
    ) -> Option<Reply> {
        ctx.correlation_id = CorrelationId::of(&request.headers);
        let mode = self.gateway.settings().mode;
        if let Some(route) = Route::from_path(request.uri.path()) {
            if route == Some(Route::Auth) && mode.answers_auth() {
                return Some(self.forward_auth(request, peer, ctx).await);
            }
            ctx.outcome = Outcome::OwnEndpoint;
            // guichet's own pages (the login, the callback and its provider calls) make a
            // future of several KiB: in its own allocation, so that the future of every
            // proxied request stays small (it is moved, byte for byte, at each await's set-up).
            return Some(
                Box::pin(endpoints::handle(
                    &self.gateway,
                    route,
                    request,
                    &ctx.correlation_id,
                ))
                .await,
            );
        }
        if !mode.proxies() {
            ctx.outcome = Outcome::Error;
            return Some(render_error(
                self.gateway.pages(),
                &PageError::not_served(),
                &ctx.correlation_id,
            ));
        }
        match self.judge(request, ctx).await {
            Verdict::Allow => None,
            Verdict::SignIn { login, browser } => {
                Some(sign_in(self.gateway.pages(), &login, browser, ctx))
            }
            Verdict::Refuse(reply) => Some(reply),
        }
    }

    /// Judges a request outside `/.guichet/` by its route: allowed (with its session, if any,
    /// in `ctx`), to be signed in first, or refused.
    async fn judge(&self, request: &RequestHeader, ctx: &mut RequestContext) -> Verdict {
        let routes = self.gateway.routes();
        if !routes.is_empty() && has_dot_segments(request.uri.path()) {
            // Matched against routes, such a path could reach elsewhere in the application.
            ctx.outcome = Outcome::Error;
            return Verdict::Refuse(render_error(
                self.gateway.pages(),
                &PageError::dot_segments(),
                &ctx.correlation_id,
            ));
        }
        let route = routes.find(&request.method, request.uri.path());
        ctx.upstream = route.upstream;
        if route.auth == Auth::None {
            return Verdict::Allow;
        }
        let live = self.load_session(request).await;
        match (live, route.auth) {
            (Some(live), _) => {
                if let Err(denial) = route.admits(&live.identity) {
                    return Verdict::Refuse(self.deny(request, route, denial, ctx));
                }
                if route.needs_step_up(live.identity.acr()) {
                    return self.step_up(request, route, live.provider(), ctx);
                }
                ctx.session = Some(live);
                Verdict::Allow
            }
            (None, Auth::Optional) => Verdict::Allow,
            (None, _) => self.without_session(request, route),
        }
    }

    /// `/.guichet/auth`: a trusted front proxy asks about a request it will serve itself; the
    /// request is judged as this proxy would judge it, and the verdict told in a way the front
    /// proxy understands (`forward_auth`).
    async fn forward_auth(
        &self,
        request: &RequestHeader,
        peer: Option<IpAddr>,
        ctx: &mut RequestContext,
    ) -> Reply {
        let settings = self.gateway.settings();
        let original = if peer.is_some_and(|ip| self.forwarded.is_trusted(ip)) {
            forward_auth::original_request(request, &settings.public_url)
        } else {
            Err(Refusal::UntrustedPeer)
        };
        let original = match original {
            Ok(original) => original,
            Err(refusal) => {
                ctx.outcome = Outcome::Error;
                ctx.denied = Some(refusal.reason());
                let (reply, log) = refusal.reply();
                tracing::warn!(correlation_id = %ctx.correlation_id, peer = ?peer, reason = refusal.reason(), "{log}");
                return reply;
            }
        };
        ctx.checked = Some(loggable_path(&original.uri).into_owned());
        let answering = Answering::of(request);
        let verdict = if Route::from_path(original.uri.path()).is_some() {
            // guichet's own pages need no session (the front proxy should not ask).
            Verdict::Allow
        } else {
            self.judge(&original, ctx).await
        };
        match verdict {
            Verdict::Allow => {
                ctx.outcome = Outcome::Authorized;
                let session = ctx.session.as_deref();
                forward_auth::allowed(&self.gateway, &original, session, unix_now())
                    .unwrap_or_else(|e| {
                        tracing::error!(correlation_id = %ctx.correlation_id, error = %e, "cannot attach the identity");
                        ctx.outcome = Outcome::Error;
                        Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "identity forwarding failed\n")
                    })
            }
            Verdict::SignIn { login, browser } => {
                ctx.outcome = if browser && answering.redirects {
                    Outcome::LoginRedirect
                } else {
                    Outcome::Unauthorized
                };
                forward_auth::sign_in(&login, browser, answering, &settings.public_url)
            }
            Verdict::Refuse(reply) => forward_auth::refusal(reply, answering),
        }
    }

    /// The answer to a signed-in visitor a route's rules refuse: 403, a page for browsers (with
    /// a link to sign in with an accepted provider when the provider was the reason), a short
    /// text for scripts; counted and logged with the reason.
    fn deny(
        &self,
        request: &RequestHeader,
        route: &PolicyRoute,
        denial: Denial,
        ctx: &mut RequestContext,
    ) -> Reply {
        ctx.outcome = Outcome::Denied;
        ctx.denied = Some(denial.reason());
        self.gateway
            .metrics()
            .access_denied
            .with_label_values(&[route.name.as_str(), denial.reason()])
            .inc();
        if unauthenticated(request) == Unauthenticated::Reject {
            tracing::info!(correlation_id = %ctx.correlation_id, route = %route.name, reason = denial.reason(), "denied");
            return Reply::text(
                StatusCode::FORBIDDEN,
                &format!("access denied ({})\n", denial.reason()),
            );
        }
        let mut page = PageError::access_denied(denial);
        if let (Some(providers), Denial::Provider) = (&route.providers, denial) {
            page.link = Some(Box::new((
                "Se connecter avec un service accepté / Sign in with an accepted provider",
                login_path(target(request), &[("providers", &providers.join(","))]),
            )));
        }
        render_error(self.gateway.pages(), &page, &ctx.correlation_id)
    }

    /// A session below the route's level: a new login at the same provider asking for the
    /// route's level (and a fresh authentication), back to the same URL; a 401 naming it for
    /// scripts.
    fn step_up(
        &self,
        request: &RequestHeader,
        route: &PolicyRoute,
        provider: &str,
        ctx: &RequestContext,
    ) -> Verdict {
        let levels = route.acr.join(" ");
        let login = login_path(target(request), &[("provider", provider), ("acr", &levels)]);
        tracing::info!(correlation_id = %ctx.correlation_id, route = %route.name, "session below the route's level: step-up");
        let browser = unauthenticated(request) == Unauthenticated::RedirectToLogin;
        Verdict::SignIn { login, browser }
    }

    /// The answer to a visitor without a session on a route that requires one: the login
    /// (offering only the route's providers, asking for its level).
    fn without_session(&self, request: &RequestHeader, route: &PolicyRoute) -> Verdict {
        let only = route.providers.as_ref().map(|p| p.join(","));
        let levels = route.acr.join(" ");
        let mut extra: Vec<(&str, &str)> = only.iter().map(|p| ("providers", p.as_str())).collect();
        if !levels.is_empty() {
            extra.push(("acr", &levels));
        }
        let login = login_path(target(request), &extra);
        let browser = match route.without_session {
            WithoutSession::Redirect => true,
            WithoutSession::Reject => false,
            WithoutSession::ByClient => {
                unauthenticated(request) == Unauthenticated::RedirectToLogin
            }
        };
        Verdict::SignIn { login, browser }
    }

    /// Metrics for a finished request, and its access log line (no query values, the subject
    /// hashed).
    pub(crate) fn record(&self, session: &Downstream, ctx: &RequestContext) {
        let status = session.response_status().map_or(0, |s| s.as_u16());
        let duration = ctx.started.elapsed();
        let bytes_in = session.body_bytes_read() as u64;
        let bytes_out = session.body_bytes_sent() as u64;
        self.metrics
            .request(ctx.outcome, status, duration, (bytes_in, bytes_out));
        if self.gateway.settings().access_log {
            let request = session.req_header();
            let path = loggable_path(&request.uri);
            access_log::write(
                &access_log::AccessLine {
                    correlation_id: &ctx.correlation_id,
                    method: request.method.as_str(),
                    path: &path,
                    status,
                    outcome: ctx.outcome.as_str(),
                    duration,
                    upstream: ctx.upstream_latency,
                    provider: ctx.session.as_ref().map(|s| s.provider()),
                    sub_hash: ctx.session.as_ref().map(|s| s.sub_hash.as_str()),
                    denied: ctx.denied,
                    checked: ctx.checked.as_deref(),
                    bytes_in,
                    bytes_out,
                },
                self.access_format,
            );
        }
    }

    /// A fresh request's state.
    pub(crate) fn new_request(&self) -> RequestContext {
        RequestContext {
            session: None,
            outcome: Outcome::Proxied,
            correlation_id: CorrelationId::default(),
            started: Instant::now(),
            upstream_sent: None,
            upstream_latency: None,
            upstream: None,
            denied: None,
            checked: None,
        }
    }

    /// The application's final response header arrived: how long it took.
    pub(crate) fn upstream_answered(&self, ctx: &mut RequestContext) {
        if let Some(sent) = ctx.upstream_sent.take() {
            let latency = sent.elapsed();
            self.metrics.upstream_response(latency);
            ctx.upstream_latency = Some(latency);
        }
    }

    /// A request that failed while proxying: the page for it (502, 504, 400, 500) when no
    /// response has been written yet, the connection closed after it; nothing when the client
    /// went away. Returns the status (0: none).
    pub(crate) async fn fail(
        &self,
        session: &mut Downstream,
        e: &Error,
        ctx: &mut RequestContext,
    ) -> u16 {
        ctx.outcome = Outcome::Error;
        let code = failure_status(e);
        if code == 0 {
            tracing::debug!(error = %e, "client went away");
        } else if session.response_status().is_none() {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            let reply = render_error(
                self.gateway.pages(),
                &PageError::upstream(status, e.to_string()),
                &ctx.correlation_id,
            );
            session.set_keepalive_off();
            if let Err(write_error) = write_reply(session, reply).await {
                tracing::debug!(error = %write_error, "could not write the error page");
            }
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every proxied request builds these futures inside its own, and moves them byte for byte
    /// as they are set up: the rare paths (guichet's own pages, the shared store's calls,
    /// several KiB each) have their own allocations and stay out of them.
    #[tokio::test]
    async fn the_futures_of_a_proxied_request_stay_small() {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let settings =
            crate::demo::demo_settings(&crate::demo::DemoAddresses::all(any), &"s".repeat(40));
        let proxy = GatewayProxy::new(Arc::new(Gateway::new(settings).unwrap()));
        let request = RequestHeader::build("GET", b"/", None).unwrap();
        let mut ctx = proxy.new_request();
        let judge = std::mem::size_of_val(&proxy.judge(&request, &mut ctx));
        assert!(judge <= 512, "judge: {judge} bytes");
        let admit = std::mem::size_of_val(&proxy.admit(&request, None, &mut ctx));
        assert!(admit <= 2048, "admit: {admit} bytes");
    }
}
