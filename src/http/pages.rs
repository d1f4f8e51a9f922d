//! Every page guichet shows a visitor, and the one place an error becomes a page
//! ([`render_error`]): the response type ([`Reply`]), the HTML frame, the catalogue of errors a
//! visitor can meet ([`PageError`], with status, metric reason and French and English text), the
//! signed-out and logout confirmation pages.
//!
//! Pages are French first with a short English line; every error page carries a correlation id
//! that also appears in the one log line written for it. Own responses carry a strict
//! `Content-Security-Policy`, `X-Frame-Options`, `nosniff`, `no-referrer` and `no-store`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use pingora::http::ResponseHeader;
use rand::RngCore;

use crate::http::routes::Route;
use crate::oidc::OidcError;
use crate::policy::Denial;

mod render;

pub use render::{
    ErrorView, Form, Link, Message, Method, Pages, Row, Site, TemplateError, TEMPLATES,
};

/// What guichet's own pages allow: no script, no frame, its own style sheets, forms only to
/// itself, images only its own or inline (the federations' logos are inline SVG).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page with the sign-out form: browsers apply `form-action` to the redirects
/// that follow a submission too, and signing out redirects to the provider's logout, so the
/// providers' origins are allowed as well.
pub fn sign_out_policy(provider_origins: &[String]) -> String {
    CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        format!("form-action 'self' {}", provider_origins.join(" ")).trim_end(),
    )
}

// === Reply ===

/// A response guichet writes itself.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    /// Headers with names chosen by the configuration (identity headers for a front proxy).
    pub copied: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    pub fn html(status: StatusCode, html: String) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "text/html; charset=utf-8".into())],
            copied: Vec::new(),
            body: Bytes::from(html),
        }
    }

    pub fn text(status: StatusCode, text: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            copied: Vec::new(),
            body: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    pub fn redirect(location: &str) -> Self {
        Reply {
            status: StatusCode::FOUND,
            headers: vec![("location", location.to_string())],
            copied: Vec::new(),
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
        for (name, value) in &self.copied {
            header.append_header(name.clone(), value.clone())?;
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
        if !self
            .headers
            .iter()
            .any(|(name, _)| *name == "content-security-policy")
        {
            header.insert_header("content-security-policy", CONTENT_SECURITY_POLICY)?;
        }
        header.insert_header("x-frame-options", "DENY")?;
        Ok(header)
    }
}

/// The id tying a request's error page, its log lines and the application's `X-Request-Id`
/// together: the client's `X-Request-Id` when it is valid ([`valid_request_id`]), else 12 random
/// base64url characters. Kept as the header value sent upstream (handed on with a reference
/// count, not copied), read as text for pages and logs.
///
/// [`valid_request_id`]: crate::http::forwarded::valid_request_id
#[derive(Clone, Debug)]
pub struct CorrelationId(HeaderValue);

impl CorrelationId {
    /// The request's: its valid `X-Request-Id`, else a fresh one.
    pub fn of(headers: &http::HeaderMap) -> Self {
        match headers.get(&crate::http::forwarded::X_REQUEST_ID) {
            Some(id) if crate::http::forwarded::valid_request_id(id.as_bytes()) => {
                CorrelationId(id.clone())
            }
            _ => Self::fresh(),
        }
    }

    /// A fresh random id (9 random bytes, base64url: one allocation).
    pub fn fresh() -> Self {
        let mut bytes = [0u8; 9];
        rand::thread_rng().fill_bytes(&mut bytes);
        let mut text = [0u8; 12];
        let written = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut text)
            .unwrap_or_default();
        let value = HeaderValue::from_maybe_shared(Bytes::from_owner(text))
            .ok()
            .filter(|_| written == text.len());
        CorrelationId(value.unwrap_or_else(|| HeaderValue::from_static("-")))
    }

    /// As sent upstream in `X-Request-Id`.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Valid ids and base64url are visible ASCII; "-" cannot be needed.
        self.0.to_str().unwrap_or("-")
    }
}

impl Default for CorrelationId {
    /// Before the request is read: empty.
    fn default() -> Self {
        CorrelationId(HeaderValue::from_static(""))
    }
}

impl std::ops::Deref for CorrelationId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// A complete page around `body` (already HTML), styles inline: the demo's provider and
/// application pages (guichet's own pages are [`Pages`] templates).
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
    /// A way out other than the start page: (label, href).
    pub link: Option<Box<(&'static str, String)>>,
}

