//! `[server]`, `[metrics]` and `[log]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::Checker;
use crate::config::file::{default_upgrade_sock, FileConfig, LogSection, TlsSection};
use crate::config::settings::{Cidr, ListenerTls, Mode};

/// The `[server]` and `[metrics]` parts of the settings.
pub(super) struct ServerParts {
    pub mode: Mode,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub threads: usize,
    pub work_stealing: bool,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
    pub trusted_proxies: Vec<Cidr>,
    pub tls: Option<ListenerTls>,
    pub upgrade_sock: PathBuf,
    pub pid_file: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
}

pub(super) fn settings(check: &mut Checker, file: &FileConfig) -> ServerParts {
    let server = &file.server;
    let listen = check.socket_addr("server.listen", &server.listen);
    let public_url = public_url(check, &server.public_url);
    let tls = server
        .tls
        .as_ref()
        .map(|section| tls(check, section, &public_url));
    let metrics_listen = file
        .metrics
        .as_ref()
        .map(|m| check.socket_addr("metrics.listen", &m.listen));
    let mode = check.choice("server.mode", server.mode.as_deref(), Mode::Proxy);
    let trusted_proxies = trusted_proxies(check, &server.trusted_proxies);
    if mode.answers_auth() && server.trusted_proxies.is_empty() {
        check.problem(
            "server.trusted_proxies",
            "list the front proxy's addresses (e.g. [\"127.0.0.1\"]): with server.mode = \"auth\" or \"both\", /.guichet/auth answers only them, since it trusts the request they describe",
        );
    }
    if metrics_listen == Some(listen) {
        check.problem(
            "metrics.listen",
            "must differ from server.listen: metrics are never served on the public port",
        );
    }
    ServerParts {
        mode,
        listen,
        threads: match server.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        },
        work_stealing: server.work_stealing,
        grace_period: check.duration("server.grace_period", &server.grace_period),
        shutdown_timeout: check.duration("server.shutdown_timeout", &server.shutdown_timeout),
        trusted_proxies,
        tls,
        upgrade_sock: server
            .upgrade_sock
            .clone()
            .unwrap_or_else(|| default_upgrade_sock(check.env)),
        pid_file: server.pid_file.clone(),
        metrics_listen,
        public_url,
    }
}

/// An origin: scheme, host, optional port.
fn public_url(check: &mut Checker, text: &str) -> Url {
    match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.path() != "/" || u.query().is_some() {
                check.problem(
                    "server.public_url",
                    "must be an origin only (scheme, host, optional port), without a path or query",
                );
            }
            u
        }
        _ => {
            check.problem(
                "server.public_url",
                format!(
                    "expected an absolute http(s) URL such as \"https://app.example.gouv.fr\", got {text:?}"
                ),
            );
            Url::parse("http://invalid.invalid").expect("static URL parses")
        }
    }
}

fn trusted_proxies(check: &mut Checker, list: &[String]) -> Vec<Cidr> {
    let mut proxies = Vec::new();
    for (i, text) in list.iter().enumerate() {
        match text.parse() {
            Ok(cidr) => proxies.push(cidr),
            Err(()) => check.problem(
                format!("server.trusted_proxies[{i}]"),
                format!("expected an address or a CIDR such as \"10.0.0.0/8\", got {text:?}"),
            ),
        }
    }
    proxies
}

fn tls(check: &mut Checker, section: &TlsSection, public_url: &Url) -> ListenerTls {
    check.existing_file("server.tls.cert", &section.cert);
    check.existing_file("server.tls.key", &section.key);
    if public_url.scheme() != "https" {
        check.problem(
            "server.public_url",
            "must be https:// when [server.tls] is set: visitors reach guichet over HTTPS",
        );
    }
    ListenerTls {
        cert: section.cert.clone(),
        key: section.key.clone(),
        http_redirect_listen: section
            .http_redirect_listen
            .as_ref()
            .map(|a| check.socket_addr("server.tls.http_redirect_listen", a)),
    }
}

/// `[log]`: the level, and whether lines are JSON.
pub(super) fn log(check: &mut Checker, section: &LogSection) -> (String, bool) {
    let level = section.level.to_ascii_lowercase();
    if !matches!(
        level.as_str(),
        "error" | "warn" | "info" | "debug" | "trace"
    ) {
        check.problem(
            "log.level",
            format!(
                "expected one of error, warn, info, debug, trace; got {:?}",
                section.level
            ),
        );
    }
    let json = match section.format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            check.problem(
                "log.format",
                format!("expected \"text\" or \"json\", got {other:?}"),
            );
            false
        }
    };
    (level, json)
}
