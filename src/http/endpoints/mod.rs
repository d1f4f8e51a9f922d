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
        // Answered by the proxy itself, which knows the peer; here only when it is disabled.
        Some(Route::Auth) | None => Err(PageError::not_found()),
    };
    result.unwrap_or_else(|error| render_error(&error, correlation_id))
}
