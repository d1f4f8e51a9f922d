//! ES256, RS256 and PS256 signatures through `ring`, the library TLS already links, instead of
//! the pure-Rust RustCrypto arithmetic both JOSE crates use by default.
//!
//! A login checks two provider signatures (id_token, signed userinfo) and every session's
//! assertion is signed anew every two thirds of its lifetime: with RustCrypto's constant-time
//! P-256 arithmetic these were more than half of a login's CPU time (`benches/login.rs`,
//! `benches/load.sh`'s logins row). `ring` does the same checks with assembly field arithmetic.
//!
//! Two seams, both the crates' own extension points:
//! - `jsonwebtoken`: a process-wide [`CryptoProvider`] ([`install`]) whose factories use `ring`
//!   for ES256, RS256/384/512 and PS256/384/512, and RustCrypto for every other algorithm (HS*,
//!   ES384, EdDSA) and for key utilities.
//! - `openidconnect`: [`ProviderJwk`], a JSON Web Key that is `CoreJsonWebKey` in every respect
//!   (parsing, key selection, compatibility rules, `at_hash`) but verifies those algorithms with
//!   `ring`.
//!
//! `ring` refuses RSA keys under 2048 bits, which the federations never use.

use std::sync::{Arc, Mutex, OnceLock};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm,
    SignatureVerificationError,
};
use ring::rand::SystemRandom;
use ring::signature as ring_sig;
use sha2::Digest;

/// Installs the `ring`-backed provider for `jsonwebtoken` in this process. Idempotent; must run
/// before the first JWT is signed or verified (every entry point calls it: the gateway, the demo
/// provider, `keygen`).
pub fn install() {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        signer_factory,
        verifier_factory,
        key_utils: jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER
            .key_utils
            .clone(),
    });
    // Err: already installed (by an earlier call, the only installer in the process).
    let _ = provider.install_default();
}

fn fallback() -> &'static CryptoProvider {
    &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER
}

/// The RSA schemes `ring` takes over: how it signs (padding) and how it verifies (parameters,
/// keys of 2048 to 8192 bits).
fn rsa_scheme(
    alg: Algorithm,
) -> Option<(
    &'static dyn ring_sig::RsaEncoding,
    &'static ring_sig::RsaParameters,
)> {
    Some(match alg {
        Algorithm::RS256 => (
            &ring_sig::RSA_PKCS1_SHA256,
            &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        ),
        Algorithm::RS384 => (
            &ring_sig::RSA_PKCS1_SHA384,
            &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        ),
        Algorithm::RS512 => (
            &ring_sig::RSA_PKCS1_SHA512,
            &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        ),
        Algorithm::PS256 => (
            &ring_sig::RSA_PSS_SHA256,
            &ring_sig::RSA_PSS_2048_8192_SHA256,
        ),
        Algorithm::PS384 => (
            &ring_sig::RSA_PSS_SHA384,
            &ring_sig::RSA_PSS_2048_8192_SHA384,
        ),
        Algorithm::PS512 => (
            &ring_sig::RSA_PSS_SHA512,
            &ring_sig::RSA_PSS_2048_8192_SHA512,
        ),
        _ => return None,
    })
}

/// Key pairs `ring` has parsed, by algorithm and SHA-256 of the key's DER. Parsing checks the
/// key — a P-256 pair computes its public point (a scalar multiplication, as much as the
/// signature itself), an RSA pair checks its primes (more than a signature) — and
/// `jsonwebtoken` asks for a signer on every token it signs. Only keys from the configuration
/// sign (assertion keys, client keys, the demo provider's), so a handful are kept; past
/// [`CACHED_KEYS`] a signer is parsed for each token as before.
static PARSED: Mutex<Vec<(Algorithm, [u8; 32], RingKey)>> = Mutex::new(Vec::new());

/// How many parsed signing keys [`PARSED`] keeps.
const CACHED_KEYS: usize = 32;

/// A key pair `ring` parsed, shared by the signers made from it.
#[derive(Clone)]
enum RingKey {
    Ecdsa(Arc<ring_sig::EcdsaKeyPair>),
    Rsa(Arc<ring_sig::RsaKeyPair>),
}

