//! guichet's own endpoints under `/.guichet/` (login, callback, logout, logged-out, healthz,
//! readyz) and its pages, including the one place that turns an error into a page:
//! [`render_error`].
//!
//! Handlers take the request header and return a [`Reply`]; `proxy` writes it. Pages are French
//! first with a short English line, and every error page carries a correlation id that also
//! appears in the log line written for it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use pingora::http::{RequestHeader, ResponseHeader};
use rand::RngCore;

use crate::assertion::unix_now;
use crate::config::ProviderKind;
use crate::cookies::{self, clear_cookie, set_cookie};
use crate::gateway::Gateway;
use crate::login_state::{LoginStateError, LOGIN_STATE_TTL};
use crate::oidc::OidcError;
use crate::policy::safe_return_to;
use crate::session::{random_token, SessionId, SessionRecord};

/// What guichet's own pages allow: no script, no frame, styles only inline, forms only to
/// itself, images only its own or inline.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Longest hint (`login_hint`, `idp_hint`, `siret_hint`) passed on to a provider.
const MAX_HINT_LEN: usize = 256;

// === Reply ===

/// A response guichet writes itself.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn html(status: StatusCode, html: String) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "text/html; charset=utf-8".into())],
            body: Bytes::from(html),
        }
    }

    pub fn text(status: StatusCode, text: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    pub fn redirect(location: &str) -> Self {
        Reply {
            status: StatusCode::FOUND,
            headers: vec![("location", location.to_string())],
            body: Bytes::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The response header, with the headers every own response carries.
    pub fn to_response_header(&self) -> pingora::Result<ResponseHeader> {
        let mut header = ResponseHeader::build(self.status, Some(self.headers.len() + 4))?;
        for (name, value) in &self.headers {
            header.append_header(*name, value.as_str())?;
        }
        header.insert_header("content-length", self.body.len().to_string())?;
        if !self
            .headers
            .iter()
            .any(|(name, _)| *name == "cache-control")
        {
            header.insert_header("cache-control", "no-store")?;
        }
        header.insert_header("x-content-type-options", "nosniff")?;
        header.insert_header("referrer-policy", "no-referrer")?;
        header.insert_header("content-security-policy", CONTENT_SECURITY_POLICY)?;
        header.insert_header("x-frame-options", "DENY")?;
        Ok(header)
    }
}

/// A short random id tying an error page to its log line.
pub fn new_correlation_id() -> String {
    let mut bytes = [0u8; 9];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

// === pages ===

/// Escapes text for HTML.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page around `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:Marianne,Arial,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#161616}}
h1{{font-size:1.6rem}} .en{{color:#666}} .id{{font-family:monospace;color:#666}} .button{{display:inline-block;background:#000091;color:#fff;padding:.6rem 1rem;text-decoration:none;margin:.3rem 0;border:0;font:inherit;cursor:pointer}}</style>
</head><body><main>
{body}
</main></body></html>
"#,
        title = escape_html(title),
    )
}

/// An error a visitor can meet, with what to show and what to log.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    /// Bounded label for metrics.
    pub reason: &'static str,
    pub title: &'static str,
    pub detail_fr: String,
    pub detail_en: String,
    /// Detail for the operator; never shown, never secret.
    pub log: String,
}

impl PageError {
    fn new(
        status: StatusCode,
        reason: &'static str,
        title: &'static str,
        detail_fr: impl Into<String>,
        detail_en: impl Into<String>,
    ) -> Self {
        PageError {
            status,
            reason,
            title,
            detail_fr: detail_fr.into(),
            detail_en: detail_en.into(),
            log: String::new(),
        }
    }

    fn logged(mut self, log: impl Into<String>) -> Self {
        self.log = log.into();
        self
    }

    pub fn from_oidc(error: &OidcError) -> Self {
        let (title, fr, en) = match error {
            OidcError::NotReady => (
                "Service d'identification indisponible",
                "Le fournisseur d'identité ne répond pas pour le moment. Réessayez dans quelques minutes.",
                "The identity provider is not available yet. Please try again in a few minutes.",
            ),
            OidcError::Unreachable { .. } | OidcError::BadResponse { .. } => (
                "Service d'identification injoignable",
                "Le fournisseur d'identité n'a pas pu être joint ou a répondu de façon inattendue. Réessayez plus tard.",
                "The identity provider could not be reached or answered unexpectedly. Please try again later.",
            ),
            OidcError::Timeout { .. } => (
                "Service d'identification trop lent",
                "Le fournisseur d'identité n'a pas répondu à temps. Réessayez plus tard.",
                "The identity provider did not answer in time. Please try again later.",
            ),
            OidcError::CodeRejected(_)
            | OidcError::IdTokenInvalid(_)
            | OidcError::UserInfoInvalid(_) => (
                "Connexion refusée",
                "La réponse du fournisseur d'identité n'a pas pu être vérifiée. Recommencez la connexion.",
                "The identity provider's answer could not be verified. Please sign in again.",
            ),
            OidcError::AcrTooLow { .. } => (
                "Niveau de sécurité insuffisant",
                "La connexion a été faite avec un niveau de sécurité (eIDAS) inférieur à celui que demande cette application. Reconnectez-vous avec un moyen d'identification plus fort.",
                "You signed in with a lower assurance level (eIDAS) than this application requires. Please sign in again with a stronger method.",
            ),
            OidcError::MissingClaims(_) => (
                "Informations manquantes",
                "Le fournisseur d'identité n'a pas transmis toutes les informations obligatoires pour cette application (par exemple si leur partage a été refusé).",
                "The identity provider did not send all the information this application requires (for instance if sharing it was refused).",
            ),
            OidcError::Configuration(_) => (
                "Erreur de configuration",
                "La passerelle est mal configurée. Contactez l'administrateur en indiquant la référence ci-dessous.",
                "The gateway is misconfigured. Please contact the administrator with the reference below.",
            ),
        };
        PageError::new(error.status(), error.reason(), title, fr, en).logged(error.to_string())
    }
}

/// Renders an error page and writes its one log line (5xx at `error`, 4xx at `info`).
pub fn render_error(error: &PageError, correlation_id: &str) -> Reply {
    if error.status.is_server_error() {
        tracing::error!(correlation_id, status = error.status.as_u16(), reason = error.reason, detail = %error.log, "{}", error.title);
    } else {
        tracing::info!(correlation_id, status = error.status.as_u16(), reason = error.reason, detail = %error.log, "{}", error.title);
    }
    let body = format!(
        r#"<h1>{title}</h1>
<p>{fr}</p>
<p class="en" lang="en">{en}</p>
<p><a class="button" href="/">Revenir à l'accueil / Back to the start page</a></p>
<p class="id">Référence / Reference : {id} — {status}</p>"#,
        title = escape_html(error.title),
        fr = escape_html(&error.detail_fr),
        en = escape_html(&error.detail_en),
        id = escape_html(correlation_id),
        status = error.status.as_u16(),
    );
    Reply::html(error.status, page(error.title, &body))
}

// === handlers ===

/// Query parameter lookup.
fn query_param(request: &RequestHeader, name: &str) -> Option<String> {
    let query = request.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The session id in the request's session cookie, if well-formed.
pub fn session_id(request: &RequestHeader, name: &str) -> Option<SessionId> {
    cookies::find(request.headers.get_all("cookie").iter(), name)
        .and_then(SessionId::from_cookie_value)
}

/// Serves `/.guichet/<endpoint>`.
pub async fn handle(
    gateway: &Gateway,
    endpoint: &str,
    request: &RequestHeader,
    correlation_id: &str,
) -> Reply {
    let result = match endpoint {
        "login" => login(gateway, request).await,
        "callback" => callback(gateway, request).await,
        "logout" if is_same_origin(request, &gateway.settings.public_url) => {
            Ok(logout(gateway, request).await)
        }
        "logout" => Ok(logout_confirmation()),
        "logged-out" => logged_out(gateway, request).await,
        "healthz" => Ok(Reply::text(StatusCode::OK, "ok\n")),
        "readyz" => Ok(readyz(gateway)),
        "jwks.json" => Ok(jwks(gateway)),
        "provider-jwks.json" => Ok(jwk_set(gateway.provider_jwks.clone())),
        _ => Err(PageError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Page introuvable",
            "Cette page de la passerelle n'existe pas.",
            "This gateway page does not exist.",
        )),
    };
    result.unwrap_or_else(|error| render_error(&error, correlation_id))
}

/// `GET /.guichet/jwks.json`: the assertion's public keys (an empty set without assertions).
fn jwks(gateway: &Gateway) -> Reply {
    jwk_set(
        gateway
            .assertion
            .as_ref()
            .map_or_else(|| Bytes::from_static(b"{\"keys\":[]}"), |a| a.jwks()),
    )
}

/// A public JWK Set, cacheable for five minutes. `/.guichet/provider-jwks.json` is the
/// providers' view of guichet: its encryption (`use: enc`) and client-assertion (`use: sig`) keys.
fn jwk_set(body: Bytes) -> Reply {
    Reply {
        status: StatusCode::OK,
        headers: vec![
            ("content-type", "application/jwk-set+json".into()),
            ("cache-control", "public, max-age=300".into()),
        ],
        body,
    }
}

fn readyz(gateway: &Gateway) -> Reply {
    let waiting: Vec<&str> = gateway
        .providers
        .iter()
        .filter(|p| !p.is_ready())
        .map(|p| p.id())
        .collect();
    if waiting.is_empty() {
        Reply::text(StatusCode::OK, "ready\n")
    } else {
        Reply::text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("waiting for provider metadata: {}\n", waiting.join(", ")),
        )
    }
}

/// `GET /.guichet/login?rd=/path[&provider=id]`: starts a login, or shows the chooser.
async fn login(gateway: &Gateway, request: &RequestHeader) -> Result<Reply, PageError> {
    let return_to = safe_return_to(query_param(request, "rd").as_deref());
    let provider = match query_param(request, "provider") {
        Some(id) => gateway.provider(&id).ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "unknown_provider",
                "Fournisseur d'identité inconnu",
                "Le fournisseur d'identité demandé n'est pas proposé ici.",
                "The requested identity provider is not offered here.",
            )
            .logged(format!("unknown provider id {id:?}"))
        })?,
        None if gateway.providers.len() == 1 => &gateway.providers[0],
        None => return Ok(chooser(gateway, request, &return_to)),
    };

    let hints: Vec<(String, String)> = ["idp_hint", "login_hint", "siret_hint"]
        .iter()
        .filter_map(|name| query_param(request, name).map(|v| (name.to_string(), v)))
        .filter(|(_, value)| value.len() <= MAX_HINT_LEN)
        .collect();
    let expires = unix_now() + LOGIN_STATE_TTL.as_secs();
    let (url, login) = provider
        .start_login(&return_to, &hints, expires)
        .map_err(|e| {
            gateway.metrics.login(provider.id(), "failed", e.reason());
            PageError::from_oidc(&e)
        })?;
    gateway.metrics.login(provider.id(), "started", "");
    let mut reply = Reply::redirect(url.as_str());
    for cookie in gateway
        .logins
        .begin(&login, request.headers.get_all("cookie").iter())
    {
        reply = reply.with_header("set-cookie", cookie);
    }
    Ok(reply)
}

