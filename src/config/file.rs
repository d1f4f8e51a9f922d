//! The file format: what operators write, section by section, with each key's default. Every
//! struct denies unknown keys, so a typo stops start-up instead of being silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Environment;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerSection,
    /// Required unless `server.mode = "auth"`.
    #[serde(default)]
    pub upstream: Option<UpstreamSection>,
    #[serde(default)]
    pub session: SessionSection,
    #[serde(default)]
    pub metrics: Option<MetricsSection>,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub headers: HeadersSection,
    #[serde(default)]
    pub assertion: Option<AssertionSection>,
    #[serde(default)]
    pub signature: Option<SignatureSection>,
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderSection>,
    /// Named upstreams beside `[upstream]`, for routes (`[upstreams.api]`).
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamSection>,
    /// Routes, tried in file order (`[[route]]`).
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSection>,
    /// What guichet's own pages show: names, logo, support link, the alternative sign-in,
    /// template overrides.
    #[serde(default)]
    pub pages: PagesSection,
}

/// `[pages]`: branding of the pages guichet shows (chooser, errors, sign-out, `/.guichet/me`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesSection {
    /// The application's name, in titles and headings.
    #[serde(default)]
    pub application_name: Option<String>,
    /// The organisation's name, shown in the page header ("bloc marque"); `\n` breaks lines.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Where visitors get help: `https://…`, `mailto:…` or `tel:…`.
    #[serde(default)]
    pub support_url: Option<String>,
    /// A PNG, SVG, JPEG or WebP file (at most 512 KiB) shown in the header.
    #[serde(default)]
    pub logo: Option<PathBuf>,
    /// Text alternative of the logo; required with `logo`.
    #[serde(default)]
    pub logo_alt: Option<String>,
    /// The application's own sign-in, offered on the chooser below the federations' buttons.
    #[serde(default)]
    pub alternative_login_url: Option<String>,
    #[serde(default)]
    pub alternative_login_label: Option<String>,
    /// A directory of templates replacing the built-in ones (`base.html`, `chooser.html`,
    /// `error.html`, `message.html`, `me.html`).
    #[serde(default)]
    pub templates: Option<PathBuf>,
}

/// `[[route]]`: a set of paths (and methods) and what they require.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// For logs; default `route[i]`.
    #[serde(default)]
    pub name: Option<String>,
    /// A path prefix, segment-aware: `/static/` matches `/static` and `/static/x`, not `/staticx`.
    #[serde(default)]
    pub path: Option<String>,
    /// Or an exact path.
    #[serde(default)]
    pub exact: Option<String>,
    /// Or a glob: `*` one segment, `**` any number of them.
    #[serde(default)]
    pub glob: Option<String>,
    /// Default: every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// `none`, `optional` or `required` (default).
    #[serde(default)]
    pub auth: Option<String>,
    /// A name from `[upstreams]`; default `[upstream]`.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Without a session: `redirect` or `401`; default browsers redirected, scripts 401.
    #[serde(default)]
    pub unauthenticated: Option<String>,
    /// The providers whose sessions this route accepts (and whose buttons its login offers).
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// The lowest authentication level this route accepts (eIDAS levels are ordered); a session
    /// below it is sent through a new login asking for it (step-up).
    #[serde(default)]
    pub acr: Option<Vec<String>>,
    /// `[[route.allow]]`: with blocks, access needs one block whose every key matches.
    #[serde(default)]
    pub allow: Vec<BTreeMap<String, AllowValue>>,
}

/// A key of an allow block: the accepted values, or (`<claim>_file`) a file listing them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AllowValue {
    Values(Vec<String>),
    File(PathBuf),
}

