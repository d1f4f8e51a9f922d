//! guichet's own keys towards a provider, and what they are for:
//!
//! - **decrypting** the JWE a provider wraps around its signed id_token and userinfo
//!   (FranceConnect+ always does): compact serialisation (RFC 7516), key management
//!   `RSA-OAEP`, `RSA-OAEP-256` or `ECDH-ES` on P-256 (RFC 7518 §4.3, §4.6), content encryption
//!   `A256GCM` or `A128GCM` (RFC 7518 §5.3);
//! - **signing** the `private_key_jwt` client assertion (RFC 7523) at the token endpoint;
//! - **publishing** the public halves (`use: enc` / `use: sig`, `kid` = RFC 7638 thumbprint) at
//!   `/.guichet/provider-jwks.json`, for the federation to fetch.
//!
//! No maintained pure-Rust JOSE crate decrypts these algorithms without OpenSSL (josekit needs
//! OpenSSL, picky's JWE lacks ECDH-ES, jwt-simple lacks RSA-OAEP-256), so the cryptographic
//! primitives come from RustCrypto crates (`rsa` OAEP, `p256` ECDH, `aes-gcm`, `sha1`/`sha2`) and
//! this module only frames them: base64url parts, the header as additional authenticated data,
//! and the Concat KDF of ECDH-ES. Vectors made by an independent implementation (node `jose`) are
//! decrypted in the tests below, and the integration tests run against `oidc-provider`.
//!
//! guichet only decrypts what the provider's token and userinfo endpoints send it over TLS; an
//! error says which step failed and never which byte, so nothing here acts as a padding oracle.

use std::path::PathBuf;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Shortest RSA modulus accepted for a client key.
const MIN_RSA_BITS: usize = 2048;

/// Lifetime of a `private_key_jwt` client assertion.
const CLIENT_ASSERTION_LIFETIME: u64 = 60;

/// A key file guichet cannot use.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: not a PEM private key guichet can use (RSA of at least {MIN_RSA_BITS} bits, or EC P-256; PKCS#8, PKCS#1 or SEC1)")]
    Unsupported { path: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// Why an encrypted token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JweError {
    #[error("malformed JWE: {0}")]
    Malformed(&'static str),
    #[error("JWE algorithm {alg}/{enc} is not supported (RSA-OAEP, RSA-OAEP-256 or ECDH-ES with A256GCM or A128GCM)")]
    Unsupported { alg: String, enc: String },
    #[error("no configured encryption key fits this JWE (alg {alg}, kid {kid:?})")]
    NoKey { alg: String, kid: Option<String> },
    #[error("JWE decryption failed (wrong key or altered token)")]
    Decrypt,
}

/// Why a `private_key_jwt` client assertion could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientAssertionError {
    #[error("private_key_jwt needs a signing key")]
    NoKey,
    #[error("cannot sign the client assertion: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

enum Secret {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::SecretKey),
}

impl Secret {
    /// Reads an RSA or P-256 private key from PEM, in any of the usual encodings.
    fn from_pem(path: &str, pem: &str) -> Result<Self, KeyError> {
        if let Ok(key) =
            RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        {
            let bits = key.size() * 8;
            if bits < MIN_RSA_BITS {
                return Err(KeyError::Invalid {
                    path: path.into(),
                    reason: format!("RSA key of {bits} bits; at least {MIN_RSA_BITS} are needed"),
                });
            }
            return Ok(Secret::Rsa(Box::new(key)));
        }
        if let Ok(key) =
            p256::SecretKey::from_pkcs8_pem(pem).or_else(|_| p256::SecretKey::from_sec1_pem(pem))
        {
            return Ok(Secret::P256(key));
        }
        Err(KeyError::Unsupported { path: path.into() })
    }

    /// The public half as a JWK, with `kid` = its SHA-256 thumbprint.
    fn public_jwk(&self, key_use: PublicKeyUse, alg: Option<KeyAlgorithm>) -> Jwk {
        let algorithm = match self {
            Secret::Rsa(key) => AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            }),
            Secret::P256(key) => {
                let point = key.public_key().to_encoded_point(false);
                AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(point.x().map(|x| &x[..]).unwrap_or(&[])),
                    y: URL_SAFE_NO_PAD.encode(point.y().map(|y| &y[..]).unwrap_or(&[])),
                })
            }
        };
        let mut jwk = Jwk {
            common: CommonParameters::default(),
            algorithm,
        };
        // Thumbprints of RSA and P-256 keys are always computable.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap_or_default();
        jwk.common = CommonParameters {
            public_key_use: Some(key_use),
            key_algorithm: alg,
            key_id: Some(kid),
            ..CommonParameters::default()
        };
        jwk
    }
}

