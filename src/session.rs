//! Sessions and login states: the random ids, the stores (moka) and the cookie codec.
//!
//! A session id is 256 random bits carried base64url-encoded in the session cookie. The store
//! keys sessions by the SHA-256 of that id, so a dump of the store hands out no live cookie.
//! Idle timeout and absolute lifetime are enforced by the cache itself (time-to-idle and
//! time-to-live) and `max_sessions` bounds memory. What a session holds (prebuilt identity
//! headers) is decided by `assertion`; this module only keeps it.
//!
//! With `[session.shared]`, the stores also write to Redis/Valkey ([`crate::shared`]) so that
//! any replica serves any visitor: a session found in memory is trusted for `recheck`, then
//! confirmed (and its idle timer refreshed) in the shared store; one missing from memory is
//! loaded from it. Logins in progress live in the shared store (in memory only when it fails),
//! so the callback may reach another replica, and each `state` is still used once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cookie::{Cookie, SameSite};
use http::{HeaderName, HeaderValue};
use moka::future::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::SessionSettings;
use crate::shared::{Entry, SharedStore};

/// Length of an encoded id: 32 bytes in unpadded base64url.
const ENCODED_ID_LEN: usize = 43;

/// How long a started login may take before its state is forgotten.
pub const LOGIN_STATE_TTL: Duration = Duration::from_secs(600);

// === SessionId ===

/// A 256-bit random token: the session cookie's value, the login binding, the `state`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; 32]);

impl SessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        SessionId(bytes)
    }

    /// Parses a cookie value; anything but 43 base64url characters is `None`.
    pub fn from_cookie_value(value: &str) -> Option<Self> {
        if value.len() != ENCODED_ID_LEN {
            return None;
        }
        let mut bytes = [0u8; 32];
        let n = URL_SAFE_NO_PAD.decode_slice(value, &mut bytes).ok()?;
        (n == 32).then_some(SessionId(bytes))
    }

    pub fn to_cookie_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key the store uses: SHA-256 of the id.
    pub fn to_key(&self) -> StoreKey {
        StoreKey(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(REDACTED)")
    }
}

/// The hash under which a session is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// base64url, for the shared store's key names and the hand-over file.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random URL-safe token of 32 bytes (43 characters), for `state` and `nonce`.
pub fn random_token() -> String {
    SessionId::generate().to_cookie_value()
}

// === Session ===