/// `[headers]`: which identity headers the application receives, and how values are encoded.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HeadersSection {
    /// `guichet` (default): `X-Guichet-*` only; `oauth2-proxy`: also `X-Forwarded-User`,
    /// `X-Forwarded-Email`, `X-Forwarded-Preferred-Username`.
    #[serde(default)]
    pub preset: Option<String>,
    /// Default value encoding: `percent` (default), `utf8`, `latin1` or `base64url`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Claim → header name; `""` stops a claim from being sent.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Header name → encoding, overriding `encoding` for that header.
    #[serde(default)]
    pub encodings: BTreeMap<String, String>,
    /// Send the provider's access token as `X-Guichet-Access-Token`; default false.
    #[serde(default)]
    pub forward_access_token: bool,
    /// Send the raw id_token as `X-Guichet-Id-Token`; default false.
    #[serde(default)]
    pub forward_id_token: bool,
}

/// `[assertion]`: a signed JWT carrying the identity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionSection {
    /// Default `X-Guichet-Assertion`.
    #[serde(default = "default_assertion_header")]
    pub header: String,
    /// PEM private keys (PKCS#8, P-256 for ES256 or Ed25519 for EdDSA); the first signs, all are
    /// published at `/.guichet/jwks.json`. `guichet keygen --out FILE` makes one.
    pub keys: Vec<PathBuf>,
    /// Default `5m`.
    #[serde(default = "default_assertion_lifetime")]
    pub lifetime: String,
    /// `aud` claim; default the upstream URL (`public_url` with `server.mode = "auth"`).
    #[serde(default)]
    pub audience: Option<String>,
}

fn default_assertion_header() -> String {
    "X-Guichet-Assertion".into()
}
fn default_assertion_lifetime() -> String {
    "5m".into()
}

/// `[signature]`: an HMAC-SHA256 over the request line and identity headers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSection {
    /// Default `X-Guichet-Signature`.
    #[serde(default = "default_signature_header")]
    pub header: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_env: Option<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_signature_header() -> String {
    "X-Guichet-Signature".into()
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address and port the gateway listens on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// `proxy` (default): in the data path, in front of `[upstream]`; `auth`: beside a front
    /// proxy (nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`) that asks
    /// `/.guichet/auth` about each request; `both`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The URL visitors use to reach the gateway; `redirect_uri` is this + `/.guichet/callback`.
    pub public_url: String,
    /// Worker threads; default 0 = the number of cores.
    #[serde(default)]
    pub threads: usize,
    /// Whether a thread with nothing to do takes tasks queued on another (tokio's work
    /// stealing); default `false`: each connection stays on the thread that accepted it, as in
    /// nginx's workers.
    #[serde(default)]
    pub work_stealing: bool,
    /// After SIGTERM, new connections are refused at once and requests in flight have this long
    /// to finish (pingora's grace period); default `10s`.
    #[serde(default = "default_grace_period")]
    pub grace_period: String,
    /// Then the worker threads have this long to stop; default `5s`.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: String,
    /// Terminate HTTPS here (HTTP/2 by ALPN).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Unix socket through which a new process takes over the listening sockets at a graceful
    /// upgrade; sessions are handed over in `<upgrade_sock>.sessions` (mode 0600; refused when
    /// owned by another user or readable by others). Default `upgrade.sock` in the runtime
    /// directory: `$RUNTIME_DIRECTORY` (systemd's `RuntimeDirectory=`), else `/run/guichet`.
    #[serde(default)]
    pub upgrade_sock: Option<PathBuf>,
    /// Addresses (CIDRs such as `10.0.0.0/8`, or single addresses) of reverse proxies in front of
    /// guichet whose `X-Forwarded-For` is kept; anyone else's is replaced by the peer address.
    /// Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// PID file written with `guichet run --daemon`; default `/run/guichet/guichet.pid`.
    #[serde(default = "default_pid_file")]
    pub pid_file: PathBuf,
}

/// `upgrade.sock` in the runtime directory (`$RUNTIME_DIRECTORY`, else `/run/guichet`).
pub(super) fn default_upgrade_sock(env: &dyn Environment) -> PathBuf {
    let dir = env
        .var("RUNTIME_DIRECTORY")
        .and_then(|dirs| dirs.split(':').next().map(PathBuf::from))
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/run/guichet"));
    dir.join("upgrade.sock")
}
fn default_pid_file() -> PathBuf {
    "/run/guichet/guichet.pid".into()
}

