//! The userinfo call: JSON or a signed JWT (verified against the JWKS, refreshed once for an
//! unknown key), its `sub` required to be the id_token's.

use super::*;

/// The longest userinfo answer read; a provider sending more is refused.
const MAX_USERINFO_BYTES: usize = 1 << 20;

/// The JOSE name of an algorithm or method (`ES256`, `RSA-OAEP`, `private_key_jwt`).
pub(super) fn serde_plain_alg<T: Serialize>(alg: &T) -> Option<String> {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The provider key for a JWT header (`kid` and algorithm), as a `jsonwebtoken` key.
pub(super) fn find_decoding_key(
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

impl Provider {
    /// Calls userinfo; accepts JSON or a signed JWT (verified against the JWKS, refreshed once
    /// for an unknown key); requires its `sub` to be the id_token's.
    pub(super) async fn fetch_userinfo(
        &self,
        metadata: Arc<Metadata>,
        access_token: &AccessToken,
        sub: &str,
    ) -> Result<Value, OidcError> {
        let (content_type, body) = self.call_userinfo(&metadata, access_token).await?;
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
            "application/jwt" => self.userinfo_jwt(metadata, &body, sub).await?,
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

    /// The userinfo endpoint's answer: its media type (lower case, without parameters) and its
    /// body, at most [`MAX_USERINFO_BYTES`].
    async fn call_userinfo(
        &self,
        metadata: &Metadata,
        access_token: &AccessToken,
    ) -> Result<(String, Vec<u8>), OidcError> {
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
        let mut response = sent.map_err(|e| transport_error("userinfo", &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(OidcError::BadResponse {
                step: "userinfo",
                reason: format!("HTTP status {status}"),
            });
        }
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
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error("userinfo", &e))?
        {
            if body.len() + chunk.len() > MAX_USERINFO_BYTES {
                return Err(OidcError::BadResponse {
                    step: "userinfo",
                    reason: format!("answer longer than {MAX_USERINFO_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((content_type, body))
    }

    /// A userinfo JWT: decrypted if need be, then its signature, `iss`, `aud` and `sub`
    /// verified (an encrypted but unsigned JSON is accepted unless the format must be `jwt`).
    async fn userinfo_jwt(
        &self,
        metadata: Arc<Metadata>,
        body: &[u8],
        sub: &str,
    ) -> Result<Value, OidcError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| OidcError::UserInfoInvalid("JWT is not UTF-8".into()))?;
        let inner = self
            .decrypt_if_encrypted(text)
            .map_err(|e| OidcError::UserInfoInvalid(e.to_string()))?;
        if inner.starts_with('{') && self.settings.userinfo_format != UserinfoFormat::Jwt {
            // Encrypted but not signed: the TLS channel vouches for it, as for JSON.
            return serde_json::from_str::<Value>(&inner).map_err(|e| {
                OidcError::UserInfoInvalid(format!("invalid JSON inside the JWE: {e}"))
            });
        }
        self.verify_userinfo_jwt(metadata, &inner, sub).await
    }

    /// Verifies a signed userinfo response (signature against the JWKS, or the client secret for
    /// HS256; `iss`; `aud`; `exp` when present; `sub`). The `openidconnect` crate only verifies
    /// RS256 userinfo, and the federations sign it ES256, so this uses `jsonwebtoken`.
    pub(super) async fn verify_userinfo_jwt(
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
}
