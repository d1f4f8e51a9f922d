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
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    reqwest, AccessToken, AdditionalClaims, AuthType, AuthenticationContextClass,
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields, IdToken, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
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
    CoreJsonWebKey,
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

type Metadata = ProviderMetadataWithLogout;

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

/// FranceConnect v1's endpoints below its issuer (`/api/v1/authorize`, `token`, `userinfo`,
/// `logout`); id_tokens signed HS256 with the client secret, so no JWKS.
fn franceconnect_v1_metadata(issuer: IssuerUrl) -> Result<Metadata, OidcError> {
    use openidconnect::core::{CoreResponseType, CoreSubjectIdentifierType};
    use openidconnect::{
        AuthUrl, EmptyAdditionalProviderMetadata, EndSessionUrl, JsonWebKeySetUrl,
        LogoutProviderMetadata, ResponseTypes, TokenUrl, UserInfoUrl,
    };
    let base = issuer.as_str().trim_end_matches('/').to_string();
    let bad = |e: url::ParseError| OidcError::Configuration(format!("issuer: {e}"));
    let metadata = Metadata::new(
        issuer,
        AuthUrl::new(format!("{base}/api/v1/authorize")).map_err(bad)?,
        JsonWebKeySetUrl::new(format!("{base}/api/v1/jwks")).map_err(bad)?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        vec![CoreJwsSigningAlgorithm::HmacSha256],
        LogoutProviderMetadata {
            end_session_endpoint: Some(
                EndSessionUrl::new(format!("{base}/api/v1/logout")).map_err(bad)?,
            ),
            additional_metadata: EmptyAdditionalProviderMetadata {},
        },
    )
    .set_token_endpoint(Some(
        TokenUrl::new(format!("{base}/api/v1/token")).map_err(bad)?,
    ))
    .set_userinfo_endpoint(Some(
        UserInfoUrl::new(format!("{base}/api/v1/userinfo")).map_err(bad)?,
    ));
    Ok(metadata)
}