/// `[server.tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain (leaf first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// A plain-HTTP address that answers every request with a redirect to `public_url`.
    #[serde(default)]
    pub http_redirect_listen: Option<String>,
}

fn default_grace_period() -> String {
    "10s".into()
}
fn default_shutdown_timeout() -> String {
    "5s".into()
}

/// `[upstream]`
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// `http://host:port` of the protected application.
    pub url: String,
    /// Default `5s`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// Longest wait for the application between two reads; default `60s`.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: String,
    /// PEM CA certificates to verify an `https://` upstream with, instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Send the visitor's `Host` to the application instead of `public_url`'s host (for
    /// applications that serve several names); default false.
    #[serde(default)]
    pub pass_host: bool,
}

fn default_connect_timeout() -> String {
    "5s".into()
}
fn default_read_timeout() -> String {
    "60s".into()
}

/// `[session]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// Default `30m`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: String,
    /// Default `12h`.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime: String,
    /// Default 1,000,000.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u64,
    /// Bound on the memory sessions hold, as counted by their estimated size: `"512MiB"`,
    /// `"2GiB"` or a number of bytes; default `1GiB`.
    #[serde(default = "default_max_memory")]
    pub max_memory: String,
    /// Default `guichet`; `__Host-` is prepended when `public_url` is https.
    #[serde(default = "default_cookie_name")]
    pub cookie_name: String,
    /// A store shared by several replicas (Redis or Valkey); absent: each process alone.
    #[serde(default)]
    pub shared: Option<SharedSection>,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection {
            idle_timeout: default_idle_timeout(),
            max_lifetime: default_max_lifetime(),
            max_sessions: default_max_sessions(),
            max_memory: default_max_memory(),
            cookie_name: default_cookie_name(),
            shared: None,
        }
    }
}

/// `[session.shared]`: sessions, logins in progress and logout states in Redis/Valkey, so that
/// any replica serves any visitor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedSection {
    /// `redis://[user:password@]host:port/db`, `rediss://…` (TLS) or
    /// `redis+unix:///path/to.sock`; exactly one of `url`, `url_env`, `url_file` (it may carry a
    /// password).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// The secret every replica shares (at least 32 bytes, e.g. `openssl rand -base64 48`):
    /// sessions are sealed with it in the store, and login states in the visitor's cookie.
    /// Exactly one of `key`, `key_env`, `key_file`.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_env: Option<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// PEM CAs that sign the store's certificate, for `rediss://`; default: the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Prefix of every key guichet writes; default `guichet:`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How long a replica trusts its own copy of a session before asking the store again (a
    /// logout or idle end on another replica is seen within this); default `5s`.
    #[serde(default = "default_recheck")]
    pub recheck: String,
    /// Bound on each call to the store; beyond it the replica serves from its own memory;
    /// default `250ms`.
    #[serde(default = "default_store_timeout")]
    pub timeout: String,
}

fn default_key_prefix() -> String {
    "guichet:".into()
}
fn default_recheck() -> String {
    "5s".into()
}
fn default_store_timeout() -> String {
    "250ms".into()
}

fn default_idle_timeout() -> String {
    "30m".into()
}
fn default_max_lifetime() -> String {
    "12h".into()
}
fn default_max_sessions() -> u64 {
    1_000_000
}
fn default_max_memory() -> String {
    "1GiB".into()
}
fn default_cookie_name() -> String {
    "guichet".into()
}

/// `[metrics]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Internal address for `/metrics`, e.g. `127.0.0.1:9090`. Never the public port.
    pub listen: String,
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `error`, `warn`, `info` (default), `debug` or `trace`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `text` (default) or `json` (one JSON object per line).
    #[serde(default = "default_log_format")]
    pub format: String,
    /// One `access` line per request at `info`; default true.
    #[serde(default = "default_true")]
    pub access: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: default_log_level(),
            format: default_log_format(),
            access: true,
        }
    }
}

fn default_log_format() -> String {
    "text".into()
}

fn default_log_level() -> String {
    "info".into()
}

