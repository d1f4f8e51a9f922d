//! The TOML configuration: what operators write, its defaults, its validation, and the runtime
//! [`Settings`] built from it.
//!
//! All serde lives here. Every struct denies unknown keys, so a typo stops start-up instead of being
//! silently ignored. Loading is three steps: parse (TOML errors carry line and column), validate
//! (every problem reported at once, each with its key path), then build [`Settings`], the only type
//! the rest of guichet reads. Secrets are [`Secret`]s, whose `Debug` prints `REDACTED`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

mod presets;

pub use presets::{acr_satisfies, AcrRequest, ProviderKind, UserinfoFormat};

// === the file format ===

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerSection,
    pub upstream: UpstreamSection,
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
    /// `aud` claim; default the upstream URL.
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
    /// The URL visitors use to reach the gateway; `redirect_uri` is this + `/.guichet/callback`.
    pub public_url: String,
    /// Worker threads; default 0 = the number of cores.
    #[serde(default)]
    pub threads: usize,
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
fn default_upgrade_sock(env: &dyn Environment) -> PathBuf {
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
#[derive(Debug, Deserialize)]
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

// === runtime settings ===

/// A secret string: never printed, never logged.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretPost,
    ClientSecretBasic,
    PrivateKeyJwt,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Everything guichet needs at run time, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-For` is kept.
    pub trusted_proxies: Vec<Cidr>,
    pub tls: Option<ListenerTls>,
    pub upgrade_sock: PathBuf,
    pub pid_file: PathBuf,
    pub public_url: Url,
    pub threads: usize,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
    pub upstream: UpstreamSettings,
    pub session: SessionSettings,
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: String,
    pub log_json: bool,
    pub access_log: bool,
    pub headers: HeaderSettings,
    pub assertion: Option<AssertionSettings>,
    pub signature: Option<SignatureSettings>,
    pub providers: Vec<ProviderSettings>,
}

/// How a header value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Printable ASCII as is (but `%`), everything else `%XX` of its UTF-8 bytes.
    Percent,
    /// Raw UTF-8 bytes.
    Utf8,
    /// One byte per character (ISO-8859-1), for old Java/PHP applications.
    Latin1,
    /// base64url without padding of the UTF-8 bytes.
    Base64Url,
}

impl Encoding {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "percent" => Some(Encoding::Percent),
            "utf8" => Some(Encoding::Utf8),
            "latin1" => Some(Encoding::Latin1),
            "base64url" => Some(Encoding::Base64Url),
            _ => None,
        }
    }
}

/// Header naming presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderPreset {
    Guichet,
    Oauth2Proxy,
}

#[derive(Clone, Debug)]
pub struct HeaderSettings {
    pub preset: HeaderPreset,
    pub encoding: Encoding,
    /// Claim → lower-case header name, or `None` for "do not send".
    pub claims: BTreeMap<String, Option<String>>,
    /// Lower-case header name → encoding.
    pub encodings: BTreeMap<String, Encoding>,
    pub forward_access_token: bool,
    pub forward_id_token: bool,
}

impl Default for HeaderSettings {
    fn default() -> Self {
        HeaderSettings {
            preset: HeaderPreset::Guichet,
            encoding: Encoding::Percent,
            claims: BTreeMap::new(),
            encodings: BTreeMap::new(),
            forward_access_token: false,
            forward_id_token: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AssertionSettings {
    /// Lower-case header name.
    pub header: String,
    /// (file, PEM text) of each key, the signing one first.
    pub keys: Vec<(PathBuf, Secret)>,
    pub lifetime: Duration,
    pub issuer: String,
    pub audience: String,
}

#[derive(Clone, Debug)]
pub struct SignatureSettings {
    /// Lower-case header name.
    pub header: String,
    pub key: Secret,
}

#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    pub address: SocketAddr,
    pub tls: bool,
    pub sni: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub pass_host: bool,
}

/// HTTPS on the listener.
#[derive(Clone, Debug)]
pub struct ListenerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub http_redirect_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub max_sessions: u64,
    /// Bytes.
    pub max_memory: u64,
    /// The full cookie name (with `__Host-` when secure).
    pub cookie_name: String,
    /// The prefix of the login-state cookies (`__Secure-<name>-login-` when secure).
    pub login_cookie_prefix: String,
    /// `Secure` cookies (public_url is https).
    pub secure: bool,
    pub shared: Option<SharedSettings>,
}

/// `[session.shared]`, validated.
#[derive(Clone, Debug)]
pub struct SharedSettings {
    /// The store's URL (may hold a password: never logged).
    pub url: Secret,
    /// The secret the replicas share.
    pub key: Secret,
    /// PEM CAs for `rediss://`, as read.
    pub ca: Option<Vec<u8>>,
    pub key_prefix: String,
    pub recheck: Duration,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct ProviderSettings {
    pub id: String,
    pub kind: ProviderKind,
    pub display_name: String,
    /// Exactly as configured: it must equal the provider's `issuer` byte for byte.
    pub issuer: String,
    pub client_id: String,
    /// Absent only with `private_key_jwt`.
    pub client_secret: Option<Secret>,
    /// Without `openid`, which the OIDC library adds.
    pub scopes: Vec<String>,
    /// Acceptable `acr` values (empty: none requested, none checked).
    pub acr: Vec<String>,
    pub acr_request: AcrRequest,
    pub pkce: bool,
    pub token_auth_method: TokenAuthMethod,
    /// PEM keys as read: JWE decryption keys, and `private_key_jwt` signing keys.
    pub encryption_keys: Vec<(PathBuf, Secret)>,
    pub signing_keys: Vec<(PathBuf, Secret)>,
    pub userinfo: bool,
    pub userinfo_format: UserinfoFormat,
    /// Authorize parameters passed through from `/.guichet/login?…`.
    pub hints: Vec<String>,
    pub mandatory_claims: Vec<String>,
    pub http_timeout: Duration,
    /// Claim → lower-case header name (`None`: not sent), over the global mapping.
    pub claim_headers: BTreeMap<String, Option<String>>,
}

fn paths(list: &[(PathBuf, Secret)]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.iter()
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl ProviderSettings {
    /// The effective settings, for `guichet check` (the secret masked).
    pub fn describe(&self) -> String {
        format!(
            "provider {id}: kind {kind}, \"{name}\"\n  issuer {issuer}\n  client_id {client}, {secret}, token endpoint auth {auth}\n  encryption keys {enc}; signing keys {sig}\n  scopes openid {scopes}\n  acr {acr} ({request:?}), checked on the id_token\n  pkce {pkce}, userinfo {userinfo} ({format:?})\n  mandatory claims {mandatory}\n  hints passed through {hints}",
            id = self.id,
            kind = self.kind.as_str(),
            name = self.display_name,
            issuer = self.issuer,
            client = self.client_id,
            secret = if self.client_secret.is_some() { "client secret set (masked)" } else { "no client secret" },
            auth = self.token_auth_method.as_str(),
            enc = paths(&self.encryption_keys),
            sig = paths(&self.signing_keys),
            scopes = self.scopes.join(" "),
            acr = if self.acr.is_empty() { "none".to_string() } else { self.acr.join(" ") },
            request = self.acr_request,
            pkce = self.pkce,
            userinfo = self.userinfo,
            format = self.userinfo_format,
            mandatory = if self.mandatory_claims.is_empty() { "none".to_string() } else { self.mandatory_claims.join(" ") },
            hints = self.hints.join(" "),
        )
    }
}

impl Settings {
    pub fn provider(&self, id: &str) -> Option<&ProviderSettings> {
        self.providers.iter().find(|p| p.id == id)
    }
}

// === errors ===

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// One validation problem: the key path, what is wrong, and where (line, column) in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    pub location: Option<(usize, usize)>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// Where a key path (`provider[0].client_id`) is written in the TOML text: the value's line and
/// column, or, for a key that is absent, those of the nearest enclosing table.
fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let parsed = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table: Option<&DeTable> = Some(parsed.get_ref());
    let mut value: Option<&DeValue> = None;
    for segment in key.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let nested = match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
        let Some(current) = table.take().or(nested) else {
            break;
        };
        let Some((_, found)) = current.iter().find(|(k, _)| k.get_ref() == name) else {
            break;
        };
        span = Some(found.span());
        value = Some(found.get_ref());
        if let (Some(i), DeValue::Array(items)) = (index, found.get_ref()) {
            let Some(item) = items.get(i) else { break };
            span = Some(item.span());
            value = Some(item.get_ref());
        }
    }
    let offset = span?.start;
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

// === loading ===

/// Where the value of an environment variable or a file comes from, so tests never touch the
/// process environment.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Reads, parses and validates a file.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    from_toml(&text, path, &ProcessEnvironment)
}

