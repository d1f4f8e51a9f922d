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
//! Usage: `passthrough --listen 127.0.0.1:18090 --upstream 127.0.0.1:18083 [--threads 2]
//! [--add-headers FILE] [--h2c]`.
//! Run without arguments (as `cargo bench` does) it prints this usage and exits.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::modules::http::HttpModules;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::Server;

use guichet::config::UpstreamSettings;
use guichet::http::forwarded::UpstreamParts;
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
        if self.added.is_empty() {
            return Ok(());
        }
        let mut request = UpstreamParts::take(upstream_request);
        let _ = request.parts.headers.try_reserve(self.added.len());
        for (name, value) in &self.added {
            request.parts.headers.insert(name.clone(), value.clone());
        }
        request.put_back(upstream_request)
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
             [--add-headers FILE] [--h2c]"
        );
        return;
    };
    let upstream: SocketAddr = upstream.parse().expect("--upstream ADDR:PORT");
    let threads = value("--threads").map_or(2, |t| t.parse().expect("--threads N"));
    let mut server = Server::new_with_opt_and_conf(None, tuned_conf(threads));
    server.bootstrap();
    let app = Passthrough {
        upstream: UpstreamSettings {
            address: upstream,
            tls: false,
            sni: String::new(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            ca_file: None,
            pass_host: false,
        },
        added: value("--add-headers").map_or_else(Vec::new, |path| read_headers(&path)),
        h2c: flag("--h2c"),
    };
    let mut service = proxy_service(&server, app, "passthrough");
    guichet::server::listen(&mut service, &listen, None);
    server.add_service(service);
    server.run_forever();
}
