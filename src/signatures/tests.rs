use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::crypto::{JwtSigner, JwtVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::json;

use super::*;

fn fixture(name: &str) -> String {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/jwe-vectors.json")).unwrap();
    vectors[name].as_str().unwrap().to_string()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The fixtures' P-256 and RSA-2048 keys: the signing key, the public JWK's members.
fn ec_key() -> (EncodingKey, serde_json::Value) {
    let pem = fixture("ec_pem");
    let secret = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())});
    (EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(), jwk)
}

fn rsa_key() -> (EncodingKey, serde_json::Value) {
    let pem = fixture("rsa_pem");
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let jwk = json!({"kty": "RSA", "n": b64(&private.n().to_bytes_be()), "e": b64(&private.e().to_bytes_be())});
    (EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), jwk)
}

fn decoding_key(jwk: &serde_json::Value) -> DecodingKey {
    DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap()
}

fn sign(signer: Box<dyn JwtSigner>, message: &[u8]) -> Vec<u8> {
    signer.try_sign(message).unwrap()
}

fn verifies(verifier: Box<dyn JwtVerifier>, message: &[u8], signature: &[u8]) -> bool {
    verifier.verify(message, &signature.to_vec()).is_ok()
}

#[test]
fn ring_and_rustcrypto_accept_each_others_signatures_and_refuse_altered_ones() {
    let (ec, ec_jwk) = ec_key();
    let (rsa, rsa_jwk) = rsa_key();
    let rust_crypto = fallback();
    let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9";
    let altered = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudSJ9";
    for (alg, key, jwk) in [
        (Algorithm::ES256, &ec, &ec_jwk),
        (Algorithm::RS256, &rsa, &rsa_jwk),
        (Algorithm::RS512, &rsa, &rsa_jwk),
        (Algorithm::PS256, &rsa, &rsa_jwk),
    ] {
        let public = decoding_key(jwk);
        let ours = sign(signer_factory(&alg, key).unwrap(), message);
        let theirs = sign((rust_crypto.signer_factory)(&alg, key).unwrap(), message);
        for signature in [&ours, &theirs] {
            assert!(
                verifies(verifier_factory(&alg, &public).unwrap(), message, signature),
                "{alg:?}: ring refused a good signature"
            );
            assert!(
                verifies(
                    (rust_crypto.verifier_factory)(&alg, &public).unwrap(),
                    message,
                    signature
                ),
                "{alg:?}: RustCrypto refused ring's signature"
            );
            assert!(
                !verifies(verifier_factory(&alg, &public).unwrap(), altered, signature),
                "{alg:?}: ring accepted an altered message"
            );
            let mut flipped = signature.clone();
            flipped[10] ^= 1;
            assert!(
                !verifies(verifier_factory(&alg, &public).unwrap(), message, &flipped),
                "{alg:?}: ring accepted an altered signature"
            );
        }
    }
    // A signature of one algorithm never passes as another's.
    let es = sign(signer_factory(&Algorithm::ES256, &ec).unwrap(), message);
    assert!(!verifies(
        verifier_factory(&Algorithm::RS256, &decoding_key(&rsa_jwk)).unwrap(),
        message,
        &es
    ));
    // Other algorithms are RustCrypto's: an HMAC round trip still works.
    let secret = EncodingKey::from_secret(b"a shared secret of some length..");
    let mac = sign(signer_factory(&Algorithm::HS256, &secret).unwrap(), message);
    assert!(verifies(
        verifier_factory(
            &Algorithm::HS256,
            &DecodingKey::from_secret(b"a shared secret of some length..")
        )
        .unwrap(),
        message,
        &mac
    ));
}

#[test]
fn the_installed_provider_signs_and_verifies_whole_jwts() {
    install();
    install(); // idempotent
    let (ec, ec_jwk) = ec_key();
    let claims = json!({"sub": "agent", "exp": 4_000_000_000u64});
    let token =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::ES256), &claims, &ec).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    let decoded =
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding_key(&ec_jwk), &validation)
            .unwrap();
    assert_eq!(decoded.claims["sub"], "agent");
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(
        &forged,
        &decoding_key(&ec_jwk),
        &validation
    )
    .is_err());
}

