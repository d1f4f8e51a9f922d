//! The provider's metadata: discovery (or FranceConnect v1's documented endpoints), what it
//! announces checked against the configured keys, and the JWKS refreshed when a key is unknown.

use super::transport::BoundedClient;
use super::userinfo::serde_plain_alg;
use super::*;
use crate::config::DocumentedEndpoints;

/// The metadata of a federation that documents its endpoints instead of publishing a discovery
/// document (FranceConnect v1): the issuer followed by the documented paths, HS256 id_tokens.
pub(super) fn documented_metadata(
    issuer: IssuerUrl,
    paths: &DocumentedEndpoints,
) -> Result<Metadata, OidcError> {
    use openidconnect::core::{CoreResponseType, CoreSubjectIdentifierType};
    use openidconnect::{
        AuthUrl, EmptyAdditionalProviderMetadata, EndSessionUrl, JsonWebKeySetUrl,
        LogoutProviderMetadata, ResponseTypes, TokenUrl, UserInfoUrl,
    };
    let base = issuer.as_str().trim_end_matches('/').to_string();
    let url = |path: &str| format!("{base}{path}");
    let bad = |e: url::ParseError| OidcError::Configuration(format!("issuer: {e}"));
    let metadata = Metadata::new(
        issuer,
        AuthUrl::new(url(paths.authorize)).map_err(bad)?,
        JsonWebKeySetUrl::new(url(paths.jwks)).map_err(bad)?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        vec![CoreJwsSigningAlgorithm::HmacSha256],
        LogoutProviderMetadata {
            end_session_endpoint: Some(EndSessionUrl::new(url(paths.logout)).map_err(bad)?),
            additional_metadata: EmptyAdditionalProviderMetadata {},
        },
    )
    .set_token_endpoint(Some(TokenUrl::new(url(paths.token)).map_err(bad)?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(url(paths.userinfo)).map_err(bad)?));
    Ok(metadata)
}

impl Provider {
    /// Fetches the discovery document and the JWKS, and checks guichet can use them.
    /// FranceConnect v1 has no discovery: its documented endpoints are used instead.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Configuration(format!("issuer: {e}")))?;
        if let Some(paths) = &self.settings.kind.preset().documented_endpoints {
            self.store(documented_metadata(issuer, paths)?);
            return Ok(());
        }
        let started = Instant::now();
        let result = Metadata::discover_async(issuer, &BoundedClient(&self.http)).await;
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
    pub(super) fn check_announced(&self, metadata: &Metadata) -> Result<(), OidcError> {
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
        let encrypts = self.settings.kind.preset().encrypts_tokens;
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
    pub(super) async fn refresh_jwks(&self, metadata: &Metadata) -> Result<bool, OidcError> {
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
        let result =
            JsonWebKeySet::fetch_async(metadata.jwks_uri(), &BoundedClient(&self.http)).await;
        self.record("jwks", result.is_ok(), started);
        self.record_refresh("jwks", result.is_ok());
        let jwks = result.map_err(|e| document_error("jwks", &e))?;
        tracing::info!(provider = %self.id(), keys = jwks.keys().len(), "provider JWKS refreshed");
        self.store(metadata.clone().set_jwks(jwks));
        Ok(true)
    }
}
