//! A running gateway in front of the test upstream and a mock provider, from a configuration
//! the test chooses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::collections::HashMap;

use super::{
    free_port, scratch_dir, start_upstream, wait_for_status_with, Browser, Process, TestCerts,
};

/// Starts the mock provider on `port`, accepting `redirect_uri`.
pub fn start_provider(
    port: u16,
    secret: &str,
    redirect_uri: &str,
    dir: &std::path::Path,
) -> Process {
    start_flavoured_provider("agentconnect", port, secret, redirect_uri, dir)
}

/// Starts a mock provider of a flavour (`agentconnect`, `franceconnect`) on `port`.
pub fn start_flavoured_provider(
    flavour: &str,
    port: u16,
    secret: &str,
    redirect_uri: &str,
    dir: &std::path::Path,
) -> Process {
    let listen = format!("127.0.0.1:{port}");
    Process::spawn(
        &[
            "demo",
            "--provider-only",
            "--flavour",
            flavour,
            "--provider",
            &listen,
            "--client-secret",
            secret,
            "--redirect-uri",
            redirect_uri,
        ],
        dir.join(format!("provider-{flavour}-{port}.log")),
    )
}

/// What a test may change in the gateway's configuration.
pub struct GatewayOptions {
    pub idle_timeout: &'static str,
    pub max_lifetime: &'static str,
    pub extra: String,
    /// Start the mock provider (and wait until the gateway is ready).
    pub start_provider: bool,
    /// Send proxied requests here instead of the test upstream.
    pub upstream: Option<SocketAddr>,
    /// Full upstream URL (e.g. `https://127.0.0.1:port`), overriding `upstream`.
    pub upstream_url: Option<String>,
    /// Serve HTTPS with this certificate; the CA is trusted by the test clients.
    pub tls: Option<TestCerts>,
    /// `server.tls.http_redirect_listen` port.
    pub redirect_port: Option<u16>,
    /// Lines added to the `[server]` section.
    pub server_extra: String,
    /// Also start a FranceConnect-like mock provider, configured as `franceconnect`.
    pub franceconnect: bool,
    /// Listen on this port (for providers that must know the redirect URI in advance).
    pub gateway_port: Option<u16>,
    /// Replaces the whole `[[provider]]` section (then no mock provider is started).
    pub provider_section: Option<String>,
    /// The URL visitors use, when a front proxy stands before the gateway (`public_url`).
    pub public_url: Option<String>,
    /// Leave `[upstream]` out (`server.mode = "auth"`).
    pub no_upstream: bool,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            idle_timeout: "30m",
            max_lifetime: "12h",
            extra: String::new(),
            start_provider: true,
            upstream: None,
            upstream_url: None,
            tls: None,
            redirect_port: None,
            server_extra: String::new(),
            franceconnect: false,
            gateway_port: None,
            provider_section: None,
            public_url: None,
            no_upstream: false,
        }
    }
}

/// A running gateway, mock provider and upstream.
pub struct Stack {
    pub dir: PathBuf,
    pub gateway: Process,
    pub provider: Option<Process>,
    /// Where visitors go: the gateway, or the front proxy before it.
    pub gateway_url: String,
    /// The gateway's own listener.
    pub direct_url: String,
    pub provider_port: u16,
    pub upstream: SocketAddr,
    pub metrics_url: String,
    pub secret: String,
    pub tls: Option<TestCerts>,
    pub config_path: PathBuf,
    pub franceconnect: Option<Process>,
    pub franceconnect_port: u16,
}