/// `ProviderJwk` must answer every case exactly as `CoreJsonWebKey` does: the good signature,
/// an altered one, a key for encryption, a key bound to another algorithm, a key of another type.
#[test]
fn the_provider_jwk_verifies_exactly_like_the_core_type() {
    let (ec, ec_jwk) = ec_key();
    let (rsa, rsa_jwk) = rsa_key();
    let message = b"header.payload";
    let es256 = sign(signer_factory(&Algorithm::ES256, &ec).unwrap(), message);
    let rs256 = sign(signer_factory(&Algorithm::RS256, &rsa).unwrap(), message);
    let ps256 = sign(signer_factory(&Algorithm::PS256, &rsa).unwrap(), message);
    let with = |base: &serde_json::Value, extra: serde_json::Value| {
        let mut jwk = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            jwk[k] = v.clone();
        }
        jwk
    };
    use CoreJwsSigningAlgorithm as A;
    let cases = [
        (with(&ec_jwk, json!({})), A::EcdsaP256Sha256, &es256, true),
        (
            with(&ec_jwk, json!({"use": "sig", "alg": "ES256", "kid": "k"})),
            A::EcdsaP256Sha256,
            &es256,
            true,
        ),
        (
            with(&ec_jwk, json!({"use": "enc"})),
            A::EcdsaP256Sha256,
            &es256,
            false,
        ),
        (
            with(&ec_jwk, json!({"alg": "ES384"})),
            A::EcdsaP256Sha256,
            &es256,
            false,
        ),
        (
            with(&ec_jwk, json!({})),
            A::RsaSsaPkcs1V15Sha256,
            &es256,
            false,
        ),
        (with(&ec_jwk, json!({})), A::EcdsaP256Sha256, &rs256, false),
        (
            with(&rsa_jwk, json!({})),
            A::RsaSsaPkcs1V15Sha256,
            &rs256,
            true,
        ),
        (
            with(&rsa_jwk, json!({"alg": "RS256", "use": "sig"})),
            A::RsaSsaPkcs1V15Sha256,
            &rs256,
            true,
        ),
        (with(&rsa_jwk, json!({})), A::RsaSsaPssSha256, &ps256, true),
        (
            with(&rsa_jwk, json!({"alg": "RS256"})),
            A::RsaSsaPssSha256,
            &ps256,
            false,
        ),
        (with(&rsa_jwk, json!({})), A::RsaSsaPssSha256, &rs256, false),
        (with(&rsa_jwk, json!({})), A::EcdsaP256Sha256, &es256, false),
        (
            with(&rsa_jwk, json!({"use": "enc"})),
            A::RsaSsaPkcs1V15Sha256,
            &rs256,
            false,
        ),
    ];
    for (jwk, alg, signature, expected) in cases {
        let ours: ProviderJwk = serde_json::from_value(jwk.clone()).unwrap();
        let core: CoreJsonWebKey = serde_json::from_value(jwk.clone()).unwrap();
        assert!(ours.public.is_some(), "{jwk}: ring does not take it");
        let mine = ours.verify_signature(&alg, message, signature).is_ok();
        let reference = core.verify_signature(&alg, message, signature).is_ok();
        assert_eq!(reference, expected, "{jwk} {alg:?}: the core type");
        assert_eq!(mine, expected, "{jwk} {alg:?}: ring");
        let mut flipped = signature.clone();
        flipped[5] ^= 0x40;
        assert!(ours.verify_signature(&alg, message, &flipped).is_err());
        assert_eq!(
            serde_json::to_value(&ours).unwrap(),
            serde_json::to_value(&core).unwrap()
        );
    }
    // Keys ring does not take (a symmetric one, P-384) are the core type's.
    let symmetric = ProviderJwk::new_symmetric(b"secret".to_vec());
    assert!(symmetric.public.is_none());
    let p384: ProviderJwk = serde_json::from_value(json!({"kty": "EC", "crv": "P-384",
        "x": b64(&[1; 48]), "y": b64(&[2; 48])}))
    .unwrap();
    assert!(p384.public.is_none());
}

/// The keys guichet makes (`guichet keygen`; the demo provider's are made the same way, p256's
/// PKCS#8) and the fixtures are ones
/// `ring` takes: otherwise signing would silently fall back to RustCrypto.
#[test]
fn the_keys_guichet_makes_are_taken_by_ring() {
    let pem = crate::assertion::generate_key_pem(Algorithm::ES256).unwrap();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let (fixture_ec, _) = ec_key();
    let (fixture_rsa, _) = rsa_key();
    for key in [&key, &fixture_ec] {
        assert!(ring_sig::EcdsaKeyPair::from_pkcs8(
            &ring_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            key.as_bytes(),
            &SystemRandom::new()
        )
        .is_ok());
    }
    assert!(ring_sig::RsaKeyPair::from_der(fixture_rsa.as_bytes()).is_ok());
}

/// A key is parsed once per algorithm: the next signers share the pair, their signatures still
/// verify, and a key of the same family but other bytes is not taken for it.
#[test]
fn a_signing_key_is_parsed_once_and_shared() {
    let (ec, ec_jwk) = ec_key();
    let (rsa, rsa_jwk) = rsa_key();
    let other_pem = crate::assertion::generate_key_pem(Algorithm::ES256).unwrap();
    let other = EncodingKey::from_ec_pem(other_pem.as_bytes()).unwrap();
    let message = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9";
    let entries = |alg: Algorithm, key: &EncodingKey| {
        let fingerprint: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
        PARSED
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, f, _)| *a == alg && *f == fingerprint)
            .count()
    };
    for (alg, key, jwk) in [
        (Algorithm::ES256, &ec, &ec_jwk),
        (Algorithm::RS256, &rsa, &rsa_jwk),
        (Algorithm::PS256, &rsa, &rsa_jwk),
    ] {
        for _ in 0..3 {
            let signature = sign(signer_factory(&alg, key).unwrap(), message);
            assert!(verifies(
                verifier_factory(&alg, &decoding_key(jwk)).unwrap(),
                message,
                &signature
            ));
        }
        assert_eq!(entries(alg, key), 1, "{alg:?}");
    }
    // The other P-256 key signs with its own pair: the fixture's public key refuses it.
    let signature = sign(signer_factory(&Algorithm::ES256, &other).unwrap(), message);
    assert!(!verifies(
        verifier_factory(&Algorithm::ES256, &decoding_key(&ec_jwk)).unwrap(),
        message,
        &signature
    ));
    assert_eq!(entries(Algorithm::ES256, &other), 1);
    // Algorithms ring does not sign for are not kept.
    let secret = EncodingKey::from_secret(b"a shared secret of some length..");
    sign(signer_factory(&Algorithm::HS256, &secret).unwrap(), message);
    assert_eq!(entries(Algorithm::HS256, &secret), 0);
}