/// The federation's brand and "what is it" page for a kind, if it is a federation.
fn federation_brand(kind: ProviderKind) -> Option<(&'static str, &'static str)> {
    match kind {
        ProviderKind::ProConnect => Some(("ProConnect", "https://www.proconnect.gouv.fr/")),
        ProviderKind::AgentConnect => Some(("AgentConnect", "https://agentconnect.gouv.fr/")),
        ProviderKind::FranceConnectV1 | ProviderKind::FranceConnectV2 => {
            Some(("FranceConnect", "https://franceconnect.gouv.fr/"))
        }
        ProviderKind::FranceConnectPlus => Some((
            "FranceConnect+",
            "https://franceconnect.gouv.fr/france-connect-plus",
        )),
        ProviderKind::Oidc => None,
    }
}

/// The provider chooser: one button per provider, in the federations' wording ("S'identifier
/// avec …" and the "Qu'est-ce que … ?" link, in a new window), plain links that work without
/// JavaScript and read well with a screen reader.
fn chooser(gateway: &Gateway, request: &RequestHeader, return_to: &str) -> Reply {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut passthrough = String::new();
    for hint in ["idp_hint", "login_hint", "siret_hint"] {
        if let Some(value) = query_param(request, hint) {
            passthrough.push_str(&format!("&{hint}={}", encode(&value)));
        }
    }
    let mut items = String::new();
    for provider in &gateway.providers {
        let href = format!(
            "/.guichet/login?provider={}&rd={}{passthrough}",
            encode(provider.id()),
            encode(return_to),
        );
        let (brand, about) = match federation_brand(provider.settings.kind) {
            Some((brand, about)) => (brand.to_string(), Some((brand, about))),
            None => (provider.settings.display_name.clone(), None),
        };
        items.push_str(&format!(
            "<li class=\"fr-connect-group\">\n<a class=\"fr-connect\" href=\"{href}\"><span class=\"fr-connect__login\">S'identifier avec</span> <span class=\"fr-connect__brand\">{brand}</span></a>\n",
            href = escape_html(&href),
            brand = escape_html(&brand),
        ));
        if let Some((brand, about)) = about {
            items.push_str(&format!(
                "<p><a href=\"{about}\" target=\"_blank\" rel=\"noopener\" title=\"Qu'est-ce que {brand} ? - nouvelle fenêtre\">Qu'est-ce que {brand} ?</a></p>\n",
                brand = escape_html(brand),
            ));
        }
        items.push_str("</li>\n");
    }
    let body = format!(
        "<h1>Connexion</h1>\n<p>Choisissez votre service d'identification.</p>\n<p class=\"en\" lang=\"en\">Choose how to sign in.</p>\n\
         <style>.fr-connect-group{{list-style:none;margin:1.5rem 0}} .fr-connect{{display:inline-flex;flex-direction:column;background:#000091;color:#fff;padding:.75rem 1.5rem .75rem 1.5rem;text-decoration:none;min-width:14rem}} .fr-connect:focus{{outline:3px solid #0a76f6;outline-offset:2px}} .fr-connect__brand{{font-weight:700;font-size:1.25rem}}</style>\n\
         <ul aria-label=\"Services d'identification\">\n{items}</ul>"
    );
    Reply::html(StatusCode::OK, page("Connexion", &body))
}

