//! The callback: the code exchanged, the id_token decrypted if need be and verified (signature,
//! `iss`, `aud`, times, `nonce`, `at_hash`, `acr`), and the identity built.

use super::transport::BoundedClient;
use super::*;

/// Why a token the provider sent could not be unwrapped to a signed JWT.
#[derive(Debug, thiserror::Error)]
pub(super) enum UnwrapError {
    #[error("the provider sent it encrypted (JWE) but no encryption_keys are configured")]
    NoEncryptionKeys,
    #[error(transparent)]
    Jwe(#[from] jose::JweError),
    #[error("the decrypted content is not text")]
    NotText,
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): base64url of the left half of the access token's
/// digest with the hash of the id_token's signing algorithm. Computed here rather than through the
/// verification key, which an HMAC-signed id_token does not have in the JWKS.
pub(super) fn access_token_hash(token: &str, alg: &CoreJwsSigningAlgorithm) -> Option<String> {
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
pub(super) fn unverified_email(identity: &Identity) -> bool {
    identity.claims.contains_key("email")
        && identity
            .claims
            .get("email_verified")
            .is_some_and(|verified| verified.values().any(|v| v == "false"))
}

pub(super) fn is_unknown_key(error: &ClaimsVerificationError) -> bool {
    matches!(
        error,
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)
    )
}

impl Provider {
    /// Exchanges the code, verifies the id_token and the userinfo, and returns the identity.
    pub async fn finish_login(
        &self,
        code: &str,
        login: &LoginState,
    ) -> Result<LoginOutcome, OidcError> {
        let metadata = self.current().ok_or(OidcError::NotReady)?;
        let token = self.exchange_code(&metadata, code, login).await?;
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
            .map_err(|e| OidcError::IdTokenInvalid(e.to_string()))?;
        let id_token = signed
            .parse::<ProviderIdToken>()
            .map_err(|e| OidcError::IdTokenInvalid(format!("not a signed JWT: {e}")))?;
        let (metadata, id_claims) = self
            .verify_id_token(metadata, &id_token, login, token.access_token())
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
        let identity = self.identity(&sub, &id_claims, userinfo.as_ref())?;
        Ok(LoginOutcome {
            identity,
            id_token: id_token.to_string(),
            access_token: token.access_token().secret().clone(),
        })
    }

    /// The token endpoint call: the code, the PKCE verifier, and the client's credentials (a
    /// signed client assertion with `private_key_jwt`).
    async fn exchange_code(
        &self,
        metadata: &Metadata,
        code: &str,
        login: &LoginState,
    ) -> Result<ProviderTokenResponse, OidcError> {
        let client = self.client(metadata);
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
                    crate::clock::unix_now(),
                )
                .map_err(|e| OidcError::Configuration(e.to_string()))?;
            exchange = exchange
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion);
        }
        let started = Instant::now();
        let result = exchange.request_async(&BoundedClient(&self.http)).await;
        self.record("token", result.is_ok(), started);
        result.map_err(|e| match e {
            RequestTokenError::ServerResponse(response) => {
                OidcError::CodeRejected(response.error().as_ref().to_string())
            }
            RequestTokenError::Request(inner) => provider_http_error("token", &inner),
            other => OidcError::BadResponse {
                step: "token",
                reason: error_chain(&other),
            },
        })
    }

    /// The identity from the verified claims: an unverified email of a generic provider left
    /// out, the mandatory claims required.
    fn identity(
        &self,
        sub: &str,
        id_claims: &Value,
        userinfo: Option<&Value>,
    ) -> Result<Identity, OidcError> {
        let mut identity = Identity::from_claims(&self.settings.id, sub, id_claims, userinfo);
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
        if missing.is_empty() {
            Ok(identity)
        } else {
            Err(OidcError::MissingClaims(missing))
        }
    }

    /// A JWE (five parts) is decrypted with the configured encryption keys; its content must be
    /// a signed JWT, returned as text. A JWS is returned as it is.
    pub(super) fn decrypt_if_encrypted(&self, token: &str) -> Result<String, UnwrapError> {
        if !jose::is_jwe(token) {
            return Ok(token.trim().to_string());
        }
        if !self.keys.can_decrypt() {
            return Err(UnwrapError::NoEncryptionKeys);
        }
        let plaintext = self.keys.decrypt(token)?;
        String::from_utf8(plaintext)
            .map(|text| text.trim().to_string())
            .map_err(|_| UnwrapError::NotText)
    }

    /// Verifies signature, `iss`, `aud`, `exp`/`iat` (bounded skew), `nonce` and `at_hash`;
    /// refreshes the JWKS once when the key is unknown. Returns the claims as JSON.
    pub(super) async fn verify_id_token(
        &self,
        mut metadata: Arc<Metadata>,
        id_token: &ProviderIdToken,
        login: &LoginState,
        access_token: &AccessToken,
    ) -> Result<(Arc<Metadata>, Value), OidcError> {
        let nonce = Nonce::new(login.nonce.clone());
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
                    for required in [&self.settings.acr, &login.acr] {
                        if !acr_satisfies(returned, required) {
                            return Err(OidcError::AcrTooLow {
                                returned: returned.map(str::to_string),
                                required: required.clone(),
                            });
                        }
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
}
