//! Identity headers: stripping what the client sent, building what the application receives,
//! and the two proofs that they come from guichet: a signed JWT assertion (keys published at
//! `/.guichet/jwks.json`) and an HMAC-SHA256 signature over the request line and headers.
//!
//! Every header in guichet's namespace (`X-Guichet-*`, any case, and the `X_Guichet_*` spelling
//! that CGI-style servers fold into the same variable) is removed from every proxied request before
//! the verified ones are added: a client can never inject an identity. The verified headers are
//! built once at login ([`identity_headers`]) and kept in the session, so the per-request work is a
//! scan of the header names plus copies of prebuilt values.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::config::{
    AssertionSettings, Encoding, HeaderPreset, HeaderSettings, Settings, SignatureSettings,
};
use crate::identity::{Claim, Identity};
use crate::session::Session;

pub mod forward;
pub mod packed;

use packed::interned;

/// Characters escaped in header values: controls, `%` itself (so decoding is unambiguous) and,
/// implicitly, every non-ASCII byte.
const HEADER_VALUE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// Whether a header name (lower-case, as `http` stores it) is in guichet's namespace.
pub fn is_identity_header(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("x-guichet")
        .or_else(|| name.strip_prefix("x_guichet"))
    else {
        return false;
    };
    rest.is_empty() || rest.starts_with(['-', '_'])
}

/// Removes every identity-namespace header the client sent, whatever its case or spelling.
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    remove_matching(headers, is_identity_header);
}

/// Removes every header whose (lower-case) name `doomed` says, without allocating when none
/// does (most requests).
fn remove_matching(headers: &mut HeaderMap, doomed: impl Fn(&str) -> bool) {
    if !headers.keys().any(|name| doomed(name.as_str())) {
        return;
    }
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| doomed(name.as_str()))
        .cloned()
        .collect();
    for name in names {
        headers.remove(&name);
    }
}

/// The longest claim name sent as a header of its own (the federations' longest is about 20
/// characters). The names come from the provider's answers and each distinct one is kept for
/// the process's life in the table of header names (at most [`packed::MAX_INTERNED`]): an
/// answer of long made-up names must not make that table hold megabytes.
pub const MAX_CLAIM_NAME: usize = 64;

/// `X-Guichet-` + the claim name in lower case with `-` for `_` (`usual_name` →
/// `x-guichet-usual-name`); `None` for a claim whose name cannot be a header name or is longer
/// than [`MAX_CLAIM_NAME`].
pub fn claim_header_name(claim: &str) -> Option<HeaderName> {
    if claim.is_empty()
        || claim.len() > MAX_CLAIM_NAME
        || !claim
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let mut name = String::from("x-guichet-");
    name.extend(claim.chars().map(|c| match c {
        '_' => '-',
        c => c.to_ascii_lowercase(),
    }));
    HeaderName::from_bytes(name.as_bytes()).ok()
}

/// A header value: percent-encoded UTF-8 for anything outside printable ASCII, and for `%`.
pub fn encode_value(value: &str) -> HeaderValue {
    encode(value, Encoding::Percent).0
}

/// Encodes a value; the flag says it had to fall back to percent-encoding (a character outside
/// Latin-1 in `latin1`, a control character in `utf8` or `latin1`).
pub fn encode(value: &str, encoding: Encoding) -> (HeaderValue, bool) {
    let percent = |v: &str| {
        let encoded = utf8_percent_encode(v, HEADER_VALUE_ESCAPES).to_string();
        // Percent-encoding leaves only visible ASCII and spaces: always a valid value.
        HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
    };
    let has_control = value.chars().any(char::is_control);
    match encoding {
        Encoding::Percent => (percent(value), false),
        Encoding::Base64Url => (
            HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(value.as_bytes()))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            false,
        ),
        Encoding::Utf8 if !has_control => match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(v) => (v, false),
            Err(_) => (percent(value), true),
        },
        Encoding::Latin1 if !has_control && value.chars().all(|c| (c as u32) <= 0xFF) => {
            let bytes: Vec<u8> = value.chars().map(|c| c as u32 as u8).collect();
            match HeaderValue::from_bytes(&bytes) {
                Ok(v) => (v, false),
                Err(_) => (percent(value), true),
            }
        }
        Encoding::Utf8 | Encoding::Latin1 => (percent(value), true),
    }
}

/// Whether a (lower-case) header name equals a configured one, `_` and `-` being the same.
fn same_name(name: &str, configured: &str) -> bool {
    name.len() == configured.len()
        && name
            .bytes()
            .zip(configured.bytes())
            .all(|(a, b)| a == b || (a == b'_' && b == b'-'))
}

/// Names of the headers that list, comma-separated, the headers whose value fell back to
/// percent-encoding.
pub const FALLBACK_HEADER: &str = "x-guichet-percent-encoded";

