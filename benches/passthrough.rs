//! The framework's ceiling: a pingora proxy that only picks the upstream (`ProxyHttp` with
//! `upstream_peer` alone), built with guichet's allocator, server configuration, listener
//! options, response modules and peer settings (`guichet::server::{tuned_conf, proxy_service,
//! downstream_modules, upstream_peer}`).
//! `benches/load.sh` runs it beside guichet so that what guichet adds is measured, not assumed.
//!
//! With `--add-headers FILE` (`name: value` lines, as `benches/sessions.rs --upstream-headers`
//! writes them) it also adds those headers to every request, the way guichet adds its own (the
//! request taken out as `http` parts, room made once, the prebuilt values cloned): that row
//! measures what the larger request costs the framework, without guichet's work to build it.
//!
//! With `--h2c` it speaks HTTP/2 without TLS (prior knowledge) to the upstream: requests
//! multiplexed on one connection instead of HTTP/1.1 keep-alive (`benches/instructions.sh`
//! counts both).
//!
//! With `--core` it is not a pingora-proxy service at all but the smallest proxy loop written
//! on pingora-core (pingora's listener, runtime and connections; the request read and the
//! response written with guichet's HTTP/1.x server session — `guichet::http::inbound`, the one
//! guichet's own loop uses —; an idle upstream connection taken from guichet's pool —
//! `guichet::http::pool` —, the header sent and the response read with guichet's client session
//! — `guichet::http::client` —, the response copied back, both connections handed back for
//! reuse). It serves only requests
//! without a body (anything else gets a 501): it is not a proxy anyone should run, but the floor
//! under guichet's own loop (`guichet::http::h1`: bodies both ways, upgrades, the resend, the
//! pages), measured against pingora-proxy's (`benches/instructions.sh`).
//!
//! Usage: `passthrough --listen 127.0.0.1:18090 --upstream 127.0.0.1:18083 [--threads 2]
//! [--add-headers FILE] [--h2c | --core] [--work-stealing]`. `--work-stealing` turns on tokio's work
//! stealing between the threads, which guichet leaves off by default (`server.work_stealing`).
//! Run without arguments (as `cargo bench` does) it prints this usage and exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora::apps::ServerApp;
use pingora::http::RequestHeader;
use pingora::modules::http::HttpModules;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::HttpTask;
use pingora::protocols::Stream;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::listening::Service;

use guichet::config::UpstreamSettings;
use guichet::http::forwarded::UpstreamParts;
use guichet::http::inbound::{Connection, Inbound};
use guichet::http::pool::Upstreams;
use guichet::server::{downstream_modules, proxy_service, tuned_conf, upstream_peer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Passthrough {
    upstream: UpstreamSettings,
    /// Headers added to every request (`--add-headers`); none by default.
    added: Vec<(HeaderName, HeaderValue)>,
    /// HTTP/2 without TLS to the upstream (`--h2c`).
    h2c: bool,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        downstream_modules(modules);
    }

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut peer = upstream_peer(&self.upstream);
        if self.h2c {
            peer.options.set_http_version(2, 2);
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        add_headers(&self.added, upstream_request)
    }
}

/// Adds `added` to `request` the way guichet adds its headers (the request taken out as `http`
/// parts, room made once, the prebuilt values cloned).
fn add_headers(
    added: &[(HeaderName, HeaderValue)],
    request: &mut RequestHeader,
) -> pingora::Result<()> {
    if added.is_empty() {
        return Ok(());
    }
    let mut parts = UpstreamParts::take(request);
    insert_headers(added, &mut parts.parts.headers);
    parts.put_back(request)
}

/// Room made once, the prebuilt values cloned: as guichet adds a session's headers.
fn insert_headers(added: &[(HeaderName, HeaderValue)], headers: &mut http::HeaderMap) {
    let _ = headers.try_reserve(added.len());
    for (name, value) in added {
        headers.insert(name.clone(), value.clone());
    }
}

/// `--core`: the smallest proxy loop on pingora-core, for requests without a body.
struct CoreLoop {
    upstreams: Upstreams,
    peer: HttpPeer,
    /// Headers added to every request (`--add-headers`); none by default.
    added: Vec<(HeaderName, HeaderValue)>,
}

impl CoreLoop {
    /// Proxies one request.
    async fn proxy(&self, session: &mut Inbound) -> pingora::Result<()> {
        if !session.is_body_empty() {
            session.refuse(501).await;
            return Ok(());
        }
        let mut upstream = self
            .upstreams
            .connect(&self.peer, false, false)
            .await?
            .session;
        // Copied as guichet's loop copies it (`UpstreamParts::copy_of`).
        let mut request = UpstreamParts::copy_of(session.req_header());
        insert_headers(&self.added, &mut request.parts.headers);
        let request = Box::new(request.into_header()?);
        upstream.write_request_header(&request).await?;
        loop {
            match upstream.read_response_task().await? {
                HttpTask::Header(header, end) => {
                    if header.status.is_informational() {
                        continue;
                    }
                    session.write_response_header(header).await?;
                    if end {
                        break;
                    }
                }
                HttpTask::Body(data, end) => {
                    if let Some(data) = data.filter(|d| !d.is_empty()) {
                        session.write_response_body(data, false).await?;
                    }
                    if end {
                        break;
                    }
                }
                _ => break,
            }
        }
        if upstream.is_body_done() {
            self.upstreams.release(upstream, &self.peer);
        }
        Ok(())
    }
}

#[async_trait]
impl ServerApp for CoreLoop {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut conn = Connection::new(stream);
        while let Some(request) = conn.next_request().await.ok()? {
            let mut session = Inbound::new(conn, request);
            if let Err(e) = self.proxy(&mut session).await {
                eprintln!("core loop: {e}");
                return None;
            }
            conn = session.finish().await?;
        }
        None
    }
}

/// The `name: value` lines of `path`.
fn read_headers(path: &str) -> Vec<(HeaderName, HeaderValue)> {
    let text = std::fs::read_to_string(path).expect("--add-headers FILE");
    text.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(value.as_bytes()))
                    .expect("header value"),
            )
        })
        .collect()
}

#[path = "common/args.rs"]
mod args;
use args::{flag, value};

fn main() {
    let (Some(listen), Some(upstream)) = (value("--listen"), value("--upstream")) else {
        println!(
            "usage: passthrough --listen ADDR:PORT --upstream ADDR:PORT [--threads N] \
             [--add-headers FILE] [--h2c | --core] [--work-stealing]"
        );
        return;
    };
    let upstream: SocketAddr = upstream.parse().expect("--upstream ADDR:PORT");
    let threads = value("--threads").map_or(2, |t| t.parse().expect("--threads N"));
    let mut conf = tuned_conf(threads);
    conf.work_stealing = flag("--work-stealing");
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let upstream = UpstreamSettings {
        address: upstream,
        tls: false,
        sni: String::new(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(60),
        ca_file: None,
        pass_host: false,
    };
    let added = value("--add-headers").map_or_else(Vec::new, |path| read_headers(&path));
    if flag("--core") {
        let app = CoreLoop {
            upstreams: Upstreams::new(None, 128),
            peer: upstream_peer(&upstream),
            added,
        };
        let mut service = Service::new("core loop".into(), app);
        guichet::server::listen(&mut service, &listen, None);
        server.add_service(service);
        server.run_forever();
    }
    let app = Passthrough {
        upstream,
        added,
        h2c: flag("--h2c"),
    };
    let mut service = proxy_service(&server, app, "passthrough");
    guichet::server::listen(&mut service, &listen, None);
    server.add_service(service);
    server.run_forever();
}