/// `GET /.guichet/callback?code=…&state=…` (or `error=…`).
async fn callback(gateway: &Gateway, request: &RequestHeader) -> Result<Reply, PageError> {
    let state = query_param(request, "state");
    if let Some(error) = query_param(request, "error") {
        let description = query_param(request, "error_description").unwrap_or_default();
        // Consume the state so it cannot be replayed after a refusal (its cookie expires).
        if let Some(state) = &state {
            if let Ok(login) =
                gateway
                    .logins
                    .take(state, request.headers.get_all("cookie").iter(), unix_now())
            {
                gateway
                    .metrics
                    .login(&login.provider, "failed", "provider_error");
            }
        }
        let short: String = error.chars().take(64).collect();
        let (status, title, fr, en) = match error.as_str() {
            "access_denied" => (
                StatusCode::FORBIDDEN,
                "Connexion annulée",
                "La connexion a été annulée ou refusée auprès du fournisseur d'identité.",
                "Sign-in was cancelled or refused at the identity provider.",
            ),
            "temporarily_unavailable" | "server_error" => (
                StatusCode::BAD_GATEWAY,
                "Service d'identification indisponible",
                "Le fournisseur d'identité rencontre un problème. Réessayez plus tard.",
                "The identity provider has a problem. Please try again later.",
            ),
            _ => (
                StatusCode::BAD_REQUEST,
                "Connexion impossible",
                "Le fournisseur d'identité a refusé la demande de connexion.",
                "The identity provider refused the sign-in request.",
            ),
        };
        return Err(PageError::new(
            status,
            "provider_error",
            title,
            format!("{fr} (code : {short})"),
            format!("{en} (code: {short})"),
        )
        .logged(format!(
            "provider returned error={short:?} error_description={:?}",
            description.chars().take(200).collect::<String>()
        )));
    }

    let invalid_state = |log: &str| {
        gateway.metrics.login("unknown", "failed", "state_invalid");
        PageError::new(
            StatusCode::BAD_REQUEST,
            "state_invalid",
            "Lien de connexion expiré ou déjà utilisé",
            "Cette connexion a expiré, a déjà été utilisée, ou a été commencée dans un autre navigateur. Recommencez depuis l'application.",
            "This sign-in has expired, was already used, or was started in another browser. Please start again from the application.",
        )
        .logged(log.to_string())
    };
    let (Some(state), Some(code)) = (state, query_param(request, "code")) else {
        return Err(invalid_state("callback without state or code"));
    };
    let login = match gateway
        .logins
        .take(&state, request.headers.get_all("cookie").iter(), unix_now())
    {
        Ok(login) => login,
        Err(LoginStateError::NotInThisBrowser) => {
            return Err(invalid_state(
                "no login cookie for this state: expired, already used, or started in another browser",
            ))
        }
        Err(LoginStateError::Invalid) => {
            return Err(invalid_state(
                "login cookie altered or sealed by another key (a restart, or session.shared.key differs between replicas)",
            ))
        }
        Err(LoginStateError::Expired) => return Err(invalid_state("login state expired")),
        Err(LoginStateError::Used) => return Err(invalid_state("login state already used")),
    };
    let clear_login = gateway.logins.clear(&state);
    let Some(provider) = gateway.provider(&login.provider) else {
        return Err(invalid_state("state names a provider no longer configured"));
    };
    let started = std::time::Instant::now();
    let result = provider.finish_login(&code, &login).await;
    gateway
        .metrics
        .callback_duration
        .with_label_values(&[provider.id()])
        .observe(started.elapsed().as_secs_f64());
    let outcome = result.map_err(|e| {
        gateway.metrics.login(provider.id(), "failed", e.reason());
        PageError::from_oidc(&e)
    })?;
    if !gateway.logins.complete(&state).await {
        return Err(invalid_state("login state already used on another replica"));
    }

    let settings = &gateway.settings.session;
    if let Some(old) = session_id(request, &settings.cookie_name) {
        gateway.sessions.remove(&old).await;
    }
    let record = SessionRecord {
        identity: outcome.identity,
        id_token: outcome.id_token,
        access_token: Some(outcome.access_token),
        created_at_unix: unix_now(),
    };
    let Some((id, session)) = gateway.sessions.create(record).await else {
        return Err(invalid_state("state names a provider no longer configured"));
    };
    gateway.metrics.login(provider.id(), "completed", "");
    gateway.metrics.sessions_created.inc();
    tracing::info!(provider = %provider.id(), sub_hash = %session.sub_hash, "login completed");
    Ok(Reply::redirect(&login.return_to)
        .with_header(
            "set-cookie",
            set_cookie(
                &settings.cookie_name,
                &id.to_cookie_value(),
                Some(gateway.settings.session.max_lifetime),
                settings.secure,
            ),
        )
        .with_header("set-cookie", clear_login))
}

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

