//! Assembles the pingora server: the proxy listener, the provider discovery task and the internal
//! metrics listener, all from [`Settings`].

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::modules::http::HttpModules;
use pingora::protocols::http::ServerSession;
use pingora::proxy::{HttpProxy, ProxyHttp, ProxyServiceBuilder};
use pingora::server::configuration::Opt;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use pingora::upstreams::peer::HttpPeer;

use crate::config::{Settings, UpstreamSettings};
use crate::gateway::{Gateway, StartError};
use crate::http::h1::GatewayApp;
use crate::http::proxy::GatewayProxy;
use crate::metrics::MetricsApp;
use crate::oidc::{keep_discovered, Provider};
use crate::seal::DeploymentKey;
use crate::session::HandedOver;

/// How `guichet run` was started.
#[derive(Clone, Copy, Debug, Default)]
pub struct Launch {
    /// Take over the listening sockets of a running guichet (graceful upgrade).
    pub upgrade: bool,
    /// Detach and write `server.pid_file`.
    pub daemon: bool,
}

/// pingora's server configuration as guichet tunes it for `threads` worker threads; the
/// passthrough benchmark (`benches/passthrough.rs`) uses it too, so the framework's ceiling is
/// measured as guichet runs it.
///
/// Work stealing is off (`server.work_stealing`): each connection is served by one
/// single-threaded runtime, chosen at accept, as nginx's workers do. With tokio's work-stealing
/// runtime, the thread an I/O event wakes is often not the one that ran the task: a cross-thread
/// wake-up (a futex) for about every other request, and tasks that move away from their thread's
/// idle upstream connections (`http::pool` keeps them per thread) open new ones.
pub fn tuned_conf(threads: usize) -> ServerConf {
    ServerConf {
        threads,
        work_stealing: false,
        ..ServerConf::default()
    }
}

/// The pingora peer for an upstream, with its time-outs (the passthrough benchmark uses it too).
pub fn upstream_peer(upstream: &UpstreamSettings) -> HttpPeer {
    let mut peer = HttpPeer::new(upstream.address, upstream.tls, upstream.sni.clone());
    peer.options.connection_timeout = Some(upstream.connect_timeout);
    peer.options.read_timeout = Some(upstream.read_timeout);
    peer
}

/// The response modules of a proxy service: none. pingora's default installs a response
/// compression module, switched off, that still costs every request an allocation for its
/// state and a pass through its filters for the response header and each body chunk; guichet
/// never compresses (the application's responses go through as they are). The passthrough
/// benchmark uses it too.
pub fn downstream_modules(modules: &mut HttpModules) {
    let _ = modules;
}

/// Read buffer of each client connection. pingora's default (64 KiB, allocated at accept and
/// held while the connection idles) made an idle keep-alive connection cost about 100 KiB;
/// request heads are far smaller, and bodies stream through whatever the size.
pub const CLIENT_READ_BUFFER: usize = 16 * 1024;

/// Adds a listening address to a proxy service, with guichet's connection buffers and, when
/// given, TLS.
pub fn listen<A>(service: &mut Service<A>, address: &str, tls: Option<TlsSettings>)
where
    A: pingora::apps::ServerApp + Send + Sync + 'static,
{
    let mut config = ListenerConfig::tcp(address)
        .l4_buffer(L4BufferSettings::default().read(CLIENT_READ_BUFFER));
    if let Some(tls) = tls {
        config = config.tls(tls);
    }
    service.add_listener(config);
}

/// guichet's listener options: HTTP/2 without TLS (prior knowledge) accepted, for clients and
/// load balancers that use it.
pub fn listener_options() -> HttpServerOptions {
    let mut options = HttpServerOptions::default();
    options.h2c = true;
    options
}

/// A pingora-proxy service for `app`, with guichet's listener options (the passthrough
/// benchmark's; guichet's own service is a [`GatewayApp`]).
pub fn proxy_service<P>(server: &Server, app: P, name: &str) -> Service<HttpProxy<P>>
where
    P: ProxyHttp + Send + Sync + 'static,
    P::CTX: Send + Sync,
{
    ProxyServiceBuilder::new(&server.configuration, app)
        .name(name)
        .server_options(listener_options())
        .build()
}

