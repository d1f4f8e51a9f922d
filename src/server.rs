//! Assembles the pingora server: the proxy listener, the provider discovery task and the internal
//! metrics listener, all from [`Settings`].

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::ServerSession;
use pingora::proxy::ProxyServiceBuilder;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::config::Settings;
use crate::gateway::{Gateway, StartError};
use crate::metrics::MetricsApp;
use crate::oidc::{keep_discovered, Provider};
use crate::proxy::GatewayProxy;

/// A pingora server configured from the settings (threads, shutdown timings), bootstrapped.
pub fn new_server(settings: &Settings) -> Server {
    let conf = ServerConf {
        threads: settings.threads,
        ca_file: settings
            .upstream
            .ca_file
            .as_ref()
            .map(|p| p.display().to_string()),
        grace_period_seconds: Some(settings.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(settings.shutdown_timeout.as_secs()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server
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
    check_tls(&settings)?;
    let gateway = Arc::new(Gateway::new(settings)?);
    let settings = &gateway.settings;

    let mut options = HttpServerOptions::default();
    // HTTP/2 without TLS (prior knowledge), for clients and load balancers that use it.
    options.h2c = true;
    let mut proxy =
        ProxyServiceBuilder::new(&server.configuration, GatewayProxy::new(gateway.clone()))
            .name("guichet gateway")
            .server_options(options)
            .build();
    match &settings.tls {
        Some(tls) => {
            let mut tls_settings = TlsSettings::intermediate(
                &tls.cert.display().to_string(),
                &tls.key.display().to_string(),
            )
            .map_err(|e| StartError::Tls(e.to_string()))?;
            tls_settings.enable_h2();
            proxy.add_tls_with_settings(&settings.listen.to_string(), None, tls_settings);
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
        None => proxy.add_tcp(&settings.listen.to_string()),
    }
    server.add_service(proxy);

    server.add_service(background_service(
        "provider discovery",
        Discovery {
            providers: gateway.providers.clone(),
        },
    ));

    if let Some(listen) = settings.metrics_listen {
        let app = MetricsApp {
            metrics: gateway.metrics.clone(),
            sessions: gateway.sessions.clone(),
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
