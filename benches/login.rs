//! What a sign-in costs guichet beyond the provider's round trips: decrypting FranceConnect+'s
//! encrypted id_token (JWE) with each kind of key, and signing the `private_key_jwt` client
//! assertion. Once per login, never per proxied request. Inputs are the node `jose` vectors of
//! the unit tests (`tests/fixtures/jwe-vectors.json`). And checking a provider's signature
//! (twice per login: the id_token and the signed userinfo), with the `ring` keys guichet uses
//! and, for comparison in the same run, the RustCrypto arithmetic the JOSE crates use by default.

use std::hint::black_box;
use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use guichet::config::Secret;
use guichet::jose::ClientKeys;
use guichet::signatures::ProviderJwk;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKey;

fn bench(c: &mut Criterion) {
    guichet::signatures::install();
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/jwe-vectors.json")).unwrap();
    let pem = |name: &str| {
        vec![(
            PathBuf::from(name),
            Secret::new(vectors[name].as_str().unwrap()),
        )]
    };
    let rsa = ClientKeys::new(&pem("rsa_pem"), &pem("rsa_pem")).unwrap();
    let ec = ClientKeys::new(&pem("ec_pem"), &pem("ec_pem")).unwrap();
    let token = |name: &str| vectors["tokens"][name].as_str().unwrap().to_string();

    let mut group = c.benchmark_group("jwe decrypt (once per login, FranceConnect+)");
    let rsa_oaep_256 = token("RSA-OAEP-256/A256GCM");
    group.bench_function("RSA-OAEP-256 + A256GCM (RSA 2048)", |b| {
        b.iter(|| rsa.decrypt(black_box(&rsa_oaep_256)).unwrap())
    });
    let ecdh_es = token("ECDH-ES/A256GCM");
    group.bench_function("ECDH-ES + A256GCM (P-256)", |b| {
        b.iter(|| ec.decrypt(black_box(&ecdh_es)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("client assertion (once per login, private_key_jwt)");
    group.bench_function("ES256", |b| {
        b.iter(|| {
            ec.client_assertion("client", "https://op.example/token", 1_700_000_000)
                .unwrap()
        })
    });
    group.bench_function("RS256 (RSA 2048)", |b| {
        b.iter(|| {
            rsa.client_assertion("client", "https://op.example/token", 1_700_000_000)
                .unwrap()
        })
    });
    group.finish();

    let mut group =
        c.benchmark_group("provider signature check (id_token and userinfo: twice per login)");
    let message = b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhZ2VudCJ9";
    for (name, alg, pem, jwk) in [
        (
            "ES256",
            jsonwebtoken::Algorithm::ES256,
            "ec_pem",
            ec_jwk(&vectors),
        ),
        (
            "RS256 (RSA 2048)",
            jsonwebtoken::Algorithm::RS256,
            "rsa_pem",
            rsa_jwk(&vectors),
        ),
    ] {
        let pem = vectors[pem].as_str().unwrap().as_bytes();
        let key = match alg {
            jsonwebtoken::Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
        }
        .unwrap();
        let signature = jsonwebtoken::crypto::sign(message, &key, alg).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let core_alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(serde_json::json!(format!("{alg:?}"))).unwrap();
        let ring_key: ProviderJwk = serde_json::from_value(jwk.clone()).unwrap();
        let core_key: CoreJsonWebKey = serde_json::from_value(jwk).unwrap();
        group.bench_function(format!("{name}, ring (guichet)"), |b| {
            b.iter(|| {
                ring_key
                    .verify_signature(&core_alg, black_box(message), &signature)
                    .unwrap()
            })
        });
        group.bench_function(format!("{name}, RustCrypto (the crates' default)"), |b| {
            b.iter(|| {
                core_key
                    .verify_signature(&core_alg, black_box(message), &signature)
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn ec_jwk(vectors: &serde_json::Value) -> serde_json::Value {
    use p256::pkcs8::DecodePrivateKey;
    let secret = p256::SecretKey::from_pkcs8_pem(vectors["ec_pem"].as_str().unwrap()).unwrap();
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    serde_json::json!({"kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())})
}

fn rsa_jwk(vectors: &serde_json::Value) -> serde_json::Value {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(vectors["rsa_pem"].as_str().unwrap()).unwrap();
    serde_json::json!({"kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())})
}

criterion_group!(benches, bench);
criterion_main!(benches);
