//! Shared test harness: starts the real `guichet` binary as gateway and as mock provider on free
//! loopback ports, plus a small upstream application in the test process, and drives them with a
//! browser-like client that keeps its own cookie jar.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_guichet");

/// A loopback port nobody listens on, reserved for this test process.
///
/// Test processes run in parallel and pingora listens with `SO_REUSEPORT`, so two servers given
/// the same port would silently share it. Ports are therefore taken outside the kernel's
/// ephemeral range (20000–31999), checked free by binding, and reserved with a marker file
/// holding the owner's PID (reclaimed once that process is gone).
pub fn free_port() -> u16 {
    use rand::Rng;
    let dir = std::env::temp_dir().join("guichet-test-ports");
    std::fs::create_dir_all(&dir).expect("port reservation directory");
    let mut rng = rand::thread_rng();
    loop {
        let port: u16 = rng.gen_range(20_000..32_000);
        if StdListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let marker = dir.join(port.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(mut file) => {
                use std::io::Write;
                let _ = write!(file, "{}", std::process::id());
                return port;
            }
            Err(_) => {
                let owner = std::fs::read_to_string(&marker).unwrap_or_default();
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                if !alive {
                    let _ = std::fs::remove_file(&marker);
                }
            }
        }
    }
}

/// A scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "guichet-test-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(args: &[&str], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(BIN)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("GUICHET_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start guichet");
        Process { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().expect("child status") {
                return exit;
            }
            assert!(
                started.elapsed() < limit,
                "still running after {limit:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

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
}

/// A test CA and a leaf certificate for 127.0.0.1 / localhost it signed.
#[derive(Clone)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    /// Makes them with the `openssl` command line.
    pub fn generate(dir: &std::path::Path) -> Self {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl must be installed for the TLS tests");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=guichet test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        TestCerts {
            ca: dir.join("ca.pem"),
            cert: dir.join("leaf.pem"),
            key: dir.join("leaf.key"),
        }
    }

    pub fn ca_certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&std::fs::read(&self.ca).unwrap()).unwrap()
    }
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
        }
    }
}

