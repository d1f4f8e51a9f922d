//! `[upstream]`.

use std::net::SocketAddr;

use url::Url;

use super::Checker;
use crate::config::file::{FileConfig, UpstreamSection};
use crate::config::settings::{Mode, UpstreamSettings};
use crate::config::Spelled;

/// `[upstream]`: required when guichet proxies, ignored (with a warning, as are named upstreams
/// and routes' `upstream`) when it only answers a front proxy's checks.
pub(super) fn settings(
    check: &mut Checker,
    file: &FileConfig,
    mode: Mode,
) -> Option<UpstreamSettings> {
    if !mode.proxies() {
        if file.upstream.is_some() || !file.upstreams.is_empty() {
            check.warnings.push(
                "upstream: ignored with server.mode = \"auth\": the front proxy sends requests to the application"
                    .into(),
            );
        }
        return None;
    }
    match &file.upstream {
        Some(section) => Some(named(check, "upstream", section)),
        None => {
            check.problem(
                "upstream",
                format!(
                    "missing: [upstream] url = \"http://…\" names the application guichet proxies to (server.mode = {:?}); with server.mode = \"auth\" a front proxy does it instead",
                    mode.as_str()
                ),
            );
            None
        }
    }
}

/// An upstream section at `key` (`upstream`, `upstreams.api`).
pub(super) fn named(check: &mut Checker, key: &str, section: &UpstreamSection) -> UpstreamSettings {
    let connect_timeout =
        check.duration(&format!("{key}.connect_timeout"), &section.connect_timeout);
    let read_timeout = check.duration(&format!("{key}.read_timeout"), &section.read_timeout);
    if let Some(path) = &section.ca_file {
        check.existing_file(&format!("{key}.ca_file"), path);
    }
    let fallback = UpstreamSettings {
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: false,
        sni: String::new(),
        connect_timeout,
        read_timeout,
        ca_file: section.ca_file.clone(),
        pass_host: section.pass_host,
    };
    let url = match Url::parse(&section.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        _ => {
            check.problem(
                format!("{key}.url"),
                format!(
                    "expected an absolute http(s) URL such as \"http://127.0.0.1:9000\", got {:?}",
                    section.url
                ),
            );
            return fallback;
        }
    };
    if url.path() != "/" || url.query().is_some() {
        check.problem(
            format!("{key}.url"),
            "must not have a path or query: requests are forwarded with their own path",
        );
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
    let address = match std::net::ToSocketAddrs::to_socket_addrs(&(host_for_lookup, port))
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => {
            check.problem(
                format!("{key}.url"),
                format!("cannot resolve host {host:?} of the upstream"),
            );
            return fallback;
        }
    };
    UpstreamSettings {
        address,
        tls: url.scheme() == "https",
        sni: host,
        connect_timeout,
        read_timeout,
        ca_file: section.ca_file.clone(),
        pass_host: section.pass_host,
    }
}
