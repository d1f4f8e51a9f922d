//! guichet's own endpoints under `/.guichet/`: each [`Route`] has its handler here, which takes
//! the request header and returns a [`Reply`] (an error becomes a page through
//! [`render_error`]); `proxy` writes it.

mod callback;
mod keys;
mod login;
mod logout;

use pingora::http::RequestHeader;

use crate::gateway::Gateway;
use crate::http::pages::{render_error, PageError, Reply};
use crate::http::routes::Route;

pub use logout::is_same_origin;

/// A query parameter, decoded.
fn query_param(request: &RequestHeader, name: &str) -> Option<String> {
    let query = request.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Serves a path under `/.guichet/`: `None` when it names none of guichet's routes.
pub async fn handle(
    gateway: &Gateway,
    route: Option<Route>,
    request: &RequestHeader,
    correlation_id: &str,
) -> Reply {
    let result = match route {
        Some(Route::Login) => login::login(gateway, request).await,
        Some(Route::Callback) => callback::callback(gateway, request).await,
        Some(Route::Logout) => Ok(logout::logout(gateway, request).await),
        Some(Route::LoggedOut) => logout::logged_out(gateway, request).await,
        Some(Route::Healthz) => Ok(keys::healthz()),
        Some(Route::Readyz) => Ok(keys::readyz(gateway)),
        Some(Route::Jwks) => Ok(keys::jwks(gateway)),
        Some(Route::ProviderJwks) => Ok(keys::provider_jwks(gateway)),
        Some(Route::Me) => Ok(logout::me(gateway, request).await),
        Some(Route::Assets) => asset(gateway, request.uri.path()),
        // Answered by the proxy itself, which knows the peer; here only when it is disabled.
        Some(Route::Auth) | None => Err(PageError::not_found()),
    };
    result.unwrap_or_else(|error| render_error(gateway.pages(), &error, correlation_id))
}

/// `/.guichet/assets/<name>`: a style sheet or the operator's logo, cacheable for a day (their
/// URLs carry guichet's version).
fn asset(gateway: &Gateway, path: &str) -> Result<Reply, PageError> {
    let name = path
        .strip_prefix(Route::ASSETS_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or_default();
    let (content_type, bytes) = gateway
        .pages()
        .asset(name)
        .ok_or_else(PageError::not_found)?;
    Ok(Reply {
        status: http::StatusCode::OK,
        headers: vec![
            ("content-type", content_type.to_string()),
            ("cache-control", "public, max-age=86400".to_string()),
        ],
        copied: Vec::new(),
        body: bytes.clone(),
    })
}