struct DecryptionKey {
    kid: String,
    secret: Secret,
}

struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
}

/// One provider's client keys: decryption keys (all tried, for rotation), signing keys (the
/// first signs, all are published), and the public JWKS.
pub struct ClientKeys {
    decryption: Vec<DecryptionKey>,
    signing: Vec<SigningKey>,
    published: Vec<Jwk>,
}

impl ClientKeys {
    /// Builds the keys from the PEM files named in a provider's `encryption_keys` and
    /// `signing_keys` (read by the configuration loader).
    pub fn new(
        encryption: &[(PathBuf, crate::config::Secret)],
        signing: &[(PathBuf, crate::config::Secret)],
    ) -> Result<Self, KeyError> {
        let mut keys = ClientKeys {
            decryption: Vec::new(),
            signing: Vec::new(),
            published: Vec::new(),
        };
        for (path, pem) in encryption {
            keys.add_decryption(&path.display().to_string(), pem.expose())?;
        }
        for (path, pem) in signing {
            keys.add_signing(&path.display().to_string(), pem.expose())?;
        }
        Ok(keys)
    }

    fn add_decryption(&mut self, path: &str, pem: &str) -> Result<(), KeyError> {
        let secret = Secret::from_pem(path, pem)?;
        let jwk = secret.public_jwk(PublicKeyUse::Encryption, None);
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        self.published.push(jwk);
        self.decryption.push(DecryptionKey { kid, secret });
        Ok(())
    }

    fn add_signing(&mut self, path: &str, pem: &str) -> Result<(), KeyError> {
        let secret = Secret::from_pem(path, pem)?;
        let (algorithm, key_algorithm, key) = match &secret {
            Secret::Rsa(_) => (
                Algorithm::RS256,
                KeyAlgorithm::RS256,
                EncodingKey::from_rsa_pem(pem.as_bytes()),
            ),
            Secret::P256(_) => (
                Algorithm::ES256,
                KeyAlgorithm::ES256,
                EncodingKey::from_ec_pem(pem.as_bytes()),
            ),
        };
        let key = key.map_err(|e| KeyError::Invalid {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let jwk = secret.public_jwk(PublicKeyUse::Signature, Some(key_algorithm));
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        self.published.push(jwk);
        self.signing.push(SigningKey {
            kid,
            algorithm,
            key,
        });
        Ok(())
    }

    pub fn can_decrypt(&self) -> bool {
        !self.decryption.is_empty()
    }

    pub fn can_sign(&self) -> bool {
        !self.signing.is_empty()
    }

    /// The JWE `alg` values the configured keys can decrypt.
    pub fn decryption_algorithms(&self) -> Vec<&'static str> {
        let mut algs = Vec::new();
        if self
            .decryption
            .iter()
            .any(|k| matches!(k.secret, Secret::Rsa(_)))
        {
            algs.extend(["RSA-OAEP", "RSA-OAEP-256"]);
        }
        if self
            .decryption
            .iter()
            .any(|k| matches!(k.secret, Secret::P256(_)))
        {
            algs.push("ECDH-ES");
        }
        algs
    }

    /// The JWS `alg` of the client assertion, if a signing key is configured.
    pub fn signing_algorithm(&self) -> Option<&'static str> {
        self.signing.first().map(|k| match k.algorithm {
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        })
    }

    /// The public keys, for `/.guichet/provider-jwks.json`.
    pub fn public_keys(&self) -> &[Jwk] {
        &self.published
    }

