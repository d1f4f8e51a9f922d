//! OpenID Connect, through the `openidconnect` crate: discovery, the JWKS and its refresh, the
//! authorize URL (state, nonce, PKCE, acr_values), the callback (code exchange, id_token and
//! userinfo verification, JSON or signed JWT) and the logout URL.
//!
//! A [`Provider`] is shared by all requests. Its discovered metadata sits behind a lock that is
//! only written by discovery and JWKS refreshes; a login reads an `Arc` of it. Every HTTP call to
//! the provider is bounded by the provider's `http_timeout`. Nothing here touches HTTP responses
//! to the visitor: [`OidcError::status`] says which status an error deserves, `endpoints` renders it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::StatusCode;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    reqwest, AccessToken, AdditionalClaims, AuthType, AuthenticationContextClass,
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields, IdToken, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::config::{
    acr_satisfies, AcrRequest, ProviderKind, ProviderSettings, Spelled, TokenAuthMethod,
    UserinfoFormat,
};
use crate::identity::Identity;
use crate::jose::{self, ClientKeys};
use crate::login_state::LoginState;
use crate::metrics::Metrics;
use crate::session::random_token;
use crate::signatures::ProviderJwk;

mod callback;
mod login;
mod metadata;
mod transport;
mod userinfo;

/// Clock skew accepted on `exp` and `iat`.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A JWKS refresh triggered by an unknown `kid` happens at most this often.
const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Claims beyond the OIDC standard ones (`usual_name`, `uid`, `siret`, `idp_id`, …), kept as JSON.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: serde_json::Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

type ProviderIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The token response's `id_token`, kept as text: it may be a JWE (FranceConnect+) that guichet
/// decrypts before `openidconnect` parses and verifies the JWS inside.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RawIdToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for RawIdToken {}

type ProviderTokenResponse = StandardTokenResponse<RawIdToken, CoreTokenType>;

impl
    TokenResponse<
        ExtraClaims,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    > for ProviderTokenResponse
{
    /// Never used: [`Provider::finish_login`] decrypts and parses `extra_fields().id_token`.
    fn id_token(&self) -> Option<&ProviderIdToken> {
        None
    }
}

type ProviderClient = openidconnect::Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    ProviderJwk,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    ProviderTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Provider metadata with RP-initiated logout, its keys checked with `ring` ([`ProviderJwk`]).
type Metadata = openidconnect::ProviderMetadata<
    openidconnect::LogoutProviderMetadata<openidconnect::EmptyAdditionalProviderMetadata>,
    CoreAuthDisplay,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreClaimName,
    openidconnect::core::CoreClaimType,
    openidconnect::core::CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    ProviderJwk,
    openidconnect::core::CoreResponseMode,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

// === errors ===

/// What can go wrong talking to a provider or checking what it sent.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("provider metadata is not loaded yet")]
    NotReady,
    #[error("provider unreachable during {step}: {reason}")]
    Unreachable { step: &'static str, reason: String },
    #[error("provider did not answer within the time limit during {step}")]
    Timeout { step: &'static str },
    #[error("provider answered {step} with something unexpected: {reason}")]
    BadResponse { step: &'static str, reason: String },
    #[error("provider refused the authorization code: {0}")]
    CodeRejected(String),
    #[error("id_token rejected: {0}")]
    IdTokenInvalid(String),
    #[error("userinfo rejected: {0}")]
    UserInfoInvalid(String),
    #[error("provider configuration cannot be used: {0}")]
    Configuration(String),
    #[error("authentication level {returned:?} is below the required {required:?}")]
    AcrTooLow {
        returned: Option<String>,
        required: Vec<String>,
    },
    #[error("mandatory claims missing: {0:?}")]
    MissingClaims(Vec<String>),
}

impl OidcError {
    /// The HTTP status a visitor meeting this error gets.
    pub fn status(&self) -> StatusCode {
        match self {
            OidcError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            OidcError::Unreachable { .. } | OidcError::BadResponse { .. } => {
                StatusCode::BAD_GATEWAY
            }
            OidcError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            OidcError::CodeRejected(_)
            | OidcError::IdTokenInvalid(_)
            | OidcError::UserInfoInvalid(_) => StatusCode::UNAUTHORIZED,
            OidcError::Configuration(_) => StatusCode::INTERNAL_SERVER_ERROR,
            OidcError::AcrTooLow { .. } | OidcError::MissingClaims(_) => StatusCode::FORBIDDEN,
        }
    }

    /// A bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::NotReady => "provider_not_ready",
            OidcError::Unreachable { .. } | OidcError::Timeout { .. } => "provider_unreachable",
            OidcError::BadResponse { .. } => "provider_bad_response",
            OidcError::CodeRejected(_) => "code_rejected",
            OidcError::IdTokenInvalid(_) | OidcError::UserInfoInvalid(_) => "token_invalid",
            OidcError::Configuration(_) => "configuration",
            OidcError::AcrTooLow { .. } => "acr_too_low",
            OidcError::MissingClaims(_) => "missing_claims",
        }
    }
}