/// A pingora server configured from the settings (threads, shutdown timings), bootstrapped.
/// With `launch.upgrade`, bootstrapping waits for the old process to hand over its sockets.
pub fn new_server(settings: &Settings, launch: Launch) -> Server {
    let conf = ServerConf {
        upgrade_sock: settings.upgrade_sock.display().to_string(),
        pid_file: settings.pid_file.display().to_string(),
        daemon: launch.daemon,
        ca_file: settings
            .upstream
            .as_ref()
            .and_then(|u| u.ca_file.as_ref())
            .map(|p| p.display().to_string()),
        grace_period_seconds: Some(settings.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(settings.shutdown_timeout.as_secs()),
        work_stealing: settings.work_stealing,
        ..tuned_conf(settings.threads)
    };
    let opt = Opt {
        upgrade: launch.upgrade,
        daemon: launch.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    server
}

/// The file sessions are handed over in at a graceful upgrade.
pub fn handover_path(settings: &Settings) -> std::path::PathBuf {
    let mut path = settings.upgrade_sock.clone().into_os_string();
    path.push(".sessions");
    path.into()
}

/// Why a hand-over file is not read: it must be a regular file of this process's user that no
/// one else may read or write (it holds sessions: identities and id_tokens).
fn untrusted_handover(metadata: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the process's effective user.
    let user = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    if !metadata.file_type().is_file() {
        return Some("not a regular file".into());
    }
    if metadata.uid() != user {
        return Some(format!(
            "owned by uid {}, not by this process's uid {user}",
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o077 != 0 {
        return Some(format!(
            "mode {:o}: other users may read or write it",
            metadata.mode() & 0o777
        ));
    }
    None
}

/// What an old process hands over at a graceful upgrade: its sessions and, without
/// `[session.shared]`, its own random key (what it sealed into browsers' cookies — logout hints,
/// logins in progress — then still opens).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct HandOver {
    #[serde(default)]
    key: Option<String>,
    sessions: Vec<HandedOver>,
}

/// The file as earlier versions wrote it (the sessions alone), or as this one does.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum HandOverFile {
    Sessions(Vec<HandedOver>),
    Current(HandOver),
}

impl HandOver {
    /// The old process's own key, if it handed one over.
    pub fn key(&self) -> Option<DeploymentKey> {
        let text = self.key.as_deref()?;
        let key = DeploymentKey::from_text(text);
        if key.is_none() {
            tracing::error!("the hand-over file's key is not a key: logout hints sealed by the previous process will not open");
        }
        key
    }

    /// Puts the sessions into the new process's store.
    pub async fn restore(self, gateway: &Gateway) {
        let restored = gateway.sessions().restore(self.sessions).await;
        tracing::info!(restored, "sessions taken over from the previous process");
    }
}

/// Reads what an old process handed over, if anything, and deletes the file. A file that is not
/// this user's alone is refused (and left for the operator to look at).
pub fn read_handover(settings: &Settings) -> Option<HandOver> {
    let path = handover_path(settings);
    let metadata = std::fs::symlink_metadata(&path).ok()?;
    if let Some(why) = untrusted_handover(&metadata) {
        tracing::error!(path = %path.display(), why, "session hand-over file refused: its sessions are not taken over");
        return None;
    }
    let text = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    match serde_json::from_slice(&text) {
        Ok(HandOverFile::Current(handover)) => Some(handover),
        Ok(HandOverFile::Sessions(sessions)) => Some(HandOver {
            key: None,
            sessions,
        }),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "unreadable session hand-over file; its sessions are lost");
            None
        }
    }
}

/// Signals: SIGQUIT = graceful upgrade (a gateway's sessions are written for the new process
/// first), SIGTERM = graceful stop, SIGINT = stop now ([`stop_now`]). `gateway` is `None` for
/// the processes without one (the demo, the mock provider).
pub struct Signals {
    pub gateway: Option<Arc<Gateway>>,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => {
                if let Some(gateway) = &self.gateway {
                    write_handover(gateway);
                }
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => stop_now(),
        }
    }
}

