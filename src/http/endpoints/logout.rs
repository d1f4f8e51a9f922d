//! `/.guichet/logout` and `/.guichet/logged-out`: signing out here and at the provider, only
//! when asked from guichet's own origin.

use pingora::http::RequestHeader;

use super::query_param;
use crate::cookies::clear_cookie;
use crate::gateway::Gateway;
use crate::http::pages::{self, PageError, Reply};
use crate::http::routes::Route;
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
pub async fn logout(gateway: &Gateway, request: &RequestHeader) -> Reply {
    if !is_same_origin(request, &gateway.settings().public_url) {
        return pages::logout_confirmation(gateway.pages());
    }
    let settings = &gateway.settings().session;
    let mut target = Route::LoggedOut.path().to_string();
    if let Some(id) = gateway.cookies().session_id(request) {
        if let Some(session) = gateway.sessions().remove(&id).await {
            gateway
                .metrics()
                .sessions_ended
                .with_label_values(&["logout"])
                .inc();
            let hint = match &session.id_token {
                Some(token) => Some(token.to_text()),
                None => gateway.logout_hints().from_request(&id.to_key(), request),
            };
            match hint {
                Some(hint) => {
                    let state = random_token();
                    let logged_out = Route::LoggedOut.url(&gateway.settings().public_url);
                    if let Some(url) = gateway
                        .provider(session.provider())
                        .and_then(|p| p.logout_url(&hint, &state, &logged_out))
                    {
                        gateway.logouts().put(state).await;
                        target = url.to_string();
                    }
                }
                None => tracing::warn!(
                    provider = %session.provider(),
                    sub_hash = %session.sub_hash,
                    "logout without the id_token hint (its cookie was deleted, or sealed by another key: a restart without [session.shared]): the session ends here, not at the provider"
                ),
            }
        }
    }
    Reply::redirect(&target)
        .with_header(
            "set-cookie",
            clear_cookie(&settings.cookie_name, settings.secure),
        )
        .with_header("set-cookie", gateway.logout_hints().clear())
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