    /// A `private_key_jwt` client assertion for `token_endpoint` (RFC 7523 §3): `iss` = `sub` =
    /// the client id, `aud` = the token endpoint, a random `jti`, valid one minute.
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: u64,
    ) -> Result<String, ClientAssertionError> {
        let key = self.signing.first().ok_or(ClientAssertionError::NoKey)?;
        let mut header = jsonwebtoken::Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": crate::session::random_token(),
            "iat": now,
            "exp": now + CLIENT_ASSERTION_LIFETIME,
        });
        Ok(jsonwebtoken::encode(&header, &claims, &key.key)?)
    }

    /// Decrypts a compact JWE and returns its plaintext (for guichet's providers: a signed JWT).
    pub fn decrypt(&self, compact: &str) -> Result<Vec<u8>, JweError> {
        let parts: Vec<&str> = compact.trim().split('.').collect();
        let [header_b64, encrypted_key, iv, ciphertext, tag] = parts[..] else {
            return Err(JweError::Malformed("a compact JWE has five parts"));
        };
        let header: JweHeader = serde_json::from_slice(&b64(header_b64)?)
            .map_err(|_| JweError::Malformed("protected header is not the expected JSON"))?;
        if header.zip.is_some() {
            return Err(JweError::Unsupported {
                alg: header.alg,
                enc: format!("{} with zip", header.enc),
            });
        }
        let cek_len = match header.enc.as_str() {
            "A256GCM" => 32,
            "A128GCM" => 16,
            _ => {
                return Err(JweError::Unsupported {
                    alg: header.alg,
                    enc: header.enc,
                })
            }
        };
        let encrypted_key = b64(encrypted_key)?;
        let iv: [u8; 12] = b64(iv)?
            .try_into()
            .map_err(|_| JweError::Malformed("the GCM initialisation vector is not 96 bits"))?;
        let mut sealed = b64(ciphertext)?;
        let tag = b64(tag)?;
        if tag.len() != 16 {
            return Err(JweError::Malformed("the GCM tag is not 128 bits"));
        }
        sealed.extend_from_slice(&tag);

        let candidates: Vec<&DecryptionKey> = self
            .decryption
            .iter()
            .filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.kid))
            .filter(|k| {
                matches!(
                    (header.alg.as_str(), &k.secret),
                    ("RSA-OAEP" | "RSA-OAEP-256", Secret::Rsa(_)) | ("ECDH-ES", Secret::P256(_))
                )
            })
            .collect();
        if !matches!(header.alg.as_str(), "RSA-OAEP" | "RSA-OAEP-256" | "ECDH-ES") {
            return Err(JweError::Unsupported {
                alg: header.alg,
                enc: header.enc,
            });
        }
        if candidates.is_empty() {
            return Err(JweError::NoKey {
                alg: header.alg,
                kid: header.kid,
            });
        }
        candidates
            .into_iter()
            .filter_map(|key| content_key(&header, &key.secret, &encrypted_key, cek_len).ok())
            .find_map(|cek| open_gcm(&cek, cek_len, &iv, &sealed, header_b64.as_bytes()))
            .ok_or(JweError::Decrypt)
    }
}