/// Turns a transport error into `Timeout` or `Unreachable`.
fn transport_error(step: &'static str, error: &reqwest::Error) -> OidcError {
    if error.is_timeout() {
        OidcError::Timeout { step }
    } else {
        OidcError::Unreachable {
            step,
            reason: error_chain(error),
        }
    }
}

/// A call to a provider that gave no answer guichet reads: transport trouble, or too long.
fn provider_http_error(step: &'static str, error: &transport::ProviderHttpError) -> OidcError {
    match error {
        transport::ProviderHttpError::Transport(inner) => transport_error(step, inner),
        other => OidcError::BadResponse {
            step,
            reason: other.to_string(),
        },
    }
}

/// A failed discovery or JWKS fetch: transport trouble, or a document guichet cannot use.
fn document_error(
    step: &'static str,
    error: &openidconnect::DiscoveryError<transport::ProviderHttpError>,
) -> OidcError {
    match error {
        openidconnect::DiscoveryError::Request(inner) => provider_http_error(step, inner),
        _ => OidcError::BadResponse {
            step,
            reason: error_chain(error),
        },
    }
}

/// An error and its sources, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// === Provider ===

/// A successful login: who, and the raw id_token for the logout hint.
pub struct LoginOutcome {
    pub identity: Identity,
    pub id_token: String,
    /// Forwarded to the application only when configured.
    pub access_token: String,
}

impl std::fmt::Debug for LoginOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOutcome")
            .field("identity", &self.identity)
            .field("id_token", &"REDACTED")
            .field("access_token", &"REDACTED")
            .finish()
    }
}

/// One configured OpenID provider.
pub struct Provider {
    pub settings: ProviderSettings,
    /// guichet's decryption and client-assertion keys towards this provider.
    pub keys: ClientKeys,
    redirect_uri: RedirectUrl,
    http: reqwest::Client,
    metadata: RwLock<Option<Arc<Metadata>>>,
    jwks_refreshed_at: Mutex<Option<Instant>>,
    metrics: Arc<Metrics>,
}

