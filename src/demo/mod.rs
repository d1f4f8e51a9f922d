//! The offline demo: mock AgentConnect-, FranceConnect- and FranceConnect+-like providers, an echo
//! app showing the headers it receives, and the gateway in front of it, all on loopback in one
//! process.
//!
//! Run it with `cargo run --release -- demo`, then open the printed URL.

pub mod echo;
pub mod provider;

use std::net::SocketAddr;

use pingora::server::Server;
use pingora::services::listening::Service;

use crate::config::{
    ProviderKind, ProviderSettings, Secret, SessionSettings, Settings, TokenAuthMethod,
    UpstreamSettings,
};
use crate::session::random_token;

pub use echo::EchoApp;
pub use provider::{Flavour, MockProvider, MIN_RANDOM_LENGTH};

/// Where the demo's parts listen.
#[derive(Debug, Clone)]
pub struct DemoAddresses {
    pub gateway: SocketAddr,
    /// The AgentConnect-like mock provider.
    pub provider: SocketAddr,
    /// The FranceConnect-like mock provider.
    pub franceconnect: SocketAddr,
    /// The FranceConnect+-like mock provider.
    pub franceconnect_plus: SocketAddr,
    pub app: SocketAddr,
}

impl DemoAddresses {
    /// Every role at one address (for settings where only the gateway's matters).
    pub fn all(address: SocketAddr) -> Self {
        DemoAddresses {
            gateway: address,
            provider: address,
            franceconnect: address,
            franceconnect_plus: address,
            app: address,
        }
    }
}

/// The client id the demo gateway uses at the mock provider.
pub const DEMO_CLIENT_ID: &str = "guichet-demo";

/// Gateway settings for the demo: plain HTTP on loopback, the mock provider as AgentConnect.
pub fn demo_settings(addresses: &DemoAddresses, client_secret: &str) -> Settings {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Settings {
        mode: crate::config::Mode::Proxy,
        listen: addresses.gateway,
        trusted_proxies: Vec::new(),
        tls: None,
        upgrade_sock: std::env::temp_dir()
            .join(format!("guichet-demo-{}.sock", addresses.gateway.port())),
        pid_file: std::env::temp_dir().join("guichet-demo.pid"),
        public_url: url::Url::parse(&format!("http://{}", addresses.gateway))
            .expect("a socket address makes a valid URL"),
        threads,
        work_stealing: false,
        grace_period: std::time::Duration::from_secs(1),
        shutdown_timeout: std::time::Duration::from_secs(5),
        upstream: Some(UpstreamSettings {
            address: addresses.app,
            tls: false,
            sni: String::new(),
            connect_timeout: std::time::Duration::from_secs(5),
            read_timeout: std::time::Duration::from_secs(60),
            ca_file: None,
            pass_host: false,
        }),
        session: SessionSettings {
            idle_timeout: std::time::Duration::from_secs(30 * 60),
            max_lifetime: std::time::Duration::from_secs(12 * 3600),
            max_sessions: 100_000,
            max_memory: 256 << 20,
            cookie_name: "guichet".into(),
            login_cookie_prefix: "guichet-login-".into(),
            logout_cookie_name: "guichet-logout".into(),
            secure: false,
            shared: None,
        },
        metrics_listen: None,
        log_level: "info".into(),
        log_json: false,
        access_log: false,
        headers: crate::config::HeaderSettings::default(),
        assertion: None,
        signature: None,
        upstreams: Vec::new(),
        routes: Vec::new(),
        pages: crate::config::PagesSettings {
            application_name: Some("Application de démonstration".into()),
            ..Default::default()
        },
        warnings: Vec::new(),
        providers: vec![
            agentconnect_provider(addresses.provider, client_secret),
            franceconnect_provider(addresses.franceconnect, client_secret),
            franceconnect_plus_provider(addresses.franceconnect_plus, client_secret),
        ],
    }
}