/// Encrypts `plaintext` (a signed JWT) to a client's public key as a compact JWE, the way
/// FranceConnect+ does: `ECDH-ES` for a P-256 key, `RSA-OAEP-256` for an RSA key, `A256GCM`.
/// guichet itself only decrypts; the demo's FranceConnect+ mock provider encrypts with this.
pub fn encrypt_to(jwk: &Jwk, plaintext: &[u8]) -> Result<String, String> {
    use rand::RngCore;
    let mut rng = rand::rngs::OsRng;
    let decode = |field: &str| {
        URL_SAFE_NO_PAD
            .decode(field)
            .map_err(|_| "the JWK is not base64url".to_string())
    };
    let (mut header, cek, encrypted_key) = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            // SEC1 uncompressed point: 0x04, x, y; parsing checks it is on the curve.
            let mut sec1 = vec![4u8];
            sec1.extend(decode(&ec.x)?);
            sec1.extend(decode(&ec.y)?);
            let recipient = p256::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| "the JWK is not a P-256 public key".to_string())?;
            let ephemeral = p256::ecdh::EphemeralSecret::random(&mut rng);
            let shared = ephemeral.diffie_hellman(&recipient);
            let epk = ephemeral.public_key().to_encoded_point(false);
            let coordinate = |c: Option<&p256::FieldBytes>| {
                URL_SAFE_NO_PAD.encode(c.map(|c| &c[..]).unwrap_or(&[]))
            };
            let header = serde_json::json!({
                "alg": "ECDH-ES",
                "enc": "A256GCM",
                "epk": {"kty": "EC", "crv": "P-256", "x": coordinate(epk.x()), "y": coordinate(epk.y())},
            });
            let cek = concat_kdf(&shared.raw_secret_bytes()[..], "A256GCM", &[], &[], 32);
            (header, cek, Vec::new())
        }
        AlgorithmParameters::RSA(params) => {
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&decode(&params.n)?),
                rsa::BigUint::from_bytes_be(&decode(&params.e)?),
            )
            .map_err(|e| format!("the JWK is not an RSA public key: {e}"))?;
            let mut cek = vec![0u8; 32];
            rng.fill_bytes(&mut cek);
            let wrapped = key
                .encrypt(&mut rng, Oaep::new::<Sha256>(), &cek)
                .map_err(|e| format!("RSA-OAEP-256: {e}"))?;
            (
                serde_json::json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
                cek,
                wrapped,
            )
        }
        _ => return Err("only P-256 and RSA keys can receive a JWE".into()),
    };
    header["cty"] = "JWT".into();
    if let Some(kid) = &jwk.common.key_id {
        header["kid"] = kid.clone().into();
    }
    let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let sealed = Aes256Gcm::new_from_slice(&cek)
        .map_err(|_| "content key length".to_string())?
        .encrypt(
            &Nonce::from(iv),
            Payload {
                msg: plaintext,
                aad: header_b64.as_bytes(),
            },
        )
        .map_err(|_| "A256GCM encryption failed".to_string())?;
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    Ok([
        header_b64,
        URL_SAFE_NO_PAD.encode(encrypted_key),
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag),
    ]
    .join("."))
}

/// Whether a compact token is a JWE (five parts) rather than a JWS (three).
pub fn is_jwe(token: &str) -> bool {
    token.trim().split('.').count() == 5
}

#[derive(Deserialize)]
struct JweHeader {
    alg: String,
    enc: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    epk: Option<Value>,
    #[serde(default)]
    apu: Option<String>,
    #[serde(default)]
    apv: Option<String>,
    #[serde(default)]
    zip: Option<String>,
}

fn b64(part: &str) -> Result<Vec<u8>, JweError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JweError::Malformed("a part is not base64url"))
}

/// AES-GCM decryption with a content key of `cek_len` bytes; `None` when it does not open.
fn open_gcm(
    cek: &[u8],
    cek_len: usize,
    iv: &[u8; 12],
    sealed: &[u8],
    aad: &[u8],
) -> Option<Vec<u8>> {
    if cek.len() != cek_len {
        return None;
    }
    let payload = Payload { msg: sealed, aad };
    let nonce = &Nonce::from(*iv);
    match cek_len {
        32 => Aes256Gcm::new_from_slice(cek)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
        _ => Aes128Gcm::new_from_slice(cek)
            .ok()?
            .decrypt(nonce, payload)
            .ok(),
    }
}

/// The content encryption key: RSA-OAEP unwrapping, or ECDH-ES key agreement (direct).
fn content_key(
    header: &JweHeader,
    secret: &Secret,
    encrypted_key: &[u8],
    cek_len: usize,
) -> Result<Vec<u8>, JweError> {
    match (header.alg.as_str(), secret) {
        ("RSA-OAEP", Secret::Rsa(key)) => key
            .decrypt(Oaep::new::<sha1::Sha1>(), encrypted_key)
            .map_err(|_| JweError::Decrypt),
        ("RSA-OAEP-256", Secret::Rsa(key)) => key
            .decrypt(Oaep::new::<Sha256>(), encrypted_key)
            .map_err(|_| JweError::Decrypt),
        ("ECDH-ES", Secret::P256(key)) => {
            if !encrypted_key.is_empty() {
                return Err(JweError::Malformed("ECDH-ES carries no encrypted key"));
            }
            let epk = header
                .epk
                .as_ref()
                .ok_or(JweError::Malformed("ECDH-ES without epk"))?;
            // Parsing the JWK checks the point is on P-256 (no invalid-curve attack).
            let epk = p256::PublicKey::from_jwk_str(&epk.to_string())
                .map_err(|_| JweError::Malformed("epk is not a P-256 public key"))?;
            let shared = p256::ecdh::diffie_hellman(key.to_nonzero_scalar(), epk.as_affine());
            let apu = header
                .apu
                .as_deref()
                .map(b64)
                .transpose()?
                .unwrap_or_default();
            let apv = header
                .apv
                .as_deref()
                .map(b64)
                .transpose()?
                .unwrap_or_default();
            Ok(concat_kdf(
                &shared.raw_secret_bytes()[..],
                &header.enc,
                &apu,
                &apv,
                cek_len,
            ))
        }
        _ => Err(JweError::NoKey {
            alg: header.alg.clone(),
            kid: header.kid.clone(),
        }),
    }
}