/// A running gateway, mock provider and upstream.
pub struct Stack {
    pub dir: PathBuf,
    pub gateway: Process,
    pub provider: Option<Process>,
    pub gateway_url: String,
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
        let gateway_url = format!("{scheme}://127.0.0.1:{gateway_port}");
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
[upstream]
url = "{upstream_url}"
read_timeout = "5s"
{upstream_ca}

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

/// Polls `url` until it answers `status`.
pub async fn wait_for_status(url: &str, status: u16, limit: Duration) -> Result<(), String> {
    wait_for_status_with(&reqwest::Client::new(), url, status, limit).await
}

/// Polls `url` with `client` until it answers `status`.
pub async fn wait_for_status_with(
    client: &reqwest::Client,
    url: &str,
    status: u16,
    limit: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::from("no answer");
    while start.elapsed() < limit {
        match client.get(url).send().await {
            Ok(r) if r.status().as_u16() == status => return Ok(()),
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{url}: {last} after {limit:?}"))
}

// === browser ===

/// A browser: no automatic redirects, its own cookie jar (one per origin is enough here since
/// every server is on 127.0.0.1 with its own port and cookies are host-wide; names differ).
pub struct Browser {
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.get_with(url, &[]).await
    }

    pub async fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(url).header("accept", "text/html");
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        self.read(response).await
    }

    /// Follows a sign-out link of the application: a navigation from the same origin, as a
    /// browser announces it (`Sec-Fetch-Site: same-origin`).
    pub async fn logout(&mut self, url: &str) -> Page {
        self.get_with(url, &[("sec-fetch-site", "same-origin")])
            .await
    }

    /// Submits an HTML form: `fields` plus the form's hidden inputs, to its `action`.
    pub async fn submit_form(
        &mut self,
        page_url: &str,
        body: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let start = body.find("<form").expect("a form on the page");
        let form = &body[start..start + body[start..].find("</form>").expect("form end")];
        let attribute = |tag: &str, name: &str| {
            let needle = format!("{name}=\"");
            tag.find(&needle).map(|at| {
                let rest = &tag[at + needle.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].replace("&amp;", "&")
            })
        };
        let action = attribute(form, "action").expect("form action");
        let action = match url::Url::parse(page_url).unwrap().join(&action) {
            Ok(url) => url.to_string(),
            Err(_) => action,
        };
        let mut values: Vec<(String, String)> = Vec::new();
        for input in form.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            if attribute(tag, "type").as_deref() == Some("hidden") {
                if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value"))
                {
                    values.push((name, value));
                }
            }
        }
        for (name, value) in fields {
            values.push((name.to_string(), value.to_string()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&values)
            .finish();
        let response = self
            .client
            .post(&action)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("form submission");
        self.read(response).await
    }

    pub async fn read(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().expect("ascii cookie");
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("cookie pair");
            if text.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|l| l.to_str().expect("ascii location").to_string());
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    /// Follows a relative or absolute location against the gateway.
    pub fn absolute(base: &str, location: &str) -> String {
        if location.starts_with("http") {
            location.to_string()
        } else {
            format!("{base}{location}")
        }
    }

    /// Starts a login at `path` and stops at the provider's authorize page; returns the
    /// provider's confirm link for `agent`.
    pub async fn start_login(&mut self, stack: &Stack, path: &str, agent: usize) -> String {
        let first = self.get(&stack.url(path)).await;
        assert_eq!(
            first.status, 302,
            "protected page must redirect: {}",
            first.body
        );
        let login = Self::absolute(
            &stack.gateway_url,
            first.location.as_deref().expect("location"),
        );
        let to_provider = self.get(&login).await;
        assert_eq!(
            to_provider.status, 302,
            "login must redirect: {}",
            to_provider.body
        );
        let authorize = to_provider.location.expect("authorize URL");
        let page = self.get(&authorize).await;
        assert_eq!(page.status, 200, "authorize page: {}", page.body);
        confirm_link(&page.body, agent, stack)
    }

    /// Completes a login at the provider and returns the gateway's callback response.
    pub async fn confirm(&mut self, confirm_url: &str) -> Page {
        let back = self.get(confirm_url).await;
        assert_eq!(
            back.status, 302,
            "provider must redirect back: {}",
            back.body
        );
        let callback = back.location.expect("callback URL");
        self.get(&callback).await
    }

    /// Signs in through the whole flow and returns the final page of `path`.
    pub async fn login(&mut self, stack: &Stack, path: &str) -> Page {
        let confirm = self.start_login(stack, path, 0).await;
        let done = self.confirm(&confirm).await;
        assert_eq!(done.status, 302, "callback must redirect: {}", done.body);
        let target = Self::absolute(
            &stack.gateway_url,
            done.location.as_deref().expect("location"),
        );
        self.get(&target).await
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// The provider page's confirm link for an agent.
pub fn confirm_link(body: &str, agent: usize, stack: &Stack) -> String {
    let needle = format!("&amp;agent={agent}\"");
    let end = body
        .find(&needle)
        .expect("agent link on the authorize page");
    let start = body[..end].rfind("href=\"").expect("href") + 6;
    let path = body[start..end + needle.len() - 1].replace("&amp;", "&");
    stack.provider_url(&path)
}

/// The upstream's echo of one header, from its response body (`name: value` lines).
pub fn echoed<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    body.lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

// === upstream ===

/// Starts the test application: for `GET`, a text body listing every request header as
/// `name: value` lines; for `POST /echo`, the request body streamed back as it arrives; for a
/// websocket upgrade, `101` and then every byte echoed.
pub async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_upstream(stream));
        }
    });
    addr
}

async fn serve_upstream(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            // Header values may hold any byte: shown as UTF-8, lossily.
            let mut raw = Vec::new();
            if reader.read_until(b'\n', &mut raw).await.unwrap_or(0) == 0 {
                return;
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        if header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n")
                .await;
            let (mut r, mut w) = stream.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
            return;
        }
        let length: u64 = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if path.starts_with("/slow") {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            let body = "slow done";
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if reader
                .get_mut()
                .write_all(response.as_bytes())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        if path.starts_with("/echo") {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {length}\r\n\r\n"
            );
            if reader.get_mut().write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut remaining = length;
            let mut buffer = vec![0u8; 64 * 1024];
            while remaining > 0 {
                let want = buffer.len().min(remaining as usize);
                let n = match reader.read(&mut buffer[..want]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if reader.get_mut().write_all(&buffer[..n]).await.is_err() {
                    return;
                }
                remaining -= n as u64;
            }
            continue;
        }
        // Discard any body.
        let mut sink = vec![0u8; length as usize];
        if length > 0 && reader.read_exact(&mut sink).await.is_err() {
            return;
        }
        let mut body = format!("{}\n", request_line.trim_end());
        for (n, v) in &headers {
            body.push_str(&format!("{n}: {v}\n"));
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nx-upstream: yes\r\n\r\n{body}",
            body.len()
        );
        if reader
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A memory figure of a process from `/proc/<pid>/status` (`VmHWM`, `VmRSS`…), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// Current resident memory (VmRSS) of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}