/// A signed-in visitor, as kept between requests.
pub struct Session {
    /// The provider's id in the configuration.
    pub provider: String,
    pub sub: String,
    /// A short SHA-256 of `provider` and `sub`, for logs (the `sub` itself is personal data).
    pub sub_hash: String,
    /// The raw id_token, kept for `id_token_hint` at logout. Never logged.
    pub id_token: String,
    /// Identity headers, built once at login and copied onto each proxied request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The sorted `name:value` lines of `headers`, for the HMAC signature.
    pub signature_block: Vec<u8>,
    /// The assertion's claims but `iss`, `aud`, `iat`, `exp` (empty without assertions).
    pub assertion_claims: serde_json::Map<String, serde_json::Value>,
    /// The current signed assertion and when to sign it anew.
    pub assertion: RwLock<Option<(HeaderValue, u64)>>,
    pub created_at: SystemTime,
    /// When the shared store last confirmed this session (ms since the epoch; 0: never).
    pub checked: AtomicU64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("provider", &self.provider)
            .field("sub", &self.sub)
            .field("id_token", &"REDACTED")
            .field("headers", &self.headers.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// The `sub_hash` of a session: 16 hex characters of SHA-256(provider, NUL, sub).
pub fn hash_subject(provider: &str, sub: &str) -> String {
    let digest = Sha256::new()
        .chain_update(provider.as_bytes())
        .chain_update([0u8])
        .chain_update(sub.as_bytes())
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Sessions in memory, and in the shared store when one is configured.
#[derive(Clone)]
pub struct SessionStore {
    cache: Cache<StoreKey, Arc<Session>>,
    shared: Option<Arc<SharedStore>>,
    idle_timeout: Duration,
    max_lifetime: Duration,
}

/// Ends a session `max_lifetime` after its login, counted from `Session::created_at`, so that a
/// session restored after an upgrade keeps its original deadline.
struct AbsoluteLifetime(Duration);

impl moka::Expiry<StoreKey, Arc<Session>> for AbsoluteLifetime {
    fn expire_after_create(
        &self,
        _key: &StoreKey,
        session: &Arc<Session>,
        _now: std::time::Instant,
    ) -> Option<Duration> {
        let age = session.created_at.elapsed().unwrap_or_default();
        Some(self.0.saturating_sub(age))
    }
}

/// Called with `idle`, `lifetime` or `evicted` when the store ends a session by itself.
pub type EndListener = Arc<dyn Fn(&'static str) + Send + Sync>;

impl SessionStore {
    pub fn new(settings: &SessionSettings) -> Self {
        Self::with_listener(settings, None)
    }

    /// A store that reports the sessions it expires or evicts.
    pub fn with_listener(settings: &SessionSettings, on_end: Option<EndListener>) -> Self {
        let mut builder = Cache::builder()
            .max_capacity(settings.max_sessions)
            .time_to_idle(settings.idle_timeout)
            .expire_after(AbsoluteLifetime(settings.max_lifetime));
        if let Some(on_end) = on_end {
            let max_lifetime = settings.max_lifetime;
            builder = builder.eviction_listener(
                move |_key, session: Arc<Session>, cause: moka::notification::RemovalCause| {
                    use moka::notification::RemovalCause;
                    let reason = match cause {
                        RemovalCause::Expired => {
                            let age = session.created_at.elapsed().unwrap_or_default();
                            if age + Duration::from_secs(1) >= max_lifetime {
                                "lifetime"
                            } else {
                                "idle"
                            }
                        }
                        RemovalCause::Size => "evicted",
                        RemovalCause::Explicit | RemovalCause::Replaced => return,
                    };
                    on_end(reason);
                },
            );
        }
        SessionStore {
            cache: builder.build(),
            shared: None,
            idle_timeout: settings.idle_timeout,
            max_lifetime: settings.max_lifetime,
        }
    }

    /// Also keeps sessions in a store shared with other replicas.
    pub fn with_shared(mut self, shared: Arc<SharedStore>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// How long the shared store keeps a session unless it is used: the idle timeout, capped
    /// by what is left of its lifetime.
    fn shared_ttl(&self, session: &Session) -> Duration {
        let age = session.created_at.elapsed().unwrap_or_default();
        self.idle_timeout.min(self.max_lifetime.saturating_sub(age))
    }

    /// Stores a new session under a fresh id and returns that id.
    pub async fn insert(&self, session: Session) -> SessionId {
        let id = SessionId::generate();
        let key = id.to_key();
        if let Some(shared) = &self.shared {
            session.checked.store(now_millis(), Ordering::Relaxed);
            self.write_shared(shared, &key, &session).await;
        }
        self.cache.insert(key, Arc::new(session)).await;
        id
    }

    /// Writes a session to the shared store. A failure is logged and counted by the store; the
    /// session lives in this replica's memory anyway.
    async fn write_shared(&self, shared: &SharedStore, key: &StoreKey, session: &Session) {
        if let Ok(json) = serde_json::to_string(&DumpedSession::from_session(key, session)) {
            let _ = shared
                .put(
                    Entry::Session,
                    &key.to_text(),
                    &json,
                    self.shared_ttl(session),
                )
                .await;
        }
    }

    /// The live session for this id, refreshing its idle timer (here and, at most every
    /// `recheck`, in the shared store).
    pub async fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        let key = id.to_key();
        let local = self.cache.get(&key).await;
        let Some(shared) = &self.shared else {
            return local;
        };
        let now = now_millis();
        if let Some(session) = &local {
            let checked = session.checked.load(Ordering::Relaxed);
            if now.saturating_sub(checked) < shared.recheck.as_millis() as u64 {
                return local;
            }
            // One request per session and period asks the store; the concurrent ones go on
            // with this replica's copy (no burst of calls when `recheck` runs out under load).
            if session
                .checked
                .compare_exchange(checked, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return local;
            }
        }
        let ttl = local
            .as_ref()
            .map_or(self.idle_timeout, |session| self.shared_ttl(session));
        match shared.get(Entry::Session, &key.to_text(), Some(ttl)).await {
            Ok(Some(json)) => {
                if let Some(session) = local {
                    session.checked.store(now, Ordering::Relaxed);
                    return Some(session);
                }
                let (stored_key, session) = serde_json::from_str::<DumpedSession>(&json)
                    .ok()
                    .and_then(DumpedSession::into_session)?;
                let alive = session.created_at.elapsed().unwrap_or_default() < self.max_lifetime;
                if stored_key != key || !alive {
                    return None;
                }
                session.checked.store(now, Ordering::Relaxed);
                let session = Arc::new(session);
                self.cache.insert(key, session.clone()).await;
                Some(session)
            }
            Ok(None) => {
                let session = local?;
                match shared.get(Entry::Ended, &key.to_text(), None).await {
                    // Logged out on another replica.
                    Ok(Some(_)) => {
                        self.cache.invalidate(&key).await;
                        None
                    }
                    // The store lost it (restarted without persistence, flushed): write it back.
                    Ok(None) => {
                        self.write_shared(shared, &key, &session).await;
                        Some(session)
                    }
                    Err(_) => Some(session),
                }
            }
            // The shared store does not answer: trust this replica's memory.
            Err(_) => local,
        }
    }

    /// Ends a session here and in the shared store; returns it (loaded from the shared store
    /// when this replica did not hold it), for the logout at its provider.
    pub async fn remove(&self, id: &SessionId) -> Option<Arc<Session>> {
        let key = id.to_key();
        let mut removed = self.cache.remove(&key).await;
        if let Some(shared) = &self.shared {
            if removed.is_none() {
                if let Ok(Some(json)) = shared.get(Entry::Session, &key.to_text(), None).await {
                    removed = serde_json::from_str::<DumpedSession>(&json)
                        .ok()
                        .and_then(DumpedSession::into_session)
                        .filter(|(stored, _)| *stored == key)
                        .map(|(_, session)| Arc::new(session));
                }
            }
            // The mark first: a replica that misses the session then knows it was ended.
            let _ = shared
                .put(Entry::Ended, &key.to_text(), "1", self.max_lifetime)
                .await;
            let _ = shared.delete(Entry::Session, &key.to_text()).await;
        }
        removed
    }

    /// Every live session, for the hand-over to a new process at a graceful upgrade.
    pub fn dump(&self) -> Vec<DumpedSession> {
        self.cache
            .iter()
            .map(|(key, session)| DumpedSession::from_session(&key, &session))
            .collect()
    }

    /// Puts back sessions dumped by [`Self::dump`]; returns how many were still alive.
    pub async fn restore(&self, dumped: Vec<DumpedSession>) -> usize {
        let mut restored = 0;
        for entry in dumped {
            if let Some((key, session)) = entry.into_session() {
                self.cache.insert(key, Arc::new(session)).await;
                restored += 1;
            }
        }
        restored
    }

    /// Number of live sessions (runs the cache's pending maintenance first, so it is exact).
    pub async fn count(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }
}

/// A session as written to the hand-over file: the store key (a hash, not a usable cookie) and
/// the session's data.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct DumpedSession {
    key: String,
    provider: String,
    sub: String,
    sub_hash: String,
    id_token: String,
    /// (name, base64 of the value bytes)
    headers: Vec<(String, String)>,
    signature_block: String,
    assertion_claims: serde_json::Map<String, serde_json::Value>,
    created_at_unix: u64,
}

impl DumpedSession {
    fn from_session(key: &StoreKey, session: &Session) -> Self {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        DumpedSession {
            key: b64(&key.0),
            provider: session.provider.clone(),
            sub: session.sub.clone(),
            sub_hash: session.sub_hash.clone(),
            id_token: session.id_token.clone(),
            headers: session
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), b64(v.as_bytes())))
                .collect(),
            signature_block: b64(&session.signature_block),
            assertion_claims: session.assertion_claims.clone(),
            created_at_unix: session
                .created_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    fn into_session(self) -> Option<(StoreKey, Session)> {
        let decode = |text: &str| URL_SAFE_NO_PAD.decode(text).ok();
        let key: [u8; 32] = decode(&self.key)?.try_into().ok()?;
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            headers.push((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_bytes(&decode(value)?).ok()?,
            ));
        }
        Some((
            StoreKey(key),
            Session {
                provider: self.provider,
                sub: self.sub,
                sub_hash: self.sub_hash,
                id_token: self.id_token,
                headers,
                signature_block: decode(&self.signature_block)?,
                assertion_claims: self.assertion_claims,
                assertion: RwLock::new(None),
                created_at: std::time::UNIX_EPOCH + Duration::from_secs(self.created_at_unix),
                checked: AtomicU64::new(0),
            },
        ))
    }
}

// === LoginState ===

/// A login in progress, kept server-side under its `state` until the callback.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct LoginState {
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: Option<String>,
    pub return_to: String,
    /// SHA-256 of the browser's login-binding cookie.
    pub binding: StoreKey,
}

