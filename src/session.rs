//! Sessions: the random ids, the session itself and its store (moka, and the shared store).
//!
//! A session id is 256 random bits carried base64url-encoded in the session cookie. The store
//! keys sessions by the SHA-256 of that id, so a dump of the store hands out no live cookie.
//! Idle timeout and absolute lifetime are enforced by the cache itself (time-to-idle and
//! time-to-live); memory is bounded by `max_sessions` and by `max_memory` (each session weighs
//! its estimated bytes). A session is built in one place, [`SessionPlan::build`], from its
//! [`SessionRecord`] (the verified identity and tokens): the identity headers, their HMAC block
//! and the assertion's claims are derived from it by `assertion`, here and in every process that
//! later reads the record.
//!
//! With `[session.shared]`, sessions are also written to Redis/Valkey ([`crate::shared`]) so that
//! any replica serves any visitor: a session found in memory is trusted for `recheck`, then
//! confirmed (and its idle timer refreshed) in the shared store; one missing from memory is
//! loaded from it. What the store holds is a [`SessionRecord`] sealed with the deployment key
//! and bound to the deployment and to its store key ([`crate::seal`]); one that fails to open,
//! or names a provider this deployment does not configure, is a miss and a warning. Unknown ids
//! are remembered for a few seconds and lookups of sessions not in memory are bounded in
//! number, so a flood of made-up cookies costs the store little. A logout replaces the entry
//! by a tombstone in one write, so no replica can write the session back.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use moka::sync::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::assertion::packed::PackedHeaders;
use crate::assertion::{self, ForwardedTokens, HeaderPlan, RequestSigner};
use crate::config::SessionSettings;
use crate::identity::{CompactIdentity, Identity};
use crate::seal::Sealer;
use crate::shared::{Entry, SharedStore};

/// Length of an encoded id: 32 bytes in unpadded base64url.
const ENCODED_ID_LEN: usize = 43;

/// What the shared store holds for a session ended by a logout (never valid base64url).
const ENDED: &str = "!ended";

/// How long an id the shared store does not know is not asked about again.
const UNKNOWN_TTL: Duration = Duration::from_secs(5);

/// The longest session entry read back from the shared store (a sealed record is a few KiB).
const MAX_SHARED_ENTRY: usize = 64 * 1024;

/// What the cache holds for each session besides the session: its entry, its node in the
/// access order and in the timer wheel, the key's block, its slot in the hash table (330–375
/// bytes measured by `benches/sessions.rs`, with a margin).
const CACHE_ENTRY: usize = 380;

/// Lookups in the shared store of sessions not held in memory, at once; beyond, a miss.
const LOOKUP_BUDGET: usize = 64;

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
    pub fn from_cookie_value(value: &[u8]) -> Option<Self> {
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

    fn from_text(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        Some(StoreKey(bytes))
    }
}

use crate::clock::unix_millis as now_millis;

/// A random URL-safe token of 32 bytes (43 characters), for `state` and `nonce`.
pub fn random_token() -> String {
    SessionId::generate().to_cookie_value()
}

// === Session ===

/// What a session is made of, as kept by the hand-over file and the shared store: the verified
/// identity and the tokens. Everything else is derived from it by [`SessionPlan::build`].
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub identity: Identity,
    /// The raw id_token, for `id_token_hint` at logout; empty when the visitor's browser keeps
    /// it ([`crate::logout_hint`]). Never logged.
    pub id_token: String,
    /// The access token, kept only when it is forwarded (`headers.forward_access_token`).
    pub access_token: Option<String>,
    /// When the visitor signed in, in milliseconds since the Unix epoch (the absolute lifetime
    /// counts from it).
    pub created_at_ms: u64,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("provider", &self.identity.provider)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

/// A signed-in visitor, as kept between requests.
pub struct Session {
    /// The verified identity, in one buffer.
    pub identity: CompactIdentity,
    /// A short SHA-256 of the provider and `sub`, for logs (the `sub` itself is personal data).
    pub sub_hash: SubHash,
    /// The raw id_token, kept for `id_token_hint` at logout when the browser does not keep it
    /// ([`crate::logout_hint`]). Never logged.
    pub id_token: Option<CompactToken>,
    /// Identity headers, built once and copied onto each proxied request: where their names
    /// and values are in the identity's buffer ([`Self::identity_headers`]).
    headers: PackedHeaders,
    /// What only some configurations need (`None` with the defaults: a pointer's width).
    extras: Option<Box<SessionExtras>>,
    pub created_at: SystemTime,
    /// When the shared store last confirmed this session (ms since the epoch; 0: never).
    pub checked: AtomicU64,
}