/// Parses and validates TOML text; `path` only names the source in errors.
pub fn from_toml(text: &str, path: &Path, env: &dyn Environment) -> Result<Settings, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: redact_parse_error(e.to_string().trim_end()),
    })?;
    validate(&file, env).map_err(|mut problems| {
        for problem in &mut problems {
            problem.location = locate(text, &problem.key);
        }
        ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        }
    })
}

/// Hides values in a TOML parse error, which quotes the offending line (`12 | client_secret =
/// "…"`) and sometimes the value itself (`invalid type: string "…"`): the message goes to a
/// terminal and, through `ExecStartPre`, to the journal. A quoted line keeps its key and loses its
/// value; when that key may name a secret (`secret`, `key`, `password`, `token`, `url`), every
/// quoted string in the message is hidden too.
fn redact_parse_error(message: &str) -> String {
    const HIDDEN: &str = "«hidden»";
    let secretive = |key: &str| {
        let key = key.to_ascii_lowercase();
        [
            "secret",
            "key",
            "password",
            "passwd",
            "token",
            "url",
            "credential",
        ]
        .iter()
        .any(|word| key.contains(word))
    };
    let mut sensitive = false;
    let mut lines: Vec<String> = Vec::new();
    for line in message.lines() {
        let quoted = line.split_once(" | ").filter(|(number, _)| {
            let number = number.trim();
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
        });
        match quoted {
            Some((number, content)) => {
                let trimmed = content.trim_start();
                let shown = if trimmed.starts_with('[') || trimmed.starts_with('#') {
                    content.to_string()
                } else if let Some((key, _)) = content.split_once('=') {
                    sensitive |= secretive(key);
                    format!("{}= {HIDDEN}", key)
                } else {
                    sensitive = true;
                    HIDDEN.to_string()
                };
                lines.push(format!("{number} | {shown}"));
            }
            None => lines.push(line.to_string()),
        }
    }
    if !sensitive {
        return lines.join("\n");
    }
    lines
        .iter()
        .map(|line| hide_quoted(line, HIDDEN))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces the content of every `"…"` in a line, and of every `` `…` `` but key names (`` `url` ``
/// in "unknown field", made of lower-case letters, digits and `_`).
fn hide_quoted(line: &str, hidden: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut open: Option<(char, String)> = None;
    for c in line.chars() {
        match &mut open {
            Some((quote, content)) if c == *quote => {
                let is_key = *quote == '`'
                    && content.starts_with(|c: char| c.is_ascii_lowercase())
                    && content
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                out.push_str(if is_key { content } else { hidden });
                out.push(c);
                open = None;
            }
            Some((_, content)) => content.push(c),
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some((c, String::new()));
                }
            }
        }
    }
    if open.is_some() {
        out.push_str(hidden);
    }
    out
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
            location: None,
        });
    }

    fn duration(&mut self, key: &str, value: &str) -> Duration {
        match humantime::parse_duration(value) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(key, "must be longer than zero");
                Duration::from_secs(1)
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("expected a duration such as \"30s\", \"30m\" or \"12h\", got {value:?} ({e})"),
                );
                Duration::from_secs(1)
            }
        }
    }

    fn socket_addr(&mut self, key: &str, value: &str) -> SocketAddr {
        match value.parse() {
            Ok(a) => a,
            Err(_) => {
                self.problem(
                    key,
                    format!("expected an address:port such as \"127.0.0.1:8080\", got {value:?}"),
                );
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        }
    }
}