/// `[[provider]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Short id, letters, digits, `-` and `_`; used in `?provider=` and in metrics.
    pub id: String,
    /// `oidc` (default), `proconnect`, `agentconnect`, `franceconnect-v1`, `franceconnect-v2`,
    /// `franceconnect-plus`: fills in the federation's issuer, scopes, levels and rules.
    #[serde(default)]
    pub kind: Option<String>,
    /// `integration` or `production` (with a federation `kind` and no `issuer`).
    #[serde(default)]
    pub environment: Option<String>,
    /// `internet` (default) or `rie`, for ProConnect/AgentConnect.
    #[serde(default)]
    pub platform: Option<String>,
    /// Name shown on the chooser page; default from the kind, else the id.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Discovery is fetched from `issuer + /.well-known/openid-configuration`; default from the
    /// kind and environment.
    #[serde(default)]
    pub issuer: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes; `openid` is always sent once. Default from the kind.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Acceptable authentication levels, requested and then checked on the id_token (eIDAS
    /// levels are ordered: `["eidas2"]` also accepts `eidas3`). Default from the kind.
    #[serde(default)]
    pub acr: Option<Vec<String>>,
    /// PKCE S256; default from the kind (off for FranceConnect, which rejects it).
    #[serde(default)]
    pub pkce: Option<bool>,
    /// `client_secret_post` (default, as AgentConnect expects), `client_secret_basic`, or
    /// `private_key_jwt` (a client assertion signed with the first of `signing_keys`; then no
    /// client secret is needed).
    #[serde(default = "default_token_auth_method")]
    pub token_auth_method: String,
    /// PEM private keys (RSA ≥ 2048 bits or EC P-256) that decrypt the provider's encrypted
    /// (JWE) id_token and userinfo; all are tried (rotation) and published with `use: enc` at
    /// `/.guichet/provider-jwks.json`. Required by `franceconnect-plus`.
    #[serde(default)]
    pub encryption_keys: Vec<PathBuf>,
    /// PEM private keys (RSA: RS256, EC P-256: ES256) for `private_key_jwt`; the first signs,
    /// all are published with `use: sig` at `/.guichet/provider-jwks.json`.
    #[serde(default)]
    pub signing_keys: Vec<PathBuf>,
    /// Call the userinfo endpoint after the code exchange; default true.
    #[serde(default = "default_true")]
    pub userinfo: bool,
    /// `any`, `json` or `jwt` (signed): what userinfo must answer; default from the kind.
    #[serde(default)]
    pub userinfo_format: Option<String>,
    /// Claims a login must deliver; default from the kind.
    #[serde(default)]
    pub mandatory_claims: Option<Vec<String>>,
    /// Bound on every HTTP call to the provider; default `10s`.
    #[serde(default = "default_http_timeout")]
    pub http_timeout: String,
    /// Claim → header name for this provider's sessions, over `[headers] claims`; `""` = not sent.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}
fn default_token_auth_method() -> String {
    "client_secret_post".into()
}
fn default_http_timeout() -> String {
    "10s".into()
}

/// A secret as the file may give it: inline, the name of an environment variable, or a file.
pub type SecretSource<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a Path>);

impl SharedSection {
    pub fn url_source(&self) -> SecretSource<'_> {
        (
            self.url.as_deref(),
            self.url_env.as_deref(),
            self.url_file.as_deref(),
        )
    }

    pub fn key_source(&self) -> SecretSource<'_> {
        (
            self.key.as_deref(),
            self.key_env.as_deref(),
            self.key_file.as_deref(),
        )
    }
}

impl SignatureSection {
    pub fn key_source(&self) -> SecretSource<'_> {
        (
            self.key.as_deref(),
            self.key_env.as_deref(),
            self.key_file.as_deref(),
        )
    }
}

impl ProviderSection {
    pub fn client_secret_source(&self) -> SecretSource<'_> {
        let file = self.client_secret_file.as_deref();
        (
            self.client_secret.as_deref(),
            self.client_secret_env.as_deref(),
            file,
        )
    }
}
