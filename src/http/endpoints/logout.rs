//! `/.guichet/logout` and `/.guichet/logged-out`: signing out here and at the provider, only
//! when asked from guichet's own origin.

use std::sync::Arc;

use pingora::http::RequestHeader;

use super::query_param;
use crate::cookies::clear_cookie;
use crate::gateway::Gateway;
use crate::http::pages::{self, PageError, Reply};
use crate::http::routes::Route;
use crate::oidc::Provider;
use crate::session::random_token;

/// Whether a request comes from guichet's own origin, or from the visitor directly (a typed
/// address, a bookmark): `Sec-Fetch-Site` when the browser sends it, else `Origin`, else
/// `Referer`. Without any of them, it is not trusted.
pub fn is_same_origin(request: &RequestHeader, public_url: &url::Url) -> bool {
    let header = |name: &str| request.headers.get(name).map(|v| v.as_bytes());
    if let Some(site) = header("sec-fetch-site") {
        return site == b"same-origin" || site == b"none";
    }
    let origin = public_url.origin().ascii_serialization();
    if let Some(sent) = header("origin") {
        return sent == origin.as_bytes();
    }
    match header("referer") {
        Some(referer) => {
            referer.starts_with(origin.as_bytes())
                && matches!(referer.get(origin.len()), None | Some(b'/'))
        }
        None => false,
    }
}

/// `/.guichet/logout`: from this origin, drops the session, then RP-initiated logout at its
/// provider with the id_token as hint (kept by the session, or by the browser's hint cookie);
/// from anywhere else, a page asking to confirm. Without a hint that opens, the session ends
/// here only, and the log says so.
///
/// A session that already ended by itself (idle, lifetime, evicted) may leave the visitor
/// signed in at the provider, where the next login would go through without a prompt: when the
/// browser still has the session's cookie and its hint, the provider's session is ended too
/// (the provider is the one that issued the hint's id_token, for this client).
pub async fn logout(gateway: &Gateway, request: &RequestHeader) -> Reply {
    if !is_same_origin(request, &gateway.settings().public_url) {
        return pages::logout_confirmation(gateway.pages());
    }
    let settings = &gateway.settings().session;
    let mut target = None;
    if let Some(id) = gateway.cookies().session_id(request) {
        let key = id.to_key();
        match gateway.sessions().remove(&id).await {
            Some(session) => {
                gateway
                    .metrics()
                    .sessions_ended
                    .with_label_values(&["logout"])
                    .inc();
                let hint = match &session.id_token {
                    Some(token) => Some(token.to_text()),
                    None => gateway.logout_hints().from_request(&key, request),
                };
                match hint {
                    Some(hint) => {
                        if let Some(provider) = gateway.provider(session.provider()) {
                            target = provider_logout(gateway, provider, &hint).await;
                        }
                    }
                    None => tracing::warn!(
                        provider = %session.provider(),
                        sub_hash = %session.sub_hash,
                        "logout without the id_token hint (its cookie was deleted, or sealed by another key: a restart without [session.shared]): the session ends here, not at the provider"
                    ),
                }
            }
            None => {
                if let Some(hint) = gateway.logout_hints().from_request(&key, request) {
                    match issuer_of(gateway, &hint) {
                        Some(provider) => {
                            tracing::info!(
                                provider = %provider.id(),
                                "logout after the session ended by itself: ending the provider's session with the browser's hint"
                            );
                            target = provider_logout(gateway, provider, &hint).await;
                        }
                        None => tracing::warn!(
                            "logout after the session ended: its hint names no configured provider; nothing to end at a provider"
                        ),
                    }
                }
            }
        }
    }
    let target = target.unwrap_or_else(|| Route::LoggedOut.path().to_string());
    Reply::redirect(&target)
        .with_header(
            "set-cookie",
            clear_cookie(&settings.cookie_name, settings.secure),
        )
        .with_header("set-cookie", gateway.logout_hints().clear())
}

/// The provider's end-session URL for `hint`, its `state` kept for the return; `None` when the
/// provider has no end-session endpoint (or no metadata yet).
async fn provider_logout(gateway: &Gateway, provider: &Provider, hint: &str) -> Option<String> {
    let state = random_token();
    let logged_out = Route::LoggedOut.url(&gateway.settings().public_url);
    let url = provider.logout_url(hint, &state, &logged_out)?;
    gateway.logouts().put(state).await;
    Some(url.to_string())
}

