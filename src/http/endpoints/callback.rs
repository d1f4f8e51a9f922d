//! `/.guichet/callback`: the provider sends the browser back here; the login state is taken
//! from this browser's cookie, the provider's answer verified, and the session created.

use pingora::http::RequestHeader;

use super::query_param;
use crate::clock::unix_now;
use crate::cookies::set_cookie;
use crate::gateway::Gateway;
use crate::gateway::NewSession;
use crate::http::pages::{PageError, Reply};
use crate::http::routes::login_path;
use crate::login_state::{LoginState, LoginStateError};
use crate::session::SessionRecord;

/// `GET /.guichet/callback?code=…&state=…` (or `error=…`).
pub async fn callback(gateway: &Gateway, request: &RequestHeader) -> Result<Reply, PageError> {
    let state = query_param(request, "state");
    if let Some(error) = query_param(request, "error") {
        // Consume the state so it cannot be replayed after a refusal (its cookie expires).
        if let Some(login) = state.and_then(|state| take_login(gateway, request, &state).ok()) {
            gateway
                .metrics()
                .login(&login.provider, "failed", "provider_error");
        }
        let description = query_param(request, "error_description").unwrap_or_default();
        return Err(PageError::provider_error(&error, &description));
    }
    let (Some(state), Some(code)) = (state, query_param(request, "code")) else {
        return Err(invalid_state(gateway, "callback without state or code"));
    };
    let login = match take_login(gateway, request, &state) {
        Ok(login) => login,
        Err(error) => return no_dead_end(gateway, request, error).await,
    };
    let Some(provider) = gateway.provider(&login.provider) else {
        return Err(invalid_state(
            gateway,
            "state names a provider no longer configured",
        ));
    };
    let started = std::time::Instant::now();
    let result = provider.finish_login(&code, &login).await;
    gateway
        .metrics()
        .callback_duration
        .with_label_values(&[provider.id()])
        .observe(started.elapsed().as_secs_f64());
    let outcome = result.map_err(|e| {
        gateway.metrics().login(provider.id(), "failed", e.reason());
        PageError::from_oidc(&e)
    })?;
    if !gateway.logins().complete(&state).await {
        return Err(invalid_state(
            gateway,
            "login state already used on another replica",
        ));
    }
    let record = SessionRecord {
        identity: outcome.identity,
        id_token: outcome.id_token,
        access_token: Some(outcome.access_token),
        created_at_ms: crate::clock::unix_millis(),
    };
    let reply = start_session(gateway, request, record, &login.return_to).await?;
    gateway.metrics().login(provider.id(), "completed", "");
    Ok(reply.with_header("set-cookie", gateway.logins().clear(&state)))
}

/// A refused `state`, counted and explained in the log.
fn invalid_state(gateway: &Gateway, log: &str) -> PageError {
    gateway
        .metrics()
        .login("unknown", "failed", "state_invalid");
    PageError::state_invalid(log)
}

/// The login `state` names, from this browser's cookie.
fn take_login(
    gateway: &Gateway,
    request: &RequestHeader,
    state: &str,
) -> Result<LoginState, LoginStateError> {
    let cookies = request.headers.get_all("cookie").iter();
    gateway.logins().take(state, cookies, unix_now())
}

/// A callback this browser cannot use (the back button, a tab left open past the login's
/// lifetime, a login started before a restart): a visitor already signed in goes back to the
/// application; another is sent through a new login — once: a second unusable callback within
/// two minutes gets the error page. A replayed state (used) always gets the error page.
async fn no_dead_end(
    gateway: &Gateway,
    request: &RequestHeader,
    error: LoginStateError,
) -> Result<Reply, PageError> {
    let (log, return_to) = match error {
        LoginStateError::NotInThisBrowser => ("no login cookie for this state: expired, already used, or started in another browser", "/".to_string()),
        LoginStateError::Invalid => ("login cookie altered or sealed by another key (a restart, or session.shared.key differs between replicas)", "/".to_string()),
        LoginStateError::Expired { return_to } => ("login state expired", return_to),
        LoginStateError::Used => return Err(invalid_state(gateway, "login state already used")),
    };
    if let Some(id) = gateway.cookies().session_id(request) {
        if gateway.sessions().get(&id).await.is_some() {
            tracing::info!(
                reason = log,
                "callback not usable, visitor already signed in: back to the application"
            );
            return Ok(Reply::redirect(&return_to));
        }
    }
    if gateway
        .logins()
        .was_restarted(request.headers.get_all("cookie").iter())
    {
        return Err(invalid_state(gateway, log));
    }
    gateway
        .metrics()
        .login("unknown", "failed", "state_invalid");
    tracing::info!(reason = log, "callback not usable: the login starts again");
    Ok(Reply::redirect(&login_path(&return_to, &[]))
        .with_header("set-cookie", gateway.logins().mark_restart()))
}

/// Ends the browser's previous session, if any, stores the new one and sends the visitor back;
/// the browser keeps the logout hint when it can ([`crate::logout_hint`]).
async fn start_session(
    gateway: &Gateway,
    request: &RequestHeader,
    record: SessionRecord,
    return_to: &str,
) -> Result<Reply, PageError> {
    let settings = &gateway.settings().session;
    if let Some(old) = gateway.cookies().session_id(request) {
        gateway.sessions().remove(&old).await;
    }
    let Some(NewSession { id, session, hint }) = gateway.start_session(record).await else {
        return Err(invalid_state(
            gateway,
            "state names a provider no longer configured",
        ));
    };
    gateway.metrics().sessions_created.inc();
    tracing::info!(provider = %session.provider(), sub_hash = %session.sub_hash, "login completed");
    let reply = Reply::redirect(return_to).with_header(
        "set-cookie",
        set_cookie(
            &settings.cookie_name,
            &id.to_cookie_value(),
            Some(settings.max_lifetime),
            settings.secure,
        ),
    );
    Ok(match hint {
        Some(hint) => reply.with_header("set-cookie", hint),
        None => reply,
    })
}
