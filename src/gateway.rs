//! The state shared by every request: settings, the session and login stores, the providers and
//! the metrics. One function, [`Gateway::new`], builds it from [`Settings`], for the server and
//! for tests alike.

use crate::http::pages::{Pages, TemplateError};
use std::sync::Arc;

use crate::assertion::forward::IdentityForwarder;
use crate::assertion::{AssertionError, AssertionSigner, HeaderPlan, RequestSigner};
use crate::config::Settings;
use crate::cookies::CookieNames;
use crate::http::routes::Route;
use crate::login_state::{LoginStates, LOGIN_STATE_TTL};
use crate::logout_hint::LogoutHints;
use crate::metrics::Metrics;
use crate::oidc::{OidcError, Provider};
use crate::one_time::OneTimeStore;
use crate::policy::RouteTable;
use crate::seal::{deployment_context, DeploymentKey, Purpose};
use crate::session::{EndListener, Session, SessionId, SessionPlan, SessionRecord, SessionStore};
use crate::shared::{Entry, SharedStore};

/// Shared, immutable after start (the stores and providers have their own interior locking).
pub struct Gateway {
    settings: Settings,
    sessions: SessionStore,
    logins: LoginStates,
    cookies: CookieNames,
    providers: Vec<Arc<Provider>>,
    metrics: Arc<Metrics>,
    /// Strips the client's identity headers and adds the session's, signed.
    forwarder: IdentityForwarder,
    /// `state` values sent with RP-initiated logouts, checked when the provider sends the
    /// browser back to `/.guichet/logged-out`.
    logouts: OneTimeStore,
    /// The JWK Set served at `/.guichet/provider-jwks.json`: every provider's client keys.
    provider_jwks: bytes::Bytes,
    /// `[[route]]`, compiled.
    routes: RouteTable,
    /// The page templates, assets and branding.
    pages: Pages,
    /// Logout hints kept by the visitors' browsers.
    logout_hints: LogoutHints,
    /// This process's own random key (no `[session.shared]`), handed over at an upgrade.
    own_key: Option<DeploymentKey>,
}

/// A session just started: its id (the cookie), the session, and the `Set-Cookie` of its logout
/// hint when the browser keeps it.
pub struct NewSession {
    pub id: SessionId,
    pub session: Arc<Session>,
    pub hint: Option<String>,
}