impl Stack {
    pub async fn start(name: &str, options: GatewayOptions) -> Self {
        let dir = scratch_dir(name);
        let upstream = match options.upstream {
            Some(address) => address,
            None => start_upstream().await,
        };
        let gateway_port = options.gateway_port.unwrap_or_else(free_port);
        let provider_port = free_port();
        let metrics_port = free_port();
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let direct_url = format!("{scheme}://127.0.0.1:{gateway_port}");
        let gateway_url = options
            .public_url
            .clone()
            .unwrap_or_else(|| direct_url.clone());
        let upstream_url = options
            .upstream_url
            .clone()
            .unwrap_or_else(|| format!("http://{upstream}"));
        let mut tls_section = String::new();
        let mut upstream_ca = String::new();
        if let Some(certs) = &options.tls {
            tls_section = format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                certs.cert.display(),
                certs.key.display()
            );
            if let Some(port) = options.redirect_port {
                tls_section.push_str(&format!("http_redirect_listen = \"127.0.0.1:{port}\"\n"));
            }
            upstream_ca = format!("ca_file = \"{}\"\n", certs.ca.display());
        }
        let secret = format!("secret-{}", free_port());
        let redirect_uri = format!("{gateway_url}/.guichet/callback");
        let provider = (options.start_provider && options.provider_section.is_none())
            .then(|| start_provider(provider_port, &secret, &redirect_uri, &dir));
        let franceconnect_port = free_port();
        let mut second = String::new();
        let franceconnect = options.franceconnect.then(|| {
            second = format!(
                "\n[[provider]]\nid = \"franceconnect\"\nkind = \"franceconnect-v2\"\nissuer = \"http://127.0.0.1:{franceconnect_port}/api/v2\"\nclient_id = \"guichet-demo\"\nclient_secret = \"{secret}\"\n"
            );
            start_flavoured_provider("franceconnect", franceconnect_port, &secret, &redirect_uri, &dir)
        });
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:{gateway_port}"
public_url = "{gateway_url}"
threads = 2
grace_period = "3s"
shutdown_timeout = "2s"
{server_extra}
{tls_section}
{upstream_section}

[session]
idle_timeout = "{idle}"
max_lifetime = "{lifetime}"

[metrics]
listen = "127.0.0.1:{metrics_port}"

{provider_section}
{extra}
{second}
"#,
            idle = options.idle_timeout,
            lifetime = options.max_lifetime,
            extra = options.extra,
            provider_section = options.provider_section.clone().unwrap_or_else(|| format!(
                "[[provider]]\nid = \"agentconnect\"\nkind = \"agentconnect\"\nissuer = \"http://127.0.0.1:{provider_port}/api/v2\"\n\
                 client_id = \"guichet-demo\"\nclient_secret_file = \"{}\"\n\
                 scopes = [\"openid\", \"given_name\", \"usual_name\", \"email\", \"uid\", \"siret\", \"organizational_unit\"]\n\
                 http_timeout = \"3s\"",
                dir.join("secret").display()
            )),
            server_extra = options.server_extra,
            upstream_section = if options.no_upstream {
                String::new()
            } else {
                format!("[upstream]\nurl = \"{upstream_url}\"\nread_timeout = \"5s\"\n{upstream_ca}")
            },
        );
        std::fs::write(dir.join("secret"), format!("{secret}\n")).expect("secret file");
        let config_path = dir.join("guichet.toml");
        std::fs::write(&config_path, config).expect("config");
        let gateway = Process::spawn(
            &["run", "--config", config_path.to_str().expect("utf-8 path")],
            dir.join("gateway.log"),
        );
        let stack = Stack {
            dir,
            gateway,
            provider,
            gateway_url,
            direct_url,
            provider_port,
            upstream,
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            secret,
            tls: options.tls.clone(),
            config_path: config_path.clone(),
            franceconnect,
            franceconnect_port,
        };
        if options.start_provider {
            stack.wait_ready().await;
        }
        stack
    }

    /// A stack with the default options and `extra` appended to the configuration.
    pub async fn start_with_extra(name: &str, extra: String) -> Self {
        Self::start(
            name,
            GatewayOptions {
                extra,
                ..GatewayOptions::default()
            },
        )
        .await
    }

    /// Starts (or restarts) the mock provider on this stack's provider port.
    pub fn start_provider(&mut self) {
        let redirect_uri = format!("{}/.guichet/callback", self.gateway_url);
        self.provider = Some(start_provider(
            self.provider_port,
            &self.secret,
            &redirect_uri,
            &self.dir,
        ));
    }

    /// The text of the gateway's `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(&self.metrics_url)
            .await
            .expect("metrics listener")
            .text()
            .await
            .expect("metrics text")
    }

    /// A client builder that trusts the stack's test CA, if it has one.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        match &self.tls {
            Some(certs) => builder.add_root_certificate(certs.ca_certificate()),
            None => builder,
        }
    }

    /// A browser for this stack (trusting its test CA).
    pub fn browser(&self) -> Browser {
        Browser {
            client: self
                .client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    /// Waits until `/.guichet/readyz` says 200 (provider discovered).
    pub async fn wait_ready(&self) {
        let url = format!("{}/.guichet/readyz", self.gateway_url);
        wait_for_status_with(
            &self.client_builder().build().expect("client"),
            &url,
            200,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "gateway not ready: {e}\n--- gateway log ---\n{}",
                self.gateway.log_text()
            )
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.gateway_url, path)
    }

    pub fn provider_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.provider_port, path)
    }
}