/// SIGINT: the access lines still buffered are written and the process ends at once, requests
/// in flight cut, as a fast stop does. Not through pingora's fast shutdown: it stops the worker
/// threads' runtimes one after the other while the accept loops still run, and an accept loop
/// whose listening socket is registered with a runtime already stopped fails at once, forever,
/// without yielding (pingora picks the loop's runtime at random, not the socket's): a thread at
/// 100 % writing "Accept() failed" to the log, over a hundred megabytes a second, in a process
/// that never exits (about one stop in ten, two worker threads).
fn stop_now() -> ! {
    use std::io::Write;
    tracing::info!("SIGINT received, stopping now");
    crate::access_log::flush();
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(0)
}

/// Runs `server` until a signal stops it ([`Signals`]), then writes the access lines still
/// buffered.
pub fn run_until_stopped(server: Server, gateway: Option<Arc<Gateway>>) {
    server.run(pingora::server::RunArgs {
        shutdown_signal: Box::new(Signals { gateway }),
    });
    crate::access_log::flush();
}

/// SIGQUIT: the gateway's sessions written for the new process (mode 0600, created anew).
fn write_handover(gateway: &Gateway) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = handover_path(gateway.settings());
    let handover = HandOver {
        key: gateway.own_key().map(DeploymentKey::to_text),
        sessions: gateway.sessions().dump(),
    };
    let count = handover.sessions.len();
    let written = serde_json::to_vec(&handover)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            let _ = std::fs::remove_file(&path);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(&bytes))
        });
    match written {
        Ok(()) => {
            tracing::info!(sessions = count, path = %path.display(), "sessions written for the new process")
        }
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "cannot hand sessions over; they will be lost")
        }
    }
}

/// Parses the listener's certificate chain and key, so that a bad file stops start-up (and
/// `guichet check`) with its name rather than failing when the listener starts.
pub fn check_tls(settings: &Settings) -> Result<(), StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    if let Some(tls) = &settings.tls {
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(&tls.cert)
            .and_then(|iter| iter.collect::<Result<_, _>>())
            .map_err(|e| StartError::Tls(format!("{}: {e}", tls.cert.display())))?;
        if certs.is_empty() {
            return Err(StartError::Tls(format!(
                "{}: no PEM certificate in it",
                tls.cert.display()
            )));
        }
        PrivateKeyDer::from_pem_file(&tls.key)
            .map_err(|e| StartError::Tls(format!("{}: {e}", tls.key.display())))?;
    }
    Ok(())
}

/// Adds the gateway's services to `server` and returns the shared state.
pub fn add_gateway(server: &mut Server, settings: Settings) -> Result<Arc<Gateway>, StartError> {
    add_gateway_inheriting(server, settings, None)
}

/// [`add_gateway`], keeping the key an old process handed over ([`Gateway::inheriting`]).
pub fn add_gateway_inheriting(
    server: &mut Server,
    settings: Settings,
    inherited: Option<DeploymentKey>,
) -> Result<Arc<Gateway>, StartError> {
    check_tls(&settings)?;
    let gateway = Arc::new(Gateway::inheriting(settings, inherited)?);
    let settings = &gateway.settings();

    let app = GatewayApp::new(
        GatewayProxy::new(gateway.clone()),
        settings,
        &server.configuration,
        listener_options(),
    );
    let mut proxy = Service::new("guichet gateway".to_string(), app);
    match &settings.tls {
        Some(tls) => {
            let mut tls_settings = TlsSettings::intermediate(
                &tls.cert.display().to_string(),
                &tls.key.display().to_string(),
            )
            .map_err(|e| StartError::Tls(e.to_string()))?;
            tls_settings.enable_h2();
            listen(&mut proxy, &settings.listen.to_string(), Some(tls_settings));
            if let Some(redirect_listen) = tls.http_redirect_listen {
                let app = HttpsRedirect {
                    origin: settings
                        .public_url
                        .as_str()
                        .trim_end_matches('/')
                        .to_string(),
                };
                let mut redirect = Service::new("guichet http redirect".to_string(), app);
                redirect.add_tcp(&redirect_listen.to_string());
                server.add_service(redirect);
            }
        }
        None => listen(&mut proxy, &settings.listen.to_string(), None),
    }
    server.add_service(proxy);

    server.add_service(background_service(
        "provider discovery",
        Discovery {
            providers: gateway.providers().to_vec(),
        },
    ));

    if let Some(listen) = settings.metrics_listen {
        let app = MetricsApp {
            metrics: gateway.metrics().clone(),
            sessions: gateway.sessions().clone(),
        };
        let mut metrics = Service::new("guichet metrics".to_string(), app);
        metrics.add_tcp(&listen.to_string());
        server.add_service(metrics);
    }
    Ok(gateway)
}