/// The configured provider that issued `id_token` to this client: the one whose client id its
/// `aud` names and whose issuer its `iss` is (or the only one whose client id it names). The
/// token is one guichet verified at login and the browser kept sealed (it opened for this
/// session only), so its claims are read, not verified again (`insecure_decode_claims`).
fn issuer_of<'g>(gateway: &'g Gateway, id_token: &str) -> Option<&'g Arc<Provider>> {
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
        aud: Audience,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(id_token).ok()?;
    let names = |client_id: &str| match &claims.aud {
        Audience::One(aud) => aud == client_id,
        Audience::Many(auds) => auds.iter().any(|aud| aud == client_id),
    };
    let mine: Vec<&Arc<Provider>> = gateway
        .providers()
        .iter()
        .filter(|provider| names(&provider.settings.client_id))
        .collect();
    let issuer = claims.iss.trim_end_matches('/');
    // Several providers with this issuer and client id (one provider configured twice) share
    // its end-session endpoint: the first will do.
    match mine
        .iter()
        .find(|provider| provider.settings.issuer.trim_end_matches('/') == issuer)
    {
        Some(provider) => Some(provider),
        // A provider whose tokens name another issuer than its configured one: this client's
        // only provider is still the one.
        None => match mine[..] {
            [only] => Some(only),
            _ => None,
        },
    }
}

/// `/.guichet/me`: who the visitor is signed in as (name, email, provider, level), with a
/// sign-out button; without a session, a link to sign in.
pub async fn me(gateway: &Gateway, request: &RequestHeader) -> Reply {
    let session = match gateway.cookies().session_id(request) {
        Some(id) => gateway.sessions().get(&id).await,
        None => None,
    };
    let Some(session) = session else {
        return pages::not_signed_in(gateway.pages());
    };
    let identity = &session.identity;
    let text = |claim: &str| {
        identity
            .claim(claim)
            .map(|c| c.to_header_text().into_owned())
    };
    let name = [
        text("given_name"),
        text("usual_name").or_else(|| text("family_name")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let provider = gateway
        .provider(session.provider())
        .map_or(session.provider(), |p| p.settings.display_name.as_str());
    pages::me(
        gateway.pages(),
        &pages::SignedIn {
            name: &name,
            email: text("email").as_deref(),
            provider,
            level: identity.acr(),
        },
    )
}

/// `GET /.guichet/logged-out[?state=…]`: the provider's `state` must be one guichet sent.
pub async fn logged_out(gateway: &Gateway, request: &RequestHeader) -> Result<Reply, PageError> {
    if let Some(state) = query_param(request, "state") {
        if !gateway.logouts().take(&state).await {
            return Err(PageError::logout_state_invalid());
        }
    }
    Ok(pages::logged_out(gateway.pages()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    /// A token with these claims (the signature is not looked at: the hint was verified at login
    /// and sealed since).
    fn token(claims: serde_json::Value) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[tokio::test]
    async fn the_hint_names_its_provider_by_issuer_and_client_id() {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let mut settings =
            crate::demo::demo_settings(&crate::demo::DemoAddresses::all(any), &"s".repeat(40));
        assert!(settings.providers.len() >= 3);
        for (i, provider) in settings.providers.iter_mut().enumerate() {
            provider.issuer = format!("https://op{i}.example/api/v2");
        }
        settings.providers[0].client_id = "only-here".into();
        settings.providers[1].client_id = "shared".into();
        settings.providers[2].client_id = "shared".into();
        let gateway = Gateway::new(settings).unwrap();
        let found = |claims| issuer_of(&gateway, &token(claims)).map(|p| p.id().to_string());
        for provider in gateway.providers() {
            let (issuer, client) = (&provider.settings.issuer, &provider.settings.client_id);
            let id = Some(provider.id().to_string());
            assert_eq!(found(json!({"iss": issuer, "aud": client})), id);
            assert_eq!(
                found(
                    json!({"iss": format!("{}/", issuer.trim_end_matches('/')), "aud": ["x", client]})
                ),
                id
            );
        }
        let (first, second) = (&gateway.providers()[0], &gateway.providers()[1]);
        // Another issuer: the only provider with that client id is still the one; with two, none.
        assert_eq!(
            found(json!({"iss": "https://elsewhere.example", "aud": "only-here"})),
            Some(first.id().to_string())
        );
        assert_eq!(
            found(json!({"iss": "https://elsewhere.example", "aud": "shared"})),
            None
        );
        // A client id no provider has: none, whatever the issuer.
        assert_eq!(
            found(json!({"iss": second.settings.issuer, "aud": "someone-else"})),
            None
        );
        // Not a token with those claims: none, no panic.
        for text in [
            String::new(),
            "no dots".into(),
            "a.%%%.b".into(),
            format!("a.{}.b", URL_SAFE_NO_PAD.encode("not json")),
            token(json!({"aud": "only-here"})),
            token(json!({"iss": first.settings.issuer})),
            token(json!({"iss": 7, "aud": "only-here"})),
        ] {
            assert!(issuer_of(&gateway, &text).is_none(), "{text}");
        }
    }
}