/// Names guichet gives its own headers: no claim may take them, even when guichet does not send
/// them for a session (no `acr`, tokens not forwarded).
const OWN_HEADERS: &[&str] = &[
    "x-guichet-sub",
    "x-guichet-provider",
    "x-guichet-acr",
    "x-guichet-amr",
    "x-guichet-access-token",
    "x-guichet-id-token",
    FALLBACK_HEADER,
];

/// Tokens a session may forward, when configured.
#[derive(Default)]
pub struct ForwardedTokens<'a> {
    pub access_token: Option<&'a str>,
    pub id_token: Option<&'a str>,
}

/// Which identity headers the application receives, with which names and encodings, and which
/// client headers are stripped: built once from the settings.
pub struct HeaderPlan {
    settings: HeaderSettings,
    /// Per provider id: claim → header name (`None`: not sent), over `settings.claims`.
    provider_claims: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// Configured names outside the `x-guichet` namespace, lower-case with `-` for `_`: a
    /// client header matching one of them in any case or spelling is stripped too.
    extra_strip: Vec<String>,
    /// Names no claim may take: the fallback list, the assertion and signature headers.
    reserved: Vec<String>,
}

impl Default for HeaderPlan {
    /// The default header set: `X-Guichet-*`, percent-encoded, no mapping.
    fn default() -> Self {
        HeaderPlan {
            settings: HeaderSettings::default(),
            provider_claims: BTreeMap::new(),
            extra_strip: Vec::new(),
            reserved: OWN_HEADERS.iter().map(|n| n.to_string()).collect(),
        }
    }
}

impl HeaderPlan {
    pub fn new(settings: &Settings) -> Self {
        let headers = settings.headers.clone();
        let provider_claims: BTreeMap<String, BTreeMap<String, Option<String>>> = settings
            .providers
            .iter()
            .filter(|p| !p.claim_headers.is_empty())
            .map(|p| (p.id.clone(), p.claim_headers.clone()))
            .collect();
        let mut reserved: Vec<String> = OWN_HEADERS.iter().map(|n| n.to_string()).collect();
        reserved.extend(settings.assertion.as_ref().map(|a| a.header.clone()));
        reserved.extend(settings.signature.as_ref().map(|s| s.header.clone()));
        let mut names: Vec<String> = headers.claims.values().flatten().cloned().collect();
        names.extend(
            provider_claims
                .values()
                .flat_map(|m| m.values().flatten().cloned()),
        );
        if headers.preset == HeaderPreset::Oauth2Proxy {
            names.extend(OAUTH2_PROXY_HEADERS.iter().map(|(_, n)| n.to_string()));
        }
        if let Some(a) = &settings.assertion {
            names.push(a.header.clone());
        }
        if let Some(s) = &settings.signature {
            names.push(s.header.clone());
        }
        let mut extra_strip: Vec<String> = names
            .iter()
            .map(|n| n.to_ascii_lowercase().replace('_', "-"))
            .filter(|n| !is_identity_header(n))
            .collect();
        extra_strip.sort();
        extra_strip.dedup();
        HeaderPlan {
            settings: headers,
            provider_claims,
            extra_strip,
            reserved,
        }
    }

    /// Removes every identity header the client sent: the `x-guichet` namespace and every
    /// configured name, in any case, with `-` or `_`, however many times it is repeated.
    pub fn strip(&self, headers: &mut HeaderMap) {
        remove_matching(headers, |name| {
            is_identity_header(name)
                || (!self.extra_strip.is_empty()
                    && self
                        .extra_strip
                        .iter()
                        .any(|configured| same_name(name, configured)))
        });
    }

    /// The headers for an identity, built once per session. Names are unique: guichet's own
    /// (`sub`, `provider`, `acr`, `amr`, the fallback list, tokens, assertion and signature)
    /// are never taken by a claim; a name explicitly mapped in the configuration beats a
    /// derived one; two claims whose derived names fold to the same header (`given_name` and
    /// `Given-Name`) are both left out rather than one picked by chance.
    pub fn identity_headers(
        &self,
        identity: &Identity,
        tokens: ForwardedTokens<'_>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let own = self.own_headers(identity, &tokens);
        let (mapped, derived) = self.claim_headers(identity);
        let mut ambiguous: Vec<&str> = derived
            .iter()
            .enumerate()
            .filter(|(i, (name, _))| derived[..*i].iter().any(|(other, _)| other == name))
            .map(|(_, (name, _))| name.as_str())
            .collect();
        ambiguous.dedup();
        if !ambiguous.is_empty() {
            tracing::debug!(headers = %ambiguous.join(","), "claims whose names fold to the same header; not forwarded");
        }
        let derived = derived
            .iter()
            .filter(|(name, _)| !ambiguous.contains(&name.as_str()));
        let mut headers = Vec::with_capacity(own.len() + mapped.len() + derived.size_hint().0 + 1);
        let mut fallbacks: Vec<&str> = Vec::new();
        for (i, (name, value)) in own.iter().chain(mapped.iter()).chain(derived).enumerate() {
            let Some(header) = interned(name) else {
                continue;
            };
            let taken = headers.iter().any(|(existing, _)| *existing == header)
                || (i >= own.len() && self.reserved.iter().any(|reserved| reserved == name));
            if taken {
                tracing::debug!(header = %name, "header name already used by guichet or another claim; not forwarded");
                continue;
            }
            let encoding = self
                .settings
                .encodings
                .get(name)
                .copied()
                .unwrap_or(self.settings.encoding);
            let (value, fell_back) = encode(value, encoding);
            if fell_back {
                fallbacks.push(name);
            }
            headers.push((header, value));
        }
        if !fallbacks.is_empty() {
            tracing::debug!(headers = %fallbacks.join(","), "values percent-encoded: not representable in the configured encoding");
            if let Ok(value) = HeaderValue::from_str(&fallbacks.join(",")) {
                headers.push((HeaderName::from_static(FALLBACK_HEADER), value));
            }
        }
        headers
    }