/// The demo's AgentConnect-like provider: the `agentconnect` preset, with every agent scope.
fn agentconnect_provider(address: SocketAddr, client_secret: &str) -> ProviderSettings {
    preset_provider(
        ("agentconnect", "AgentConnect (démonstration)"),
        ProviderKind::AgentConnect,
        address,
        client_secret,
        &[
            "given_name",
            "usual_name",
            "email",
            "uid",
            "siret",
            "siren",
            "organizational_unit",
            "belonging_population",
            "phone",
            "idp_id",
        ],
    )
}

/// The demo's FranceConnect-like provider: the `franceconnect-v2` preset on a local issuer.
fn franceconnect_provider(address: SocketAddr, client_secret: &str) -> ProviderSettings {
    let scopes = ProviderKind::FranceConnectV2.preset().scopes;
    preset_provider(
        ("franceconnect", "FranceConnect (démonstration)"),
        ProviderKind::FranceConnectV2,
        address,
        client_secret,
        scopes,
    )
}

/// The demo's FranceConnect+-like provider: the `franceconnect-plus` preset, with keys made for
/// this run (P-256: ECDH-ES to decrypt, ES256 for `private_key_jwt`).
fn franceconnect_plus_provider(address: SocketAddr, client_secret: &str) -> ProviderSettings {
    let scopes = ProviderKind::FranceConnectPlus.preset().scopes;
    let mut provider = preset_provider(
        ("franceconnect-plus", "FranceConnect+ (démonstration)"),
        ProviderKind::FranceConnectPlus,
        address,
        client_secret,
        scopes,
    );
    let key = |name: &str| {
        crate::assertion::generate_key_pem(jsonwebtoken::Algorithm::ES256)
            .map(|pem| vec![(std::path::PathBuf::from(name), Secret::new(pem))])
            .unwrap_or_default()
    };
    provider.token_auth_method = TokenAuthMethod::PrivateKeyJwt;
    provider.client_secret = None;
    provider.encryption_keys = key("demo-franceconnect-plus-encryption");
    provider.signing_keys = key("demo-franceconnect-plus-signing");
    provider
}

/// A provider as a `kind` preset makes it, on a mock's local issuer.
fn preset_provider(
    (id, display_name): (&str, &str),
    kind: ProviderKind,
    address: SocketAddr,
    client_secret: &str,
    scopes: &[&str],
) -> ProviderSettings {
    let mut provider = ProviderSettings::from_preset(
        id,
        kind,
        provider_issuer(address),
        (DEMO_CLIENT_ID, client_secret),
    );
    provider.display_name = display_name.into();
    provider.scopes = scopes
        .iter()
        .filter(|s| **s != "openid")
        .map(|s| s.to_string())
        .collect();
    provider
}

/// The mock provider's issuer for a listen address.
pub fn provider_issuer(address: SocketAddr) -> String {
    format!("http://{address}/api/v2")
}

/// Adds a mock provider to a server.
pub fn add_mock_provider(
    server: &mut Server,
    flavour: Flavour,
    listen: SocketAddr,
    client_secret: &str,
    redirect_uris: Vec<String>,
    client_jwks_uri: Option<String>,
    min_random_length: usize,
) -> Result<(), String> {
    let issuer = if flavour == Flavour::FranceConnectV1 {
        // FranceConnect v1's issuer is its host; its endpoints are below /api/v1.
        format!("http://{listen}")
    } else {
        provider_issuer(listen)
    };
    let provider = MockProvider::new(
        flavour,
        &issuer,
        DEMO_CLIENT_ID,
        client_secret,
        redirect_uris,
    )?
    .with_client_jwks_uri(client_jwks_uri)
    .with_min_random_length(min_random_length);
    let mut service = Service::new("mock provider".to_string(), provider);
    service.add_tcp(&listen.to_string());
    server.add_service(service);
    Ok(())
}

/// Adds the echo app to a server.
pub fn add_echo_app(server: &mut Server, listen: SocketAddr) {
    let mut service = Service::new("demo app".to_string(), EchoApp);
    service.add_tcp(&listen.to_string());
    server.add_service(service);
}

/// A random client secret for one demo run.
pub fn demo_secret() -> String {
    random_token()
}