/// Checks every key, reporting all problems at once.
pub fn validate(file: &FileConfig, env: &dyn Environment) -> Result<Settings, Vec<Problem>> {
    let mut check = Checker {
        problems: Vec::new(),
    };

    let listen = check.socket_addr("server.listen", &file.server.listen);
    let public_url = match Url::parse(&file.server.public_url) {
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
                    "expected an absolute http(s) URL such as \"https://app.example.gouv.fr\", got {:?}",
                    file.server.public_url
                ),
            );
            Url::parse("http://invalid.invalid").expect("static URL parses")
        }
    };
    let threads = if file.server.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        file.server.threads
    };
    let grace_period = check.duration("server.grace_period", &file.server.grace_period);
    let trusted_proxies: Vec<Cidr> = file
        .server
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match text.parse() {
            Ok(cidr) => Some(cidr),
            Err(()) => {
                check.problem(
                    format!("server.trusted_proxies[{i}]"),
                    format!("expected an address or a CIDR such as \"10.0.0.0/8\", got {text:?}"),
                );
                None
            }
        })
        .collect();
    let shutdown_timeout = check.duration("server.shutdown_timeout", &file.server.shutdown_timeout);

    let upstream = upstream_settings(&mut check, &file.upstream);
    let tls = file.server.tls.as_ref().map(|section| {
        for (key, path) in [
            ("server.tls.cert", &section.cert),
            ("server.tls.key", &section.key),
        ] {
            if let Err(e) = std::fs::metadata(path) {
                check.problem(key, format!("cannot read {}: {e}", path.display()));
            }
        }
        if public_url.scheme() != "https" {
            check.problem(
                "server.public_url",
                "must be https:// when [server.tls] is set: visitors reach guichet over HTTPS",
            );
        }
        let http_redirect_listen = section
            .http_redirect_listen
            .as_ref()
            .map(|a| check.socket_addr("server.tls.http_redirect_listen", a));
        ListenerTls {
            cert: section.cert.clone(),
            key: section.key.clone(),
            http_redirect_listen,
        }
    });

    let secure = public_url.scheme() == "https";
    let session = &file.session;
    let cookie_name_ok = !session.cookie_name.is_empty()
        && session
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !cookie_name_ok {
        check.problem(
            "session.cookie_name",
            "must be non-empty and use only letters, digits, '-' and '_'",
        );
    }
    let base_cookie = if secure {
        format!("__Host-{}", session.cookie_name)
    } else {
        session.cookie_name.clone()
    };
    let idle_timeout = check.duration("session.idle_timeout", &session.idle_timeout);
    let max_lifetime = check.duration("session.max_lifetime", &session.max_lifetime);
    if idle_timeout > max_lifetime {
        check.problem(
            "session.idle_timeout",
            "must not be longer than session.max_lifetime",
        );
    }
    if session.max_sessions == 0 {
        check.problem("session.max_sessions", "must be at least 1");
    }
    let max_memory = match parse_size(&session.max_memory) {
        Some(bytes) if bytes >= 1024 * 1024 => bytes,
        _ => {
            check.problem(
                "session.max_memory",
                format!(
                    "expected a size of at least 1MiB such as \"512MiB\" or \"2GiB\", got {:?}",
                    session.max_memory
                ),
            );
            1 << 30
        }
    };
    let shared = session.shared.as_ref().and_then(|shared| {
        let url = secret_from(
            &mut check,
            "session.shared.url",
            shared.url.as_deref(),
            shared.url_env.as_deref(),
            shared.url_file.as_deref(),
            env,
        );
        let url = url.and_then(|url| {
            let text = url.expose().trim().to_string();
            match Url::parse(&text) {
                Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => {
                    Some(Secret::new(text))
                }
                _ => {
                    // Never echo the URL: it may carry a password.
                    check.problem(
                        "session.shared.url",
                        "expected redis://host:port/db, rediss://host:port/db or redis+unix:///path/to.sock",
                    );
                    None
                }
            }
        });
        let ca = shared
            .ca_file
            .as_ref()
            .and_then(|path| match std::fs::read(path) {
                Ok(pem) => Some(pem),
                Err(e) => {
                    check.problem(
                        "session.shared.ca_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
            });
        if ca.is_some()
            && url
                .as_ref()
                .is_some_and(|url| !url.expose().starts_with("rediss://"))
        {
            check.problem(
                "session.shared.ca_file",
                "only for a TLS store: use a rediss:// URL",
            );
        }
        let recheck = check.duration("session.shared.recheck", &shared.recheck);
        let timeout = check.duration("session.shared.timeout", &shared.timeout);
        let key = secret_from(
            &mut check,
            "session.shared.key",
            shared.key.as_deref(),
            shared.key_env.as_deref(),
            shared.key_file.as_deref(),
            env,
        );
        if key.as_ref().is_some_and(|key| key.expose().len() < 32) {
            check.problem(
                "session.shared.key",
                "use at least 32 characters, the same on every replica (e.g. openssl rand -base64 48)",
            );
        }
        Some(SharedSettings {
            url: url?,
            key: key?,
            ca,
            key_prefix: shared.key_prefix.clone(),
            recheck,
            timeout,
        })
    });
    let session = SessionSettings {
        idle_timeout,
        max_lifetime,
        max_sessions: session.max_sessions,
        max_memory,
        login_cookie_prefix: if secure {
            format!("__Secure-{}-login-", session.cookie_name)
        } else {
            format!("{}-login-", session.cookie_name)
        },
        cookie_name: base_cookie,
        secure,
        shared,
    };

    let metrics_listen = file
        .metrics
        .as_ref()
        .map(|m| check.socket_addr("metrics.listen", &m.listen));
    if metrics_listen.is_some() && metrics_listen == Some(listen) {
        check.problem(
            "metrics.listen",
            "must differ from server.listen: metrics are never served on the public port",
        );
    }

    let log_level = file.log.level.to_ascii_lowercase();
    if !matches!(
        log_level.as_str(),
        "error" | "warn" | "info" | "debug" | "trace"
    ) {
        check.problem(
            "log.level",
            format!(
                "expected one of error, warn, info, debug, trace; got {:?}",
                file.log.level
            ),
        );
    }

    let log_json = match file.log.format.as_str() {
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
    let headers = header_settings(&mut check, &file.headers);
    let assertion = file.assertion.as_ref().map(|section| {
        let header = header_name(&mut check, "assertion.header", &section.header);
        if section.keys.is_empty() {
            check.problem(
                "assertion.keys",
                "give at least one PEM key file (guichet keygen --out FILE makes one)",
            );
        }
        let keys = read_key_files(&mut check, "assertion.keys", &section.keys);
        let lifetime = check.duration("assertion.lifetime", &section.lifetime);
        AssertionSettings {
            header,
            keys,
            lifetime,
            issuer: public_url.as_str().trim_end_matches('/').to_string(),
            audience: section
                .audience
                .clone()
                .unwrap_or_else(|| file.upstream.url.trim_end_matches('/').to_string()),
        }
    });
    let signature = file.signature.as_ref().and_then(|section| {
        let header = header_name(&mut check, "signature.header", &section.header);
        let key = secret_from(
            &mut check,
            "signature.key",
            section.key.as_deref(),
            section.key_env.as_deref(),
            section.key_file.as_deref(),
            env,
        )?;
        if key.expose().len() < 32 {
            check.problem(
                "signature.key",
                "use at least 32 characters (e.g. openssl rand -base64 48)",
            );
        }
        Some(SignatureSettings { header, key })
    });
    if let (Some(a), Some(s)) = (&assertion, &signature) {
        if a.header == s.header {
            check.problem("signature.header", "must differ from assertion.header");
        }
    }

    if file.providers.is_empty() {
        check.problem(
            "provider",
            "at least one [[provider]] is needed: visitors must sign in somewhere",
        );
    }
    let mut providers = Vec::new();
    for (index, section) in file.providers.iter().enumerate() {
        let key = format!("provider[{index}]");
        if file.providers[..index].iter().any(|p| p.id == section.id) {
            check.problem(
                format!("{key}.id"),
                format!("{:?} is used twice", section.id),
            );
        }
        if let Some(p) = provider_settings(&mut check, &key, section, env) {
            providers.push(p);
        }
    }

    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    Ok(Settings {
        listen,
        trusted_proxies,
        tls,
        upgrade_sock: file
            .server
            .upgrade_sock
            .clone()
            .unwrap_or_else(|| default_upgrade_sock(env)),
        pid_file: file.server.pid_file.clone(),
        public_url,
        threads,
        grace_period,
        shutdown_timeout,
        upstream,
        session,
        metrics_listen,
        log_level,
        log_json,
        access_log: file.log.access,
        headers,
        assertion,
        signature,
        providers,
    })
}

/// Headers an identity header may not be called: hop-by-hop and framing headers, and those the
/// proxy itself sets or routes by.
const FORBIDDEN_HEADER_NAMES: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "cookie",
    "set-cookie",
    "authorization",
    "expect",
    "content-type",
    "content-encoding",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-request-id",
    "http2-settings",
];

/// A header name as configured, checked and lower-cased.
fn header_name(check: &mut Checker, key: &str, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        check.problem(key, format!("{name:?} is not a valid HTTP header name"));
    } else if FORBIDDEN_HEADER_NAMES.contains(&lower.replace('_', "-").as_str())
        || lower.starts_with(':')
    {
        check.problem(
            key,
            format!("{name:?} is a hop-by-hop, framing or proxy header: an identity header cannot take its name"),
        );
    }
    lower
}