    /// guichet's own headers for an identity: `sub`, `provider`, `acr`, `amr`, and the tokens
    /// configured to be forwarded.
    fn own_headers<'a>(
        &self,
        identity: &'a Identity,
        tokens: &ForwardedTokens<'a>,
    ) -> Vec<(String, Cow<'a, str>)> {
        let mut own: Vec<(String, Cow<'a, str>)> = vec![
            ("x-guichet-sub".into(), Cow::Borrowed(identity.sub.as_str())),
            (
                "x-guichet-provider".into(),
                Cow::Borrowed(identity.provider.as_str()),
            ),
        ];
        if let Some(acr) = &identity.acr {
            own.push(("x-guichet-acr".into(), Cow::Borrowed(acr)));
        }
        if !identity.amr.is_empty() {
            let amr = crate::identity::join_list(identity.amr.iter().map(String::as_str));
            own.push(("x-guichet-amr".into(), Cow::Owned(amr)));
        }
        let forwarded = [
            (
                self.settings.forward_access_token,
                "x-guichet-access-token",
                tokens.access_token,
            ),
            (
                self.settings.forward_id_token,
                "x-guichet-id-token",
                tokens.id_token,
            ),
        ];
        for (enabled, name, token) in forwarded {
            if let (true, Some(token)) = (enabled, token) {
                own.push((name.into(), Cow::Borrowed(token)));
            }
        }
        own
    }

    /// The claims' headers: those whose name the configuration maps (and the preset's), and
    /// those whose name is derived from the claim's.
    #[allow(clippy::type_complexity)]
    fn claim_headers<'a>(
        &self,
        identity: &'a Identity,
    ) -> (Vec<(String, Cow<'a, str>)>, Vec<(String, Cow<'a, str>)>) {
        let mut mapped = Vec::new();
        let mut derived = Vec::new();
        let overrides = self.provider_claims.get(&identity.provider);
        for (claim, value) in &identity.claims {
            let configured = overrides
                .and_then(|o| o.get(claim))
                .or_else(|| self.settings.claims.get(claim));
            match configured {
                Some(None) => {}
                Some(Some(name)) => mapped.push((name.clone(), value.to_header_text())),
                None => match claim_header_name(claim) {
                    Some(name) => derived.push((name.as_str().to_string(), value.to_header_text())),
                    None => {
                        tracing::debug!(claim = %claim, "claim name cannot be a header name; not forwarded")
                    }
                },
            }
        }
        if self.settings.preset == HeaderPreset::Oauth2Proxy {
            for (claim, name) in OAUTH2_PROXY_HEADERS {
                let value = match *claim {
                    "sub" => Some(Cow::Borrowed(identity.sub.as_str())),
                    other => identity.claims.get(other).map(Claim::to_header_text),
                };
                if let Some(value) = value {
                    mapped.push((name.to_string(), value));
                }
            }
        }
        (mapped, derived)
    }
}

/// The headers of the `oauth2-proxy` preset: (claim, header).
const OAUTH2_PROXY_HEADERS: &[(&str, &str)] = &[
    ("sub", "x-forwarded-user"),
    ("email", "x-forwarded-email"),
    ("preferred_username", "x-forwarded-preferred-username"),
];

// === the signed JWT assertion ===

/// Why an assertion key or signature failed.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("{path}: not a PKCS#8 PEM private key for ES256 (P-256) or EdDSA (Ed25519)")]
    UnsupportedKey { path: String },
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("the [signature] key cannot key an HMAC-SHA256")]
    SignatureKey,
    #[error("the session was built without assertion claims")]
    NoClaims,
    #[error("{0:?} keys cannot be generated: use ES256 or EdDSA")]
    UnsupportedAlgorithm(Algorithm),
    #[error("cannot encode the new key: {0}")]
    Encoding(#[from] p256::pkcs8::Error),
}

struct AssertionKey {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
}

/// Signs identity assertions with the first configured key and publishes all of them.
pub struct AssertionSigner {
    header: HeaderName,
    keys: Vec<AssertionKey>,
    jwks: Bytes,
    lifetime: u64,
    issuer: String,
    audience: String,
}