impl fmt::Debug for LoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginState")
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Logins in progress, keyed by `state`: several tabs may log in at once.
#[derive(Clone)]
pub struct LoginStore {
    cache: Cache<String, Arc<LoginState>>,
    shared: Option<Arc<SharedStore>>,
    ttl: Duration,
}

/// Why a callback's `state` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStateError {
    /// Never issued, expired, or already used.
    Unknown,
    /// Issued to another browser.
    OtherBrowser,
}

impl LoginStore {
    pub fn new(ttl: Duration) -> Self {
        LoginStore {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            shared: None,
            ttl,
        }
    }

    /// Keeps logins in progress in a store shared with other replicas.
    pub fn with_shared(mut self, shared: Arc<SharedStore>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// In the shared store when there is one (the callback may reach another replica); in
    /// memory when there is none or it fails.
    pub async fn insert(&self, state: String, login: LoginState) {
        if let Some(shared) = &self.shared {
            if let Ok(json) = serde_json::to_string(&login) {
                if shared
                    .put(Entry::Login, &state, &json, self.ttl)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        }
        self.cache.insert(state, Arc::new(login)).await;
    }

    /// Takes the login for `state` if it is bound to `binding`. A state is used at most once; a
    /// state presented by another browser stays usable by its own.
    pub async fn take(
        &self,
        state: &str,
        binding: Option<&SessionId>,
    ) -> Result<Arc<LoginState>, LoginStateError> {
        let Some(login) = self.cache.get(state).await else {
            return self.take_shared(state, binding).await;
        };
        if binding.map(SessionId::to_key) != Some(login.binding) {
            return Err(LoginStateError::OtherBrowser);
        }
        // Two concurrent callbacks with the same state: only one removes it.
        self.cache
            .remove(state)
            .await
            .ok_or(LoginStateError::Unknown)
    }

    async fn take_shared(
        &self,
        state: &str,
        binding: Option<&SessionId>,
    ) -> Result<Arc<LoginState>, LoginStateError> {
        let shared = self.shared.as_ref().ok_or(LoginStateError::Unknown)?;
        let json = shared
            .get(Entry::Login, state, None)
            .await
            .ok()
            .flatten()
            .ok_or(LoginStateError::Unknown)?;
        let login: LoginState =
            serde_json::from_str(&json).map_err(|_| LoginStateError::Unknown)?;
        if binding.map(SessionId::to_key) != Some(login.binding) {
            return Err(LoginStateError::OtherBrowser);
        }
        // Across replicas too, only the caller that deletes it uses it.
        match shared.delete(Entry::Login, state).await {
            Ok(true) => Ok(Arc::new(login)),
            _ => Err(LoginStateError::Unknown),
        }
    }
}

// === cookies ===

/// Finds a cookie's value among all `Cookie` headers (HTTP/2 sends one per cookie).
pub fn find_cookie<'a>(
    headers: impl Iterator<Item = &'a HeaderValue>,
    name: &str,
) -> Option<&'a str> {
    for header in headers {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let pair = pair.trim_start();
            if let Some(value) = pair
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
            {
                return Some(value.trim_end());
            }
        }
    }
    None
}