impl PageError {
    pub fn new(
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
            link: None,
        }
    }

    /// The same error, with `log` as its detail for the operator.
    pub fn logged(mut self, log: impl Into<String>) -> Self {
        self.log = log.into();
        self
    }

    /// A request without a valid session, from a script (browsers are redirected).
    pub fn no_session() -> Self {
        PageError::new(
            StatusCode::UNAUTHORIZED,
            "no_session",
            "Connexion requise",
            "Cette ressource demande d'être connecté. Ouvrez l'application dans votre navigateur pour vous connecter.",
            "This resource requires signing in. Open the application in your browser to sign in.",
        )
        .logged("request without a valid session")
    }

    /// A path with `.` or `..` segments (browsers never send them) while routes are configured.
    pub fn dot_segments() -> Self {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "dot_segments",
            "Requête invalide",
            "L'adresse demandée contient des segments « . » ou « .. » : elle n'a pas pu être traitée.",
            "The requested address contains '.' or '..' segments: it could not be processed.",
        )
        .logged("path with dot segments refused (routes are configured)")
    }

    /// A signed-in visitor a route's rules refuse: which requirement, never the accepted values.
    pub fn access_denied(denial: Denial) -> Self {
        let (fr, en) = match denial {
            Denial::Provider => (
                "Cette partie de l'application n'accepte pas le service d'identification avec lequel vous êtes connecté.",
                "This part of the application does not accept the identity provider you signed in with.",
            ),
            Denial::Organisation => (
                "Votre organisation n'est pas autorisée à accéder à cette application.",
                "Your organisation is not allowed to use this application.",
            ),
            Denial::EmailDomain => (
                "Votre adresse de messagerie n'appartient pas à un domaine autorisé pour cette application.",
                "Your email address does not belong to a domain allowed for this application.",
            ),
            Denial::Claim => (
                "Votre compte ne remplit pas les conditions d'accès à cette application.",
                "Your account does not meet this application's access conditions.",
            ),
        };
        PageError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "Accès refusé",
            fr,
            en,
        )
        .logged(format!("denied: {}", denial.reason()))
    }

    /// A path under `/.guichet/` that is none of guichet's endpoints.
    pub fn not_found() -> Self {
        PageError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Page introuvable",
            "Cette page de la passerelle n'existe pas.",
            "This gateway page does not exist.",
        )
    }

    /// A request outside `/.guichet/` while guichet only answers a front proxy's checks
    /// (`server.mode = "auth"`): the front proxy should have sent it to the application.
    pub fn not_served() -> Self {
        PageError::new(
            StatusCode::NOT_FOUND,
            "not_served",
            "Page introuvable",
            "Cette adresse n'est pas servie par la passerelle d'authentification.",
            "This address is not served by the authentication gateway.",
        )
        .logged("request outside /.guichet/ with server.mode = \"auth\": the front proxy should send it to the application")
    }

    /// `?provider=` names no configured provider.
    pub fn unknown_provider(id: &str) -> Self {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "unknown_provider",
            "Fournisseur d'identité inconnu",
            "Le fournisseur d'identité demandé n'est pas proposé ici.",
            "The requested identity provider is not offered here.",
        )
        .logged(format!("unknown provider id {id:?}"))
    }

    /// A callback whose `state` this browser cannot vouch for; `log` says why.
    pub fn state_invalid(log: &str) -> Self {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "state_invalid",
            "Lien de connexion expiré ou déjà utilisé",
            "Cette connexion a expiré, a déjà été utilisée, ou a été commencée dans un autre navigateur. Recommencez depuis l'application.",
            "This sign-in has expired, was already used, or was started in another browser. Please start again from the application.",
        )
        .logged(log)
    }

    /// The provider sent the browser back with `error=` (and maybe `error_description`).
    pub fn provider_error(error: &str, description: &str) -> Self {
        let short: String = error.chars().take(64).collect();
        let (status, title, fr, en) = match error {
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
        PageError::new(
            status,
            "provider_error",
            title,
            format!("{fr} (code : {short})"),
            format!("{en} (code: {short})"),
        )
        .logged(format!(
            "provider returned error={short:?} error_description={:?}",
            description.chars().take(200).collect::<String>()
        ))
    }

    /// A post-logout return whose `state` guichet did not send (or already saw).
    pub fn logout_state_invalid() -> Self {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "logout_state_invalid",
            "Retour de déconnexion inattendu",
            "Ce retour de déconnexion ne correspond à aucune déconnexion demandée ici. Si vous étiez connecté, votre session sur ce site est de toute façon terminée.",
            "This sign-out return matches no sign-out started here. If you were signed in, your session on this site has ended anyway.",
        )
        .logged("logged-out with an unknown or already used state")
    }

    /// The application could not be reached or answered badly: `code` is the status to show
    /// (502, 504, 4xx for a request pingora refused, 500); `log` is pingora's error.
    pub fn upstream(status: StatusCode, log: String) -> Self {
        let (title, fr, en) = match status.as_u16() {
            504 => (
                "Application trop lente",
                "L'application n'a pas répondu à temps. Réessayez dans un instant.",
                "The application did not answer in time. Please try again shortly.",
            ),
            502 => (
                "Application injoignable",
                "L'application est momentanément injoignable. Réessayez dans un instant.",
                "The application cannot be reached right now. Please try again shortly.",
            ),
            400..=499 => (
                "Requête invalide",
                "La requête n'a pas pu être traitée.",
                "The request could not be processed.",
            ),
            _ => (
                "Erreur interne",
                "Une erreur inattendue est survenue.",
                "An unexpected error occurred.",
            ),
        };
        PageError::new(status, "upstream", title, fr, en).logged(log)
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
pub fn render_error(pages: &Pages, error: &PageError, correlation_id: &str) -> Reply {
    if error.status.is_server_error() {
        tracing::error!(correlation_id, status = error.status.as_u16(), reason = error.reason, detail = %error.log, "{}", error.title);
    } else {
        tracing::info!(correlation_id, status = error.status.as_u16(), reason = error.reason, detail = %error.log, "{}", error.title);
    }
    let view = ErrorView {
        title: error.title.to_string(),
        fr: error.detail_fr.clone(),
        en: error.detail_en.clone(),
        link: error.link.as_deref().map(|(label, href)| Link {
            label: label.to_string(),
            href: href.clone(),
        }),
        status: error.status.as_u16(),
        reference: correlation_id.to_string(),
    };
    Reply::html(error.status, pages.error(&view))
}

/// The sign-out button of the logout confirmation and `/.guichet/me`.
const SIGN_OUT: Form = Form {
    action: Route::Logout.path(),
    label: "Se déconnecter / Sign out",
};

/// The page of `/.guichet/logout` reached from another site (a link, a redirect, a form) or
/// without any origin signal: it asks the visitor to confirm, and its button posts from this
/// origin.
pub fn logout_confirmation(pages: &Pages) -> Reply {
    let message = Message {
        heading: "Se déconnecter ?",
        text: vec!["Confirmez que vous voulez vous déconnecter de cette application et de votre service d'identification."],
        english: "Please confirm that you want to sign out of this application and of your identity provider.",
        form: Some(SIGN_OUT),
        link: Some(Link {
            label: "Annuler et revenir à l'application / Cancel".into(),
            href: "/".into(),
        }),
    };
    Reply::html(
        StatusCode::OK,
        pages.message("Confirmer la déconnexion", &message),
    )
    .with_header("content-security-policy", pages.sign_out_policy.clone())
}

/// Who the visitor is signed in as, for `/.guichet/me`.
pub struct SignedIn<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
    /// The provider's display name.
    pub provider: &'a str,
    pub level: Option<&'a str>,
}