impl RingKey {
    /// Parses `key` for `alg`; `None` when `ring` does not take this algorithm or this key.
    fn parse(alg: Algorithm, key: &EncodingKey) -> Option<Self> {
        match (alg, key.family()) {
            (Algorithm::ES256, AlgorithmFamily::Ec) => ring_sig::EcdsaKeyPair::from_pkcs8(
                &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &SystemRandom::new(),
            )
            .ok()
            .map(|pair| RingKey::Ecdsa(Arc::new(pair))),
            (_, AlgorithmFamily::Rsa) if rsa_scheme(alg).is_some() => {
                ring_sig::RsaKeyPair::from_der(key.as_bytes())
                    .ok()
                    .map(|pair| RingKey::Rsa(Arc::new(pair)))
            }
            _ => None,
        }
    }

    /// The parsed pair for `key`: from [`PARSED`], or parsed now (and kept if there is room).
    fn of(alg: Algorithm, key: &EncodingKey) -> Option<Self> {
        let fingerprint: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
        let cached = |parsed: &[(Algorithm, [u8; 32], RingKey)]| {
            parsed
                .iter()
                .find(|(a, f, _)| *a == alg && *f == fingerprint)
                .map(|(_, _, pair)| pair.clone())
        };
        // A poisoned lock only means a panic elsewhere while it was held: the list is intact.
        if let Some(pair) = cached(&PARSED.lock().unwrap_or_else(|e| e.into_inner())) {
            return Some(pair);
        }
        let pair = Self::parse(alg, key)?;
        let mut parsed = PARSED.lock().unwrap_or_else(|e| e.into_inner());
        if parsed.len() < CACHED_KEYS && cached(&parsed).is_none() {
            parsed.push((alg, fingerprint, pair.clone()));
        }
        Some(pair)
    }

    fn signer(self, alg: Algorithm) -> Option<Box<dyn JwtSigner>> {
        Some(match self {
            RingKey::Ecdsa(pair) => Box::new(EcdsaSigner(pair)),
            RingKey::Rsa(pair) => Box::new(RsaSigner {
                pair,
                padding: rsa_scheme(alg)?.0,
                alg,
            }),
        })
    }
}

fn signer_factory(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    // A key `ring` does not take (e.g. a PKCS#8 EC key without its public part) is still
    // RustCrypto's to sign with, or to refuse.
    match RingKey::of(*alg, key).and_then(|pair| pair.signer(*alg)) {
        Some(signer) => Ok(signer),
        None => (fallback().signer_factory)(alg, key),
    }
}

fn verifier_factory(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let public = match (alg, key.family(), key.kind()) {
        (Algorithm::ES256, AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            Some(Public::P256(point.clone()))
        }
        (_, AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e })
            if rsa_scheme(*alg).is_some() =>
        {
            Some(Public::Rsa {
                n: n.clone(),
                e: e.clone(),
            })
        }
        (_, AlgorithmFamily::Rsa, DecodingKeyKind::SecretOrDer(der))
            if rsa_scheme(*alg).is_some() =>
        {
            Some(Public::RsaDer(der.clone()))
        }
        _ => None,
    };
    match public {
        Some(public) => Ok(Box::new(RingVerifier { alg: *alg, public })),
        None => (fallback().verifier_factory)(alg, key),
    }
}

struct EcdsaSigner(Arc<ring_sig::EcdsaKeyPair>);

impl Signer<Vec<u8>> for EcdsaSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let signature = self
            .0
            .sign(&SystemRandom::new(), message)
            .map_err(|_| signature::Error::new())?;
        Ok(signature.as_ref().to_vec())
    }
}

impl JwtSigner for EcdsaSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct RsaSigner {
    pair: Arc<ring_sig::RsaKeyPair>,
    padding: &'static dyn ring_sig::RsaEncoding,
    alg: Algorithm,
}

impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(self.padding, &SystemRandom::new(), message, &mut signature)
            .map_err(|_| signature::Error::new())?;
        Ok(signature)
    }
}

impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// A public key in the form `ring` checks signatures with.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Public {
    /// An uncompressed P-256 point (`04 ‖ x ‖ y`).
    P256(Vec<u8>),
    /// RSA modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An RSAPublicKey (PKCS#1) in DER.
    RsaDer(Vec<u8>),
}

