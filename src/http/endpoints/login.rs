//! `/.guichet/login`: starts a login at a provider, or shows the chooser when several are
//! configured and none is named.

use http::StatusCode;
use pingora::http::RequestHeader;

use super::query_param;
use crate::clock::unix_now;
use std::sync::Arc;

use crate::gateway::Gateway;
use crate::http::pages::{Method, PageError, Reply};
use crate::http::routes::login_path;
use crate::http::visitor::safe_return_to;
use crate::login_state::LOGIN_STATE_TTL;
use crate::oidc::Provider;

/// Longest hint (`login_hint`, `idp_hint`, `siret_hint`) passed on to a provider.
const MAX_HINT_LEN: usize = 256;

/// The hints a visitor may pass through to the provider.
const HINTS: [&str; 3] = ["idp_hint", "login_hint", "siret_hint"];

/// The visitor's hints, each at most [`MAX_HINT_LEN`] long.
fn hints(request: &RequestHeader) -> Vec<(String, String)> {
    HINTS
        .iter()
        .filter_map(|name| query_param(request, name).map(|v| (name.to_string(), v)))
        .filter(|(_, value)| value.len() <= MAX_HINT_LEN)
        .collect()
}

/// `acr=eidas2` (space-separated levels): a route's step-up, asked for above the provider's own
/// levels (which still apply); at most 8 levels of 128 characters.
fn step_up(request: &RequestHeader) -> Vec<String> {
    query_param(request, "acr")
        .map(|levels| {
            levels
                .split([' ', ','])
                .filter(|level| !level.is_empty() && level.len() <= 128)
                .take(8)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /.guichet/login?rd=/path[&provider=id]`: starts a login, or shows the chooser.
pub async fn login(gateway: &Gateway, request: &RequestHeader) -> Result<Reply, PageError> {
    let return_to = safe_return_to(query_param(request, "rd").as_deref());
    // `providers=a,b`: a route accepts only these; the others are not offered.
    let only = query_param(request, "providers");
    let offered: Vec<&Arc<Provider>> = gateway
        .providers()
        .iter()
        .filter(|p| {
            only.as_deref()
                .is_none_or(|ids| ids.split(',').any(|id| id == p.id()))
        })
        .collect();
    let provider = match query_param(request, "provider") {
        Some(id) => gateway
            .provider(&id)
            .ok_or_else(|| PageError::unknown_provider(&id))?,
        None if offered.len() == 1 && gateway.pages().alternative.is_none() => offered[0],
        None if offered.is_empty() => {
            return Err(PageError::unknown_provider(only.as_deref().unwrap_or("")))
        }
        None => return Ok(chooser(gateway, &offered, request, &return_to)),
    };
    let expires = unix_now() + LOGIN_STATE_TTL.as_secs();
    let (url, login) = provider
        .start_login(&return_to, &hints(request), expires, &step_up(request))
        .map_err(|e| {
            gateway.metrics().login(provider.id(), "failed", e.reason());
            PageError::from_oidc(&e)
        })?;
    gateway.metrics().login(provider.id(), "started", "");
    let mut reply = Reply::redirect(url.as_str());
    for cookie in gateway
        .logins()
        .begin(&login, request.headers.get_all("cookie").iter())
    {
        reply = reply.with_header("set-cookie", cookie);
    }
    Ok(reply)
}

/// The chooser: the federations' official buttons first (each with its "what is it?" link,
/// in a new window, and its introductory sentence when there are several ways to sign in),
/// then other providers, then the application's own sign-in (`pages.alternative_login_url`),
/// each separated by "OU". Plain links: no script, no pop-up, no frame.
fn chooser(
    gateway: &Gateway,
    providers: &[&Arc<Provider>],
    request: &RequestHeader,
    return_to: &str,
) -> Reply {
    let hints = hints(request);
    let mut methods: Vec<Method> = providers
        .iter()
        .map(|provider| {
            let mut extra: Vec<(&str, &str)> = vec![("provider", provider.id())];
            extra.extend(hints.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            Method::new(
                provider.settings.display_name.as_str(),
                login_path(return_to, &extra),
                provider.settings.kind.button(),
            )
        })
        .collect();
    // The federations first, as they ask; otherwise the configured order.
    methods.sort_by_key(|method| method.button.is_none());
    if let Some(alternative) = &gateway.pages().alternative {
        methods.push(Method::new(
            alternative.label.as_str(),
            alternative.href.as_str(),
            None,
        ));
    }
    Reply::html(StatusCode::OK, gateway.pages().chooser(&methods))
}