/// The Concat KDF of NIST SP 800-56A as RFC 7518 §4.6.2 uses it for ECDH-ES in direct mode:
/// AlgorithmID = the `enc` value, PartyUInfo = `apu`, PartyVInfo = `apv`, SuppPubInfo = the key
/// length in bits, each length-prefixed (32-bit big-endian), hashed with SHA-256.
fn concat_kdf(shared: &[u8], enc: &str, apu: &[u8], apv: &[u8], key_len: usize) -> Vec<u8> {
    let mut other_info = Vec::new();
    for field in [enc.as_bytes(), apu, apv] {
        other_info.extend_from_slice(&(field.len() as u32).to_be_bytes());
        other_info.extend_from_slice(field);
    }
    other_info.extend_from_slice(&((key_len * 8) as u32).to_be_bytes());
    let mut key = Vec::with_capacity(key_len + 32);
    let mut counter: u32 = 1;
    while key.len() < key_len {
        let mut hash = Sha256::new();
        hash.update(counter.to_be_bytes());
        hash.update(shared);
        hash.update(&other_info);
        key.extend_from_slice(&hash.finalize());
        counter += 1;
    }
    key.truncate(key_len);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys and tokens made by node's `jose` (an independent implementation), see
    /// `tests/fixtures/jwe-vectors.mjs`.
    fn vectors() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/jwe-vectors.json")).unwrap()
    }

    fn keys(v: &Value) -> ClientKeys {
        let mut keys = ClientKeys {
            decryption: Vec::new(),
            signing: Vec::new(),
            published: Vec::new(),
        };
        keys.add_decryption("rsa.pem", v["rsa_pem"].as_str().unwrap())
            .unwrap();
        keys.add_decryption("ec.pem", v["ec_pem"].as_str().unwrap())
            .unwrap();
        keys
    }

    #[test]
    fn decrypts_what_node_jose_encrypted() {
        let v = vectors();
        let keys = keys(&v);
        let expected = v["plaintext"].as_str().unwrap();
        let tokens = v["tokens"].as_object().unwrap();
        for name in [
            "RSA-OAEP/A256GCM",
            "RSA-OAEP-256/A256GCM",
            "ECDH-ES/A256GCM",
            "ECDH-ES/A128GCM",
            "ECDH-ES/A256GCM with apu and apv",
            "RSA-OAEP-256/A256GCM without kid",
        ] {
            let token = tokens[name].as_str().unwrap();
            let plaintext = keys
                .decrypt(token)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(std::str::from_utf8(&plaintext).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn published_keys_carry_the_thumbprints_node_jose_computes() {
        let v = vectors();
        let keys = keys(&v);
        let kids: Vec<&str> = keys
            .public_keys()
            .iter()
            .map(|k| k.common.key_id.as_deref().unwrap())
            .collect();
        assert_eq!(
            kids,
            [
                v["rsa_thumbprint"].as_str().unwrap(),
                v["ec_thumbprint"].as_str().unwrap()
            ]
        );
        let jwks = serde_json::to_value(keys.public_keys()).unwrap();
        assert_eq!(jwks[0]["use"], "enc");
        assert!(jwks[0].get("d").is_none() && jwks[1].get("d").is_none());
        assert_eq!(
            keys.decryption_algorithms(),
            ["RSA-OAEP", "RSA-OAEP-256", "ECDH-ES"]
        );
    }

    #[test]
    fn altered_or_foreign_tokens_are_refused() {
        let v = vectors();
        let keys = keys(&v);
        let token = v["tokens"]["RSA-OAEP-256/A256GCM"].as_str().unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        // One flipped bit in the ciphertext: the GCM tag no longer matches.
        let mut ciphertext = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
        ciphertext[0] ^= 1;
        parts[3] = URL_SAFE_NO_PAD.encode(ciphertext);
        assert_eq!(keys.decrypt(&parts.join(".")), Err(JweError::Decrypt));
        // Another header (the additional authenticated data) with the same ciphertext.
        let ecdh = v["tokens"]["ECDH-ES/A256GCM"].as_str().unwrap();
        let mut parts: Vec<&str> = ecdh.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let mut changed = header.clone();
        changed["cty"] = "text".into();
        let changed = URL_SAFE_NO_PAD.encode(changed.to_string());
        parts[0] = &changed;
        assert_eq!(keys.decrypt(&parts.join(".")), Err(JweError::Decrypt));
        // A token for someone else's key.
        let foreign = v["tokens"]["foreign RSA-OAEP-256/A256GCM"]
            .as_str()
            .unwrap();
        assert_eq!(keys.decrypt(foreign), Err(JweError::Decrypt));
        // Shapes and algorithms guichet does not take.
        assert!(matches!(keys.decrypt("a.b.c"), Err(JweError::Malformed(_))));
        let dir = format!(
            "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256GCM"}"#)
        );
        assert!(matches!(
            keys.decrypt(&dir),
            Err(JweError::Unsupported { .. })
        ));
        let cbc = format!(
            "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP","enc":"A128CBC-HS256"}"#)
        );
        assert!(matches!(
            keys.decrypt(&cbc),
            Err(JweError::Unsupported { .. })
        ));
        let unknown_kid = format!(
            "{}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"other"}"#)
        );
        assert!(matches!(
            keys.decrypt(&unknown_kid),
            Err(JweError::NoKey { .. })
        ));
    }

    #[test]
    fn what_the_demo_encrypts_guichet_decrypts() {
        let v = vectors();
        let keys = keys(&v);
        for jwk in keys.public_keys() {
            let token = encrypt_to(jwk, b"header.payload.signature").unwrap();
            assert!(is_jwe(&token));
            assert_eq!(keys.decrypt(&token).unwrap(), b"header.payload.signature");
        }
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(
                    encrypt_to(&keys.public_keys()[1], b"x")
                        .unwrap()
                        .split('.')
                        .next()
                        .unwrap(),
                )
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ECDH-ES");
        assert_eq!(header["kid"], v["ec_thumbprint"]);
    }

    #[test]
    fn client_assertions_verify_with_the_published_key() {
        let v = vectors();
        for pem in ["ec_pem", "rsa_pem"] {
            let mut keys = ClientKeys {
                decryption: Vec::new(),
                signing: Vec::new(),
                published: Vec::new(),
            };
            keys.add_signing("sig.pem", v[pem].as_str().unwrap())
                .unwrap();
            let jwt = keys
                .client_assertion("my-client", "https://op.example/token", 1_700_000_000)
                .unwrap();
            let jwk = &keys.public_keys()[0];
            let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
            let header = jsonwebtoken::decode_header(&jwt).unwrap();
            assert_eq!(header.kid, jwk.common.key_id);
            let mut validation = jsonwebtoken::Validation::new(header.alg);
            validation.set_audience(&["https://op.example/token"]);
            validation.validate_exp = false;
            let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
                .unwrap()
                .claims;
            assert_eq!(claims["iss"], "my-client");
            assert_eq!(claims["sub"], "my-client");
            assert_eq!(claims["exp"], 1_700_000_060);
            assert!(claims["jti"].as_str().unwrap().len() >= 32);
        }
    }

    #[test]
    fn unusable_key_files_are_named() {
        let mut keys = ClientKeys {
            decryption: Vec::new(),
            signing: Vec::new(),
            published: Vec::new(),
        };
        let err = keys.add_decryption("/etc/k.pem", "not a key").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("/etc/k.pem: not a PEM private key"));
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let short = RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let short_pem = short.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let err = keys
            .add_decryption("/etc/short.pem", &short_pem)
            .unwrap_err();
        assert!(err.to_string().contains("at least 2048"), "{err}");
    }
}