impl Public {
    fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match (self, alg) {
            (Public::P256(point), Algorithm::ES256) => {
                ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (Public::Rsa { n, e }, alg) => rsa_scheme(alg).is_some_and(|(_, parameters)| {
                ring_sig::RsaPublicKeyComponents { n, e }
                    .verify(parameters, message, signature)
                    .is_ok()
            }),
            (Public::RsaDer(der), alg) => rsa_scheme(alg).is_some_and(|(_, parameters)| {
                ring_sig::UnparsedPublicKey::new(parameters, der)
                    .verify(message, signature)
                    .is_ok()
            }),
            _ => false,
        }
    }
}

struct RingVerifier {
    alg: Algorithm,
    public: Public,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        if self.public.verify(self.alg, message, signature) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

// === openidconnect ===

/// A provider's JSON Web Key: `CoreJsonWebKey` (parsed, serialized, selected and checked for
/// compatibility exactly as it), with ES256, RS256/384/512 and PS256/384/512 signatures verified
/// by `ring`.
#[derive(Clone, Debug)]
pub struct ProviderJwk {
    core: CoreJsonWebKey,
    /// The key in `ring`'s form, when it is an RSA or P-256 public key.
    public: Option<Arc<Public>>,
}

impl From<CoreJsonWebKey> for ProviderJwk {
    fn from(core: CoreJsonWebKey) -> Self {
        let public = public_of(&core).map(Arc::new);
        ProviderJwk { core, public }
    }
}

/// The public key of a JWK, read from its JSON form (the core type's fields are private).
fn public_of(core: &CoreJsonWebKey) -> Option<Public> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let json = serde_json::to_value(core).ok()?;
    let field = |name: &str| {
        json.get(name)
            .and_then(serde_json::Value::as_str)
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
    };
    match core.key_type() {
        CoreJsonWebKeyType::EllipticCurve => {
            if json.get("crv").and_then(serde_json::Value::as_str) != Some("P-256") {
                return None;
            }
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Some(Public::P256(point))
        }
        CoreJsonWebKeyType::RSA => Some(Public::Rsa {
            n: field("n")?,
            e: field("e")?,
        }),
        _ => None,
    }
}

fn ring_algorithm(alg: &CoreJwsSigningAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        CoreJwsSigningAlgorithm::EcdsaP256Sha256 => Algorithm::ES256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => Algorithm::RS256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => Algorithm::RS384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => Algorithm::RS512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256 => Algorithm::PS256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384 => Algorithm::PS384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512 => Algorithm::PS512,
        _ => return None,
    })
}

impl serde::Serialize for ProviderJwk {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ProviderJwk {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CoreJsonWebKey::deserialize(deserializer).map(ProviderJwk::from)
    }
}

impl JsonWebKey for ProviderJwk {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        ProviderJwk {
            core: CoreJsonWebKey::new_symmetric(key),
            public: None,
        }
    }

    fn verify_signature(
        &self,
        signature_alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        let (Some(public), Some(alg)) = (&self.public, ring_algorithm(signature_alg)) else {
            return self
                .core
                .verify_signature(signature_alg, message, signature);
        };
        // The core type's own compatibility rules, then the signature.
        if self.key_use().is_some_and(|use_| !use_.allows_signature()) {
            return Err(SignatureVerificationError::InvalidKey(
                "key usage not permitted for digital signatures".into(),
            ));
        }
        if signature_alg.key_type().as_ref() != Some(self.key_type()) {
            return Err(SignatureVerificationError::InvalidKey(
                "key type does not match signature algorithm".into(),
            ));
        }
        match self.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => {}
            JsonWebKeyAlgorithm::Algorithm(key_alg) if key_alg == signature_alg => {}
            JsonWebKeyAlgorithm::Algorithm(_) => {
                return Err(SignatureVerificationError::InvalidKey(
                    "incompatible key algorithm".into(),
                ))
            }
            JsonWebKeyAlgorithm::Unsupported => {
                return Err(SignatureVerificationError::InvalidKey(
                    "key algorithm is not a signing algorithm".into(),
                ))
            }
        }
        if public.verify(alg, message, signature) {
            Ok(())
        } else {
            Err(SignatureVerificationError::CryptoError(
                "bad signature".into(),
            ))
        }
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

#[cfg(test)]
mod tests;
