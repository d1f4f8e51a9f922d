//! Verify the identity guichet sends to your application (Rust, `jsonwebtoken` + `hmac`).
//!
//! Copy `verify_assertion` and `verify_signature` into your application. Run as an example:
//!
//! ```sh
//! cargo run --example verify -- --jwks-url https://app.example.gouv.fr/.guichet/jwks.json \
//!   --issuer https://app.example.gouv.fr --audience http://127.0.0.1:9000 \
//!   --hmac-key-env GUICHET_HMAC_KEY < request.json
//! ```
//!
//! request.json: `{"method": "GET", "path": "/path?query", "headers": {"x-guichet-sub": "…"}}`.
//! Exit 0 and `OK sub=…` when both proofs hold, exit 1 and `REJECTED: reason` otherwise.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::Sha256;

pub const ASSERTION_HEADER: &str = "x-guichet-assertion";
pub const SIGNATURE_HEADER: &str = "x-guichet-signature";

/// Checks the JWT's signature (key from the JWKS by kid), iss, aud, exp; returns its claims.
pub async fn verify_assertion(
    token: &str,
    jwks_url: &str,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
        return Err(format!("unexpected algorithm {:?}", header.alg));
    }
    let jwks: JwkSet = reqwest::get(jwks_url)
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown key id")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
    validation.leeway = 5;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// Checks `X-Guichet-Signature` over the method, path, time and `x-guichet-*` headers.
/// `headers` maps lower-case names to values as received.
pub fn verify_signature(
    method: &str,
    path: &str,
    headers: &BTreeMap<String, String>,
    key: &[u8],
    max_age: u64,
    now: u64,
) -> Result<(), String> {
    let value = headers.get(SIGNATURE_HEADER).ok_or("no signature header")?;
    let fields: BTreeMap<&str, &str> = value
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .collect();
    let timestamp: u64 = fields
        .get("t")
        .and_then(|t| t.parse().ok())
        .ok_or("no timestamp")?;
    if now.abs_diff(timestamp) > max_age {
        return Err("signature too old".into());
    }
    let mut canonical = format!("v1\n{method}\n{path}\n{timestamp}\n");
    // A BTreeMap iterates sorted by name.
    for (name, value) in headers {
        if name.starts_with("x-guichet-") && name != ASSERTION_HEADER && name != SIGNATURE_HEADER {
            canonical.push_str(&format!("{name}:{value}\n"));
        }
    }
    let given = URL_SAFE_NO_PAD
        .decode(fields.get("v1").copied().unwrap_or_default())
        .map_err(|_| "malformed signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(canonical.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&given)
        .map_err(|_| "signature mismatch".to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default()
    };
    let request: Value = serde_json::from_reader(std::io::stdin()).expect("request JSON on stdin");
    let headers: BTreeMap<String, String> = request["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let key = std::env::var(option("--hmac-key-env")).unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = async {
        let token = headers.get(ASSERTION_HEADER).map_or("", String::as_str);
        let claims = verify_assertion(
            token,
            &option("--jwks-url"),
            &option("--issuer"),
            &option("--audience"),
        )
        .await?;
        verify_signature(
            request["method"].as_str().unwrap_or_default(),
            request["path"].as_str().unwrap_or_default(),
            &headers,
            key.as_bytes(),
            option("--max-age").parse().unwrap_or(60),
            now,
        )?;
        if claims["sub"].as_str() != headers.get("x-guichet-sub").map(String::as_str) {
            return Err("sub differs between the assertion and the header".to_string());
        }
        Ok(claims)
    }
    .await;
    match result {
        Ok(claims) => println!("OK sub={}", claims["sub"].as_str().unwrap_or_default()),
        Err(reason) => {
            println!("REJECTED: {reason}");
            std::process::exit(1);
        }
    }
}
