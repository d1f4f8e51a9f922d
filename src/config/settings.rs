//! The runtime settings: what the rest of guichet reads, validated and typed. Nothing here is
//! deserialized; `validate` builds it from the file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::presets::{AcrRequest, ProviderKind, UserinfoFormat};
use super::spelling::Spelled;

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

impl Spelled for TokenAuthMethod {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("client_secret_post", TokenAuthMethod::ClientSecretPost),
        ("client_secret_basic", TokenAuthMethod::ClientSecretBasic),
        ("private_key_jwt", TokenAuthMethod::PrivateKeyJwt),
    ];
}

/// What guichet does with the requests it receives (`server.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the data path: every request goes through guichet to `[upstream]`.
    Proxy,
    /// Beside a front proxy: it asks `/.guichet/auth` about each request and serves the
    /// application itself; guichet serves only `/.guichet/`.
    Auth,
    /// Both at once (a front proxy for some applications, `[upstream]` for another).
    Both,
}

impl Mode {
    /// Whether requests outside `/.guichet/` are proxied to an upstream.
    pub fn proxies(self) -> bool {
        self != Mode::Auth
    }

    /// Whether `/.guichet/auth` answers.
    pub fn answers_auth(self) -> bool {
        self != Mode::Proxy
    }
}

impl Spelled for Mode {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("proxy", Mode::Proxy),
        ("auth", Mode::Auth),
        ("both", Mode::Both),
    ];
}

/// Everything guichet needs at run time, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: Mode,
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-For` is kept.
    pub trusted_proxies: Vec<Cidr>,
    pub tls: Option<ListenerTls>,
    pub upgrade_sock: PathBuf,
    pub pid_file: PathBuf,
    pub public_url: Url,
    pub threads: usize,
    /// tokio's work stealing between the worker threads (`server.work_stealing`).
    pub work_stealing: bool,
    pub grace_period: Duration,
    pub shutdown_timeout: Duration,
    /// `[upstream]`; `None` only in `Mode::Auth`.
    pub upstream: Option<UpstreamSettings>,
    pub session: SessionSettings,
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: String,
    pub log_json: bool,
    pub access_log: bool,
    pub headers: HeaderSettings,
    pub assertion: Option<AssertionSettings>,
    pub signature: Option<SignatureSettings>,
    pub providers: Vec<ProviderSettings>,
    /// Named upstreams (`[upstreams.NAME]`), by name, for routes.
    pub upstreams: Vec<(String, UpstreamSettings)>,
    /// `[[route]]`, in file order.
    pub routes: Vec<crate::policy::Route>,
    /// `[pages]`: branding and template overrides, files already read.
    pub pages: PagesSettings,
    /// Valid settings probably not meant (a rule on a claim no provider sends…), with key paths.
    pub warnings: Vec<String>,
}

/// `[pages]`, checked, with the logo and the template overrides read.
#[derive(Clone, Debug, Default)]
pub struct PagesSettings {
    pub application_name: Option<String>,
    pub organisation: Option<String>,
    pub support_url: Option<String>,
    pub logo: Option<Logo>,
    pub logo_alt: Option<String>,
    /// The application's own sign-in: (address, label).
    pub alternative_login: Option<(String, String)>,
    /// Template overrides: (file name, source).
    pub templates: Vec<(String, String)>,
}

/// A logo file's bytes and content type.
#[derive(Clone, Debug)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
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

impl Spelled for Encoding {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("percent", Encoding::Percent),
        ("utf8", Encoding::Utf8),
        ("latin1", Encoding::Latin1),
        ("base64url", Encoding::Base64Url),
    ];
}

/// Header naming presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderPreset {
    Guichet,
    Oauth2Proxy,
}

impl Spelled for HeaderPreset {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("guichet", HeaderPreset::Guichet),
        ("oauth2-proxy", HeaderPreset::Oauth2Proxy),
    ];
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
    /// The cookie that keeps a session's logout hint, scoped to the logout path
    /// (`__Secure-<name>-logout` when secure).
    pub logout_cookie_name: String,
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
    /// A provider as its kind's preset makes it, for a client id and secret at an issuer (the
    /// demo's mock providers, tests): the preset's scopes, acr, PKCE, userinfo format, hints
    /// and mandatory claims; `client_secret_post`; a 10-second bound on provider calls.
    pub fn from_preset(
        id: &str,
        kind: ProviderKind,
        issuer: String,
        (client_id, client_secret): (&str, &str),
    ) -> Self {
        let preset = kind.preset();
        let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        ProviderSettings {
            id: id.into(),
            kind,
            display_name: match preset.display_name {
                "" => id.to_string(),
                name => name.to_string(),
            },
            issuer,
            client_id: client_id.into(),
            client_secret: Some(Secret::new(client_secret)),
            scopes: strings(preset.scopes)
                .into_iter()
                .filter(|s| s != "openid")
                .collect(),
            acr: strings(preset.acr),
            acr_request: preset.acr_request,
            pkce: preset.pkce,
            token_auth_method: TokenAuthMethod::ClientSecretPost,
            encryption_keys: vec![],
            signing_keys: vec![],
            userinfo: true,
            userinfo_format: preset.userinfo,
            hints: strings(preset.hints),
            mandatory_claims: strings(preset.mandatory_claims),
            http_timeout: Duration::from_secs(10),
            claim_headers: BTreeMap::new(),
        }
    }

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