impl AssertionSigner {
    pub fn new(settings: &AssertionSettings) -> Result<Self, AssertionError> {
        // Interned: the table's names are kept for the process's life (cloned per request).
        let header = interned(&settings.header)
            .ok_or_else(|| AssertionError::HeaderName(settings.header.clone()))?;
        let mut keys = Vec::new();
        let mut published = Vec::new();
        for (path, pem) in &settings.keys {
            let pem = pem.expose().as_bytes();
            let unsupported = || AssertionError::UnsupportedKey {
                path: path.display().to_string(),
            };
            let (key, algorithm) = match EncodingKey::from_ec_pem(pem) {
                Ok(key) => (key, Algorithm::ES256),
                Err(_) => (
                    EncodingKey::from_ed_pem(pem).map_err(|_| unsupported())?,
                    Algorithm::EdDSA,
                ),
            };
            let mut jwk = Jwk::from_encoding_key(&key, algorithm).map_err(|_| unsupported())?;
            let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            published.push(jwk);
            keys.push(AssertionKey {
                kid,
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err(AssertionError::UnsupportedKey {
                path: "assertion.keys".into(),
            });
        }
        let jwks = serde_json::to_vec(&JwkSet { keys: published })
            .map_err(|e| AssertionError::Signing(e.into()))?;
        Ok(AssertionSigner {
            header,
            keys,
            jwks: Bytes::from(jwks),
            lifetime: settings.lifetime.as_secs().max(1),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The public keys, as a JWKS document.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Signs an assertion issued at `now`; returns it and the time after which to sign anew
    /// (when less than a third of its lifetime remains).
    pub fn sign(
        &self,
        base: &Map<String, Value>,
        now: u64,
    ) -> Result<(HeaderValue, u64), AssertionError> {
        let key = &self.keys[0];
        let mut claims = base.clone();
        claims.insert("iss".into(), Value::String(self.issuer.clone()));
        claims.insert("aud".into(), Value::String(self.audience.clone()));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now + self.lifetime));
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.key)?;
        let value = HeaderValue::from_str(&token)
            .map_err(|_| AssertionError::HeaderName("assertion value".into()))?;
        Ok((value, now + self.lifetime * 2 / 3))
    }

    /// The session's assertion, signed anew only when it is close to expiry.
    /// A session built without assertion claims (never: the same settings build the signer and
    /// every session) is an error, not an assertion without identity.
    pub fn current(&self, session: &Session, now: u64) -> Result<HeaderValue, AssertionError> {
        let state = session.assertion().ok_or(AssertionError::NoClaims)?;
        if let Ok(guard) = state.current.read() {
            if let Some((value, refresh_at)) = guard.as_ref() {
                if now < *refresh_at {
                    return Ok(value.clone());
                }
            }
        }
        let (value, refresh_at) = self.sign(state.claims, now)?;
        if let Ok(mut guard) = state.current.write() {
            *guard = Some((value.clone(), refresh_at));
        }
        Ok(value)
    }
}

/// The claims every assertion for this identity carries, besides `iss`, `aud`, `iat`, `exp`:
/// each claim as a string or an array of strings, `sub`, `provider`, `acr`, `amr`.
pub fn assertion_claims(identity: &Identity) -> Map<String, Value> {
    let mut claims = Map::new();
    for (name, value) in &identity.claims {
        claims.insert(name.clone(), value.to_json());
    }
    claims.insert("sub".into(), Value::String(identity.sub.clone()));
    claims.insert("provider".into(), Value::String(identity.provider.clone()));
    if let Some(acr) = &identity.acr {
        claims.insert("acr".into(), Value::String(acr.clone()));
    }
    if !identity.amr.is_empty() {
        claims.insert(
            "amr".into(),
            Value::Array(identity.amr.iter().cloned().map(Value::String).collect()),
        );
    }
    claims
}

/// Writes a private key for `guichet keygen`: PKCS#8 PEM, P-256 (ES256) or Ed25519 (EdDSA).
pub fn generate_key_pem(algorithm: Algorithm) -> Result<String, AssertionError> {
    match algorithm {
        Algorithm::ES256 => {
            let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
            Ok(secret
                .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)?
                .to_string())
        }
        Algorithm::EdDSA => {
            // PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410, section 7).
            let mut der = vec![
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20,
            ];
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
            der.extend_from_slice(&seed);
            let body = base64::engine::general_purpose::STANDARD.encode(&der);
            Ok(format!(
                "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
            ))
        }
        other => Err(AssertionError::UnsupportedAlgorithm(other)),
    }
}

// === the HMAC signature ===

/// `X-Guichet-Signature: t=<unix seconds>, v1=<base64url HMAC-SHA256>` over
/// `v1\n<METHOD>\n<path and query>\n<t>\n` followed by every identity header sent in the
/// `x-guichet-` namespace (the assertion and signature headers aside), sorted by name, one
/// `name:value\n` line each (names lower-case, values as sent). Headers renamed outside the
/// namespace (`[headers.claims]`, the `oauth2-proxy` preset) are covered by the JWT assertion,
/// not by this signature.
pub struct RequestSigner {
    header: HeaderName,
    /// The HMAC with its key already absorbed (the inner and outer padded-key states): each
    /// request starts from a copy instead of hashing the key twice again.
    keyed: Hmac<Sha256>,
}

impl RequestSigner {
    pub fn new(settings: &SignatureSettings) -> Result<Self, AssertionError> {
        Ok(RequestSigner {
            header: interned(&settings.header)
                .ok_or_else(|| AssertionError::HeaderName(settings.header.clone()))?,
            keyed: Hmac::<Sha256>::new_from_slice(settings.key.expose().as_bytes())
                .map_err(|_| AssertionError::SignatureKey)?,
        })
    }

    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The sorted `name:value\n` lines of the namespace's identity headers, built once per
    /// session.
    pub fn header_block(headers: &[(HeaderName, HeaderValue)]) -> Vec<u8> {
        let mut sorted: Vec<&(HeaderName, HeaderValue)> = headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("x-guichet-"))
            .collect();
        sorted.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut block = Vec::new();
        for (name, value) in sorted {
            block.extend_from_slice(name.as_str().as_bytes());
            block.push(b':');
            block.extend_from_slice(value.as_bytes());
            block.push(b'\n');
        }
        block
    }