/// Removes the named cookies from a `Cookie` header value; `None` when nothing is left.
pub fn without_cookies(value: &str, names: &[&str]) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty()
                && !names.iter().any(|name| {
                    pair.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('='))
                })
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// `Set-Cookie` for a session or login cookie: HttpOnly, SameSite=Lax, Path=/, Secure on https.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure);
    if let Some(age) = max_age {
        cookie = cookie.max_age(cookie::time::Duration::seconds(
            i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
        ));
    }
    cookie.build().to_string()
}

/// `Set-Cookie` that deletes a cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", Some(Duration::ZERO), secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(idle: Duration, lifetime: Duration) -> SessionSettings {
        SessionSettings {
            idle_timeout: idle,
            max_lifetime: lifetime,
            max_sessions: 10,
            cookie_name: "guichet".into(),
            login_cookie_name: "guichet-login".into(),
            secure: false,
            shared: None,
        }
    }

    fn session() -> Session {
        Session {
            provider: "p".into(),
            sub: "s".into(),
            sub_hash: "h".into(),
            id_token: "secret-token".into(),
            headers: vec![],
            signature_block: vec![],
            assertion_claims: Default::default(),
            assertion: RwLock::new(None),
            created_at: SystemTime::now(),
            checked: Default::default(),
        }
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = SessionId::generate();
        let value = id.to_cookie_value();
        assert_eq!(value.len(), 43);
        assert_eq!(SessionId::from_cookie_value(&value), Some(id));
        assert_eq!(SessionId::from_cookie_value(""), None);
        assert_eq!(SessionId::from_cookie_value(&value[1..]), None);
        assert_eq!(SessionId::from_cookie_value(&"!".repeat(43)), None);
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn debug_hides_secrets() {
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(&id.to_cookie_value()));
        assert!(!format!("{:?}", session()).contains("secret-token"));
    }

    #[tokio::test]
    async fn store_finds_by_id_and_forgets_after_idle() {
        let store = SessionStore::new(&settings(
            Duration::from_millis(200),
            Duration::from_secs(60),
        ));
        let id = store.insert(session()).await;
        assert!(store.get(&id).await.is_some());
        assert!(store.get(&SessionId::generate()).await.is_none());
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(store.get(&id).await.is_none(), "idle session must expire");
    }

    #[tokio::test]
    async fn store_enforces_absolute_lifetime_even_when_used() {
        let store = SessionStore::new(&settings(
            Duration::from_millis(250),
            Duration::from_millis(400),
        ));
        let id = store.insert(session()).await;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(store.get(&id).await.is_some());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.get(&id).await.is_none(), "lifetime must be absolute");
    }

    #[tokio::test]
    async fn dumped_sessions_restore_with_their_deadline() {
        let settings = settings(Duration::from_secs(60), Duration::from_secs(3600));
        let old = SessionStore::new(&settings);
        let mut fresh = session();
        fresh.headers = vec![(
            HeaderName::from_static("x-guichet-given-name"),
            HeaderValue::from_static("H%C3%A9l%C3%A8ne"),
        )];
        let id = old.insert(fresh).await;
        let mut stale = session();
        stale.created_at = SystemTime::now() - Duration::from_secs(7200);
        let stale_id = old.insert(stale).await;
        old.cache.run_pending_tasks().await;

        let dumped = old.dump();
        let text = serde_json::to_string(&dumped).unwrap();
        assert!(
            !text.contains(&id.to_cookie_value()),
            "no usable cookie in the dump"
        );
        let new = SessionStore::new(&settings);
        new.restore(serde_json::from_str(&text).unwrap()).await;
        let restored = new.get(&id).await.expect("session handed over");
        assert_eq!(restored.headers[0].1, "H%C3%A9l%C3%A8ne");
        assert!(new.get(&stale_id).await.is_none(), "past its lifetime");
    }

    #[tokio::test]
    async fn login_state_is_single_use_and_bound_to_its_browser() {
        let store = LoginStore::new(LOGIN_STATE_TTL);
        let browser = SessionId::generate();
        let login = LoginState {
            provider: "p".into(),
            nonce: "n".into(),
            pkce_verifier: None,
            return_to: "/".into(),
            binding: browser.to_key(),
        };
        store.insert("s1".into(), login.clone()).await;
        store.insert("s2".into(), login).await;
        let other = SessionId::generate();
        assert_eq!(
            store.take("s1", Some(&other)).await.unwrap_err(),
            LoginStateError::OtherBrowser
        );
        assert_eq!(
            store.take("s1", None).await.unwrap_err(),
            LoginStateError::OtherBrowser
        );
        assert!(store.take("s1", Some(&browser)).await.is_ok());
        assert_eq!(
            store.take("s1", Some(&browser)).await.unwrap_err(),
            LoginStateError::Unknown
        );
        assert!(store.take("s2", Some(&browser)).await.is_ok());
        assert_eq!(
            store.take("nope", Some(&browser)).await.unwrap_err(),
            LoginStateError::Unknown
        );
    }

    #[test]
    fn cookies_are_found_and_removed() {
        let a = HeaderValue::from_static("a=1; guichet=abc; guichet-login=zz");
        let b = HeaderValue::from_static("x=2");
        assert_eq!(find_cookie([&b, &a].into_iter(), "guichet"), Some("abc"));
        assert_eq!(find_cookie([&a].into_iter(), "guichet-login"), Some("zz"));
        assert_eq!(find_cookie([&b].into_iter(), "guichet"), None);
        assert_eq!(
            without_cookies(
                "a=1; guichet=abc; guichet-login=zz",
                &["guichet", "guichet-login"]
            ),
            Some("a=1".into())
        );
        assert_eq!(without_cookies("guichet=abc", &["guichet"]), None);
        assert_eq!(
            without_cookies("guichetx=1", &["guichet"]),
            Some("guichetx=1".into())
        );
    }

    #[test]
    fn set_cookie_is_hardened() {
        let c = set_cookie("__Host-guichet", "v", None, true);
        for part in [
            "__Host-guichet=v",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie("guichet", "v", None, false).contains("Secure"));
        assert!(clear_cookie("guichet", false).contains("Max-Age=0"));
    }
}
