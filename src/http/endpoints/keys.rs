//! The machine-read endpoints: health, readiness, and the public key sets.

use bytes::Bytes;
use http::StatusCode;

use crate::gateway::Gateway;
use crate::http::pages::Reply;

/// `/.guichet/healthz`: 200 while the process serves.
pub fn healthz() -> Reply {
    Reply::text(StatusCode::OK, "ok\n")
}

/// `/.guichet/readyz`: 200 once every provider's metadata is loaded, else 503 naming them.
pub fn readyz(gateway: &Gateway) -> Reply {
    let waiting: Vec<&str> = gateway
        .providers()
        .iter()
        .filter(|p| !p.is_ready())
        .map(|p| p.id())
        .collect();
    if waiting.is_empty() {
        Reply::text(StatusCode::OK, "ready\n")
    } else {
        Reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("waiting for provider metadata: {}\n", waiting.join(", ")),
        )
    }
}

/// `/.guichet/jwks.json`: the assertion's public keys (an empty set without assertions).
pub fn jwks(gateway: &Gateway) -> Reply {
    jwk_set(
        gateway
            .forwarder()
            .assertion()
            .map_or_else(|| Bytes::from_static(b"{\"keys\":[]}"), |a| a.jwks()),
    )
}

/// `/.guichet/provider-jwks.json`: the providers' view of guichet, its encryption (`use: enc`)
/// and client-assertion (`use: sig`) keys.
pub fn provider_jwks(gateway: &Gateway) -> Reply {
    jwk_set(gateway.provider_jwks().clone())
}

/// A public JWK Set, cacheable for five minutes.
fn jwk_set(body: Bytes) -> Reply {
    Reply {
        status: StatusCode::OK,
        headers: vec![
            ("content-type", "application/jwk-set+json".into()),
            ("cache-control", "public, max-age=300".into()),
        ],
        copied: Vec::new(),
        body,
    }
}