/// `/.guichet/me` for a signed-in visitor: who, through which service, at which level, and a
/// sign-out button (a form posted from this origin).
pub fn me(pages: &Pages, who: &SignedIn<'_>) -> Reply {
    let mut rows = vec![Row {
        label: "Nom / Name",
        value: if who.name.is_empty() { "—" } else { who.name }.to_string(),
    }];
    if let Some(email) = who.email {
        rows.push(Row {
            label: "Courriel / Email",
            value: email.to_string(),
        });
    }
    rows.push(Row {
        label: "Service d'identification / Identity provider",
        value: who.provider.to_string(),
    });
    rows.push(Row {
        label: "Niveau de sécurité / Assurance level",
        value: who.level.unwrap_or("—").to_string(),
    });
    Reply::html(StatusCode::OK, pages.me(&rows))
        .with_header("content-security-policy", pages.sign_out_policy.clone())
}

/// `/.guichet/me` without a session.
pub fn not_signed_in(pages: &Pages) -> Reply {
    let message = Message {
        heading: "Vous n'êtes pas connecté",
        text: Vec::new(),
        english: "You are not signed in.",
        form: None,
        link: Some(Link {
            label: "Se connecter / Sign in".into(),
            href: Route::Login.path().into(),
        }),
    };
    Reply::html(StatusCode::OK, pages.message("Mon compte", &message))
}

/// "You are signed out."
pub fn logged_out(pages: &Pages) -> Reply {
    let message = Message {
        heading: "Vous êtes déconnecté",
        text: vec!["Votre session est terminée."],
        english: "You are signed out.",
        form: None,
        link: Some(Link {
            label: "Se reconnecter / Sign in again".into(),
            href: "/".into(),
        }),
    };
    Reply::html(StatusCode::OK, pages.message("Déconnexion", &message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_request_id(value: &[u8]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn a_valid_client_request_id_is_kept_and_any_other_replaced_by_a_fresh_one() {
        let kept = CorrelationId::of(&with_request_id(b"req-42.a:b_c"));
        assert_eq!(kept.as_str(), "req-42.a:b_c");
        assert_eq!(kept.header_value(), "req-42.a:b_c");
        let long = "a".repeat(129);
        for refused in [
            &b"has space"[..],
            b"quote\"",
            b"",
            long.as_bytes(),
            b"caf\xc3\xa9",
        ] {
            let id = CorrelationId::of(&with_request_id(refused));
            assert_ne!(id.as_bytes(), refused);
            assert_eq!(id.len(), 12, "{id}");
        }
        let fresh = CorrelationId::of(&http::HeaderMap::new());
        assert_eq!(fresh.len(), 12);
        assert!(fresh
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(fresh.header_value().as_bytes(), fresh.as_bytes());
        assert_eq!(format!("{fresh}"), fresh.as_str());
        assert_ne!(
            CorrelationId::fresh().as_str(),
            CorrelationId::fresh().as_str()
        );
        assert_eq!(CorrelationId::default().as_str(), "");
    }
}