    /// The signature header value for one request, in one allocation (the value itself).
    pub fn sign(&self, method: &str, path_and_query: &str, now: u64, block: &[u8]) -> HeaderValue {
        let mut seconds = itoa::Buffer::new();
        let seconds = seconds.format(now).as_bytes();
        let mut mac = self.keyed.clone();
        for part in [
            b"v1\n".as_slice(),
            method.as_bytes(),
            b"\n",
            path_and_query.as_bytes(),
            b"\n",
            seconds,
            b"\n",
            block,
        ] {
            mac.update(part);
        }
        let tag = mac.finalize().into_bytes();
        // `t=<seconds>, v1=<base64url of the 32-byte tag: 43 characters>`
        let mut encoded = [0u8; 43];
        let encoded = match URL_SAFE_NO_PAD.encode_slice(tag, &mut encoded) {
            Ok(length) => &encoded[..length],
            Err(_) => return HeaderValue::from_static(""),
        };
        let mut value = BytesMut::with_capacity(2 + seconds.len() + 5 + encoded.len());
        value.extend_from_slice(b"t=");
        value.extend_from_slice(seconds);
        value.extend_from_slice(b", v1=");
        value.extend_from_slice(encoded);
        HeaderValue::from_maybe_shared(value.freeze())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_now;
    use crate::config::Secret;
    use pingora::http::RequestHeader;

    #[test]
    fn namespace_matches_every_spelling() {
        for name in [
            "x-guichet-sub",
            "x_guichet_sub",
            "x-guichet_sub",
            "x-guichet",
            "x_guichet-email",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in [
            "x-guichetsub",
            "x-forwarded-user",
            "guichet-sub",
            "x-guichex",
        ] {
            assert!(!is_identity_header(name), "{name}");
        }
    }

    #[test]
    fn stripping_removes_all_cases_and_duplicates() {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        request.append_header("X-Guichet-Sub", "evil").unwrap();
        request.append_header("x-guichet-sub", "evil2").unwrap();
        request.append_header("X-GUICHET-EMAIL", "evil").unwrap();
        request.append_header("X_Guichet_Uid", "evil").unwrap();
        request.append_header("Accept", "text/html").unwrap();
        let mut request = request.as_owned_parts();
        strip_identity_headers(&mut request.headers);
        let left: Vec<&str> = request.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn values_are_percent_encoded_utf8() {
        assert_eq!(encode_value("Hélène").to_str().unwrap(), "H%C3%A9l%C3%A8ne");
        assert_eq!(encode_value("a b-c@d.fr").to_str().unwrap(), "a b-c@d.fr");
        assert_eq!(encode_value("100%").to_str().unwrap(), "100%25");
        assert_eq!(encode_value("a\r\nb").to_str().unwrap(), "a%0D%0Ab");
    }

    fn identity() -> Identity {
        Identity::new("agentconnect", "abc")
            .with_acr("eidas1")
            .with_claim("given_name", "Jean-Édouard")
            .with_claim("usual_name", "Lœvenbruck")
            .with_claim("email", "j@x.fr")
            .with_claim("bad name", "x")
    }

    fn plan(headers: HeaderSettings) -> HeaderPlan {
        HeaderPlan {
            extra_strip: vec![],
            reserved: OWN_HEADERS
                .iter()
                .map(|n| n.to_string())
                .chain(["x-guichet-assertion".to_string()])
                .collect(),
            provider_claims: BTreeMap::new(),
            settings: headers,
        }
    }

    #[test]
    fn configured_names_are_stripped_in_every_spelling_and_mapped_per_provider() {
        let plan = HeaderPlan {
            extra_strip: vec!["x-forwarded-user".into(), "x-remote-mail".into()],
            reserved: OWN_HEADERS.iter().map(|n| n.to_string()).collect(),
            provider_claims: BTreeMap::from([(
                "agentconnect".to_string(),
                BTreeMap::from([("uid".to_string(), Some("x-agent-id".to_string()))]),
            )]),
            settings: HeaderSettings::default(),
        };
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in [
            ("X-Forwarded-User", "evil"),
            ("x_forwarded_user", "evil"),
            ("X_REMOTE_MAIL", "evil"),
            ("x-remote-mail", "evil"),
            ("X-Forwarded-For", "10.0.0.1"),
        ] {
            request.append_header(name, value).unwrap();
        }
        let mut request = request.as_owned_parts();
        plan.strip(&mut request.headers);
        let left: Vec<&str> = request.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-forwarded-for"]);

        let mut identity = identity();
        identity.claims.insert("uid".into(), "hdupre".into());
        let headers = plan.identity_headers(&identity, ForwardedTokens::default());
        assert!(headers
            .iter()
            .any(|(n, v)| n == "x-agent-id" && v == "hdupre"));
        identity.provider = "franceconnect".into();
        let headers = plan.identity_headers(&identity, ForwardedTokens::default());
        assert!(headers
            .iter()
            .any(|(n, v)| n == "x-guichet-uid" && v == "hdupre"));
    }

    fn pairs(headers: &[(HeaderName, HeaderValue)]) -> Vec<(String, Vec<u8>)> {
        headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn headers_cover_identity_and_every_claim() {
        let headers = plan(HeaderSettings::default())
            .identity_headers(&identity(), ForwardedTokens::default());
        let expected: Vec<(String, Vec<u8>)> = [
            ("x-guichet-sub", "abc"),
            ("x-guichet-provider", "agentconnect"),
            ("x-guichet-acr", "eidas1"),
            ("x-guichet-email", "j@x.fr"),
            ("x-guichet-given-name", "Jean-%C3%89douard"),
            ("x-guichet-usual-name", "L%C5%93venbruck"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
        assert_eq!(pairs(&headers), expected);
    }

    /// What a CGI-style server makes of a header name: upper case, `-` as `_`.
    fn cgi_fold(name: &str) -> String {
        name.to_ascii_uppercase().replace('-', "_")
    }

    proptest::proptest! {
        /// Whatever spelling a client uses, no header left after stripping folds (as PHP, CGI or
        /// Apache's environment do) into guichet's namespace or a configured identity name.
        #[test]
        fn no_stripped_name_survives_in_any_spelling(
            names in proptest::collection::vec(
                proptest::string::string_regex("(x|X)(-|_)(g|G)(u|U)(i|I)(c|C)(h|H)(e|E)(t|T)((-|_)[a-zA-Z_-]{0,8})?|(x|X)(-|_)(r|R)(e|E)(m|M)(o|O)(t|T)(e|E)(-|_)(u|U)(s|S)(e|E)(r|R)|[a-zA-Z][a-zA-Z_-]{0,12}").unwrap(),
                1..12,
            )
        ) {
            let plan = HeaderPlan {
                extra_strip: vec!["x-remote-user".into()],
                reserved: vec![],
                provider_claims: BTreeMap::new(),
                settings: HeaderSettings::default(),
            };
            let mut request = RequestHeader::build("GET", b"/", None).unwrap();
            for name in &names {
                request.append_header(name.clone(), "forged").unwrap();
            }
            let mut request = request.as_owned_parts();
            plan.strip(&mut request.headers);
            for name in request.headers.keys() {
                let folded = cgi_fold(name.as_str());
                proptest::prop_assert!(!folded.starts_with("X_GUICHET_") && folded != "X_GUICHET", "{name} survived");
                proptest::prop_assert_ne!(folded, "X_REMOTE_USER".to_string());
            }
        }
    }

    proptest::proptest! {
        /// Whatever a provider names its claims, a header of its own only for a name of at
        /// most MAX_CLAIM_NAME letters, digits, `_` and `-`; the header is the name, folded.
        #[test]
        fn only_short_plain_claim_names_become_headers(claim in "[a-zA-Z0-9_-]{0,80}|.{0,80}") {
            let plain = !claim.is_empty()
                && claim.len() <= MAX_CLAIM_NAME
                && claim.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            match claim_header_name(&claim) {
                Some(name) => {
                    proptest::prop_assert!(plain, "{claim:?} became {name}");
                    let expected = format!("x-guichet-{}", claim.to_ascii_lowercase().replace('_', "-"));
                    proptest::prop_assert_eq!(name.as_str(), expected.as_str());
                }
                None => proptest::prop_assert!(!plain, "{claim:?} refused"),
            }
        }
    }

    #[test]
    fn claims_never_take_guichet_names_nor_each_others() {
        let mut identity = identity();
        for (claim, value) in [
            ("percent_encoded", "x-guichet-sub"),
            ("assertion", "forged"),
            ("ACR", "eidas3"),
            ("Given_Name", "Mallory"),
            ("provider", "other"),
            ("access_token", "forged"),
            ("AMR", "forged"),
        ] {
            identity.claims.insert(claim.into(), Claim::from(value));
        }
        identity.claims.insert(
            "roles".into(),
            Claim::List(vec!["a,admin".into(), "b\\".into()]),
        );
        let settings = HeaderSettings {
            encoding: Encoding::Latin1,
            ..HeaderSettings::default()
        };
        let headers = plan(settings).identity_headers(&identity, ForwardedTokens::default());
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate header: {names:?}");
        let map: BTreeMap<String, Vec<u8>> = pairs(&headers).into_iter().collect();
        assert_eq!(map["x-guichet-acr"], b"eidas1");
        assert_eq!(map["x-guichet-provider"], b"agentconnect");
        assert!(!map.contains_key("x-guichet-assertion"));
        assert!(!map.contains_key("x-guichet-access-token"));
        assert!(
            !map.contains_key("x-guichet-amr"),
            "no amr: the name stays guichet's"
        );
        // given_name and Given_Name fold to one header: neither is sent.
        assert!(!map.contains_key("x-guichet-given-name"));
        // The fallback list is guichet's, never a claim's.
        assert_eq!(map[FALLBACK_HEADER], b"x-guichet-usual-name");
        assert_eq!(map["x-guichet-roles"], b"a\\,admin,b\\\\");
    }

    #[test]
    fn encodings_mappings_presets_and_tokens() {
        let settings = HeaderSettings {
            preset: HeaderPreset::Oauth2Proxy,
            encoding: Encoding::Latin1,
            claims: BTreeMap::from([
                ("email".to_string(), Some("x-remote-mail".to_string())),
                ("usual_name".to_string(), None),
            ]),
            encodings: BTreeMap::from([("x-guichet-sub".to_string(), Encoding::Base64Url)]),
            forward_access_token: true,
            forward_id_token: false,
        };
        let headers = plan(settings).identity_headers(
            &identity(),
            ForwardedTokens {
                access_token: Some("at-123"),
                id_token: Some("idt"),
            },
        );
        let map: BTreeMap<String, Vec<u8>> = pairs(&headers).into_iter().collect();
        assert_eq!(map["x-guichet-sub"], b"YWJj");
        // Latin-1: one byte per character.
        assert_eq!(map["x-guichet-given-name"], b"Jean-\xC9douard");
        assert_eq!(map["x-remote-mail"], b"j@x.fr");
        assert!(!map.contains_key("x-guichet-email"));
        assert!(!map.contains_key("x-guichet-usual-name"));
        assert_eq!(map["x-forwarded-user"], b"abc");
        assert_eq!(map["x-forwarded-email"], b"j@x.fr");
        assert_eq!(map["x-guichet-access-token"], b"at-123");
        assert!(!map.contains_key("x-guichet-id-token"));
    }

    #[test]
    fn latin1_and_utf8_fall_back_to_percent_and_flag_it() {
        assert_eq!(
            encode("Lœvenbruck", Encoding::Latin1),
            (HeaderValue::from_static("L%C5%93venbruck"), true)
        );
        assert_eq!(encode("é", Encoding::Latin1).0.as_bytes(), b"\xE9");
        assert_eq!(encode("é", Encoding::Utf8).0.as_bytes(), "é".as_bytes());
        assert_eq!(
            encode("a\nb", Encoding::Utf8),
            (HeaderValue::from_static("a%0Ab"), true)
        );
        let settings = HeaderSettings {
            encoding: Encoding::Latin1,
            ..HeaderSettings::default()
        };
        let headers = plan(settings).identity_headers(&identity(), ForwardedTokens::default());
        let map: BTreeMap<String, Vec<u8>> = pairs(&headers).into_iter().collect();
        assert_eq!(map[FALLBACK_HEADER], b"x-guichet-usual-name");
    }

    fn signer(lifetime: u64, algorithm: Algorithm) -> AssertionSigner {
        let pem = generate_key_pem(algorithm).unwrap();
        AssertionSigner::new(&AssertionSettings {
            header: "x-guichet-assertion".into(),
            keys: vec![("k.pem".into(), Secret::new(pem))],
            lifetime: std::time::Duration::from_secs(lifetime),
            issuer: "https://gw".into(),
            audience: "http://app".into(),
        })
        .unwrap()
    }

    #[test]
    fn assertions_verify_against_the_published_jwks() {
        for algorithm in [Algorithm::ES256, Algorithm::EdDSA] {
            let signer = signer(300, algorithm);
            let mut identity = identity();
            identity
                .claims
                .insert("roles".into(), Claim::List(vec!["a,admin".into()]));
            let base = assertion_claims(&identity);
            let now = unix_now();
            let (token, refresh_at) = signer.sign(&base, now).unwrap();
            assert_eq!(refresh_at, now + 200);
            let jwks: JwkSet = serde_json::from_slice(&signer.jwks()).unwrap();
            assert_eq!(jwks.keys.len(), 1);
            let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
            let mut validation = jsonwebtoken::Validation::new(algorithm);
            validation.set_audience(&["http://app"]);
            validation.set_issuer(&["https://gw"]);
            let claims: Value = jsonwebtoken::decode(token.to_str().unwrap(), &key, &validation)
                .unwrap()
                .claims;
            assert_eq!(claims["sub"], "abc");
            assert_eq!(claims["given_name"], "Jean-Édouard");
            assert_eq!(claims["provider"], "agentconnect");
            assert_eq!(claims["acr"], "eidas1");
            assert_eq!(claims["exp"], now + 300);
            assert_eq!(claims["roles"], serde_json::json!(["a,admin"]));
            let header = jsonwebtoken::decode_header(token.to_str().unwrap()).unwrap();
            assert_eq!(header.kid, jwks.keys[0].common.key_id);
        }
    }

    #[test]
    fn assertions_are_reused_until_two_thirds_of_their_life() {
        let signer = signer(300, Algorithm::ES256);
        let plan = crate::session::SessionPlan {
            signatures: false,
            headers: std::sync::Arc::new(HeaderPlan::default()),
            assertions: true,
            forward_access_token: false,
            providers: vec!["agentconnect".into()],
        };
        let session = plan
            .build(crate::session::SessionRecord {
                identity: identity(),
                id_token: String::new(),
                access_token: None,
                created_at_ms: unix_now() * 1000,
            })
            .unwrap();
        let t0 = 1_000_000;
        let first = signer.current(&session, t0).unwrap();
        assert_eq!(signer.current(&session, t0 + 199).unwrap(), first);
        let renewed = signer.current(&session, t0 + 200).unwrap();
        assert_ne!(renewed, first);
        assert_eq!(signer.current(&session, t0 + 250).unwrap(), renewed);
    }

    #[test]
    fn a_key_that_is_not_p256_or_ed25519_is_refused() {
        let result = AssertionSigner::new(&AssertionSettings {
            header: "x-guichet-assertion".into(),
            keys: vec![(
                "bad.pem".into(),
                Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            )],
            lifetime: std::time::Duration::from_secs(60),
            issuer: "i".into(),
            audience: "a".into(),
        });
        assert!(matches!(result, Err(AssertionError::UnsupportedKey { .. })));
    }

    #[test]
    fn hmac_covers_method_path_time_and_headers() {
        let signer = RequestSigner::new(&SignatureSettings {
            header: "x-guichet-signature".into(),
            key: Secret::new("k".repeat(32)),
        })
        .unwrap();
        let headers = vec![
            (
                HeaderName::from_static("x-guichet-sub"),
                HeaderValue::from_static("abc"),
            ),
            (
                HeaderName::from_static("x-guichet-acr"),
                HeaderValue::from_static("eidas1"),
            ),
        ];
        let block = RequestSigner::header_block(&headers);
        assert_eq!(block, b"x-guichet-acr:eidas1\nx-guichet-sub:abc\n");
        let value = signer.sign("GET", "/a?b=1", 1700000000, &block);
        // Independent computation of the documented canonical string.
        let mut mac = Hmac::<Sha256>::new_from_slice("k".repeat(32).as_bytes()).unwrap();
        mac.update(b"v1\nGET\n/a?b=1\n1700000000\nx-guichet-acr:eidas1\nx-guichet-sub:abc\n");
        let expected = format!(
            "t=1700000000, v1={}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(value.to_str().unwrap(), expected);
        assert_ne!(signer.sign("POST", "/a?b=1", 1700000000, &block), value);
        assert_ne!(signer.sign("GET", "/a?b=2", 1700000000, &block), value);
        assert_ne!(signer.sign("GET", "/a?b=1", 1700000001, &block), value);
    }

    #[test]
    fn every_request_starts_from_the_key_alone() {
        // The keyed state is copied per request: a request signed before does not leak into the
        // next one, whatever the number of digits of the time.
        let key = "a key of another length";
        let signer = RequestSigner::new(&SignatureSettings {
            header: "x-guichet-signature".into(),
            key: Secret::new(key),
        })
        .unwrap();
        let independent = |method: &str, path: &str, now: u64, block: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(format!("v1\n{method}\n{path}\n{now}\n").as_bytes());
            mac.update(block);
            let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
            format!("t={now}, v1={tag}")
        };
        let first = signer.sign("GET", "/", 0, b"x-guichet-sub:a\n");
        for (method, path, now, block) in [
            ("POST", "/x?y=z", u64::MAX, b"".as_slice()),
            ("GET", "/", 0, b"x-guichet-sub:a\n"),
            ("DELETE", "/d/\u{e9}", 9, b"x-guichet-sub:b\n"),
        ] {
            let value = signer.sign(method, path, now, block);
            assert_eq!(
                value.to_str().unwrap(),
                independent(method, path, now, block)
            );
        }
        assert_eq!(signer.sign("GET", "/", 0, b"x-guichet-sub:a\n"), first);
    }
}