/// Why the gateway could not be built from valid settings.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Assertion(#[from] AssertionError),
    #[error("server.tls: cannot load the certificate or key: {0}")]
    Tls(String),
    #[error(transparent)]
    SharedStore(#[from] crate::shared::StoreError),
    #[error(transparent)]
    Pages(#[from] TemplateError),
}

impl Gateway {
    pub fn new(settings: Settings) -> Result<Self, StartError> {
        Self::inheriting(settings, None)
    }

    /// [`Self::new`], keeping the random key of the process this one takes over from (without
    /// `[session.shared]`), so that what that process sealed still opens.
    pub fn inheriting(
        settings: Settings,
        inherited: Option<DeploymentKey>,
    ) -> Result<Self, StartError> {
        crate::signatures::install();
        let redirect_uri = Route::Callback.url(&settings.public_url);
        let mut origins: Vec<String> = settings
            .providers
            .iter()
            .filter_map(|p| url::Url::parse(&p.issuer).ok())
            .map(|issuer| issuer.origin().ascii_serialization())
            .collect();
        origins.sort();
        origins.dedup();
        let pages = Pages::new(&settings.pages)?.with_sign_out_origins(&origins);
        let metrics = Arc::new(Metrics::new());
        let providers = settings
            .providers
            .iter()
            .map(|p| Provider::new(p.clone(), &redirect_uri, metrics.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let assertion = settings
            .assertion
            .as_ref()
            .map(AssertionSigner::new)
            .transpose()?;
        let signature = settings
            .signature
            .as_ref()
            .map(RequestSigner::new)
            .transpose()?;
        let provider_jwks = provider_jwks(&providers);
        let ended = metrics.sessions_ended.clone();
        let on_end: EndListener = Arc::new(move |reason| ended.with_label_values(&[reason]).inc());
        let shared = settings
            .session
            .shared
            .as_ref()
            .map(|s| SharedStore::new(s, metrics.shared_store_errors.clone()).map(Arc::new))
            .transpose()?;
        // One secret for the deployment: the one the replicas share, or this process's own.
        let (key, own_key) = match &settings.session.shared {
            Some(shared) => (
                DeploymentKey::from_secret(shared.key.expose().as_bytes()),
                None,
            ),
            None => {
                let own = inherited.unwrap_or_else(DeploymentKey::random);
                (own.clone(), Some(own))
            }
        };
        let context = deployment_context(
            settings.public_url.as_str(),
            settings.providers.iter().map(|p| p.id.as_str()),
        );
        let headers = Arc::new(HeaderPlan::new(&settings));
        let plan = Arc::new(SessionPlan {
            signatures: settings.signature.is_some(),
            headers: headers.clone(),
            assertions: assertion.is_some(),
            forward_access_token: settings.headers.forward_access_token,
            providers: settings.providers.iter().map(|p| p.id.clone()).collect(),
        });
        let mut sessions = SessionStore::with_listener(&settings.session, plan, Some(on_end));
        let mut logins = LoginStates::new(
            key.sealer(Purpose::Login, &context),
            settings.session.login_cookie_prefix.clone(),
            settings.session.secure,
        );
        let mut logouts = OneTimeStore::new(Entry::Logout, LOGIN_STATE_TTL, 100_000);
        if let Some(shared) = &shared {
            logouts = logouts.with_shared(shared.clone());
            sessions = sessions.with_shared(
                shared.clone(),
                key.sealer(Purpose::Session, &context),
                metrics.shared_store_refused.clone(),
            );
            logins = logins.with_shared(shared.clone());
        }
        let logout_hints = LogoutHints::new(
            key.sealer(Purpose::LogoutHint, &context),
            &settings.session,
            settings.headers.forward_id_token,
        );
        let cookies = CookieNames {
            session: settings.session.cookie_name.clone(),
            login_prefix: settings.session.login_cookie_prefix.clone(),
            logout: settings.session.logout_cookie_name.clone(),
        };
        Ok(Gateway {
            cookies,
            logouts,
            forwarder: IdentityForwarder::new(headers, assertion, signature),
            routes: RouteTable::new(settings.routes.clone()),
            pages,
            sessions,
            logins,
            providers,
            provider_jwks,
            metrics,
            logout_hints,
            own_key,
            settings,
        })
    }

    /// Stores a new session for a verified login; the browser keeps its logout hint when it
    /// can (then the session does not). `None` when the record names a provider this
    /// deployment does not configure.
    pub async fn start_session(&self, mut record: SessionRecord) -> Option<NewSession> {
        let id = SessionId::generate();
        let hint = self.logout_hints.to_cookie(&id.to_key(), &record.id_token);
        if hint.is_some() {
            record.id_token = String::new();
        }
        let session = self.sessions.create_with_id(&id, record).await?;
        Some(NewSession { id, session, hint })
    }

    /// Logout hints kept by the visitors' browsers.
    pub fn logout_hints(&self) -> &LogoutHints {
        &self.logout_hints
    }

    /// This process's own random key, for the hand-over file of a graceful upgrade (`None` with
    /// `[session.shared]`, whose key comes from the configuration).
    pub fn own_key(&self) -> Option<&DeploymentKey> {
        self.own_key.as_ref()
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    /// Logins in progress (kept in the visitors' cookies).
    pub fn logins(&self) -> &LoginStates {
        &self.logins
    }

    /// The names of guichet's cookies.
    pub fn cookies(&self) -> &CookieNames {
        &self.cookies
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The identity forwarding applied to every proxied request.
    pub fn forwarder(&self) -> &IdentityForwarder {
        &self.forwarder
    }

    /// The `state`s of RP-initiated logouts, each accepted back once at `logged-out`.
    pub fn logouts(&self) -> &OneTimeStore {
        &self.logouts
    }

    /// The routes, compiled.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// What guichet's pages look like.
    pub fn pages(&self) -> &Pages {
        &self.pages
    }

    /// `/.guichet/provider-jwks.json`: every provider's public client keys.
    pub fn provider_jwks(&self) -> bytes::Bytes {
        self.provider_jwks.clone()
    }

    pub fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.id() == id)
    }

    /// Every provider has loaded its metadata.
    pub fn is_ready(&self) -> bool {
        self.providers.iter().all(|p| p.is_ready())
    }
}

/// Every provider's public client keys, once each (providers may share key files).
fn provider_jwks(providers: &[Arc<Provider>]) -> bytes::Bytes {
    let mut keys: Vec<&jsonwebtoken::jwk::Jwk> = Vec::new();
    for key in providers.iter().flat_map(|p| p.keys.public_keys()) {
        if !keys.iter().any(|k| k.common == key.common) {
            keys.push(key);
        }
    }
    let set = serde_json::json!({ "keys": keys });
    bytes::Bytes::from(set.to_string())
}