impl Provider {
    pub fn new(
        settings: ProviderSettings,
        redirect_uri: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, OidcError> {
        let redirect_uri = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| OidcError::Configuration(format!("redirect_uri: {e}")))?;
        let http = reqwest::Client::builder()
            // Following redirects would open the client to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("guichet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcError::Configuration(error_chain(&e)))?;
        let keys = ClientKeys::new(&settings.encryption_keys, &settings.signing_keys)
            .map_err(|e| OidcError::Configuration(format!("provider {}: {e}", settings.id)))?;
        Ok(Provider {
            keys,
            settings,
            redirect_uri,
            http,
            metadata: RwLock::new(None),
            jwks_refreshed_at: Mutex::new(None),
            metrics,
        })
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// Whether discovery has succeeded at least once.
    pub fn is_ready(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<Metadata>> {
        self.metadata
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn store(&self, metadata: Metadata) {
        *self
            .metadata
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(metadata));
    }

    fn record(&self, endpoint: &str, ok: bool, started: Instant) {
        self.metrics.provider_request(
            &self.settings.id,
            endpoint,
            ok,
            started.elapsed().as_secs_f64(),
        );
    }

    fn record_refresh(&self, document: &str, ok: bool) {
        self.metrics
            .provider_refreshes
            .with_label_values(&[
                self.settings.id.as_str(),
                document,
                if ok { "ok" } else { "error" },
            ])
            .inc();
    }

    fn client(&self, metadata: &Metadata) -> ProviderClient {
        let secret = match self.settings.token_auth_method {
            // The client assertion replaces the secret (it is still used for HS256, if set).
            TokenAuthMethod::PrivateKeyJwt => None,
            _ => self.settings.client_secret.as_ref(),
        };
        let client = ProviderClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            secret.map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(self.redirect_uri.clone());
        match self.settings.token_auth_method {
            TokenAuthMethod::ClientSecretPost | TokenAuthMethod::PrivateKeyJwt => {
                client.set_auth_type(AuthType::RequestBody)
            }
            TokenAuthMethod::ClientSecretBasic => client.set_auth_type(AuthType::BasicAuth),
        }
    }
}

/// Keeps a provider's metadata loaded: retries discovery with back-off (1 s doubling to 60 s)
/// until it succeeds, then refreshes it every hour (a failed refresh keeps the old metadata).
pub async fn keep_discovered(provider: Arc<Provider>) {
    let started = tokio::time::Instant::now();
    let mut delay = FIRST_RETRY;
    loop {
        match provider.discover().await {
            Ok(()) => {
                tracing::info!(provider = %provider.id(), "provider metadata loaded");
                delay = FIRST_RETRY;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Err(e) => {
                if started.elapsed() < START_UP_GRACE {
                    tracing::debug!(
                        provider = %provider.id(),
                        error = %e,
                        retry_in_ms = delay.as_millis(),
                        "provider not reachable yet (start-up); retrying"
                    );
                } else {
                    tracing::warn!(
                        provider = %provider.id(),
                        error = %e,
                        retry_in_s = delay.as_secs_f32(),
                        "provider discovery failed; logins through it answer 503 until it succeeds"
                    );
                }
                tokio::time::sleep(delay).await;
                delay = next_retry(delay);
            }
        }
    }
}

/// The first retry of a failed discovery; each next one waits twice as long, at most a minute.
const FIRST_RETRY: Duration = Duration::from_millis(200);

/// How long after start a failed discovery is retried without a warning: a provider on the same
/// host (the demo's mock providers, a local test provider) may be starting at the same moment,
/// and its port is not open yet. A provider still unreachable after it is warned about.
const START_UP_GRACE: Duration = Duration::from_secs(3);

fn next_retry(delay: Duration) -> Duration {
    (delay * 2).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::callback::{access_token_hash, unverified_email};
    #[test]
    fn at_hash_uses_the_algorithm_s_digest_hmac_included() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use sha2::Digest;
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let sha256 = URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(token)[..16]);
        for alg in [
            CoreJwsSigningAlgorithm::HmacSha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ] {
            assert_eq!(
                access_token_hash(token, &alg).as_deref(),
                Some(sha256.as_str())
            );
        }
        let sha512 = URL_SAFE_NO_PAD.encode(&sha2::Sha512::digest(token)[..32]);
        assert_eq!(
            access_token_hash(token, &CoreJwsSigningAlgorithm::EdDsa).as_deref(),
            Some(sha512.as_str())
        );
        assert_eq!(
            access_token_hash(token, &CoreJwsSigningAlgorithm::None),
            None
        );
    }

    #[test]
    fn an_email_said_unverified_is_recognised() {
        use crate::identity::Claim;
        let mut identity = Identity::new("p", "s")
            .with_claim("email", "x@y.fr")
            .with_claim("email_verified", "false");
        assert!(unverified_email(&identity));
        identity
            .claims
            .insert("email_verified".into(), Claim::from("true"));
        assert!(!unverified_email(&identity));
        identity.claims.remove("email_verified");
        assert!(
            !unverified_email(&identity),
            "absent: the provider did not say"
        );
    }

    use super::*;

    #[test]
    fn extra_claims_keep_non_standard_ones() {
        let json =
            r#"{"sub":"s","given_name":"Jean","usual_name":"Dupont","siret":"21920023500014"}"#;
        let claims: openidconnect::UserInfoClaims<ExtraClaims, CoreGenderClaim> =
            openidconnect::UserInfoClaims::from_json::<reqwest::Error>(json.as_bytes(), None)
                .unwrap();
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(value["given_name"], "Jean");
        assert_eq!(value["usual_name"], "Dupont");
        assert_eq!(value["siret"], "21920023500014");
    }

    fn settings(issuer: String, timeout: Duration) -> ProviderSettings {
        let mut settings =
            ProviderSettings::from_preset("p", ProviderKind::Oidc, issuer, ("c", "s"));
        settings.scopes = vec![];
        settings.http_timeout = timeout;
        settings
    }

    fn announced(extra: serde_json::Value) -> Metadata {
        let mut document = serde_json::json!({
            "issuer": "https://op.example",
            "authorization_endpoint": "https://op.example/authorize",
            "token_endpoint": "https://op.example/token",
            "jwks_uri": "https://op.example/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        for (key, value) in extra.as_object().unwrap() {
            document[key] = value.clone();
        }
        serde_json::from_value(document).unwrap()
    }

    #[test]
    fn what_the_provider_announces_must_be_usable_with_the_configured_keys() {
        use p256::pkcs8::EncodePrivateKey;
        let pem = p256::SecretKey::random(&mut rand::rngs::OsRng)
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        let key = vec![(
            std::path::PathBuf::from("k.pem"),
            crate::config::Secret::new(pem),
        )];
        let mut config = settings("https://op.example".into(), Duration::from_secs(1));
        config.kind = ProviderKind::FranceConnectPlus;
        config.token_auth_method = TokenAuthMethod::PrivateKeyJwt;
        config.client_secret = None;
        config.encryption_keys = key.clone();
        config.signing_keys = key;
        let provider = Provider::new(
            config,
            "http://127.0.0.1/.guichet/callback",
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let fine = announced(serde_json::json!({
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "id_token_encryption_alg_values_supported": ["RSA-OAEP-256", "ECDH-ES"],
            "id_token_encryption_enc_values_supported": ["A256GCM"],
            "userinfo_encryption_alg_values_supported": ["ECDH-ES"],
            "userinfo_encryption_enc_values_supported": ["A256GCM"],
        }));
        provider.check_announced(&fine).unwrap();
        for (document, expected) in [
            (
                serde_json::json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}),
                "token_auth_method private_key_jwt is not one the provider accepts",
            ),
            (
                serde_json::json!({"token_endpoint_auth_signing_alg_values_supported": ["RS256"]}),
                "the client assertion would be signed ES256",
            ),
            (
                serde_json::json!({"id_token_encryption_alg_values_supported": ["RSA-OAEP-256"]}),
                "the provider encrypts id_token with RSA-OAEP-256 but the configured encryption_keys decrypt only ECDH-ES",
            ),
            (
                serde_json::json!({"userinfo_encryption_enc_values_supported": ["A128CBC-HS256"]}),
                "the provider encrypts userinfo content with A128CBC-HS256",
            ),
        ] {
            let error = provider.check_announced(&announced(document)).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[tokio::test]
    async fn a_silent_provider_is_a_timeout_and_a_closed_port_is_unreachable() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let provider = Provider::new(
            settings(format!("http://{silent}"), Duration::from_millis(300)),
            "http://127.0.0.1/.guichet/callback",
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let error = provider.discover().await.unwrap_err();
        assert!(
            matches!(error, OidcError::Timeout { step: "discovery" }),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(!provider.is_ready());

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let provider = Provider::new(
            settings(format!("http://127.0.0.1:{port}"), Duration::from_secs(2)),
            "http://127.0.0.1/.guichet/callback",
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let error = provider.discover().await.unwrap_err();
        assert!(matches!(error, OidcError::Unreachable { .. }), "{error}");
        assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    }

    #[tokio::test]
    async fn an_oversized_provider_answer_is_refused_not_read() {
        // Answers every request with a 2 MiB body announced as JSON.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let body = vec![b' '; 2 << 20];
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                });
            }
        });
        let provider = Provider::new(
            settings(format!("http://{address}"), Duration::from_secs(5)),
            "http://127.0.0.1/.guichet/callback",
            Arc::new(Metrics::new()),
        )
        .unwrap();
        let error = provider.discover().await.unwrap_err();
        assert!(
            matches!(&error, OidcError::BadResponse { step: "discovery", reason } if reason.contains("longer than")),
            "{error}"
        );
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(
            OidcError::NotReady.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            OidcError::Timeout { step: "token" }.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            OidcError::IdTokenInvalid("x".into()).status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
