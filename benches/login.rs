//! What a sign-in costs guichet beyond the provider's round trips: decrypting FranceConnect+'s
//! encrypted id_token (JWE) with each kind of key, and signing the `private_key_jwt` client
//! assertion. Once per login, never per proxied request. Inputs are the node `jose` vectors of
//! the unit tests (`tests/fixtures/jwe-vectors.json`).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use guichet::config::Secret;
use guichet::jose::ClientKeys;

fn bench(c: &mut Criterion) {
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