/// Answers every plain-HTTP request with a permanent redirect to the same path on `origin`.
struct HttpsRedirect {
    origin: String,
}

#[async_trait]
impl ServeHttp for HttpsRedirect {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let target = session
            .req_header()
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str());
        http::Response::builder()
            .status(308)
            .header("location", format!("{}{}", self.origin, target))
            .header("content-length", 0)
            .body(Vec::new())
            .unwrap_or_default()
    }
}

/// Keeps every provider's metadata loaded until shutdown.
struct Discovery {
    providers: Vec<Arc<Provider>>,
}

#[async_trait]
impl BackgroundService for Discovery {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tasks = tokio::task::JoinSet::new();
        for provider in &self.providers {
            tasks.spawn(keep_discovered(provider.clone()));
        }
        let _ = shutdown.changed().await;
        tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_hand_over_file_others_may_read_or_replace_is_refused() {
        let dir = std::env::temp_dir().join(format!("guichet-handover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("upgrade.sock.sessions");
        std::fs::write(&file, b"[]").unwrap();
        let metadata = |path: &std::path::Path| std::fs::symlink_metadata(path).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(untrusted_handover(&metadata(&file)), None);
        for mode in [0o644, 0o640, 0o602, 0o660] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            let why = untrusted_handover(&metadata(&file)).expect("refused");
            assert!(why.contains("other users"), "{why}");
        }
        let link = dir.join("link.sessions");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(
            untrusted_handover(&metadata(&link)).as_deref(),
            Some("not a regular file")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hand_over_file_is_read_once_with_or_without_a_key() {
        let dir =
            std::env::temp_dir().join(format!("guichet-handover-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let mut settings =
            crate::demo::demo_settings(&crate::demo::DemoAddresses::all(any), &"s".repeat(40));
        settings.upgrade_sock = dir.join("upgrade.sock");
        let path = handover_path(&settings);
        let key = DeploymentKey::random();
        let sealed = key
            .sealer(crate::seal::Purpose::LogoutHint, "c")
            .seal(b"k", b"t");
        let write = |text: &str| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        // This version's file: the key comes back and opens what the old process sealed.
        write(&format!(r#"{{"key":"{}","sessions":[]}}"#, key.to_text()));
        let handover = read_handover(&settings).expect("read");
        let again = handover.key().expect("a key");
        let opened = again
            .sealer(crate::seal::Purpose::LogoutHint, "c")
            .open(b"k", sealed.as_bytes());
        assert_eq!(opened.as_deref(), Some(&b"t"[..]));
        assert!(!path.exists(), "read once");
        assert!(read_handover(&settings).is_none());
        // An earlier version's file (the sessions alone), a process with a shared key (none
        // written), a damaged key: the sessions without a key.
        for text in [
            "[]".to_string(),
            r#"{"sessions":[]}"#.to_string(),
            r#"{"key":null,"sessions":[]}"#.to_string(),
            r#"{"key":"c2hvcnQ","sessions":[]}"#.to_string(),
        ] {
            write(&text);
            let handover = read_handover(&settings).expect(&text);
            assert!(handover.key().is_none(), "{text}");
            assert!(handover.sessions.is_empty());
        }
        // Not a hand-over file: nothing, and it is gone.
        for text in ["", "{", r#"{"key":"x"}"#, "[1]"] {
            write(text);
            assert!(read_handover(&settings).is_none(), "{text}");
            assert!(!path.exists());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