/// A size: a number of bytes, or a number followed by `KiB`, `MiB`, `GiB` (or `KB`, `MB`, `GB`).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address.trim().parse().map_err(|_| ())?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| ())?,
            None => max,
        };
        if prefix > max {
            return Err(());
        }
        Ok(Cidr { network, prefix })
    }
}

fn header_settings(check: &mut Checker, section: &HeadersSection) -> HeaderSettings {
    let preset = match section.preset.as_deref() {
        None | Some("guichet") => HeaderPreset::Guichet,
        Some("oauth2-proxy") => HeaderPreset::Oauth2Proxy,
        Some(other) => {
            check.problem(
                "headers.preset",
                format!("expected \"guichet\" or \"oauth2-proxy\", got {other:?}"),
            );
            HeaderPreset::Guichet
        }
    };
    let mut parse_encoding = |key: String, text: &str| {
        Encoding::parse(text).unwrap_or_else(|| {
            check.problem(
                key,
                format!("expected percent, utf8, latin1 or base64url; got {text:?}"),
            );
            Encoding::Percent
        })
    };
    let encoding = section.encoding.as_deref().map_or(Encoding::Percent, |e| {
        parse_encoding("headers.encoding".into(), e)
    });
    let mut encodings = BTreeMap::new();
    for (name, value) in &section.encodings {
        let encoding = parse_encoding(format!("headers.encodings.{name}"), value);
        encodings.insert(name.to_ascii_lowercase(), encoding);
    }
    let mut claims = BTreeMap::new();
    for (claim, name) in &section.claims {
        let target = if name.is_empty() {
            None
        } else {
            Some(header_name(check, &format!("headers.claims.{claim}"), name))
        };
        claims.insert(claim.clone(), target);
    }
    HeaderSettings {
        preset,
        encoding,
        claims,
        encodings,
        forward_access_token: section.forward_access_token,
        forward_id_token: section.forward_id_token,
    }
}