/// `/.guichet/logout` reached from another site (a link, a redirect, a form) or without any
/// origin signal: a page asking the visitor to confirm, whose button posts from this origin.
fn logout_confirmation() -> Reply {
    let body = r#"<h1>Se déconnecter ?</h1>
<p>Confirmez que vous voulez vous déconnecter de cette application et de votre service d'identification.</p>
<p class="en" lang="en">Please confirm that you want to sign out of this application and of your identity provider.</p>
<form method="post" action="/.guichet/logout">
<button type="submit" class="button">Se déconnecter / Sign out</button>
</form>
<p><a href="/">Annuler et revenir à l'application / Cancel</a></p>"#;
    Reply::html(StatusCode::OK, page("Confirmer la déconnexion", body))
}

/// `/.guichet/logout` from this origin: drops the session, then RP-initiated logout at its
/// provider.
async fn logout(gateway: &Gateway, request: &RequestHeader) -> Reply {
    let settings = &gateway.settings.session;
    let logged_out = gateway.settings.own_url("logged-out");
    let mut target = "/.guichet/logged-out".to_string();
    if let Some(id) = session_id(request, &settings.cookie_name) {
        if let Some(session) = gateway.sessions.remove(&id).await {
            gateway
                .metrics
                .sessions_ended
                .with_label_values(&["logout"])
                .inc();
            let state = random_token();
            if let Some(url) = gateway
                .provider(session.provider())
                .and_then(|p| p.logout_url(&session.id_token, &state, &logged_out))
            {
                gateway.remember_logout(state).await;
                target = url.to_string();
            }
        }
    }
    Reply::redirect(&target).with_header(
        "set-cookie",
        clear_cookie(&settings.cookie_name, settings.secure),
    )
}

/// `GET /.guichet/logged-out[?state=…]`: the provider's `state` must be one guichet sent.
async fn logged_out(gateway: &Gateway, request: &RequestHeader) -> Result<Reply, PageError> {
    if let Some(state) = query_param(request, "state") {
        if !gateway.take_logout(&state).await {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "logout_state_invalid",
                "Retour de déconnexion inattendu",
                "Ce retour de déconnexion ne correspond à aucune déconnexion demandée ici. Si vous étiez connecté, votre session sur ce site est de toute façon terminée.",
                "This sign-out return matches no sign-out started here. If you were signed in, your session on this site has ended anyway.",
            )
            .logged("logged-out with an unknown or already used state"));
        }
    }
    Ok(logged_out_page())
}

fn logged_out_page() -> Reply {
    let body = r#"<h1>Vous êtes déconnecté</h1>
<p>Votre session est terminée.</p>
<p class="en" lang="en">You are signed out.</p>
<p><a class="button" href="/">Se reconnecter / Sign in again</a></p>"#;
    Reply::html(StatusCode::OK, page("Déconnexion", body))
}
