//! Sending the visitor to the provider: the authorize URL (state, nonce, PKCE, acr, hints) and
//! the RP-initiated logout URL.

use super::*;

impl Provider {
    /// The URL to send the browser to, and the login state (valid until `expires`, Unix
    /// seconds) to keep until the callback. `hints` are the visitor's `idp_hint`, `login_hint`,
    /// `siret_hint`…: only those the provider's kind accepts are sent.
    /// `step_up`: levels a route requires above the provider's; the login then asks for them
    /// and for a fresh authentication (`prompt=login`).
    pub fn start_login(
        &self,
        return_to: &str,
        hints: &[(String, String)],
        expires: u64,
        step_up: &[String],
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
        let acr = if step_up.is_empty() {
            &self.settings.acr
        } else {
            request = request.add_extra_param("prompt", "login");
            step_up
        };
        if !acr.is_empty() {
            match self.settings.acr_request {
                AcrRequest::AcrValues => {
                    for value in acr {
                        request = request
                            .add_auth_context_value(AuthenticationContextClass::new(value.clone()));
                    }
                }
                AcrRequest::ClaimsParameter => {
                    let claims = serde_json::json!({
                        "id_token": {"acr": {"essential": true, "values": acr}}
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
            acr: step_up.to_vec(),
        };
        Ok((url, login))
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