fn upstream_settings(check: &mut Checker, section: &UpstreamSection) -> UpstreamSettings {
    let connect_timeout = check.duration("upstream.connect_timeout", &section.connect_timeout);
    let read_timeout = check.duration("upstream.read_timeout", &section.read_timeout);
    if let Some(path) = &section.ca_file {
        if let Err(e) = std::fs::metadata(path) {
            check.problem(
                "upstream.ca_file",
                format!("cannot read {}: {e}", path.display()),
            );
        }
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
                "upstream.url",
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
            "upstream.url",
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
                "upstream.url",
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

fn provider_settings(
    check: &mut Checker,
    key: &str,
    section: &ProviderSection,
    env: &dyn Environment,
) -> Option<ProviderSettings> {
    let before = check.problems.len();
    let id_ok = !section.id.is_empty()
        && section.id.len() <= 32
        && section
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        check.problem(
            format!("{key}.id"),
            "must be 1 to 32 letters, digits, '-' or '_'",
        );
    }
    let kind = match section.kind.as_deref() {
        None => ProviderKind::Oidc,
        Some(text) => ProviderKind::parse(text).unwrap_or_else(|| {
            check.problem(
                format!("{key}.kind"),
                format!("expected oidc, proconnect, agentconnect, franceconnect-v1, franceconnect-v2 or franceconnect-plus; got {text:?}"),
            );
            ProviderKind::Oidc
        }),
    };
    if kind == ProviderKind::FranceConnectPlus && section.encryption_keys.is_empty() {
        check.problem(
            format!("{key}.encryption_keys"),
            "franceconnect-plus encrypts id_token and userinfo (JWE): give at least one PEM key (RSA or EC P-256) to decrypt them, and register /.guichet/provider-jwks.json with the federation",
        );
    }
    let preset = kind.preset();
    let platform = section.platform.as_deref().unwrap_or("internet");
    if section.platform.is_some()
        && !matches!(kind, ProviderKind::ProConnect | ProviderKind::AgentConnect)
    {
        check.problem(
            format!("{key}.platform"),
            "only ProConnect/AgentConnect have platforms",
        );
    } else if !matches!(platform, "internet" | "rie") {
        check.problem(
            format!("{key}.platform"),
            format!("expected \"internet\" or \"rie\", got {platform:?}"),
        );
    }
    if let Some(environment) = section.environment.as_deref() {
        if !matches!(environment, "integration" | "production") {
            check.problem(
                format!("{key}.environment"),
                format!("expected \"integration\" or \"production\", got {environment:?}"),
            );
        } else if kind == ProviderKind::Oidc {
            check.problem(
                format!("{key}.environment"),
                "only a federation kind has environments; give issuer for an oidc provider",
            );
        }
    }
    let issuer_text = match (&section.issuer, section.environment.as_deref()) {
        (Some(issuer), _) => Some(issuer.clone()),
        (None, Some(environment)) => kind.issuer(environment, platform).map(str::to_string),
        (None, None) => {
            check.problem(
                format!("{key}.issuer"),
                if kind == ProviderKind::Oidc {
                    "required for an oidc provider".to_string()
                } else {
                    format!("give environment = \"integration\" or \"production\" (or the issuer) for {}", kind.as_str())
                },
            );
            None
        }
    };
    let issuer = issuer_text.and_then(|issuer| match Url::parse(&issuer) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(issuer),
        _ => {
            check.problem(
                format!("{key}.issuer"),
                format!("expected an absolute http(s) URL, got {issuer:?}"),
            );
            None
        }
    });
    let userinfo_format = match section.userinfo_format.as_deref() {
        None => preset.userinfo,
        Some("any") => UserinfoFormat::Any,
        Some("json") => UserinfoFormat::Json,
        Some("jwt") => UserinfoFormat::Jwt,
        Some(other) => {
            check.problem(
                format!("{key}.userinfo_format"),
                format!("expected any, json or jwt; got {other:?}"),
            );
            UserinfoFormat::Any
        }
    };
    if section.client_id.trim().is_empty() {
        check.problem(format!("{key}.client_id"), "must not be empty");
    }
    let token_auth_method = match section.token_auth_method.as_str() {
        "client_secret_post" => TokenAuthMethod::ClientSecretPost,
        "client_secret_basic" => TokenAuthMethod::ClientSecretBasic,
        "private_key_jwt" => TokenAuthMethod::PrivateKeyJwt,
        other => {
            check.problem(
                format!("{key}.token_auth_method"),
                format!(
                    "expected \"client_secret_post\", \"client_secret_basic\" or \"private_key_jwt\", got {other:?}"
                ),
            );
            TokenAuthMethod::ClientSecretPost
        }
    };
    let secret_given = section.client_secret.is_some()
        || section.client_secret_env.is_some()
        || section.client_secret_file.is_some();
    let client_secret = if token_auth_method == TokenAuthMethod::PrivateKeyJwt && !secret_given {
        Some(None)
    } else {
        secret_from(
            check,
            &format!("{key}.client_secret"),
            section.client_secret.as_deref(),
            section.client_secret_env.as_deref(),
            section.client_secret_file.as_deref(),
            env,
        )
        .map(Some)
    };
    if token_auth_method == TokenAuthMethod::PrivateKeyJwt && kind == ProviderKind::FranceConnectV1
    {
        check.problem(
            format!("{key}.token_auth_method"),
            "franceconnect-v1 authenticates with the client secret (it also signs the id_token with it): use client_secret_post",
        );
    }
    if token_auth_method == TokenAuthMethod::PrivateKeyJwt && section.signing_keys.is_empty() {
        check.problem(
            format!("{key}.signing_keys"),
            "private_key_jwt signs a client assertion: give at least one PEM key (RSA or EC P-256)",
        );
    }
    let scope_list: Vec<String> = section
        .scopes
        .clone()
        .unwrap_or_else(|| preset.scopes.iter().map(|s| s.to_string()).collect());
    for (i, scope) in scope_list.iter().enumerate() {
        if scope.is_empty() || scope.contains(char::is_whitespace) {
            check.problem(
                format!("{key}.scopes[{i}]"),
                "a scope is one non-empty word without spaces",
            );
        }
    }
    let encryption_keys = read_key_files(
        check,
        &format!("{key}.encryption_keys"),
        &section.encryption_keys,
    );
    let signing_keys = read_key_files(check, &format!("{key}.signing_keys"), &section.signing_keys);
    let http_timeout = check.duration(&format!("{key}.http_timeout"), &section.http_timeout);
    let mut claim_headers = BTreeMap::new();
    for (claim, name) in &section.headers {
        let target =
            (!name.is_empty()).then(|| header_name(check, &format!("{key}.headers.{claim}"), name));
        claim_headers.insert(claim.clone(), target);
    }
    if check.problems.len() != before {
        return None;
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in &scope_list {
        if scope != "openid" && !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    Some(ProviderSettings {
        id: section.id.clone(),
        kind,
        display_name: section.display_name.clone().unwrap_or_else(|| {
            if preset.display_name.is_empty() {
                section.id.clone()
            } else {
                preset.display_name.to_string()
            }
        }),
        issuer: issuer?,
        client_id: section.client_id.clone(),
        client_secret: client_secret?,
        scopes,
        acr: section.acr.clone().unwrap_or_else(|| strings(preset.acr)),
        acr_request: preset.acr_request,
        pkce: section.pkce.unwrap_or(preset.pkce),
        token_auth_method,
        encryption_keys,
        signing_keys,
        userinfo: section.userinfo,
        userinfo_format,
        hints: strings(preset.hints),
        mandatory_claims: section
            .mandatory_claims
            .clone()
            .unwrap_or_else(|| strings(preset.mandatory_claims)),
        http_timeout,
        claim_headers,
    })
}

/// Reads PEM key files; a file that cannot be read is a problem at `key[i]`.
fn read_key_files(check: &mut Checker, key: &str, paths: &[PathBuf]) -> Vec<(PathBuf, Secret)> {
    let mut keys = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        match std::fs::read_to_string(path) {
            Ok(pem) => keys.push((path.clone(), Secret::new(pem))),
            Err(e) => check.problem(
                format!("{key}[{i}]"),
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    keys
}

/// A secret given as exactly one of: inline value, `_env` variable, `_file` path.
fn secret_from(
    check: &mut Checker,
    key: &str,
    inline: Option<&str>,
    env_name: Option<&str>,
    file: Option<&Path>,
    env: &dyn Environment,
) -> Option<Secret> {
    let given = [inline.is_some(), env_name.is_some(), file.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        check.problem(
            key,
            format!("give exactly one of {key}, {key}_env or {key}_file"),
        );
        return None;
    }
    let value = if let Some(v) = inline {
        v.to_string()
    } else if let Some(name) = env_name {
        match env.var(name) {
            Some(v) => v,
            None => {
                check.problem(
                    format!("{key}_env"),
                    format!("environment variable {name} is not set"),
                );
                return None;
            }
        }
    } else {
        let path = file?;
        match std::fs::read_to_string(path) {
            Ok(v) => v.trim_end_matches(['\r', '\n']).to_string(),
            Err(e) => {
                check.problem(
                    format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        }
    };
    if value.is_empty() {
        check.problem(key, "the secret is empty");
        return None;
    }
    Some(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnvironment(HashMap<&'static str, &'static str>);
    impl Environment for MapEnvironment {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn no_env() -> MapEnvironment {
        MapEnvironment(HashMap::new())
    }

    /// The problems a configuration text is refused with, as printed.
    fn refusal(text: &str) -> String {
        from_toml(text, Path::new("t.toml"), &no_env())
            .unwrap_err()
            .to_string()
    }

    const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "https://app.example.gouv.fr"

[upstream]
url = "http://127.0.0.1:9000"

[[provider]]
id = "agentconnect"
issuer = "https://fca.integ01.dev-agentconnect.fr/api/v2"
client_id = "abc"
client_secret_env = "AC_SECRET"
scopes = ["openid", "given_name", "usual_name", "email", "uid"]
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let env = MapEnvironment(HashMap::from([("AC_SECRET", "s3cret")]));
        let s = from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap();
        assert_eq!(s.session.idle_timeout, Duration::from_secs(30 * 60));
        assert_eq!(s.session.max_lifetime, Duration::from_secs(12 * 3600));
        assert_eq!(s.session.cookie_name, "__Host-guichet");
        assert!(s.session.secure);
        assert!(s.threads >= 1);
        assert_eq!(s.public_url.as_str(), "https://app.example.gouv.fr/");
        let p = &s.providers[0];
        assert_eq!(p.scopes, ["given_name", "usual_name", "email", "uid"]);
        assert_eq!(p.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(p.token_auth_method, TokenAuthMethod::ClientSecretPost);
        assert!(p.pkce);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let env = MapEnvironment(HashMap::from([("AC_SECRET", "s3cret-value")]));
        let s = from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("s3cret-value"));
        assert!(printed.contains("REDACTED"));
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let text = MINIMAL.replace("[upstream]", "[upstream]\nurll = \"x\"");
        let err = from_toml(&text, Path::new("t.toml"), &no_env()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown field `urll`"), "{message}");
        assert!(message.contains("line 7"), "{message}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[server]
listen = "nowhere"
public_url = "ftp://x"
[upstream]
url = "http://127.0.0.1:9000/app"
[session]
idle_timeout = "soon"
[[provider]]
id = "bad id"
issuer = "x"
client_id = ""
client_secret = "a"
client_secret_env = "B"
token_auth_method = "tls_client_auth"
"#;
        let err = from_toml(text, Path::new("t.toml"), &no_env()).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected validation problems, got {err}");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        let listen = problems.iter().find(|p| p.key == "server.listen").unwrap();
        assert_eq!(listen.location, Some((3, 10)), "{listen}");
        let token = problems
            .iter()
            .find(|p| p.key == "provider[0].token_auth_method")
            .unwrap();
        assert_eq!(token.location, Some((15, 21)), "{token}");
        for expected in [
            "server.listen",
            "server.public_url",
            "upstream.url",
            "session.idle_timeout",
            "provider[0].id",
            "provider[0].issuer",
            "provider[0].client_id",
            "provider[0].client_secret",
            "provider[0].token_auth_method",
        ] {
            assert!(keys.contains(&expected), "{expected} missing in {keys:?}");
        }
    }

    #[test]
    fn franceconnect_plus_needs_decryption_keys_and_private_key_jwt_signing_keys() {
        let plus = |extra: &str| {
            format!(
                "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://app.example.gouv.fr\"\n\
                 [upstream]\nurl = \"http://127.0.0.1:9000\"\n[[provider]]\nid = \"fcplus\"\n\
                 kind = \"franceconnect-plus\"\nenvironment = \"integration\"\nclient_id = \"abc\"\n{extra}"
            )
        };
        let err = refusal(&plus("token_auth_method = \"private_key_jwt\"\n"));
        assert!(
            err.contains("provider[0].encryption_keys: franceconnect-plus encrypts"),
            "{err}"
        );
        assert!(
            err.contains("provider[0].signing_keys: private_key_jwt signs"),
            "{err}"
        );
        assert!(
            !err.contains("client_secret"),
            "no secret is needed with private_key_jwt: {err}"
        );

        let dir = std::env::temp_dir().join(format!("guichet-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("enc.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        let text = plus(&format!(
            "token_auth_method = \"private_key_jwt\"\nencryption_keys = [{key:?}]\nsigning_keys = [{key:?}, \"/nonexistent/sig.pem\"]\n"
        ));
        let err = refusal(&text);
        assert!(
            err.contains("provider[0].signing_keys[1]: cannot read /nonexistent/sig.pem"),
            "{err}"
        );
        let text = plus(&format!(
            "token_auth_method = \"private_key_jwt\"\nencryption_keys = [{key:?}]\nsigning_keys = [{key:?}]\n"
        ));
        let settings = from_toml(&text, Path::new("t.toml"), &no_env()).unwrap();
        let provider = &settings.providers[0];
        assert!(provider.client_secret.is_none());
        assert_eq!(provider.token_auth_method, TokenAuthMethod::PrivateKeyJwt);
        assert_eq!(
            provider.issuer,
            "https://auth.integ01.dev-franceconnect.fr/api/v2"
        );
        assert!(provider
            .describe()
            .contains("no client secret, token endpoint auth private_key_jwt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shared_store_settings_are_checked_without_echoing_the_url() {
        let with = |shared: &str| {
            format!(
                "{}\n[session.shared]\n{shared}",
                MINIMAL.replace("client_secret_env = \"AC_SECRET\"", "client_secret = \"s\"")
            )
        };
        let key = "key = \"0123456789abcdef0123456789abcdef\"\n";
        let settings = from_toml(
            &with(&format!(
                "url = \"redis://:pw@127.0.0.1:6379/2\"\nrecheck = \"2s\"\n{key}"
            )),
            Path::new("t.toml"),
            &no_env(),
        )
        .unwrap();
        let shared = settings.session.shared.unwrap();
        assert_eq!(shared.url.expose(), "redis://:pw@127.0.0.1:6379/2");
        assert_eq!(shared.recheck, Duration::from_secs(2));
        assert_eq!(shared.timeout, Duration::from_millis(250));
        assert_eq!(shared.key_prefix, "guichet:");
        assert!(!format!("{shared:?}").contains("pw"));

        let err = refusal(&with(
            "url = \"http://:hunter2@cache:6379\"\ntimeout = \"0s\"",
        ));
        assert!(
            err.contains("session.shared.url: expected redis://"),
            "{err}"
        );
        assert!(
            err.contains("session.shared.timeout: must be longer than zero"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        // The replicas' key: required, long enough, never echoed.
        let err = refusal(&with("url = \"redis://a\""));
        assert!(
            err.contains("session.shared.key: give exactly one of"),
            "{err}"
        );
        let err = refusal(&with("url = \"redis://a\"\nkey = \"short-secret-k3y\""));
        assert!(err.contains("session.shared.key: use at least 32"), "{err}");
        assert!(!err.contains("short-secret-k3y"), "{err}");
        let err = refusal(&with("url = \"redis://a\"\nurl_env = \"R\""));
        assert!(err.contains("session.shared.url"), "{err}");
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let err = refusal(&with(&format!("url = \"redis://a\"\nca_file = {ca:?}")));
        assert!(
            err.contains("session.shared.ca_file: only for a TLS store"),
            "{err}"
        );
    }

    #[test]
    fn proxies_sizes_and_header_names_are_checked() {
        let text = MINIMAL
            .replace(
                "[upstream]",
                "trusted_proxies = [\"10.0.0.0/8\", \"::1\", \"10.0.0.0/40\"]\n[session]\nmax_memory = \"lots\"\n[headers.claims]\nemail = \"Content-Length\"\nuid = \"X_Forwarded_For\"\nsiret = \"X-Siret\"\n[upstream]",
            )
            .replace("client_secret_env = \"AC_SECRET\"", "client_secret = \"s\"")
            + "\n[assertion]\nheader = \"Transfer-Encoding\"\nkeys = []\n";
        let err = refusal(&text);
        for expected in [
            "server.trusted_proxies[2]: expected an address or a CIDR",
            "session.max_memory: expected a size",
            "headers.claims.email: \"Content-Length\" is a hop-by-hop",
            "headers.claims.uid: \"X_Forwarded_For\" is a hop-by-hop",
            "assertion.header: \"Transfer-Encoding\" is a hop-by-hop",
        ] {
            assert!(err.contains(expected), "{expected} missing in {err}");
        }
        assert!(!err.contains("headers.claims.siret"), "{err}");
        assert!(!err.contains("trusted_proxies[0]") && !err.contains("trusted_proxies[1]"));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1 GB"), Some(1_000_000_000));
        assert_eq!(parse_size("1TiB"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn parse_errors_never_quote_a_secret() {
        let secret_lines = [
            "client_secret = \"s3cr3t-value\"\nclient_secret = \"s3cr3t-value\"",
            "client_secret = 12345678901",
        ];
        for lines in secret_lines {
            let text = MINIMAL.replace("client_secret_env = \"AC_SECRET\"", lines);
            let err = from_toml(&text, Path::new("t.toml"), &no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains("line"), "{err}");
            assert!(err.contains("client_secret"), "the key is named: {err}");
            assert!(
                !err.contains("s3cr3t") && !err.contains("12345678901"),
                "{err}"
            );
        }
        let text = format!(
            "{}\n[session.shared]\nurl = \"redis://:hunter2@cache:6379\"\nurl = \"redis://:hunter2@cache:6379\"\n",
            MINIMAL
        );
        let err = from_toml(&text, Path::new("t.toml"), &no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("url"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        // A mistake elsewhere still shows its key, with the value hidden.
        let text = MINIMAL.replace("max_sessions", "x").replace(
            "[upstream]",
            "[session]\nmax_sessions = \"many\"\n[upstream]",
        );
        let err = from_toml(&text, Path::new("t.toml"), &no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_sessions ="), "{err}");
    }

    #[test]
    fn missing_env_secret_is_named() {
        let err = from_toml(MINIMAL, Path::new("t.toml"), &no_env()).unwrap_err();
        assert!(err
            .to_string()
            .contains("provider[0].client_secret_env: environment variable AC_SECRET is not set"));
    }

    #[test]
    fn plain_http_public_url_drops_host_prefix_and_secure() {
        let text = MINIMAL.replace("https://app.example.gouv.fr", "http://127.0.0.1:8080");
        let env = MapEnvironment(HashMap::from([("AC_SECRET", "x")]));
        let s = from_toml(&text, Path::new("t.toml"), &env).unwrap();
        assert_eq!(s.session.cookie_name, "guichet");
        assert!(!s.session.secure);
    }
}