/// A failed discovery or JWKS fetch: transport trouble, or a document guichet cannot use.
fn document_error(
    step: &'static str,
    error: &openidconnect::DiscoveryError<openidconnect::HttpClientError<reqwest::Error>>,
) -> OidcError {
    match error {
        openidconnect::DiscoveryError::Request(openidconnect::HttpClientError::Reqwest(inner)) => {
            transport_error(step, inner)
        }
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

/// The JOSE name of an algorithm or method (`ES256`, `RSA-OAEP`, `private_key_jwt`).
fn serde_plain_alg<T: Serialize>(alg: &T) -> Option<String> {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The provider key for a JWT header (`kid` and algorithm), as a `jsonwebtoken` key.
fn find_decoding_key(
    metadata: &Metadata,
    kid: Option<&str>,
    alg: jsonwebtoken::Algorithm,
) -> Result<Option<jsonwebtoken::DecodingKey>, OidcError> {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::to_value(metadata.jwks())
        .and_then(serde_json::from_value)
        .map_err(|e| OidcError::BadResponse {
            step: "jwks",
            reason: e.to_string(),
        })?;
    let family = alg.family();
    let candidates: Vec<&jsonwebtoken::jwk::Jwk> = jwks
        .keys
        .iter()
        .filter(|k| {
            k.is_supported()
                && kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
                && jsonwebtoken::DecodingKey::from_jwk(k)
                    .map(|d| d.family() == family)
                    .unwrap_or(false)
        })
        .collect();
    match candidates.as_slice() {
        [one] => jsonwebtoken::DecodingKey::from_jwk(one)
            .map(Some)
            .map_err(|e| OidcError::UserInfoInvalid(error_chain(&e))),
        _ => Ok(None),
    }
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): base64url of the left half of the access token's
/// digest with the hash of the id_token's signing algorithm. Computed here rather than through the
/// verification key, which an HMAC-signed id_token does not have in the JWKS.
fn access_token_hash(token: &str, alg: &CoreJwsSigningAlgorithm) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::Digest;
    use CoreJwsSigningAlgorithm as Alg;
    let digest: Vec<u8> = match alg {
        Alg::HmacSha256
        | Alg::RsaSsaPkcs1V15Sha256
        | Alg::RsaSsaPssSha256
        | Alg::EcdsaP256Sha256 => sha2::Sha256::digest(token.as_bytes()).to_vec(),
        Alg::HmacSha384
        | Alg::RsaSsaPkcs1V15Sha384
        | Alg::RsaSsaPssSha384
        | Alg::EcdsaP384Sha384 => sha2::Sha384::digest(token.as_bytes()).to_vec(),
        // Ed25519 hashes with SHA-512.
        Alg::HmacSha512
        | Alg::RsaSsaPkcs1V15Sha512
        | Alg::RsaSsaPssSha512
        | Alg::EcdsaP521Sha512
        | Alg::EdDsa => sha2::Sha512::digest(token.as_bytes()).to_vec(),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

/// Whether the provider said it did not verify the visitor's email (`email_verified` false, as
/// a boolean or the text "false").
fn unverified_email(identity: &Identity) -> bool {
    identity.claims.contains_key("email")
        && identity
            .claims
            .get("email_verified")
            .is_some_and(|verified| verified.values().any(|v| v == "false"))
}

fn is_unknown_key(error: &ClaimsVerificationError) -> bool {
    matches!(
        error,
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)
    )
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

    /// Fetches the discovery document and the JWKS, and checks guichet can use them.
    /// FranceConnect v1 has no discovery: its documented endpoints are used instead.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Configuration(format!("issuer: {e}")))?;
        if self.settings.kind == ProviderKind::FranceConnectV1 {
            self.store(franceconnect_v1_metadata(issuer)?);
            return Ok(());
        }
        let started = Instant::now();
        let result = Metadata::discover_async(issuer, &self.http).await;
        self.record("discovery", result.is_ok(), started);
        self.record_refresh("discovery", result.is_ok());
        let metadata = result.map_err(|e| document_error("discovery", &e))?;
        if metadata.token_endpoint().is_none() {
            return Err(OidcError::BadResponse {
                step: "discovery",
                reason: "no token_endpoint announced".into(),
            });
        }
        self.check_announced(&metadata)?;
        self.store(metadata);
        Ok(())
    }

    /// What the provider announces must be something guichet can do with its configuration:
    /// a client authentication method it accepts, encryption guichet can decrypt. A mismatch
    /// stops the provider from becoming ready (and says why) instead of failing every login.
    fn check_announced(&self, metadata: &Metadata) -> Result<(), OidcError> {
        fn names<T: Serialize>(list: Option<&Vec<T>>) -> Option<Vec<String>> {
            list.map(|l| l.iter().filter_map(serde_plain_alg).collect())
        }
        let method = self.settings.token_auth_method.as_str();
        if let Some(methods) = names(metadata.token_endpoint_auth_methods_supported()) {
            if !methods.iter().any(|m| m == method) {
                return Err(OidcError::Configuration(format!(
                    "token_auth_method {method} is not one the provider accepts ({})",
                    methods.join(", ")
                )));
            }
        }
        if let (Some(ours), Some(algs)) = (
            self.keys.signing_algorithm(),
            names(metadata.token_endpoint_auth_signing_alg_values_supported()),
        ) {
            if self.settings.token_auth_method == TokenAuthMethod::PrivateKeyJwt
                && !algs.iter().any(|a| a == ours)
            {
                return Err(OidcError::Configuration(format!(
                    "the client assertion would be signed {ours}, which the provider does not accept ({})",
                    algs.join(", ")
                )));
            }
        }
        let encrypts = self.settings.kind == ProviderKind::FranceConnectPlus;
        let announced = [
            (
                "id_token",
                names(metadata.id_token_encryption_alg_values_supported()),
                names(metadata.id_token_encryption_enc_values_supported()),
            ),
            (
                "userinfo",
                names(metadata.userinfo_encryption_alg_values_supported()),
                names(metadata.userinfo_encryption_enc_values_supported()),
            ),
        ];
        if !self.keys.can_decrypt() {
            return Ok(());
        }
        let ours = self.keys.decryption_algorithms();
        for (what, algs, encs) in announced {
            if let Some(algs) = algs {
                if !algs.iter().any(|a| ours.contains(&a.as_str())) {
                    return Err(OidcError::Configuration(format!(
                        "the provider encrypts {what} with {} but the configured encryption_keys decrypt only {}",
                        algs.join(", "),
                        ours.join(", ")
                    )));
                }
            } else if encrypts {
                tracing::warn!(provider = %self.id(), "the provider announces no {what} encryption algorithm");
            }
            if let Some(encs) = encs {
                if !encs.iter().any(|e| e == "A256GCM" || e == "A128GCM") {
                    return Err(OidcError::Configuration(format!(
                        "the provider encrypts {what} content with {}; guichet decrypts A256GCM and A128GCM",
                        encs.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// Re-fetches the JWKS (key rotation); `false` when it was refreshed too recently to try again.
    async fn refresh_jwks(&self, metadata: &Metadata) -> Result<bool, OidcError> {
        {
            let mut last = self
                .jwks_refreshed_at
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| at.elapsed() < JWKS_REFRESH_MIN_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let started = Instant::now();
        let result = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http).await;
        self.record("jwks", result.is_ok(), started);
        self.record_refresh("jwks", result.is_ok());
        let jwks = result.map_err(|e| document_error("jwks", &e))?;
        tracing::info!(provider = %self.id(), keys = jwks.keys().len(), "provider JWKS refreshed");
        self.store(metadata.clone().set_jwks(jwks));
        Ok(true)
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

    /// The URL to send the browser to, and the login state (valid until `expires`, Unix
    /// seconds) to keep until the callback. `hints` are the visitor's `idp_hint`, `login_hint`,
    /// `siret_hint`…: only those the provider's kind accepts are sent.
    pub fn start_login(
        &self,
        return_to: &str,
        hints: &[(String, String)],
        expires: u64,
    ) -> Result<(Url, LoginState), OidcError> {
        let metadata = self.current().ok_or(OidcError::NotReady)?;
        let client = self.client(&metadata);
        let state = random_token();
        let nonce = random_token();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            {
                let state = state.clone();
                move || CsrfToken::new(state)
            },
            {
                let nonce = nonce.clone();
                move || Nonce::new(nonce)
            },
        );
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if !self.settings.acr.is_empty() {
            match self.settings.acr_request {
                AcrRequest::AcrValues => {
                    for value in &self.settings.acr {
                        request = request
                            .add_auth_context_value(AuthenticationContextClass::new(value.clone()));
                    }
                }
                AcrRequest::ClaimsParameter => {
                    let claims = serde_json::json!({
                        "id_token": {"acr": {"essential": true, "values": self.settings.acr}}
                    });
                    request = request.add_extra_param("claims", claims.to_string());
                }
            }
        }
        for (name, value) in hints {
            if self.settings.hints.iter().any(|h| h == name) && !value.is_empty() {
                request = request.add_extra_param(name.clone(), value.clone());
            }
        }
        let mut pkce_verifier = None;
        if self.settings.pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            pkce_verifier = Some(verifier.secret().clone());
        }
        let (url, _, _) = request.url();
        let login = LoginState {
            state,
            provider: self.settings.id.clone(),
            nonce,
            pkce_verifier,
            return_to: return_to.to_string(),
            expires,
        };
        Ok((url, login))
    }

    /// Exchanges the code, verifies the id_token and the userinfo, and returns the identity.
    pub async fn finish_login(
        &self,
        code: &str,
        login: &LoginState,
    ) -> Result<LoginOutcome, OidcError> {
        let metadata = self.current().ok_or(OidcError::NotReady)?;
        let client = self.client(&metadata);
        let mut exchange = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Configuration(error_chain(&e)))?;
        if let Some(verifier) = &login.pkce_verifier {
            exchange = exchange.set_pkce_verifier(PkceCodeVerifier::new(verifier.clone()));
        }
        if self.settings.token_auth_method == TokenAuthMethod::PrivateKeyJwt {
            let endpoint = metadata
                .token_endpoint()
                .map(|u| u.as_str().to_string())
                .unwrap_or_default();
            let assertion = self
                .keys
                .client_assertion(
                    &self.settings.client_id,
                    &endpoint,
                    crate::assertion::unix_now(),
                )
                .map_err(OidcError::Configuration)?;
            exchange = exchange
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion);
        }
        let started = Instant::now();
        let result = exchange.request_async(&self.http).await;
        self.record("token", result.is_ok(), started);
        let token = result.map_err(|e| match e {
            RequestTokenError::ServerResponse(response) => {
                OidcError::CodeRejected(response.error().as_ref().to_string())
            }
            RequestTokenError::Request(openidconnect::HttpClientError::Reqwest(inner)) => {
                transport_error("token", &inner)
            }
            other => OidcError::BadResponse {
                step: "token",
                reason: error_chain(&other),
            },
        })?;
        let raw =
            token
                .extra_fields()
                .id_token
                .as_deref()
                .ok_or_else(|| OidcError::BadResponse {
                    step: "token",
                    reason: "no id_token in the token response".into(),
                })?;
        let signed = self
            .decrypt_if_encrypted(raw)
            .map_err(OidcError::IdTokenInvalid)?;
        let id_token = signed
            .parse::<ProviderIdToken>()
            .map_err(|e| OidcError::IdTokenInvalid(format!("not a signed JWT: {e}")))?;

        let (metadata, id_claims) = self
            .verify_id_token(metadata, &id_token, &login.nonce, token.access_token())
            .await?;
        let sub = id_claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        let userinfo = if self.settings.userinfo && metadata.userinfo_endpoint().is_some() {
            Some(
                self.fetch_userinfo(metadata, token.access_token(), &sub)
                    .await?,
            )
        } else {
            None
        };

        let mut identity =
            Identity::from_claims(&self.settings.id, &sub, &id_claims, userinfo.as_ref());
        if self.settings.kind == ProviderKind::Oidc && unverified_email(&identity) {
            // A generic provider may let anyone type any address: never pass an address it
            // says it did not verify as if it were one. (The federations vouch for theirs.)
            tracing::info!(provider = %self.settings.id, "email not verified by the provider (email_verified false): not forwarded");
            identity.claims.remove("email");
        }
        let missing: Vec<String> = self
            .settings
            .mandatory_claims
            .iter()
            // Present is enough: FranceConnect sends an empty birthplace for people born abroad.
            .filter(|claim| !identity.claims.contains_key(*claim))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(OidcError::MissingClaims(missing));
        }
        Ok(LoginOutcome {
            identity,
            id_token: id_token.to_string(),
            access_token: token.access_token().secret().clone(),
        })
    }

    /// A JWE (five parts) is decrypted with the configured encryption keys; its content must be
    /// a signed JWT, returned as text. A JWS is returned as it is.
    fn decrypt_if_encrypted(&self, token: &str) -> Result<String, String> {
        if !jose::is_jwe(token) {
            return Ok(token.trim().to_string());
        }
        if !self.keys.can_decrypt() {
            return Err(
                "the provider sent it encrypted (JWE) but no encryption_keys are configured".into(),
            );
        }
        let plaintext = self.keys.decrypt(token).map_err(|e| e.to_string())?;
        String::from_utf8(plaintext)
            .map(|text| text.trim().to_string())
            .map_err(|_| "the decrypted content is not text".into())
    }

    /// Verifies signature, `iss`, `aud`, `exp`/`iat` (bounded skew), `nonce` and `at_hash`;
    /// refreshes the JWKS once when the key is unknown. Returns the claims as JSON.
    async fn verify_id_token(
        &self,
        mut metadata: Arc<Metadata>,
        id_token: &ProviderIdToken,
        nonce: &str,
        access_token: &AccessToken,
    ) -> Result<(Arc<Metadata>, Value), OidcError> {
        let nonce = Nonce::new(nonce.to_string());
        let mut refreshed = false;
        loop {
            let client = self.client(&metadata);
            let verifier = client
                .id_token_verifier()
                .set_time_fn(|| chrono::Utc::now() - MAX_CLOCK_SKEW)
                .set_issue_time_verifier_fn(|iat| {
                    if iat > chrono::Utc::now() + MAX_CLOCK_SKEW {
                        Err("issued in the future".to_string())
                    } else {
                        Ok(())
                    }
                });
            match id_token.claims(&verifier, &nonce) {
                Ok(claims) => {
                    if let Some(expected) = claims.access_token_hash() {
                        let alg = id_token
                            .signing_alg()
                            .map_err(|e| OidcError::IdTokenInvalid(error_chain(&e)))?;
                        let actual =
                            access_token_hash(access_token.secret(), alg).ok_or_else(|| {
                                OidcError::IdTokenInvalid(format!(
                                    "cannot check at_hash for an id_token signed with {alg:?}"
                                ))
                            })?;
                        if actual.as_bytes() != expected.as_str().as_bytes() {
                            return Err(OidcError::IdTokenInvalid(
                                "at_hash does not match the access token".into(),
                            ));
                        }
                    }
                    let returned = claims.auth_context_ref().map(|acr| acr.as_str());
                    if !acr_satisfies(returned, &self.settings.acr) {
                        return Err(OidcError::AcrTooLow {
                            returned: returned.map(str::to_string),
                            required: self.settings.acr.clone(),
                        });
                    }
                    let value = serde_json::to_value(claims)
                        .map_err(|e| OidcError::IdTokenInvalid(e.to_string()))?;
                    return Ok((metadata, value));
                }
                Err(e) if is_unknown_key(&e) && !refreshed => {
                    refreshed = true;
                    if !self.refresh_jwks(&metadata).await? {
                        return Err(OidcError::IdTokenInvalid(error_chain(&e)));
                    }
                    metadata = self.current().ok_or(OidcError::NotReady)?;
                }
                Err(e) => return Err(OidcError::IdTokenInvalid(error_chain(&e))),
            }
        }
    }

    /// Calls userinfo; accepts JSON or a signed JWT (verified against the JWKS, refreshed once
    /// for an unknown key); requires its `sub` to be the id_token's.
    async fn fetch_userinfo(
        &self,
        metadata: Arc<Metadata>,
        access_token: &AccessToken,
        sub: &str,
    ) -> Result<Value, OidcError> {
        let Some(url) = metadata.userinfo_endpoint() else {
            return Err(OidcError::Configuration("no userinfo endpoint".into()));
        };
        let started = Instant::now();
        let sent = self
            .http
            .get(url.as_str())
            .bearer_auth(access_token.secret())
            .header(http::header::ACCEPT, "application/jwt, application/json")
            .send()
            .await;
        self.record(
            "userinfo",
            sent.as_ref().is_ok_and(|r| r.status().is_success()),
            started,
        );
        let response = sent.map_err(|e| transport_error("userinfo", &e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error("userinfo", &e))?;
        if !status.is_success() {
            return Err(OidcError::BadResponse {
                step: "userinfo",
                reason: format!("HTTP status {status}"),
            });
        }
        let format = self.settings.userinfo_format;
        if format == UserinfoFormat::Jwt && content_type != "application/jwt" {
            return Err(OidcError::UserInfoInvalid(format!(
                "the provider must sign userinfo (application/jwt) but sent {content_type}"
            )));
        }
        if format == UserinfoFormat::Json && content_type != "application/json" {
            return Err(OidcError::UserInfoInvalid(format!(
                "expected JSON userinfo, got {content_type}"
            )));
        }
        let claims = match content_type.as_str() {
            "application/json" => {
                serde_json::from_slice::<Value>(&body).map_err(|e| OidcError::BadResponse {
                    step: "userinfo",
                    reason: format!("invalid JSON: {e}"),
                })?
            }
            "application/jwt" => {
                let text = std::str::from_utf8(&body)
                    .map_err(|_| OidcError::UserInfoInvalid("JWT is not UTF-8".into()))?;
                let inner = self
                    .decrypt_if_encrypted(text)
                    .map_err(OidcError::UserInfoInvalid)?;
                if inner.starts_with('{') && format != UserinfoFormat::Jwt {
                    // Encrypted but not signed: the TLS channel vouches for it, as for JSON.
                    serde_json::from_str::<Value>(&inner).map_err(|e| {
                        OidcError::UserInfoInvalid(format!("invalid JSON inside the JWE: {e}"))
                    })?
                } else {
                    self.verify_userinfo_jwt(metadata, &inner, sub).await?
                }
            }
            other => {
                return Err(OidcError::BadResponse {
                    step: "userinfo",
                    reason: format!("unexpected Content-Type {other:?}"),
                })
            }
        };
        if !claims.is_object() {
            return Err(OidcError::UserInfoInvalid("not a JSON object".into()));
        }
        match claims.get("sub").and_then(Value::as_str) {
            Some(s) if s == sub => Ok(claims),
            _ => Err(OidcError::UserInfoInvalid(
                "its sub differs from the id_token's".into(),
            )),
        }
    }

    /// Verifies a signed userinfo response (signature against the JWKS, or the client secret for
    /// HS256; `iss`; `aud`; `exp` when present; `sub`). The `openidconnect` crate only verifies
    /// RS256 userinfo, and the federations sign it ES256, so this uses `jsonwebtoken`.
    async fn verify_userinfo_jwt(
        &self,
        mut metadata: Arc<Metadata>,
        jwt: &str,
        sub: &str,
    ) -> Result<Value, OidcError> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| OidcError::UserInfoInvalid(format!("malformed JWT: {e}")))?;
        let allowed: Vec<String> = match metadata.userinfo_signing_alg_values_supported() {
            Some(algs) => algs.iter().filter_map(serde_plain_alg).collect(),
            None => vec!["ES256".into(), "RS256".into()],
        };
        let alg_name = format!("{:?}", header.alg);
        if !allowed.contains(&alg_name) {
            return Err(OidcError::UserInfoInvalid(format!(
                "signature algorithm {alg_name} is not one the provider announced ({})",
                allowed.join(", ")
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[metadata.issuer().as_str()]);
        validation.set_audience(&[self.settings.client_id.as_str()]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.leeway = MAX_CLOCK_SKEW.as_secs();
        validation.sub = Some(sub.to_string());
        let mut refreshed = false;
        loop {
            let key = if header.alg == Algorithm::HS256 {
                let secret = self.settings.client_secret.as_ref().ok_or_else(|| {
                    OidcError::UserInfoInvalid(
                        "signed HS256 but no client secret is configured".into(),
                    )
                })?;
                Some(DecodingKey::from_secret(secret.expose().as_bytes()))
            } else {
                find_decoding_key(&metadata, header.kid.as_deref(), header.alg)?
            };
            match key {
                Some(key) => {
                    return jsonwebtoken::decode::<Value>(jwt, &key, &validation)
                        .map(|data| data.claims)
                        .map_err(|e| OidcError::UserInfoInvalid(error_chain(&e)));
                }
                None if !refreshed => {
                    refreshed = true;
                    if !self.refresh_jwks(&metadata).await? {
                        return Err(OidcError::UserInfoInvalid("no key matches its kid".into()));
                    }
                    metadata = self.current().ok_or(OidcError::NotReady)?;
                }
                None => return Err(OidcError::UserInfoInvalid("no key matches its kid".into())),
            }
        }
    }

    /// RP-initiated logout at the provider, if it announces an `end_session_endpoint`.
    pub fn logout_url(
        &self,
        id_token_hint: &str,
        state: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<Url> {
        let metadata = self.current()?;
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()?;
        let mut url = endpoint.url().clone();
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("state", state)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        Some(url)
    }
}

/// Keeps a provider's metadata loaded: retries discovery with back-off (1 s doubling to 60 s)
/// until it succeeds, then refreshes it every hour (a failed refresh keeps the old metadata).
pub async fn keep_discovered(provider: Arc<Provider>) {
    let mut delay = Duration::from_secs(1);
    loop {
        match provider.discover().await {
            Ok(()) => {
                tracing::info!(provider = %provider.id(), "provider metadata loaded");
                delay = Duration::from_secs(1);
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Err(e) => {
                tracing::warn!(
                    provider = %provider.id(),
                    error = %e,
                    retry_in_s = delay.as_secs(),
                    "provider discovery failed; logins through it answer 503 until it succeeds"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let mut identity = Identity {
            provider: "p".into(),
            sub: "s".into(),
            acr: None,
            amr: vec![],
            claims: [
                ("email".to_string(), Claim::from("x@y.fr")),
                ("email_verified".to_string(), Claim::from("false")),
            ]
            .into(),
        };
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
        ProviderSettings {
            id: "p".into(),
            display_name: "p".into(),
            issuer,
            client_id: "c".into(),
            client_secret: Some(crate::config::Secret::new("s")),
            scopes: vec![],
            kind: ProviderKind::Oidc,
            acr: vec![],
            acr_request: AcrRequest::AcrValues,
            pkce: true,
            token_auth_method: TokenAuthMethod::ClientSecretPost,
            encryption_keys: vec![],
            signing_keys: vec![],
            userinfo: true,
            userinfo_format: UserinfoFormat::Any,
            hints: vec![],
            mandatory_claims: vec![],
            http_timeout: timeout,
            claim_headers: Default::default(),
        }
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