/// The parts of a session that only assertions, request signatures or a forwarded access token
/// use, boxed together so that sessions without them do not carry their room.
struct SessionExtras {
    /// Kept only when it is forwarded (`headers.forward_access_token`).
    access_token: Option<Box<str>>,
    /// The sorted `name:value` lines of the headers, for the HMAC signature (`[signature]`).
    signature_block: Box<[u8]>,
    /// The assertion's claims but `iss`, `aud`, `iat`, `exp` (`[assertion]`).
    assertion_claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The current signed assertion and when to sign it anew.
    assertion: RwLock<Option<(HeaderValue, u64)>>,
}

/// A session's signed assertion: its claims and the last one signed.
pub struct AssertionState<'a> {
    pub claims: &'a serde_json::Map<String, serde_json::Value>,
    pub current: &'a RwLock<Option<(HeaderValue, u64)>>,
}

impl Session {
    /// The identity headers the application receives (values share the session's buffer).
    pub fn identity_headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
        self.headers.iter(self.identity.buffer())
    }

    /// How many identity headers the session sends (what [`Session::identity_headers`] yields
    /// at most).
    pub fn identity_header_count(&self) -> usize {
        self.headers.len()
    }

    /// The sorted `name:value` lines of the identity headers, for the HMAC signature (empty
    /// without `[signature]`).
    pub fn signature_block(&self) -> &[u8] {
        self.extras
            .as_ref()
            .map_or(&[][..], |extras| &extras.signature_block)
    }

    /// The assertion's claims and its current signature (`None` without `[assertion]`).
    pub fn assertion(&self) -> Option<AssertionState<'_>> {
        let extras = self.extras.as_ref()?;
        Some(AssertionState {
            claims: extras.assertion_claims.as_ref()?,
            current: &extras.assertion,
        })
    }

    fn access_token(&self) -> Option<&str> {
        self.extras.as_ref()?.access_token.as_deref()
    }

    /// The id of the provider the visitor signed in with.
    pub fn provider(&self) -> &str {
        self.identity.provider()
    }

    /// The record this session was built from.
    pub fn to_record(&self) -> SessionRecord {
        SessionRecord {
            identity: self.identity.to_identity(),
            id_token: self
                .id_token
                .as_ref()
                .map_or_else(String::new, CompactToken::to_text),
            access_token: self.access_token().map(str::to_string),
            created_at_ms: self
                .created_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// An estimate of the bytes this session holds, for the store's memory bound. The
    /// per-item constants include the allocator's and the cache's overhead; they are calibrated
    /// against the process's RSS per session measured by `benches/sessions.rs` (the estimate
    /// must not be below it, or `session.max_memory` would let more memory be used).
    pub fn estimated_bytes(&self) -> usize {
        // The assertion's claims, kept as JSON only when assertions are signed.
        let claims = self.assertion().map(|assertion| assertion.claims);
        let assertion_claims: usize = claims
            .into_iter()
            .flatten()
            .map(|(name, value)| {
                let text = |v: &serde_json::Value| v.as_str().map_or(0, str::len) + 40;
                80 + name.len()
                    + value
                        .as_array()
                        .map_or_else(|| text(value), |items| items.iter().map(text).sum())
            })
            .sum();
        // The session's `Arc` block, the identity's buffer (which holds the header values too)
        // with its reference-count block, and the headers' entries; 64 bytes for the
        // allocator's rounding of those.
        let session = std::mem::size_of::<Session>() + 16;
        let headers = self.identity.heap_bytes() + 24 + self.headers.heap_bytes() + 64;
        session
            + assertion_claims
            + self.id_token.as_ref().map_or(0, CompactToken::heap_bytes)
            + self.extras.as_ref().map_or(0, |_| std::mem::size_of::<SessionExtras>())
            + self.access_token().map_or(0, str::len)
            + headers
            + self.signature_block().len()
            + CACHE_ENTRY
            // The assertion once signed.
            + if claims.is_none() { 0 } else { 600 }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("provider", &self.identity.provider())
            .field("sub_hash", &self.sub_hash)
            .field("id_token", &"REDACTED")
            .field("headers", &self.headers.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A compact JWS or JWE (the id_token, kept for the logout hint) with its base64url segments
/// decoded: three quarters of the text. A token whose segments are not canonical unpadded
/// base64url (or that has more than five) is kept as its text; either way [`Self::to_text`]
/// gives back exactly what was stored.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactToken(Box<[u8]>);

const TOKEN_TEXT: u8 = 0;
const TOKEN_SEGMENTS: u8 = 1;

impl CompactToken {
    pub fn new(text: &str) -> Self {
        let decoded: Option<Vec<Vec<u8>>> = text
            .split('.')
            .map(|segment| {
                let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
                (URL_SAFE_NO_PAD.encode(&bytes) == segment).then_some(bytes)
            })
            .collect();
        match decoded {
            Some(segments) if segments.len() <= 5 => {
                let mut out = Vec::with_capacity(
                    2 + 4 * segments.len() + segments.iter().map(Vec::len).sum::<usize>(),
                );
                out.push(TOKEN_SEGMENTS);
                out.push(segments.len() as u8);
                for segment in &segments {
                    let Ok(len) = u32::try_from(segment.len()) else {
                        return CompactToken::text(text);
                    };
                    out.extend_from_slice(&len.to_le_bytes());
                }
                for segment in &segments {
                    out.extend_from_slice(segment);
                }
                CompactToken(out.into_boxed_slice())
            }
            _ => CompactToken::text(text),
        }
    }

    fn text(text: &str) -> Self {
        let mut out = Vec::with_capacity(1 + text.len());
        out.push(TOKEN_TEXT);
        out.extend_from_slice(text.as_bytes());
        CompactToken(out.into_boxed_slice())
    }

    /// The token's text, as it was stored (empty for a damaged buffer, which `new` never writes).
    pub fn to_text(&self) -> String {
        match self.0.split_first() {
            Some((&TOKEN_SEGMENTS, rest)) => {
                let Some((&count, rest)) = rest.split_first() else {
                    return String::new();
                };
                let Some((lengths, mut body)) = rest.split_at_checked(4 * usize::from(count))
                else {
                    return String::new();
                };
                let mut text = String::with_capacity(body.len() * 4 / 3 + 8);
                for (i, len) in lengths.chunks_exact(4).enumerate() {
                    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                    let Some((segment, next)) = body.split_at_checked(len) else {
                        return String::new();
                    };
                    if i > 0 {
                        text.push('.');
                    }
                    URL_SAFE_NO_PAD.encode_string(segment, &mut text);
                    body = next;
                }
                text
            }
            Some((&TOKEN_TEXT, rest)) => String::from_utf8_lossy(rest).into_owned(),
            _ => String::new(),
        }
    }

    /// The bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// The stored form, for sealing.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A token from its stored form ([`Self::as_bytes`]); a damaged one gives an empty text.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        CompactToken(bytes.into_boxed_slice())
    }
}

/// The `sub_hash` of a session: 16 hex characters of SHA-256(provider, NUL, sub), kept inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SubHash([u8; 16]);

impl SubHash {
    pub fn as_str(&self) -> &str {
        // Hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for SubHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SubHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn hash_subject(provider: &str, sub: &str) -> SubHash {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::new()
        .chain_update(provider.as_bytes())
        .chain_update([0u8])
        .chain_update(sub.as_bytes())
        .finalize();
    let mut text = [0u8; 16];
    for (i, byte) in digest[..8].iter().enumerate() {
        text[2 * i] = HEX[usize::from(byte >> 4)];
        text[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    SubHash(text)
}

/// How this deployment turns a [`SessionRecord`] into a [`Session`]: which headers, whether
/// assertions are signed, which providers exist.
#[derive(Clone)]
pub struct SessionPlan {
    pub headers: Arc<HeaderPlan>,
    pub assertions: bool,
    pub forward_access_token: bool,
    /// Whether requests are signed (`[signature]`): only then is the HMAC block kept.
    pub signatures: bool,
    /// The configured provider ids: a record naming another is refused.
    pub providers: Vec<String>,
}

impl SessionPlan {
    /// The only way a session is made, at login and when a record is read back. `None` when
    /// the record names a provider this deployment does not configure.
    pub fn build(&self, record: SessionRecord) -> Option<Session> {
        if !self.providers.contains(&record.identity.provider) {
            return None;
        }
        let access_token = record
            .access_token
            .filter(|_| self.forward_access_token)
            .map(String::into_boxed_str);
        let headers = self.headers.identity_headers(
            &record.identity,
            ForwardedTokens {
                access_token: access_token.as_deref(),
                id_token: Some(&record.id_token),
            },
        );
        let extras = (self.assertions || self.signatures || access_token.is_some()).then(|| {
            Box::new(SessionExtras {
                access_token,
                signature_block: if self.signatures {
                    RequestSigner::header_block(&headers).into_boxed_slice()
                } else {
                    Box::default()
                },
                assertion_claims: self
                    .assertions
                    .then(|| assertion::assertion_claims(&record.identity)),
                assertion: RwLock::new(None),
            })
        });
        // The identity and the header values in one buffer: most values are claims' texts.
        let (headers, buffer) =
            PackedHeaders::pack_after(CompactIdentity::encode(&record.identity), &headers)?;
        Some(Session {
            sub_hash: hash_subject(&record.identity.provider, &record.identity.sub),
            identity: CompactIdentity::from_encoded(Bytes::from(buffer)),
            headers,
            extras,
            id_token: (!record.id_token.is_empty()).then(|| CompactToken::new(&record.id_token)),
            created_at: std::time::UNIX_EPOCH + Duration::from_millis(record.created_at_ms),
            checked: AtomicU64::new(0),
        })
    }
}

/// The shared store, as the session store uses it.
struct SharedSessions {
    store: Arc<SharedStore>,
    /// Seals records for the store, bound to this deployment.
    sealer: Sealer,
    /// Ids the store did not know, not asked about again for [`UNKNOWN_TTL`].
    unknown: moka::sync::Cache<StoreKey, ()>,
    /// Bounds the lookups of sessions not held in memory.
    lookups: tokio::sync::Semaphore,
    /// Records that failed to open or to build, and lookups refused for lack of budget.
    refused: prometheus::IntCounterVec,
}

/// Sessions in memory, and in the shared store when one is configured.
#[derive(Clone)]
pub struct SessionStore {
    cache: Cache<StoreKey, Arc<Session>>,
    shared: Option<Arc<SharedSessions>>,
    plan: Arc<SessionPlan>,
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
    pub fn new(settings: &SessionSettings, plan: Arc<SessionPlan>) -> Self {
        Self::with_listener(settings, plan, None)
    }

    /// A store that reports the sessions it expires or evicts.
    pub fn with_listener(
        settings: &SessionSettings,
        plan: Arc<SessionPlan>,
        on_end: Option<EndListener>,
    ) -> Self {
        // Each session weighs its bytes, and at least max_memory / max_sessions: both bounds
        // hold with one weighted capacity.
        let floor = (settings.max_memory / settings.max_sessions.max(1)).clamp(1, u32::MAX as u64);
        let mut builder = Cache::builder()
            .max_capacity(settings.max_memory)
            .weigher(move |_key, session: &Arc<Session>| {
                (session.estimated_bytes() as u64)
                    .max(floor)
                    .min(u32::MAX as u64) as u32
            })
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
            plan,
            idle_timeout: settings.idle_timeout,
            max_lifetime: settings.max_lifetime,
        }
    }

    /// Also keeps sessions in a store shared with other replicas, sealed with `sealer`;
    /// `refused` counts what is refused (`reason` label).
    pub fn with_shared(
        mut self,
        store: Arc<SharedStore>,
        sealer: Sealer,
        refused: prometheus::IntCounterVec,
    ) -> Self {
        self.shared = Some(Arc::new(SharedSessions {
            store,
            sealer,
            unknown: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(UNKNOWN_TTL)
                .build(),
            lookups: tokio::sync::Semaphore::new(LOOKUP_BUDGET),
            refused,
        }));
        self
    }

    /// The plan sessions are built with.
    pub fn plan(&self) -> &SessionPlan {
        &self.plan
    }

    /// How long the shared store keeps a session unless it is used: the idle timeout, capped
    /// by what is left of its lifetime.
    fn shared_ttl(&self, session: &Session) -> Duration {
        let age = session.created_at.elapsed().unwrap_or_default();
        self.idle_timeout.min(self.max_lifetime.saturating_sub(age))
    }

    /// Builds a new session from a verified login and stores it under a fresh id.
    pub async fn create(&self, record: SessionRecord) -> Option<(SessionId, Arc<Session>)> {
        let id = SessionId::generate();
        let session = self.create_with_id(&id, record).await?;
        Some((id, session))
    }

    /// [`Self::create`] under an id chosen by the caller (the login seals the logout hint for
    /// its store key first).
    pub async fn create_with_id(
        &self,
        id: &SessionId,
        record: SessionRecord,
    ) -> Option<Arc<Session>> {
        let session = Arc::new(self.plan.build(record)?);
        let key = id.to_key();
        if let Some(shared) = &self.shared {
            session.checked.store(now_millis(), Ordering::Relaxed);
            self.write_shared(shared, &key, &session).await;
        }
        self.cache.insert(key, session.clone());
        Some(session)
    }

    /// Writes a session to the shared store, sealed. A failure is logged and counted by the
    /// store; the session lives in this replica's memory anyway.
    async fn write_shared(&self, shared: &SharedSessions, key: &StoreKey, session: &Session) {
        if let Ok(json) = serde_json::to_vec(&session.to_record()) {
            let key = key.to_text();
            let sealed = shared.sealer.seal(key.as_bytes(), &json);
            let _ = shared
                .store
                .put(Entry::Session, &key, &sealed, self.shared_ttl(session))
                .await;
        }
    }

    /// Opens and builds a record read from the shared store; anything wrong is a miss, counted
    /// and logged.
    fn open_shared(&self, shared: &SharedSessions, key: &StoreKey, value: &str) -> Option<Session> {
        let refuse = |reason: &'static str| {
            shared.refused.with_label_values(&[reason]).inc();
            shared.store.warn_refused(reason);
            None
        };
        if value.len() > MAX_SHARED_ENTRY {
            return refuse("malformed");
        }
        let Some(json) = shared
            .sealer
            .open(key.to_text().as_bytes(), value.as_bytes())
        else {
            return refuse("unauthenticated");
        };
        let Ok(record) = serde_json::from_slice::<SessionRecord>(&json) else {
            return refuse("malformed");
        };
        match self.plan.build(record) {
            Some(session) => Some(session),
            None => refuse("unknown_provider"),
        }
    }

    /// The live session for this id, refreshing its idle timer (here and, at most every
    /// `recheck`, in the shared store). Every proxied request calls it, so its own future stays
    /// small: the call to the shared store, a future of several KiB, is boxed apart
    /// ([`SessionStore::ask_shared`]) and made only when the store is asked.
    pub async fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        let key = id.to_key();
        let local = self.cache.get(&key);
        let Some(shared) = &self.shared else {
            return local;
        };
        let now = now_millis();
        let permit = match &local {
            Some(session) => {
                let checked = session.checked.load(Ordering::Relaxed);
                if now.saturating_sub(checked) < shared.store.recheck.as_millis() as u64 {
                    return local;
                }
                // One request per session and period asks the store; the concurrent ones go
                // on with this replica's copy (no burst of calls when `recheck` runs out).
                if session
                    .checked
                    .compare_exchange(checked, now, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    return local;
                }
                None
            }
            None => {
                if shared.unknown.contains_key(&key) {
                    return None;
                }
                match shared.lookups.try_acquire() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        shared.refused.with_label_values(&["budget"]).inc();
                        return None;
                    }
                }
            }
        };
        Box::pin(self.ask_shared(shared, key, local, now, permit)).await
    }

    /// [`SessionStore::get`]'s call to the shared store: `local` is this replica's copy, if
    /// any; `permit` is held while the store is asked about an id this replica does not know.
    async fn ask_shared(
        &self,
        shared: &SharedSessions,
        key: StoreKey,
        local: Option<Arc<Session>>,
        now: u64,
        _permit: Option<tokio::sync::SemaphorePermit<'_>>,
    ) -> Option<Arc<Session>> {
        let ttl = local
            .as_ref()
            .map_or(self.idle_timeout, |session| self.shared_ttl(session));
        match shared
            .store
            .get(Entry::Session, &key.to_text(), Some(ttl))
            .await
        {
            // Logged out on another replica.
            Ok(Some(value)) if value == ENDED => {
                self.cache.invalidate(&key);
                None
            }
            Ok(Some(value)) => {
                if let Some(session) = local {
                    return Some(session);
                }
                let session = self.open_shared(shared, &key, &value)?;
                if session.created_at.elapsed().unwrap_or_default() >= self.max_lifetime {
                    return None;
                }
                session.checked.store(now, Ordering::Relaxed);
                let session = Arc::new(session);
                self.cache.insert(key, session.clone());
                Some(session)
            }
            Ok(None) => match local {
                // The store lost it (restarted without persistence, flushed): write it back.
                Some(session) => {
                    self.write_shared(shared, &key, &session).await;
                    Some(session)
                }
                None => {
                    shared.unknown.insert(key, ());
                    None
                }
            },
            // The shared store does not answer: trust this replica's memory.
            Err(_) => local,
        }
    }

    /// Ends a session here and in the shared store; returns it (loaded from the shared store
    /// when this replica did not hold it), for the logout at its provider.
    pub async fn remove(&self, id: &SessionId) -> Option<Arc<Session>> {
        let key = id.to_key();
        let mut removed = self.cache.remove(&key);
        if let Some(shared) = &self.shared {
            let text = key.to_text();
            if removed.is_none() {
                if let Ok(Some(value)) = shared.store.get(Entry::Session, &text, None).await {
                    if value != ENDED {
                        removed = self.open_shared(shared, &key, &value).map(Arc::new);
                    }
                }
            }
            // One write replaces the session by a tombstone: nothing can write it back. It is
            // retried, since a logout that does not reach the store leaves the session live
            // on the other replicas.
            let mut ended = false;
            for _ in 0..3 {
                if shared
                    .store
                    .put(Entry::Session, &text, ENDED, self.max_lifetime)
                    .await
                    .is_ok()
                {
                    ended = true;
                    break;
                }
            }
            if !ended {
                tracing::error!("a logout could not be written to the shared store: the session stays valid on other replicas until it idles out");
            }
        }
        removed
    }

    /// Every live session, for the hand-over to a new process at a graceful upgrade.
    pub fn dump(&self) -> Vec<HandedOver> {
        self.cache
            .iter()
            .map(|(key, session)| HandedOver {
                key: key.to_text(),
                session: session.to_record(),
            })
            .collect()
    }

    /// Puts back sessions dumped by [`Self::dump`] (rebuilt with this process's settings);
    /// returns how many were still alive and of a configured provider.
    pub async fn restore(&self, dumped: Vec<HandedOver>) -> usize {
        let mut restored = 0;
        for entry in dumped {
            let Some(key) = StoreKey::from_text(&entry.key) else {
                continue;
            };
            let Some(session) = self.plan.build(entry.session) else {
                continue;
            };
            if session.created_at.elapsed().unwrap_or_default() < self.max_lifetime {
                self.cache.insert(key, Arc::new(session));
                restored += 1;
            }
        }
        restored
    }

    /// Number of live sessions (runs the cache's pending maintenance first, so it is exact).
    pub fn count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// The estimated bytes the sessions in memory hold (after pending maintenance).
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

/// A session as written to the hand-over file: the store key (a hash, not a usable cookie) and
/// its record.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct HandedOver {
    key: String,
    session: SessionRecord,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::Claim;

    pub(crate) fn settings(idle: Duration, lifetime: Duration) -> SessionSettings {
        SessionSettings {
            idle_timeout: idle,
            max_lifetime: lifetime,
            max_sessions: 10,
            max_memory: 1 << 30,
            cookie_name: "guichet".into(),
            login_cookie_prefix: "guichet-login-".into(),
            logout_cookie_name: "guichet-logout".into(),
            secure: false,
            shared: None,
        }
    }

    fn plan() -> Arc<SessionPlan> {
        Arc::new(SessionPlan {
            signatures: false,
            headers: Arc::new(HeaderPlan::default()),
            assertions: false,
            forward_access_token: false,
            providers: vec!["p".into()],
        })
    }

    fn record() -> SessionRecord {
        SessionRecord {
            identity: Identity::new("p", "s").with_claim("given_name", "Hélène"),
            id_token: "secret-token".into(),
            access_token: Some("access".into()),
            created_at_ms: now_millis(),
        }
    }

    #[test]
    fn tokens_are_kept_compact_and_come_back_exactly() {
        let jws = format!(
            "eyJhbGciOiJFUzI1NiIsImtpZCI6ImFjIn0.{}.{}",
            URL_SAFE_NO_PAD.encode("{\"sub\":\"4f1c\",\"acr\":\"eidas1\"}".repeat(20)),
            URL_SAFE_NO_PAD.encode([7u8; 64])
        );
        let compact = CompactToken::new(&jws);
        assert_eq!(compact.to_text(), jws);
        assert!(
            compact.heap_bytes() < jws.len() * 3 / 4 + 16,
            "{}",
            compact.heap_bytes()
        );
        // A JWE with an empty encrypted key (ECDH-ES), texts that are not canonical base64url,
        // too many segments, odd characters: all come back as they were.
        for text in [
            "eyJhbGciOiJFQ0RILUVTIn0..aXY.Y2lwaGVy.dGFn",
            "",
            ".",
            "a.b.c",
            "YQ==.YQ.YQ",
            "YR.YQ.YQ",
            "YQ.YQ.YQ.YQ.YQ.YQ",
            "é.ü",
            "eyJhbGciOiJIUzI1NiJ9 .e30.sig",
        ] {
            assert_eq!(CompactToken::new(text).to_text(), text, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_comes_back_exactly(text in "[A-Za-z0-9_.=+/ -]{0,80}|\\PC{0,40}") {
            proptest::prop_assert_eq!(CompactToken::new(&text).to_text(), text);
        }
    }

    #[test]
    fn sub_hash_is_the_hex_of_the_first_8_bytes_of_sha256() {
        for (provider, sub) in [("agentconnect", "4f1c-ab"), ("", ""), ("p", "s\u{e9}")] {
            let digest = Sha256::digest(format!("{provider}\0{sub}").as_bytes());
            let expected: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let hash = hash_subject(provider, sub);
            assert_eq!(hash.as_str(), expected);
            assert_eq!(hash.to_string(), expected);
        }
        assert_ne!(hash_subject("a", "bc"), hash_subject("ab", "c"));
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = SessionId::generate();
        let value = id.to_cookie_value();
        assert_eq!(value.len(), 43);
        assert_eq!(SessionId::from_cookie_value(value.as_bytes()), Some(id));
        assert_eq!(SessionId::from_cookie_value(b""), None);
        assert_eq!(SessionId::from_cookie_value(&value.as_bytes()[1..]), None);
        assert_eq!(
            SessionId::from_cookie_value("!".repeat(43).as_bytes()),
            None
        );
        assert_eq!(SessionId::from_cookie_value(&[0xe9; 43]), None);
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn sessions_are_built_from_their_record_and_hide_secrets() {
        let plan = plan();
        let session = plan.build(record()).expect("configured provider");
        assert!(session
            .identity_headers()
            .any(|(n, v)| n == "x-guichet-given-name" && v == "H%C3%A9l%C3%A8ne"));
        assert_eq!(
            session.to_record().access_token,
            None,
            "not forwarded: not kept"
        );
        assert!(!format!("{session:?}").contains("secret-token"));
        assert!(!format!("{:?}", record()).contains("secret-token"));
        let mut foreign = record();
        foreign.identity.provider = "elsewhere".into();
        assert!(
            plan.build(foreign).is_none(),
            "provider not configured here"
        );
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(&id.to_cookie_value()));
    }

    #[test]
    fn a_session_carries_only_what_its_configuration_uses() {
        // With the defaults: no extras, and a small fixed part (a million sessions is the
        // design point; every 8 bytes here are 8 MB there).
        let plain = plan().build(record()).unwrap();
        assert!(plain.extras.is_none());
        assert!(plain.signature_block().is_empty() && plain.assertion().is_none());
        assert!(
            std::mem::size_of::<Session>() <= 144,
            "{}",
            std::mem::size_of::<Session>()
        );
        let with = |signatures, assertions, forward_access_token| {
            SessionPlan {
                signatures,
                assertions,
                forward_access_token,
                ..(*plan()).clone()
            }
            .build(record())
            .unwrap()
        };
        let signed = with(true, false, false);
        assert!(String::from_utf8_lossy(signed.signature_block())
            .contains("x-guichet-given-name:H%C3%A9l%C3%A8ne"));
        assert!(signed.assertion().is_none() && signed.to_record().access_token.is_none());
        let asserted = with(false, true, false);
        let claims = asserted.assertion().expect("claims").claims;
        assert_eq!(claims["sub"], "s");
        assert!(asserted.signature_block().is_empty());
        let forwarded = with(false, false, true);
        assert_eq!(
            forwarded.to_record().access_token.as_deref(),
            Some("access")
        );
        assert!(forwarded.assertion().is_none() && forwarded.signature_block().is_empty());
        // Each weighs more than the plain one in the store's estimate.
        for session in [&signed, &asserted, &forwarded] {
            assert!(session.estimated_bytes() > plain.estimated_bytes());
        }
    }

    #[tokio::test]
    async fn store_finds_by_id_and_forgets_after_idle() {
        let store = SessionStore::new(
            &settings(Duration::from_millis(200), Duration::from_secs(60)),
            plan(),
        );
        let (id, _) = store.create(record()).await.unwrap();
        assert!(store.get(&id).await.is_some());
        assert!(store.get(&SessionId::generate()).await.is_none());
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(store.get(&id).await.is_none(), "idle session must expire");
    }

    #[tokio::test]
    async fn store_enforces_absolute_lifetime_even_when_used() {
        let store = SessionStore::new(
            &settings(Duration::from_millis(250), Duration::from_millis(1400)),
            plan(),
        );
        let (id, session) = store.create(record()).await.unwrap();
        let deadline = session.created_at + Duration::from_millis(1400);
        while SystemTime::now() + Duration::from_millis(150) < deadline {
            assert!(store.get(&id).await.is_some());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(store.get(&id).await.is_none(), "lifetime must be absolute");
    }

    #[tokio::test]
    async fn memory_is_bounded_by_bytes_as_well_as_count() {
        let mut bounded = settings(Duration::from_secs(60), Duration::from_secs(3600));
        bounded.max_sessions = 1_000;
        bounded.max_memory = 64 * 1024;
        let store = SessionStore::new(&bounded, plan());
        let mut big = record();
        big.identity
            .claims
            .insert("blob".into(), Claim::from("x".repeat(4000).as_str()));
        for _ in 0..200 {
            store.create(big.clone()).await.unwrap();
        }
        let weight = store.weighted_size();
        assert!(weight <= 64 * 1024, "{weight} bytes held");
        assert!(store.count() < 20, "{} sessions", store.count());

        let mut counted = settings(Duration::from_secs(60), Duration::from_secs(3600));
        counted.max_sessions = 10;
        let store = SessionStore::new(&counted, plan());
        for _ in 0..100 {
            store.create(record()).await.unwrap();
        }
        assert!(store.count() <= 10, "{} sessions", store.count());
    }

    #[tokio::test]
    async fn dumped_sessions_restore_with_their_deadline() {
        let settings = settings(Duration::from_secs(60), Duration::from_secs(3600));
        let old = SessionStore::new(&settings, plan());
        let (id, _) = old.create(record()).await.unwrap();
        let mut stale = record();
        stale.created_at_ms -= 7_200_000;
        let (stale_id, _) = old.create(stale).await.unwrap();
        let mut gone = record();
        gone.identity.provider = "removed".into();
        old.cache.run_pending_tasks();

        let mut dumped = old.dump();
        dumped.push(HandedOver {
            key: SessionId::generate().to_key().to_text(),
            session: gone,
        });
        let text = serde_json::to_string(&dumped).unwrap();
        assert!(
            !text.contains(&id.to_cookie_value()),
            "no usable cookie in the dump"
        );
        let new = SessionStore::new(&settings, plan());
        assert_eq!(new.restore(serde_json::from_str(&text).unwrap()).await, 1);
        let restored = new.get(&id).await.expect("session handed over");
        assert!(restored
            .identity_headers()
            .any(|(n, v)| n == "x-guichet-given-name" && v == "H%C3%A9l%C3%A8ne"));
        assert!(new.get(&stale_id).await.is_none(), "past its lifetime");
    }
}
